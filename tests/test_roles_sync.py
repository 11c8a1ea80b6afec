"""`flask gongjian init`'s permission sync (app.cli.sync_roles): a fresh set-up creates every
view's permissions without a warning, a permission no view declares any more is taken from every
role and removed, and a second run changes nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent

# A fresh database needs an application of its own: run in a child process, since one made
# here would take over the shared AppBuilder of the session's `app`.
FRESH = """
import json, logging, sys
from app import create_app
from app.cli import sync_roles
from app.extensions import appbuilder, db
from flask_migrate import upgrade

app = create_app("testing", SQLALCHEMY_DATABASE_URI="sqlite:///" + sys.argv[1])
with app.app_context():
    upgrade(revision="heads")
    seen = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: seen.append(record.getMessage())
    logging.getLogger("flask_appbuilder").addHandler(handler)
    sync_roles()
    declared = sorted({(p, v.class_permission_name) for v in appbuilder.baseviews
                       for p in v.base_permissions or ()})
    pvs = sorted((pv.permission.name, pv.view_menu.name)
                 for pv in db.session.query(appbuilder.sm.permissionview_model))
print(json.dumps({"warnings": seen, "declared": declared, "pvs": pvs}))
"""


def test_a_fresh_sync_creates_every_permission_and_warns_of_nothing(tmp_path):
    done = subprocess.run([sys.executable, "-c", FRESH, str(tmp_path / "fresh.db")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "GONGJIAN_CONFIG": "testing"})
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["warnings"] == []  # FAB's sync said "Refused to delete … can_import" 24 times
    pvs = {tuple(pv) for pv in out["pvs"]}
    assert {tuple(d) for d in out["declared"]} <= pvs
    assert ("can_import", "need") in pvs  # the view's, which the API of "need" lacks


def permission_views(ctx):
    return ctx.execute(text(
        "SELECT p.name, v.name, r.name FROM ab_permission_view pv "
        "JOIN ab_permission p ON p.id = pv.permission_id "
        "JOIN ab_view_menu v ON v.id = pv.view_menu_id "
        "LEFT JOIN ab_permission_view_role pr ON pr.permission_view_id = pv.id "
        "LEFT JOIN ab_role r ON r.id = pr.role_id")).all()


def test_a_permission_no_view_declares_is_taken_from_every_role_and_removed(app, ctx):
    from app.cli import sync_roles
    from app.extensions import appbuilder

    before = sorted(permission_views(ctx))
    with ctx.session():
        sm = appbuilder.sm
        pv = sm.add_permission_view_menu("can_obsolete", "need")
        for name in ("Admin", "StreetAdmin"):
            sm.add_permission_role(sm.find_role(name), pv)
    assert {(p, r) for p, v, r in permission_views(ctx) if p == "can_obsolete"} == {
        ("can_obsolete", "Admin"), ("can_obsolete", "StreetAdmin")}
    with app.app_context():
        sync_roles()
    assert sorted(permission_views(ctx)) == before
    assert ctx.execute(text("SELECT count(*) FROM ab_permission WHERE name = 'can_obsolete'")
                       ).scalar() == 0
    with app.app_context():
        sync_roles()  # a second run changes nothing
    assert sorted(permission_views(ctx)) == before
