"""What the resident tests share: a need filed on the public intake page moved through the
loop by the community (accept, dispatch to danwei01's unit) and the unit (take, complete); and
the resident's two steps on a phone (file with a photo, rate after 办结), for the browser."""
import re
import struct

from sqlalchemy import text


def phone_photo() -> bytes:
    """A JPEG as a phone takes it: JFIF, an EXIF block with a position, one scan."""
    def segment(marker, payload):
        return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload
    return (b"\xff\xd8" + segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
            + segment(0xE1, b"Exif\x00\x00GPSLatitude=39.9") + segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
            + b"\x12\x34\xff\xd9")


def file_from_phone(page, server, code: str, content: str, photo: bytes, before_submit=None,
                    phone: str = "13955551234") -> str:
    """On the intake page of the node `code`: the first category, the content, a name and
    phone, a photo and the arithmetic check answered (`before_submit()` then looks at the
    filled form); the tracking code it gives. (The same phone, category and community within a
    day is a repeat of the first report: another walk takes another phone.)"""
    page.goto(f"{server}/public/intake/{code}")
    assert "群众点单" in page.content()
    page.select_option("#category", index=1)
    page.fill("#content", content)
    page.fill("#name", "王女士")
    page.fill("#phone", phone)
    page.set_input_files("#photo", files=[{"name": "楼道.jpg", "mimeType": "image/jpeg",
                                           "buffer": photo}])
    question = page.locator("label[for=answer]").inner_text()
    a, op, b = re.search(r"(\d+) (加|减) (\d+)", question).groups()
    page.fill("#answer", str(int(a) + int(b) if op == "加" else int(a) - int(b)))
    if before_submit is not None:
        before_submit()
    with page.expect_navigation():
        page.click("button.pi-button")
    assert "提交成功" in page.content()
    return page.locator("#tracking-code").inner_text().strip()


def rate_from_phone(page, server, tracking: str, score: int, comment: str) -> None:
    page.goto(f"{server}/public/track/{tracking}")
    page.check(f"input[name=satisfaction][value='{score}']")
    page.fill("#comment", comment)
    with page.expect_navigation():
        page.click("button.pi-button")
    assert "您的评价" in page.content() and "提交评价" not in page.content()


def move_through_the_loop(app, code: str, result: str) -> None:
    from app.extensions import db
    from app.models.lists import Need
    from app.security.principal import SYSTEM, Principal, acting_as
    from app.services.lists import NEED_FLOW

    with app.app_context():
        user, unit = db.session.execute(text(
            "SELECT id, unit_id FROM ab_user WHERE username = 'danwei01'")).one()
    liaison = Principal(user_id=user, role_names=frozenset({"UnitLiaison"}), unit_ids=(unit,),
                        authenticated=True)
    with app.test_request_context():
        with acting_as(SYSTEM):
            need = db.session.execute(db.select(Need).where(Need.tracking_code == code)).scalar_one()
            NEED_FLOW.run(db.session, need, "accept")
            NEED_FLOW.run(db.session, need, "dispatch", {"assigned_unit": unit})
        with acting_as(liaison):
            NEED_FLOW.run(db.session, need, "take")
            NEED_FLOW.run(db.session, need, "complete", {"result": result})
        db.session.remove()
