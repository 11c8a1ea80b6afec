"""The cross-cutting promises every later entity relies on: a model cannot get a view or an
API without a scope declaration, and `flask seed demo` is safe to run every time."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from seed.demo import SeedRefused, seed_demo

ROOT = Path(__file__).resolve().parents[1]


# Run in a child process: the example model must not join this process's mappers.
UNSCOPED = """
from sqlalchemy import Column, String
from app.models.base import Entity

class Unscoped(Entity):
    __tablename__ = "unscoped_example"
    name = Column(String(10))
"""


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", UNSCOPED + code], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "GONGJIAN_CONFIG": "testing"}, timeout=120)


def test_a_view_or_api_for_a_model_without_scope_is_refused():
    for base in ("EntityView", "EntityApi"):
        result = run(f"from app.views.base import {base}\n"
                     f"type('X', ({base},), {{'model': Unscoped}})")
        assert result.returncode != 0
        assert "declares no __scope__" in result.stderr


def test_startup_refuses_a_business_model_without_scope():
    result = run("from app import create_app\ncreate_app()")
    assert result.returncode != 0
    assert "Unscoped" in result.stderr and "__scope__" in result.stderr


def counts(ctx):
    return [ctx.execute(text(f"SELECT count(*) FROM {t}")).scalar()
            for t in ("organization", "unit", "member", "ab_user")]


def test_seeding_twice_changes_nothing(app, ctx):
    before = counts(ctx)
    with app.app_context():
        assert seed_demo(scale="test", password="x", echo=lambda *a: None) is False
    assert counts(ctx) == before


def test_seeding_refuses_a_database_it_did_not_seed(app, ctx):
    with ctx.session() as session:
        session.execute(text("UPDATE ab_user SET username='admin-renamed' WHERE username='admin'"))
        with pytest.raises(SeedRefused, match="--force"):
            seed_demo(scale="test", password="x", echo=lambda *a: None)
        session.rollback()
    assert ctx.execute(text("SELECT count(*) FROM ab_user WHERE username='admin'")).scalar() == 1
