"""Two hosts whose clocks are 5 minutes apart (issue 21's fault list): a second host served by
another process on the same database, every clock read of which runs 300 s ahead.

What happens: each host stamps what it writes with its own clock, so events written on
different hosts may be out of order by up to the difference (never by a zone's 8 hours); API
tokens issued by the host ahead are taken by the host behind within JWT_DECODE_LEEWAY (without
it they were refused as "not yet valid" for 5 minutes)."""
from datetime import datetime, timedelta

import requests
from sqlalchemy import text

from tests.conftest import TEST_PASSWORD, api_token
from tests.security.served import Served

SKEW = timedelta(minutes=5)


def as_datetime(value):
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def test_a_host_five_minutes_ahead(app, client, ctx, database_url):
    community = ctx.execute(text("SELECT org_id FROM ab_user WHERE username='shequ01'")).scalar()
    category = ctx.execute(text(
        "SELECT id FROM dictionary WHERE kind='need_category' ORDER BY id")).scalar()
    with Served(database_url, clock_shift=SKEW.total_seconds()) as ahead:
        login = ahead.api_login("shequ01", TEST_PASSWORD)
        assert login.status_code == 200, login.text
        issued_ahead = {"Authorization": f"Bearer {login.json()['access_token']}"}

        # The token says it was issued 5 minutes from now: refused without a leeway...
        leeway = app.config["JWT_DECODE_LEEWAY"]
        app.config["JWT_DECODE_LEEWAY"] = 0
        try:
            refused = client.get("/api/v1/need/?q=(page_size:1)", headers=issued_ahead)
        finally:
            app.config["JWT_DECODE_LEEWAY"] = leeway
        assert refused.status_code in (401, 422), refused.status_code
        # ... and taken with the configured one.
        assert client.get("/api/v1/need/?q=(page_size:1)",
                          headers=issued_ahead).status_code == 200

        filed = requests.post(f"{ahead.url}/api/v1/need/", headers=issued_ahead, timeout=30,
                              json={"community": community, "category": category,
                                    "title": "时钟相差五分钟", "content": "内容",
                                    "urgency": "一般", "source": "社区"})
        assert filed.status_code == 201, filed.text
        pk = filed.json()["id"]
    accepted = client.post(f"/api/v1/need/{pk}/transition/accept",
                           headers=api_token(app, "shequ01"), json={})
    assert accepted.status_code == 200, accepted.json
    created_on, accepted_on = (as_datetime(v) for v in ctx.execute(
        text("SELECT created_on, accepted_on FROM need WHERE id=:i"), {"i": pk}).one())
    # Accepted on the host behind "before" it was filed on the host ahead: out of order by
    # the clocks' difference, no more.
    assert timedelta(0) < created_on - accepted_on <= SKEW + timedelta(seconds=5)
