"""The city-scale generator (issue 9), built at a thousandth of its size into a fresh SQLite
file (the session's test database holds the `test` scale): counts, determinism and the
consistency the figures and list pages rely on."""
from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

FRACTION = 0.001
ROOT = Path(__file__).resolve().parent.parent


# Each build runs in its own process: an application made here would take over the shared
# AppBuilder of the session's `app`.
BUILD = """
import json, sys
from app import create_app
from app.extensions import appbuilder, db
path, step = sys.argv[1], sys.argv[2]
app = create_app("testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{path}")
out = {}
with app.app_context():
    if step == "schema":
        from flask_migrate import upgrade
        from app.cli import sync_roles
        upgrade(revision="heads")
        sync_roles()
    else:
        from seed.city import seed_city
        out["counts"] = seed_city(db.session, "City-Passw0rd!", echo=None, fraction=float(step))
        out["users"] = {u.username: [u.org_id, u.unit_id, u.member_id]
                        for u in appbuilder.sm.get_all_users()}
    db.session.remove()
    db.engine.dispose()
if step != "schema":  # the community admin signs in and lists the needs it may see
    client = app.test_client()
    login = client.post("/api/v1/security/login", json={
        "username": "shequ01", "password": "City-Passw0rd!", "provider": "db"})
    headers = {"Authorization": "Bearer " + login.json["access_token"]}
    listed = client.get("/api/v1/need/?q=(page_size:100)", headers=headers)
    out["listed"] = [listed.status_code, listed.json["count"]]
print(json.dumps(out))
"""


def _run(path, step) -> dict:
    done = subprocess.run([sys.executable, "-c", BUILD, str(path), step], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    """A migrated, initialised, empty database: copied for each build (migrating is slow)."""
    path = tmp_path_factory.mktemp("city") / "empty.db"
    _run(path, "schema")
    return path


def _build(schema, path) -> dict:
    shutil.copyfile(schema, path)
    return _run(path, str(FRACTION))


@pytest.fixture(scope="module")
def city(schema):
    base = schema.parent
    return _build(schema, base / "a.db"), base / "a.db"


def _rows(path, sql):
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def test_counts_follow_the_fraction(city):
    counts = city[0]["counts"]
    assert counts["organization"] == 2 * (1 + 2 * (1 + 2 * (1 + 2 * (1 + 2))))
    assert counts["unit"] == 30 and counts["member"] == 600
    assert counts["resource"] == 200 and counts["micro_wish"] == 100
    assert counts["need"] == 300 + 2  # and the two of the demo users
    assert 1_500 <= counts["service_record"] <= 2_600
    assert 0.7 * counts["service_record"] <= counts["point_entry"] <= 1.3 * counts["service_record"]
    assert counts["meeting"] > 0 and counts["attendance"] > 0 and counts["resolution"] > 0


def test_same_seed_same_data(city, schema, tmp_path):
    _out, db = city
    _build(schema, tmp_path / "b.db")
    for sql in ("SELECT name, community_id, work_unit_id, id_number_hash FROM member ORDER BY id",
                "SELECT code, name, path FROM organization ORDER BY id",
                "SELECT member_id, served_on, hours, status FROM service_record ORDER BY id",
                "SELECT entry_key, delta FROM point_entry ORDER BY id",
                "SELECT plan_key, status, minutes FROM meeting ORDER BY id"):
        assert _rows(db, sql) == _rows(tmp_path / "b.db", sql)


def test_id_numbers_encrypted_as_the_application_does(city):
    """Decrypted and hashed with the application's keys (the testing DATA_KEY)."""
    from app import crypto
    from app.validators import normalize_id_number
    from config import TestingConfig

    _out, db = city
    fernet, mac = crypto._keys(TestingConfig.DATA_KEY)
    rows = _rows(db, "SELECT id_number_enc, id_number_hash, id_number_key, gender FROM member")
    assert len({digest for _enc, digest, _key, _gender in rows}) == len(rows) == 600
    for enc, digest, key, gender in rows:
        number = fernet.decrypt(enc.encode()).decode()
        assert normalize_id_number(number) == number  # a valid number, check digit and all
        assert hmac.new(mac, number.encode(), hashlib.sha256).hexdigest() == digest == key
        assert gender == ("男" if int(number[16]) % 2 else "女")


def test_rows_consistent_with_their_workflows(city):
    _out, db = city
    # Every need, wish and unit names a community; members a community and a group below it.
    for table, column in (("need", "community_id"), ("micro_wish", "community_id"),
                          ("unit", "community_id"), ("member", "community_id")):
        assert _rows(db, f"SELECT count(*) FROM {table} t JOIN organization o ON o.id = "
                         f"t.{column} WHERE o.type != 'community'") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM member m JOIN organization c ON c.id = m.community_id "
                     "JOIN organization g ON g.id = m.group_id "
                     "WHERE g.path NOT LIKE c.path || '%'") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM need n JOIN organization c ON c.id = n.community_id "
                     "JOIN organization g ON g.id = n.grid_id "
                     "WHERE g.path NOT LIKE c.path || '%'") == [(0,)]
    # Closed needs have their dates; open ones none of the closing ones.
    assert _rows(db, "SELECT count(*) FROM need WHERE status IN ('已办结', '已回访') AND "
                     "(completed_on IS NULL OR deadline IS NULL OR result IS NULL)") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM need WHERE status = '已回访' AND "
                     "(satisfaction IS NULL OR visited_on IS NULL)") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM need WHERE status IN ('待受理', '已受理') AND "
                     "(assigned_unit_id IS NOT NULL OR completed_on IS NOT NULL)") == [(0,)]
    # The ledger: keys unique, one pay per certified record and subject, none for the others.
    keys = [k for (k,) in _rows(db, "SELECT entry_key FROM point_entry")]
    assert len(keys) == len(set(keys))
    assert _rows(db, "SELECT count(*) FROM point_entry p JOIN service_record r ON r.id = "
                     "p.source_id WHERE r.status != '已认证'") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM service_record r WHERE r.status = '已认证' AND "
                     "(r.certified_on IS NULL OR NOT EXISTS (SELECT 1 FROM point_entry p WHERE "
                     "p.source_id = r.id AND p.subject_type = 'member' "
                     "AND p.member_id = r.member_id))") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM point_entry p JOIN service_record r ON r.id = "
                     "p.source_id JOIN member m ON m.id = r.member_id WHERE p.subject_type = "
                     "'unit' AND p.unit_id IS NOT m.work_unit_id") == [(0,)]
    # Post claims within the headcount; the posts' claimed counts are their active claims.
    assert _rows(db, "SELECT count(*) FROM service_post p WHERE p.claimed > p.headcount OR "
                     "p.claimed != (SELECT count(*) FROM post_claim c WHERE c.post_id = p.id "
                     "AND c.status = '已认领')") == [(0,)]
    # Receipt numbers as the models write them; attendance keyed per meeting and unit.
    assert _rows(db, "SELECT count(*) FROM member_registration WHERE certificate_no != "
                     "'DY' || strftime('%Y', registered_on) || printf('%06d', id)") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM attendance a JOIN meeting m ON m.id = a.meeting_id "
                     "WHERE m.status != '已召开' OR a.attendance_key != a.meeting_id || ':' || "
                     "a.unit_id") == [(0,)]
    statuses = Counter(s for (s,) in _rows(db, "SELECT status FROM need"))
    assert set(statuses) == {"待受理", "已受理", "已派单", "办理中", "已办结", "已回访", "已驳回"}


def test_demo_users_linked_and_scoped_as_at_the_demo_scale(city):
    out, db = city
    users = out["users"]
    assert sorted(users) == sorted(["admin", "zuzhibu", "jiedao01", "shequ01", "danwei01",
                                    "danwei02", "danwei03", "shenji", "dangyuan01", "wangge01"])
    org = {id_: (code, type_, path) for id_, code, type_, path in
           _rows(db, "SELECT id, code, type, path FROM organization")}
    unit_community = dict(_rows(db, "SELECT id, community_id FROM unit"))
    street, community = users["jiedao01"][0], users["shequ01"][0]
    assert org[street][:2] == ("YX01", "street") and org[community][:2] == ("YX0101", "community")
    assert org[community][2].startswith(org[street][2])
    grid = users["wangge01"][0]  # a grid of shequ01's community
    assert org[grid][1] == "grid" and org[grid][2].startswith(org[community][2])
    assert unit_community[users["danwei01"][1]] == unit_community[users["danwei02"][1]] == community
    far = org[unit_community[users["danwei03"][1]]][2]
    assert not far.startswith(org[street][2].rsplit("/", 2)[0] + "/")  # another district
    assert _rows(db, f"SELECT community_id FROM member WHERE id = {users['dangyuan01'][2]}") \
        == [(community,)]
    # Signed in, the community admin lists its community's needs, and only those.
    mine = _rows(db, f"SELECT count(*) FROM need WHERE community_id = {community}")[0][0]
    assert out["listed"] == [200, mine] and mine > 0


def test_planner_statistics_count_every_row(city):
    """The build's ANALYZE is a full one: an approximate one (analysis_limit) made SQLite guess
    2,000,000 needs of 300,000 at city scale and sort every live row for each list page."""
    _out, db = city
    counted = _rows(db, "SELECT count(*) FROM service_record")[0][0]
    assert counted > 1_000  # more rows than an approximate analysis would read
    stats = _rows(db, "SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'service_record'")
    live = _rows(db, "SELECT count(*) FROM service_record WHERE deleted_on IS NULL")[0][0]
    assert stats
    for index, stat in stats:  # a partial index counts the live rows
        assert int(stat.split()[0]) in (counted, live), index
