"""Deploy steps started on two hosts at once (issue 21): two `flask db upgrade`, then two
`flask gongjian init`, as real processes on one fresh database, each end without an error and
leave the schema at head and the roles and dictionary as one run leaves them."""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import create_database, empty_database
from tests.test_migrations import alembic_config

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fresh_url(database_url):
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        folder = tempfile.mkdtemp()
        yield f"sqlite:///{folder}/deploy.db"
        return
    fresh = url.set(database=f"{url.database}_deploy").render_as_string(hide_password=False)
    create_database(fresh)
    empty_database(fresh)
    yield fresh


def both_at_once(url, *command):
    env = {**os.environ, "DATABASE_URL": url, "FLASK_APP": "run.py",
           "GONGJIAN_CONFIG": "development", "GONGJIAN_INSTANCE": tempfile.mkdtemp()}
    env.pop("TEST_DATABASE_URL", None)
    runs = [subprocess.Popen([sys.executable, "-m", "flask", *command], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    for run, output in zip(runs, outputs):
        assert run.returncode == 0, output[-3000:]
    return outputs


def counts(engine):
    with engine.connect() as connection:
        return {table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()
                for table in ("ab_permission", "ab_view_menu", "ab_permission_view",
                              "ab_role", "ab_permission_view_role", "dictionary")}


def test_two_upgrades_then_two_inits_at_once(fresh_url):
    engine = create_engine(fresh_url)
    try:
        both_at_once(fresh_url, "db", "upgrade")
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars() \
                .all() == [head]
        outputs = both_at_once(fresh_url, "gongjian", "init")
        assert all("角色与权限已同步" in output for output in outputs)
        after_two = counts(engine)
        assert after_two["ab_role"] >= 8 and after_two["dictionary"] > 0
        both_at_once(fresh_url, "gongjian", "init")  # and again: nothing more
        assert counts(engine) == after_two
    finally:
        engine.dispose()
