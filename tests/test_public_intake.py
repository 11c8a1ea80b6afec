"""群众点单 without login (issue 22): a resident files a need or a wish from a community's QR code,
follows it by an unguessable code and rates it once after 办结 — and everything a stranger on
the internet could send to those pages is refused in Chinese, limited, or rendered inert."""
from __future__ import annotations

import io
import itertools
import re
import struct

import pytest
from sqlalchemy import text

from tests.need_limits import refill_step_due
from tests.resident import move_through_the_loop

pytestmark = pytest.mark.db

_addresses = itertools.count(1)
_phones = itertools.count(1000)


def new_address() -> str:
    """Each test speaks from addresses of its own: the per-address limits count per process."""
    n = next(_addresses)
    return f"10.22.{n // 250}.{n % 250 + 1}"


def new_phone() -> str:
    return f"139{next(_phones):08d}"


@pytest.fixture
def shequ(ctx):
    row = ctx.execute(text(
        "SELECT o.id, o.code, o.path FROM ab_user u JOIN organization o ON o.id = u.org_id "
        "WHERE u.username = 'shequ01'")).one()
    return row


@pytest.fixture
def category(ctx):
    return ctx.execute(text("SELECT min(id) FROM dictionary WHERE kind = 'need_category'")).scalar()


class Resident:
    """A phone's browser: no login, one client address."""

    def __init__(self, app, address=None):
        self.client = app.test_client()
        self.address = address or new_address()

    def get(self, url):
        return self.client.get(url, environ_base={"REMOTE_ADDR": self.address})

    def form(self, code):
        page = self.get(f"/public/intake/{code}").get_data(as_text=True)
        a, op, b = re.search(r"验证题：(\d+) (加|减) (\d+) 等于几", page).groups()
        answer = int(a) + int(b) if op == "加" else int(a) - int(b)
        return {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1),
                "check": re.search(r'name="check" value="([^"]+)"', page).group(1),
                "answer": str(answer)}

    def file(self, code, photo=None, **fields):
        data = {**self.form(code), "kind": "need", "content": "楼道灯坏了，晚上看不见",
                "name": "王女士", "phone": new_phone(), **fields}
        if photo is not None:
            data["photo"] = photo
        return self.client.post(f"/public/intake/{code}", data=data,
                                content_type="multipart/form-data",
                                environ_base={"REMOTE_ADDR": self.address})


def code_of(response) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return re.search(r"/public/track/([^?]+)", response.headers["Location"]).group(1)


def need_of(ctx, code):
    return ctx.execute(text("SELECT * FROM need WHERE tracking_code = :c"), {"c": code}).one()


def jpeg(extra: bytes = b"", trailer: bytes = b"") -> bytes:
    """A tiny but well-formed JPEG's structure: SOI, APP0, `extra` segments, a scan, EOI."""
    def segment(marker, payload):
        return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload
    return (b"\xff\xd8" + segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
            + extra + segment(0xDB, bytes(65)) + segment(0xC0, b"\x08\x00\x01\x00\x01\x01\x01\x11\x00")
            + segment(0xDA, b"\x01\x01\x00\x00\x3f\x00") + b"\x12\x34\xff\x00\x56" + b"\xff\xd9"
            + trailer)


def exif_with_gps() -> bytes:
    payload = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08GPSLatitude=39.9042N;GPSLongitude=116.4074E"
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


# --- filing -------------------------------------------------------------------------------------

def test_a_resident_files_a_need_without_login_and_gets_an_unguessable_code(app, ctx, shequ, category):
    resident = Resident(app)
    phone = new_phone()
    # (Ids of rows other modules deleted come back: count only this test's audit records.)
    audited = ctx.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar()
    code = code_of(resident.file(shequ.code, category=category, phone=phone))
    assert len(code) >= 22  # token_urlsafe(16): 128 bits
    need = need_of(ctx, code)
    assert (need.status, need.source, need.community_id) == ("待受理", "扫码点单", shequ.id)
    assert need.requester_phone == phone
    page = resident.get(f"/public/track/{code}").get_data(as_text=True)
    assert "提交成功" not in page  # the banner is for the redirect after filing only
    assert phone not in page and phone[:3] + "****" + phone[-4:] in page
    assert "待受理" in page and "受理" in page and "回访" in page
    audit = ctx.execute(text("SELECT count(*) FROM audit_log WHERE resource = 'need' AND id > :a "
                             "AND record_id = :id AND action = 'create'"),
                        {"id": str(need.id), "a": audited}).scalar()
    assert audit == 1


def test_a_wish_is_filed_for_review(app, ctx, shequ):
    code = code_of(Resident(app).file(shequ.code, kind="wish", content="想给孩子借几本课外书"))
    wish = ctx.execute(text("SELECT status, community_id FROM micro_wish WHERE tracking_code = :c"),
                       {"c": code}).one()
    assert tuple(wish) == ("待审核", shequ.id)


def test_an_unknown_or_inactive_code_answers_a_chinese_404(app, ctx, shequ):
    resident = Resident(app)
    response = resident.get("/public/intake/no-such-code")
    assert response.status_code == 404 and "不存在或已停用" in response.get_data(as_text=True)
    try:
        with ctx.session() as session:
            session.execute(text("UPDATE organization SET active = false WHERE id = :id"),
                            {"id": shequ.id})
            session.commit()
        response = resident.get(f"/public/intake/{shequ.code}")
        assert response.status_code == 404
        assert "不存在或已停用" in response.get_data(as_text=True)
    finally:
        with ctx.session() as session:
            session.execute(text("UPDATE organization SET active = true WHERE id = :id"),
                            {"id": shequ.id})
            session.commit()


def test_bad_fields_are_refused_in_chinese_and_nothing_is_stored(app, ctx, shequ, category):
    before = ctx.execute(text("SELECT count(*) FROM need")).scalar()
    resident = Resident(app)
    cases = [({"phone": "12345"}, "联系电话"), ({"content": "  "}, "情况描述"),
             ({"category": ""}, "需求类别"), ({"name": ""}, "称呼"),
             ({"content": "长" * 501}, "500字"), ({"kind": "other"}, "类型")]
    for fields, message in cases:
        response = resident.file(shequ.code, **{"category": category, **fields})
        assert response.status_code == 400, fields
        assert message in response.get_data(as_text=True), fields
    assert ctx.execute(text("SELECT count(*) FROM need")).scalar() == before


def test_a_grid_of_another_community_posted_by_hand_is_refused(app, ctx, shequ, category):
    other = ctx.execute(text(
        "SELECT id FROM organization WHERE type IN ('grid', 'building') AND path NOT LIKE :p "
        "ORDER BY id LIMIT 1"), {"p": shequ.path + "%"}).scalar()
    assert other is not None
    response = Resident(app).file(shequ.code, category=category, place=str(other))
    assert response.status_code == 400
    assert "不在本社区" in response.get_data(as_text=True)
    own = ctx.execute(text(
        "SELECT id FROM organization WHERE type IN ('grid', 'building') AND path LIKE :p "
        "AND active ORDER BY id LIMIT 1"), {"p": shequ.path + "%"}).scalar()
    code = code_of(Resident(app).file(shequ.code, category=category, place=str(own)))
    assert need_of(ctx, code).grid_id == own


# --- the human check ------------------------------------------------------------------------------

def test_a_wrong_stale_or_replayed_answer_is_refused(app, ctx, shequ, category):
    resident = Resident(app)
    form = resident.form(shequ.code)
    data = {**form, "kind": "need", "category": category, "content": "路灯不亮", "name": "李",
            "phone": new_phone(), "answer": str(int(form["answer"]) + 1)}
    post = lambda d: resident.client.post(f"/public/intake/{shequ.code}", data=d,
                                          environ_base={"REMOTE_ADDR": resident.address})
    wrong = post(data)
    assert wrong.status_code == 400 and "验证题答案不正确" in wrong.get_data(as_text=True)
    # Digits that str.isdigit() takes and int() refuses: the same answer, not a 500.
    superscript = post({**resident.form(shequ.code), **{k: data[k] for k in (
        "kind", "category", "content", "name", "phone")}, "answer": "²"})
    assert superscript.status_code == 400 and "验证题答案不正确" in superscript.get_data(as_text=True)
    # The same question again, now with the right answer: already used.
    replay = post({**data, "answer": form["answer"]})
    assert replay.status_code == 400 and "已使用" in replay.get_data(as_text=True)
    forged = post({**data, "check": form["check"][:-3] + "abc", "answer": form["answer"]})
    assert forged.status_code == 400 and "过期" in forged.get_data(as_text=True)
    assert ctx.execute(text("SELECT count(*) FROM need WHERE content = '路灯不亮'")).scalar() == 0


# --- abuse ----------------------------------------------------------------------------------------

def test_one_address_posting_over_its_limit_gets_429_in_chinese(app, ctx, shequ, category, monkeypatch):
    monkeypatch.setitem(app.config, "INTAKE_ADDRESS_LIMIT", "3 per hour")
    resident = Resident(app)
    answers = [resident.file(shequ.code, category=category).status_code for _ in range(5)]
    assert answers[:3] == [302, 302, 302] and answers[3:] == [429, 429]
    limited = resident.file(shequ.code, category=category)
    assert "过于频繁" in limited.get_data(as_text=True)
    assert limited.headers["Retry-After"]
    assert Resident(app).file(shequ.code, category=category).status_code == 302  # another address


def test_one_phone_over_its_daily_limit_gets_429(app, ctx, shequ, monkeypatch):
    monkeypatch.setitem(app.config, "INTAKE_PHONE_LIMIT", "2 per day")
    phone = new_phone()
    categories = [r[0] for r in ctx.execute(text(
        "SELECT id FROM dictionary WHERE kind = 'need_category' ORDER BY id LIMIT 3"))]
    answers = [Resident(app).file(shequ.code, category=c, phone=phone).status_code
               for c in categories]
    assert answers == [302, 302, 429]


def test_a_repeat_within_a_day_is_counted_on_the_first_need(app, ctx, shequ, category):
    phone = new_phone()
    first = code_of(Resident(app).file(shequ.code, category=category, phone=phone))
    again = Resident(app).file(shequ.code, category=category, phone=phone, content="还是灯的问题")
    assert code_of(again) == first and "filed=repeat" in again.headers["Location"]
    assert need_of(ctx, first).repeat_reports == 1
    assert ctx.execute(text("SELECT count(*) FROM need WHERE requester_phone = :p"),
                       {"p": phone}).scalar() == 1


def test_script_in_every_field_is_inert_and_phones_in_the_text_stay_off_the_board(
        app, ctx, shequ, category, as_user):
    script = "<script>alert(1)</script>"
    code = code_of(Resident(app).file(shequ.code, category=category, name="<b>张</b>",
                                      content=f"{script}请回电 13912345678"))
    need = need_of(ctx, code)
    track = Resident(app).get(f"/public/track/{code}").get_data(as_text=True)
    admin = as_user("shequ01").get(f"/need/show/{need.id}").get_data(as_text=True)
    for page in (track, admin):
        assert script not in page and "&lt;script&gt;" in page and "<b>张" not in page
    assert "13912345678" not in track
    with ctx.session() as session:
        session.execute(text("UPDATE need SET status = '已受理' WHERE id = :id"), {"id": need.id})
        session.commit()
    refill_step_due(ctx)  # moved in SQL: the list's stored order follows
    board = Resident(app).get(f"/public/community/{shequ.id}").get_data(as_text=True)
    assert "请回电" in board and "13912345678" not in board and script not in board


def test_photos_are_checked_and_their_location_stripped(app, ctx, shequ, category):
    from app.models.jobs import FileChunk

    resident = Resident(app)
    refused = [
        ((io.BytesIO(b"<html><script>alert(1)</script></html>"), "photo.jpg"), "不符"),
        ((io.BytesIO(b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>'), "a.svg"), "JPG 或 PNG"),
        ((io.BytesIO(b"\xff\xd8\xff" + b"0" * (30 * 1024 * 1024)), "big.jpg"), "大小限制"),
    ]
    for photo, message in refused:
        response = resident.file(shequ.code, category=category, photo=photo)
        assert response.status_code in (400, 413), message
        if response.status_code == 400:
            assert message in response.get_data(as_text=True)
    polyglot = jpeg(extra=exif_with_gps() + b"\xff\xfe\x00\x10<script>x</script>"[:18],
                    trailer=b"<html><script>alert(1)</script></html>")
    code = code_of(resident.file(shequ.code, category=category,
                                 photo=(io.BytesIO(polyglot), "现场.jpg")))
    need = need_of(ctx, code)
    with ctx.session() as session:
        data = b"".join(session.execute(text(
            f"SELECT data FROM {FileChunk.__tablename__} WHERE file_id = :f ORDER BY seq"),
            {"f": need.photo_id}).scalars())
    assert data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")
    assert b"GPS" not in data and b"Exif" not in data and b"<script" not in data
    assert b"<html" not in data and b"JFIF" in data


def test_the_community_admin_sees_the_photo_and_the_full_phone_others_masked(
        app, ctx, shequ, category, as_user):
    phone = new_phone()
    code = code_of(Resident(app).file(shequ.code, category=category, phone=phone,
                                      photo=(io.BytesIO(jpeg()), "a.jpg")))
    need = need_of(ctx, code)
    admin = as_user("shequ01")
    page = admin.get(f"/need/show/{need.id}").get_data(as_text=True)
    assert phone in page and f"/need/photo/{need.id}" in page
    photo = admin.get(f"/need/photo/{need.id}")
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    auditor = as_user("shenji").get(f"/need/show/{need.id}").get_data(as_text=True)
    assert phone not in auditor
    assert as_user("danwei03").get(f"/need/photo/{need.id}").status_code == 404


# --- tracking and rating --------------------------------------------------------------------------

def test_a_guessed_code_is_404_and_lookups_are_limited_per_address(app, monkeypatch):
    monkeypatch.setitem(app.config, "TRACK_ADDRESS_LIMIT", "3 per hour")
    resident = Resident(app)
    answers = [resident.get(f"/public/track/guess{n}").status_code for n in range(5)]
    assert answers == [404, 404, 404, 429, 429]


def test_the_resident_rates_once_after_done_and_the_review_adopts_it(app, ctx, shequ, category, as_user,
                                                                   api):
    resident = Resident(app)
    code = code_of(resident.file(shequ.code, category=category))
    page = resident.get(f"/public/track/{code}").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert "提交评价" not in page  # no form before 办结
    token = csrf.group(1) if csrf else resident.form(shequ.code)["csrf_token"]
    rate = lambda **d: resident.client.post(
        f"/public/track/{code}/rate", data={"csrf_token": token, **d},
        environ_base={"REMOTE_ADDR": resident.address})
    early = rate(satisfaction="5")
    assert early.status_code == 400 and "办结后才能评价" in early.get_data(as_text=True)
    move_through_the_loop(app, code, "已更换灯泡")
    page = resident.get(f"/public/track/{code}").get_data(as_text=True)
    assert "提交评价" in page and "已更换灯泡" in page
    assert rate(satisfaction="9").status_code == 400
    assert rate(satisfaction="4", comment="很快").status_code == 302
    twice = rate(satisfaction="1")
    assert twice.status_code == 400 and "只能评价一次" in twice.get_data(as_text=True)
    need = need_of(ctx, code)
    assert (need.resident_satisfaction, need.resident_comment, need.satisfaction) == (4, "很快", None)
    client, headers = api("shequ01")
    shown = client.get(f"/api/v1/need/{need.id}", headers=headers).json["result"]
    assert (shown["resident_satisfaction"], shown["resident_comment"]) == (4, "很快")
    admin = as_user("shequ01")
    show = admin.get(f"/need/show/{need.id}").get_data(as_text=True)
    assert "采用居民评价" in show
    admin.post(f"/need/transition/{need.id}/adopt_rating", form_url=f"/need/show/{need.id}")
    need = need_of(ctx, code)
    assert (need.status, need.satisfaction, need.visit_comment) == ("已回访", 4, "很快")


# --- the poster -----------------------------------------------------------------------------------

def test_the_poster_encodes_the_public_intake_url_and_is_linked_for_admins(app, shequ, as_user):
    poster = Resident(app).get(f"/public/poster/{shequ.code}")
    page = poster.get_data(as_text=True)
    url = app.config["PUBLIC_BASE_URL"] + f"/public/intake/{shequ.code}"
    assert poster.status_code == 200 and "<svg" in page and url in page and "A4" in page
    assert f"/public/poster/{shequ.code}" in as_user("shequ01").get(
        f"/organization/show/{shequ.id}").get_data(as_text=True)
    assert f"/public/poster/{shequ.code}" not in as_user("shenji").get(
        f"/organization/show/{shequ.id}").get_data(as_text=True)  # read-only: no poster
    board = Resident(app).get(f"/public/community/{shequ.id}").get_data(as_text=True)
    assert f'href="/public/intake/{shequ.code}"' in board


def test_a_members_own_report_keeps_the_source_it_chose(app, ctx, as_user, category):
    member = as_user("dangyuan01")
    community = ctx.execute(text(
        "SELECT m.community_id FROM ab_user u JOIN member m ON m.id = u.member_id "
        "WHERE u.username = 'dangyuan01'")).scalar()
    member.post("/need/add", {"source": "居民", "community": community, "category": category,
                              "title": "来源测试需求", "urgency": "一般"})
    assert ctx.execute(text("SELECT source FROM need WHERE title = '来源测试需求'")).scalar() == "居民"


def test_a_form_posted_without_its_session_gets_a_chinese_page(app, shequ, category):
    resident = Resident(app)
    form = resident.form(shequ.code)
    stranger = Resident(app)  # another browser: the token is not of its session
    response = stranger.client.post(f"/public/intake/{shequ.code}", data={
        **form, "kind": "need", "category": category, "content": "x", "name": "李",
        "phone": new_phone()}, environ_base={"REMOTE_ADDR": stranger.address})
    assert response.status_code == 400 and "页面已过期" in response.get_data(as_text=True)
