"""The phone pages (/m/, issue 22): the same rows, rights and moves as the desktop pages, laid
out for a phone — my to-do, a need's moves with a photo, logging one's own service, a wish, a
post, my points and 报到证, and a grid admin's events."""
import io
import re
import struct
import zlib

import pytest
from sqlalchemy import text

pytestmark = pytest.mark.db



def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# A JPEG's frame markers (JFIF header, end of image) and a real 1×1 PNG: the upload check reads
# the magic bytes, the photo cleaner walks the segments and chunks.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
PNG = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
       + _png_chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + _png_chunk(b"IEND", b""))


def scalar(ctx, sql, **params):
    return ctx.execute(text(sql), params).scalar()


@pytest.fixture
def dispatched(ctx, api):
    """A need of shequ01's community dispatched to danwei01's unit."""
    def make(title="手机接单测试", urgency="一般"):
        community = scalar(ctx, "SELECT org_id FROM ab_user WHERE username='shequ01'")
        category = scalar(ctx, "SELECT id FROM dictionary WHERE kind='need_category' ORDER BY id")
        unit = scalar(ctx, "SELECT unit_id FROM ab_user WHERE username='danwei01'")
        client, headers = api("shequ01")
        response = client.post("/api/v1/need/", headers=headers, json={
            "community": community, "category": category, "title": title, "urgency": urgency,
            "source": "社区", "content": "楼道灯坏了"})
        pk = response.json["id"]
        for name, body in (("accept", {}), ("dispatch", {"assigned_unit": unit})):
            moved = client.post(f"/api/v1/need/{pk}/transition/{name}", headers=headers, json=body)
            assert moved.status_code == 200, moved.json
        return pk
    return make


def post_move(browser, pk, name, resource="need", **form):
    return browser.post(f"/m/{resource}/{pk}/{name}", form, form_url=f"/m/{resource}/{pk}",
                        content_type="multipart/form-data", follow_redirects=True)


def test_the_liaison_takes_and_completes_a_need_with_a_photo(ctx, as_user, dispatched):
    pk = dispatched()
    liaison = as_user("danwei01")
    todo = liaison.get("/m/").get_data(as_text=True)
    assert f"/m/need/{pk}" in todo
    page = liaison.get(f"/m/need/{pk}").get_data(as_text=True)
    # the moves come first, then only the fields that are filled
    assert page.index("接单") < page.index("楼道灯坏了")
    assert "退单原因" in page and "回访意见" not in page
    page = post_move(liaison, pk, "take", photo=(io.BytesIO(JPEG), "现场.jpg")).get_data(as_text=True)
    assert "已接单" in page
    assert scalar(ctx, "SELECT status FROM need WHERE id=:i", i=pk) == "办理中"
    first_photo = scalar(ctx, "SELECT handling_photo_id FROM need WHERE id=:i", i=pk)
    assert first_photo is not None
    page = post_move(liaison, pk, "complete", result="已更换灯泡",
                     photo=(io.BytesIO(PNG), "完成.png")).get_data(as_text=True)
    assert "已办结" in page
    row = ctx.execute(text("SELECT status, result, handling_photo_id FROM need WHERE id=:i"),
                      {"i": pk}).one()
    assert row.status == "已办结" and row.result == "已更换灯泡" and row.handling_photo_id != first_photo
    photo = liaison.get(f"/m/need/{pk}/photo")
    assert photo.status_code == 200 and photo.data == PNG
    # one audit record of kind transition per move
    moves = ctx.execute(text("SELECT changes FROM audit_log WHERE resource='need' AND record_id=:i "
                             "AND action='transition' ORDER BY id"), {"i": str(pk)}).scalars().all()
    assert [re.search(r'"_operation": "(\w+)"', c).group(1) for c in moves] == [
        "accept", "dispatch", "take", "complete"]


def test_a_photo_that_is_not_an_image_is_refused_and_nothing_moves(ctx, as_user, dispatched):
    pk = dispatched()
    liaison = as_user("danwei01")
    for name, content in (("x.jpg", b"<svg onload=alert(1)>"), ("x.pdf", b"%PDF-1.4 fake"),
                          ("x.html", b"<html></html>")):
        page = post_move(liaison, pk, "take", photo=(io.BytesIO(content), name)).get_data(as_text=True)
        assert "照片" in page or "文件" in page
        assert scalar(ctx, "SELECT status FROM need WHERE id=:i", i=pk) == "已派单"
        assert scalar(ctx, "SELECT handling_photo_id FROM need WHERE id=:i", i=pk) is None


def test_a_complex_need_is_taken_with_its_plan_on_the_phone(ctx, as_user, dispatched):
    pk = dispatched(title="加装电梯", urgency="复杂")
    liaison = as_user("danwei01")
    page = post_move(liaison, pk, "take").get_data(as_text=True)
    assert "复杂需求须在接单时填写办理方案" in page
    assert scalar(ctx, "SELECT status FROM need WHERE id=:i", i=pk) == "已派单"
    page = post_move(liaison, pk, "take", plan="先勘测后施工", plan_due="2099-01-31").get_data(as_text=True)
    assert "已接单" in page and "先勘测后施工" in page


def test_out_of_scope_is_not_found_and_a_wrong_move_is_refused(ctx, as_user, dispatched):
    pk = dispatched()
    assert as_user("danwei03").get(f"/m/need/{pk}").status_code == 404
    assert as_user("danwei03").get(f"/m/need/{pk}/photo").status_code == 404
    other = as_user("danwei02")  # same community, another unit: the need is not its own
    assert other.get(f"/m/need/{pk}").status_code == 404
    page = post_move(as_user("dangyuan01"), pk, "take").get_data(as_text=True)
    assert scalar(ctx, "SELECT status FROM need WHERE id=:i", i=pk) == "已派单"
    assert as_user("danwei01").get("/m/need/999999").status_code == 404
    assert page  # answered (a message or not found), never a 500


def test_the_phone_pages_need_a_login(app):
    client = app.test_client()
    for url in ("/m/", "/m/me", "/m/need/1", "/m/service_record/add"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_member_logs_its_own_service(ctx, as_user):
    member = as_user("dangyuan01")
    page = member.get("/m/service_record/add").get_data(as_text=True)
    assert 'name="member"' not in page  # itself: no member to choose
    before = scalar(ctx, "SELECT count(*) FROM service_record")
    response = member.post("/m/service_record/add", {"served_on": "2099-01-01", "hours": "2",
                                                      "description": "巡逻"})
    assert "服务日期不能晚于今天" in response.get_data(as_text=True)
    response = member.post("/m/service_record/add", {"served_on": "2026-01-05", "hours": "abc",
                                                      "description": "巡逻"})
    assert "服务时长" in response.get_data(as_text=True)
    assert scalar(ctx, "SELECT count(*) FROM service_record") == before
    response = member.post("/m/service_record/add", {"served_on": "2026-01-05", "hours": "2.5",
                                                      "description": "小区夜间巡逻", "member": "1"},
                           follow_redirects=True)
    assert "已登记服务记录" in response.get_data(as_text=True)
    own = scalar(ctx, "SELECT member_id FROM ab_user WHERE username='dangyuan01'")
    row = ctx.execute(text("SELECT member_id, hours, status FROM service_record ORDER BY id DESC")).first()
    assert row.member_id == own and float(row.hours) == 2.5 and row.status == "待认证"
    # a liaison is no member: it has no service of its own to log here
    assert as_user("danwei01").get("/m/service_record/add").status_code == 403


def test_a_member_claims_a_wish_and_a_post_and_sees_its_points(ctx, as_user, api):
    member = as_user("dangyuan01")
    own = scalar(ctx, "SELECT member_id FROM ab_user WHERE username='dangyuan01'")
    community = scalar(ctx, "SELECT community_id FROM member WHERE id=:i", i=own)
    client, headers = api("shequ01")
    response = client.post("/api/v1/micro_wish/", headers=headers, json={
        "resident_name": "王奶奶", "community": community, "content": "想要一副老花镜"})
    assert response.status_code == 201, response.json
    wish = response.json["id"]
    assert client.post(f"/api/v1/micro_wish/{wish}/transition/publish",
                       headers=headers, json={}).status_code == 200
    page = post_move(member, wish, "claim", resource="micro_wish").get_data(as_text=True)
    assert "已认领" in page
    assert scalar(ctx, "SELECT claimant_member_id FROM micro_wish WHERE id=:i", i=wish) == own
    post_move(member, wish, "fulfil", resource="micro_wish", proof="已送到")
    assert scalar(ctx, "SELECT status FROM micro_wish WHERE id=:i", i=wish) == "已实现"
    category = scalar(ctx, "SELECT id FROM dictionary WHERE kind='post_category' ORDER BY id")
    response = client.post("/api/v1/service_post/", headers=headers, json={
        "community": community, "name": "手机认领测试岗", "category": category, "headcount": 1})
    assert response.status_code == 201, response.json
    post = response.json["id"]
    page = member.get(f"/m/service_post/{post}").get_data(as_text=True)
    assert "认领该岗位" in page
    page = member.post(f"/m/service_post/{post}/claim", {}, form_url=f"/m/service_post/{post}",
                       follow_redirects=True).get_data(as_text=True)
    assert "已认领服务岗位" in page and "您已认领该岗位" in page
    # a second tap (the page no longer offers it) claims nothing more
    page = member.post(f"/m/service_post/{post}/claim", {}, form_url="/m/me",
                       follow_redirects=True).get_data(as_text=True)
    assert "不能重复认领" in page or "满额" in page
    assert scalar(ctx, "SELECT count(*) FROM post_claim WHERE post_id=:p", p=post) == 1
    me = member.get("/m/me").get_data(as_text=True)
    points = scalar(ctx, "SELECT coalesce(sum(delta), 0) FROM point_entry WHERE member_id=:m "
                         "AND subject_type='member' AND deleted_on IS NULL", m=own)
    assert f"{float(points):g} 分" in me and "报到证编号" in me


def test_a_grid_admin_files_a_grid_event_from_the_phone(ctx, as_user):
    grid_admin = as_user("wangge01")
    page = grid_admin.get("/m/").get_data(as_text=True)
    assert "上报网格事件" in page
    category = scalar(ctx, "SELECT id FROM dictionary WHERE kind='need_category' ORDER BY id")
    response = grid_admin.post("/m/event", {"title": "井盖缺失", "category": str(category),
                                            "urgency": "重大", "content": "5号楼前"},
                               form_url="/m/", follow_redirects=True)
    assert "已上报网格事件" in response.get_data(as_text=True)
    row = ctx.execute(text("SELECT source, grid_id, community_id, status FROM need "
                           "WHERE title='井盖缺失'")).one()
    grid = scalar(ctx, "SELECT org_id FROM ab_user WHERE username='wangge01'")
    assert row.source == "网格员" and row.grid_id == grid and row.status == "待受理"
    assert scalar(ctx, "SELECT parent_id FROM organization WHERE id=:g", g=grid) == row.community_id
    response = grid_admin.post("/m/event", {"title": "", "category": str(category), "urgency": "一般"},
                               form_url="/m/", follow_redirects=True)
    assert "请填写事件标题" in response.get_data(as_text=True)
    # only a grid admin files grid events
    assert as_user("danwei01").post("/m/event", {"title": "x"}, form_url="/m/me").status_code == 403


def test_the_login_page_and_the_ordinary_pages_lead_to_the_phone_pages(app, as_user):
    login_page = app.test_client().get("/login/").get_data(as_text=True)
    assert 'href="/m/"' in login_page
    assert 'href="/m/"' in as_user("danwei01").get("/need/list/").get_data(as_text=True)
