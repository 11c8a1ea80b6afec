"""Time in UTC (issue 21): instants stored as naive UTC whatever a host's zone, shown and cut
into days and months in GONGJIAN_TIMEZONE (Asia/Shanghai, UTC+8)."""
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from app import clock
from tests.conftest import api_token

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parent.parent


def utc_now():
    return datetime.now(UTC).replace(tzinfo=None)


def as_datetime(value):
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


# --- the clock ----------------------------------------------------------------------------------

def test_a_day_of_the_zone_is_bounded_in_utc(app):
    with app.app_context():
        # Shanghai's 1 December begins at 16:00 UTC on 30 November
        assert clock.day_begins(date(2026, 12, 1)) == datetime(2026, 11, 30, 16, 0)
        assert clock.day_ends(date(2026, 12, 31)) == datetime(2026, 12, 31, 16, 0)
        assert clock.to_local(datetime(2026, 11, 30, 16, 0)) == datetime(2026, 12, 1, 0, 0)
        assert clock.local_text(datetime(2026, 11, 30, 16, 0, 5)) == "2026-12-01 00:00:05"
        assert clock.local_iso(datetime(2026, 11, 30, 16, 0)) == "2026-12-01T00:00:00+08:00"
        assert clock.from_text("2026-12-01 00:00") == datetime(2026, 11, 30, 16, 0)
        assert clock.from_text("2026-12-01T00:00:00+00:00") == datetime(2026, 12, 1, 0, 0)
        assert abs(clock.utcnow() - utc_now()) < timedelta(seconds=2)
        assert clock.fixed_offset() == timedelta(hours=8)


def test_today_is_the_zones_date_not_the_hosts(app, monkeypatch):
    """At 20:00 UTC it is already tomorrow in Shanghai."""
    monkeypatch.setattr(clock, "utcnow", lambda: datetime(2026, 12, 6, 20, 0))
    with app.app_context():
        assert clock.today() == date(2026, 12, 7)
        app.config["GONGJIAN_TIMEZONE"] = "America/New_York"
        try:
            assert clock.today() == date(2026, 12, 6)
            assert clock.fixed_offset() is None  # daylight saving: no one offset
        finally:
            app.config["GONGJIAN_TIMEZONE"] = "Asia/Shanghai"


def test_a_month_of_figures_is_cut_in_the_zone(app):
    """A wish posted at 23:30 Shanghai time on 30 November (15:30 UTC) counts in November; one
    posted at 00:30 on 1 December (16:30 UTC on 30 November) counts in December."""
    from app.dashboards.figures import parse_period

    with app.app_context():
        december = parse_period("2026-12")
        assert december.begins == datetime(2026, 11, 30, 16, 0)
        assert december.ends == datetime(2026, 12, 31, 16, 0)
        assert december.contains(datetime(2026, 11, 30, 16, 30))
        assert not december.contains(datetime(2026, 11, 30, 15, 30))


# --- two hosts in different zones, one database ---------------------------------------------------

STEP = r"""
import json, sys, time
from app import create_app
from tests.conftest import api_token

url, step, arg = sys.argv[1], sys.argv[2], sys.argv[3]
app = create_app("testing", SQLALCHEMY_DATABASE_URI=url)
client = app.test_client()
headers = api_token(app, "shequ01")
if step == "file":
    response = client.post("/api/v1/need/", headers=headers, json=json.loads(arg))
else:
    response = client.post(f"/api/v1/need/{arg}/transition/accept", headers=headers, json={})
print(json.dumps({"status": response.status_code, "body": response.json,
                  "zone": time.strftime("%z")}))
"""


def run_step(database_url, zone, step, arg):
    env = {**os.environ, "TZ": zone, "GONGJIAN_TIMEZONE": "Asia/Shanghai"}
    done = subprocess.run([sys.executable, "-c", STEP, database_url, step, arg], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_two_hosts_in_different_zones_keep_the_order_of_events(app, ctx, as_user, database_url):
    """A need filed through a process at UTC+8 and accepted through one at UTC: accepted after it
    was filed (each host's local clock would have put the acceptance 8 hours before), both
    instants now in UTC, and both read back in Shanghai time, in order."""
    community = ctx.execute(text("SELECT org_id FROM ab_user WHERE username='shequ01'")).scalar()
    category = ctx.execute(text(
        "SELECT id FROM dictionary WHERE kind='need_category' ORDER BY id")).scalar()
    last_record = ctx.execute(text("SELECT max(id) FROM audit_log")).scalar() or 0
    started = utc_now()
    filed = run_step(database_url, "Asia/Shanghai", "file", json.dumps({
        "community": community, "category": category, "title": "两地时区", "content": "内容",
        "urgency": "一般", "source": "社区"}))
    assert filed["zone"] == "+0800" and filed["status"] == 201, filed
    pk = filed["body"]["id"]
    accepted = run_step(database_url, "UTC", "accept", str(pk))
    assert accepted["zone"] == "+0000" and accepted["status"] == 200, accepted
    finished = utc_now()

    row = ctx.execute(text("SELECT created_on, accepted_on FROM need WHERE id=:i"),
                      {"i": pk}).one()
    created_on, accepted_on = as_datetime(row[0]), as_datetime(row[1])
    assert started - timedelta(seconds=1) <= created_on <= accepted_on <= finished
    audit = [as_datetime(t) for t, in ctx.execute(text(
        "SELECT time FROM audit_log WHERE resource='need' AND record_id=:i AND id > :last "
        "ORDER BY id"), {"i": str(pk), "last": last_record})]  # ids of deleted needs come back
    assert len(audit) >= 2 and audit == sorted(audit)
    assert started - timedelta(seconds=1) <= audit[0] and audit[-1] <= finished

    client = app.test_client()
    shown = client.get(f"/api/v1/need/{pk}", headers=api_token(app, "shequ01")).json["result"]
    created, taken = (datetime.fromisoformat(shown[k]) for k in ("created_on", "accepted_on"))
    assert created.utcoffset() == timedelta(hours=8) and created <= taken
    assert created.astimezone(UTC).replace(tzinfo=None) == created_on.replace(microsecond=0)

    # the show page and the CSV export read the same instants on Shanghai's wall clock
    with app.app_context():
        local = clock.local_text(created_on)
    page = as_user("shequ01").get(f"/need/show/{pk}").get_data(as_text=True)
    assert local in page
    exported = as_user("shequ01").get("/need/export/csv").get_data().decode("utf-8-sig")
    assert local in exported
