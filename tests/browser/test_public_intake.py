"""A resident on a phone (Chromium at 390×844, no login): opens the community's intake URL from
its QR poster, answers the arithmetic check, files a need with a photo and gets its tracking
code; the community and the unit move it through the loop; the resident rates it from the
tracking page. No page of the walk scrolls sideways, and nothing is fetched from another host."""
import pytest
from sqlalchemy import text

from tests.browser.conftest import ARTIFACTS, offline_page
from tests.resident import file_from_phone, move_through_the_loop, phone_photo, rate_from_phone

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True}


def no_sideways_scroll(page, what):
    wide, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert wide <= inner, f"{what}: {wide} px wide in a {inner} px window"


def test_a_resident_files_a_need_from_a_phone_and_rates_it(app, browser, server):
    from app.extensions import db

    with app.app_context():
        code = db.session.execute(text(
            "SELECT o.code FROM ab_user u JOIN organization o ON o.id = u.org_id "
            "WHERE u.username = 'shequ01'")).scalar()
    page, outside = offline_page(browser, server, **PHONE)

    def look_at_the_form():
        no_sideways_scroll(page, "the intake form")
        page.screenshot(path=str(ARTIFACTS / "intake-form-390.png"), full_page=True)

    tracking = file_from_phone(page, server, code, "3号楼2单元楼道灯不亮，晚上老人上下楼不方便",
                               phone_photo(), before_submit=look_at_the_form)
    assert len(tracking) >= 22 and page.url.startswith(f"{server}/public/track/{tracking}")
    assert "13955551234" not in page.content() and "139****1234" in page.content()
    no_sideways_scroll(page, "the tracking page")

    move_through_the_loop(app, tracking, "已修好楼道灯")

    page.goto(f"{server}/public/track/{tracking}")
    assert page.locator("#status").inner_text() == "已办结"
    assert "已修好楼道灯" in page.content()
    no_sideways_scroll(page, "the tracking page after 办结")
    rate_from_phone(page, server, tracking, 5, "修得很快，谢谢")
    no_sideways_scroll(page, "the rated tracking page")
    page.screenshot(path=str(ARTIFACTS / "intake-rated-390.png"), full_page=True)
    with app.app_context():
        rated = db.session.execute(text(
            "SELECT resident_satisfaction, resident_comment, photo_id FROM need "
            "WHERE tracking_code = :c"), {"c": tracking}).one()
    assert rated[0] == 5 and rated[1] == "修得很快，谢谢" and rated[2] is not None
    assert outside == []
    page.context.close()
