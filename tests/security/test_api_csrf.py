"""CSRF on the API for browser sessions (issue 16, finding 3): with shequ01's session cookie,
another site's form posting to a need's transition (form-encoded or multipart) is refused and
changes nothing; the panel's own page supplies the token its script sends in `X-CSRFToken`;
bearer-token clients are unaffected."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from tests.conftest import api_token, login

pytestmark = pytest.mark.db

ORIGIN = "http://localhost"  # the test client's host
EVIL = "https://evil.example"


def new_need(app, ctx) -> int:
    community = ctx.execute(text("SELECT org_id FROM ab_user WHERE username='shequ01'")).scalar()
    category = ctx.execute(text(
        "SELECT id FROM dictionary WHERE kind='need_category' ORDER BY id")).scalar()
    response = app.test_client().post("/api/v1/need/", headers=api_token(app, "shequ01"), json={
        "community": community, "category": category, "title": "跨站测试", "content": "内容",
        "urgency": "一般", "source": "社区"})
    assert response.status_code == 201, response.json
    return response.json["id"]


def status(ctx, pk) -> str:
    return ctx.execute(text("SELECT status FROM need WHERE id=:i"), {"i": pk}).scalar()


def page_token(browser) -> str:
    """The token the panel's pages print for their script (gongjian.js sends it)."""
    page = browser.get("/need/list/").get_data(as_text=True)
    assert 'js/gongjian.js' in page
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


def test_a_cross_site_cookie_post_to_a_transition_is_refused(app, ctx):
    pk = new_need(app, ctx)
    before = status(ctx, pk)
    browser = login(app, "shequ01")
    url = f"/api/v1/need/{pk}/transition/accept"
    # What another site's auto-submitting form sends: the cookie, no header, its own origin.
    for body in ({"note": "x"}, {"file": (open(__file__, "rb"), "scan.pdf")}):
        response = browser.client.post(url, data=body, headers={"Origin": EVIL})
        assert response.status_code == 403, response.get_data(as_text=True)
        assert "跨站" in response.json["message"]
    # Without an Origin, a foreign Referer is refused too; so is our origin without the token.
    assert browser.client.post(url, data={}, headers={
        "Referer": f"{EVIL}/page"}).status_code == 403
    response = browser.client.post(url, json={}, headers={"Origin": ORIGIN})
    assert response.status_code == 403 and "CSRF" in response.json["message"]
    # A token stolen elsewhere does not help a foreign origin.
    token = page_token(browser)
    assert browser.client.post(url, json={}, headers={
        "Origin": EVIL, "X-CSRFToken": token}).status_code == 403
    assert status(ctx, pk) == before
    assert ctx.execute(text("SELECT count(*) FROM audit_log WHERE resource='need' AND "
                            "record_id=:i AND action='transition'"), {"i": str(pk)}).scalar() == 0

    # The panel's own page: its token in the header, from its own origin → served.
    response = browser.client.post(url, json={}, headers={"Origin": ORIGIN, "X-CSRFToken": token})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert status(ctx, pk) != before


def test_bearer_token_clients_need_no_csrf_token(app, ctx):
    pk = new_need(app, ctx)
    response = app.test_client().post(f"/api/v1/need/{pk}/transition/accept", json={},
                                      headers={**api_token(app, "shequ01"), "Origin": EVIL})
    assert response.status_code == 200, response.get_data(as_text=True)


def test_the_panels_script_sends_the_token_on_unsafe_requests(app):
    from pathlib import Path

    script = (Path(app.static_folder) / "js" / "gongjian.js").read_text(encoding="utf-8")
    assert "meta[name='csrf-token']" in script and 'setRequestHeader("X-CSRFToken"' in script
