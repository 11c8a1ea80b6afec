"""A resident on a phone (Chromium at 390×844, no login): opens the community's intake URL from
its QR poster, answers the arithmetic check, files a need with a photo and gets its tracking
code; the community and the unit move it through the loop; the resident rates it from the
tracking page. No page of the walk scrolls sideways, and nothing is fetched from another host."""
import re
import struct

import pytest
from sqlalchemy import text

from tests.browser.conftest import ARTIFACTS, offline_page
from tests.resident import move_through_the_loop

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True}


def _photo() -> bytes:
    def segment(marker, payload):
        return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload
    return (b"\xff\xd8" + segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
            + segment(0xE1, b"Exif\x00\x00GPSLatitude=39.9") + segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
            + b"\x12\x34\xff\xd9")


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
    page.goto(f"{server}/public/intake/{code}")
    assert "群众点单" in page.content()
    no_sideways_scroll(page, "the intake form")
    page.select_option("#category", index=1)
    page.fill("#content", "3号楼2单元楼道灯不亮，晚上老人上下楼不方便")
    page.fill("#name", "王女士")
    page.fill("#phone", "13955551234")
    page.set_input_files("#photo", files=[{"name": "楼道.jpg", "mimeType": "image/jpeg",
                                           "buffer": _photo()}])
    question = page.locator("label[for=answer]").inner_text()
    a, op, b = re.search(r"(\d+) (加|减) (\d+)", question).groups()
    page.fill("#answer", str(int(a) + int(b) if op == "加" else int(a) - int(b)))
    page.screenshot(path=str(ARTIFACTS / "intake-form-390.png"), full_page=True)
    with page.expect_navigation():
        page.click("button.pi-button")
    assert "提交成功" in page.content()
    tracking = page.locator("#tracking-code").inner_text().strip()
    assert len(tracking) >= 22 and page.url.startswith(f"{server}/public/track/{tracking}")
    assert "13955551234" not in page.content() and "139****1234" in page.content()
    no_sideways_scroll(page, "the tracking page")

    move_through_the_loop(app, tracking, "已修好楼道灯")

    page.goto(f"{server}/public/track/{tracking}")
    assert page.locator("#status").inner_text() == "已办结"
    assert "已修好楼道灯" in page.content()
    no_sideways_scroll(page, "the tracking page after 办结")
    page.check("input[name=satisfaction][value='5']")
    page.fill("#comment", "修得很快，谢谢")
    with page.expect_navigation():
        page.click("button.pi-button")
    assert "您的评价" in page.content() and "提交评价" not in page.content()
    no_sideways_scroll(page, "the rated tracking page")
    page.screenshot(path=str(ARTIFACTS / "intake-rated-390.png"), full_page=True)
    with app.app_context():
        rated = db.session.execute(text(
            "SELECT resident_satisfaction, resident_comment, photo_id FROM need "
            "WHERE tracking_code = :c"), {"c": tracking}).one()
    assert rated[0] == 5 and rated[1] == "修得很快，谢谢" and rated[2] is not None
    assert outside == []
    page.context.close()
