"""The phone pages in Debian's chromium at 390×844 (issue 22): the liaison opens the login
page on a phone, follows it to the phone pages, takes a dispatched need on /m/need/<id> and
completes it with a photo. No page of the walk scrolls sideways. Screenshots in artifacts/."""
import pytest
from sqlalchemy import text

from tests.browser.conftest import ARTIFACTS, log_in, offline_page
from tests.conftest import api_token
from tests.test_mobile import JPEG

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 3}
NO_SIDEWAYS = "document.documentElement.scrollWidth <= window.innerWidth"


def dispatched_need(app, ctx) -> int:
    community = ctx.execute(text("SELECT org_id FROM ab_user WHERE username='shequ01'")).scalar()
    category = ctx.execute(text("SELECT id FROM dictionary WHERE kind='need_category' "
                                "ORDER BY id")).scalar()
    unit = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username='danwei01'")).scalar()
    client, headers = app.test_client(), api_token(app, "shequ01")
    response = client.post("/api/v1/need/", headers=headers, json={
        "community": community, "category": category, "title": "路灯不亮（手机旅程）",
        "content": "3号楼前的路灯连续三晚不亮，老人夜间出行不便，请尽快修复。" * 3,
        "urgency": "一般", "source": "社区"})
    pk = response.json["id"]
    for name, body in (("accept", {}), ("dispatch", {"assigned_unit": unit, "note": "请联系物业"})):
        assert client.post(f"/api/v1/need/{pk}/transition/{name}", headers=headers,
                           json=body).status_code == 200
    return pk


def test_the_liaison_takes_and_completes_a_need_on_the_phone(app, browser, server, ctx, tmp_path):
    pk = dispatched_need(app, ctx)
    photo = tmp_path / "现场.jpg"
    photo.write_bytes(JPEG)
    page, outside = offline_page(browser, server, **PHONE)

    def fits(name):
        page.screenshot(path=str(ARTIFACTS / f"mobile-{name}.png"), full_page=True)
        assert page.evaluate(NO_SIDEWAYS), f"{name} scrolls sideways at 390 px"

    page.goto(f"{server}/login/")
    fits("login")
    log_in(page, server, "danwei01")
    fits("home")
    page.click("text=切换到手机版")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/m/")
    fits("todo")
    page.click(f"a[href='/m/need/{pk}']")
    page.wait_for_load_state("networkidle")
    fits("need-dispatched")
    take = page.locator("form.m-move:has(button[value=take])")
    take.locator("input[type=file]").set_input_files(str(photo))
    take.locator("button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    assert "已接单" in page.content()
    fits("need-taken")
    complete = page.locator("form.m-move:has(button[value=complete])")
    complete.locator("textarea[name=result]").fill("已联系供电所更换灯具，晚间复查正常")
    complete.locator("input[type=file]").set_input_files(str(photo))
    complete.locator("button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    assert "已办结" in page.content()
    fits("need-done")
    row = ctx.execute(text("SELECT status, result, handling_photo_id FROM need WHERE id=:i"),
                      {"i": pk}).one()
    assert row.status == "已办结" and row.result.startswith("已联系供电所")
    assert row.handling_photo_id is not None
    page.click("text=我的")
    page.wait_for_load_state("networkidle")
    fits("me")
    assert outside == []
