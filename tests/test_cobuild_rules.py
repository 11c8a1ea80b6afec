"""Co-building's business rules and bad input (DOMAIN.md §2): a member registering twice in
the same community, a claim over the headcount, an agreement ending before it starts, a negative
number of hours — each refused in Chinese through the form and the API, nothing written
(checked with plain SQL). Also: the agreement's scanned file (type, content, size, scoped
download), the printable 报到回执 / 报到证, the expiring agreements and the unit's and member's
co-building panels."""
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from app import clock
from tests.test_org_rules import new_credit_code, new_id_number, refused_by_api, shown_in_page

pytestmark = pytest.mark.db


# --- helpers shared by the co-building tests -------------------------------------------------

def link(ctx, username):
    """(org_id, unit_id, member_id, org path) of a demo user."""
    return ctx.execute(text(
        "SELECT u.org_id, u.unit_id, u.member_id, o.path FROM ab_user u "
        "LEFT JOIN organization o ON o.id = u.org_id WHERE u.username = :u"),
        {"u": username}).one()


def scalar(ctx, sql, **params):
    return ctx.execute(text(sql), params).scalar()


def count(ctx, table, where="1=1", **params):
    return scalar(ctx, f"SELECT count(*) FROM {table} WHERE {where}", **params)


def home_community(ctx, username="shequ01"):
    """The community a demo user works in (shequ01's) or lives in (dangyuan01's)."""
    org_id, unit_id, member_id, _ = link(ctx, username)
    if org_id:
        return org_id
    if unit_id:
        return scalar(ctx, "SELECT community_id FROM unit WHERE id = :i", i=unit_id)
    return scalar(ctx, "SELECT community_id FROM member WHERE id = :i", i=member_id)


def create(ctx, *makers):
    """Rows made as the system through the ORM (the models' rules still apply), each by a
    callable run inside the application; their ids."""
    with ctx.session() as session:
        objects = [make(session) for make in makers]
        session.add_all(objects)
        session.commit()
        return [obj.id for obj in objects]


def new_unit(ctx, community_id, name="测试单位"):
    from app.models.org import Organization, Unit

    category = scalar(ctx, "SELECT min(id) FROM dictionary WHERE kind = 'unit_category'")
    return create(ctx, lambda session: Unit(
        name=f"{name}{new_credit_code()[-6:]}", credit_code=new_credit_code(),
        category_id=category, community=session.get(Organization, community_id), status="在册",
        party_member_count=0))[0]


def new_members(ctx, community_id, n, unit_id=None, category="在职"):
    from app.models.org import Member, Organization

    def make(session, i):
        member = Member(name=f"测试党员{i}", community=session.get(Organization, community_id),
                        work_unit_id=unit_id, category=category, status="正常")
        member.id_number = new_id_number()
        return member
    return create(ctx, *[lambda session, i=i: make(session, i) for i in range(n)])


def new_post(ctx, community_id, headcount, name="测试岗位"):
    from app.models.cobuild import ServicePost

    category = scalar(ctx, "SELECT min(id) FROM dictionary WHERE kind = 'post_category'")
    return create(ctx, lambda session: ServicePost(community_id=community_id, name=name,
                                           category_id=category, headcount=headcount))[0]


def new_record(ctx, member_id, hours="2", served_on=None, status="待认证"):
    from app.models.cobuild import ServiceRecord

    return create(ctx, lambda session: ServiceRecord(
        member_id=member_id, hours=Decimal(hours), status=status, description="测试服务",
        served_on=served_on or clock.today() - timedelta(days=3)))[0]


def registration(ctx, member_id, community_id, status="已报到", day=None):
    from app.models.cobuild import MemberRegistration

    return create(ctx, lambda session: MemberRegistration(
        member_id=member_id, community_id=community_id, status=status,
        registered_on=day or clock.today() - timedelta(days=30)))[0]


def form_of(**values):
    return {k: "" if v is None else str(v) for k, v in values.items()}


# --- bad input ---------------------------------------------------------------------------------

def test_a_member_registering_twice_in_the_same_community_is_refused(ctx, as_user, api):
    community = home_community(ctx, "shequ01")
    member = new_members(ctx, community, 1)[0]
    first = registration(ctx, member, community, status="待确认")
    before = count(ctx, "member_registration")
    message = "已在本社区报到（或正等待确认），不能重复报到"
    body = {"member": member, "community": community, "registered_on": str(clock.today())}

    response = as_user("shequ01").post("/member_registration/add", form_of(**body),
                                       follow_redirects=True)
    shown_in_page(response, message)
    client, headers = api("shequ01")
    refused_by_api(client.post("/api/v1/member_registration/", json=body, headers=headers),
                   message)
    # Confirmed, it still refuses a second one; transferred out, the member may register again.
    client.post(f"/api/v1/member_registration/{first}/transition/confirm", headers=headers)
    refused_by_api(client.post("/api/v1/member_registration/", json=body, headers=headers),
                   message)
    assert count(ctx, "member_registration") == before
    assert count(ctx, "member_registration", "member_id = :m", m=member) == 1

    moved = client.post(f"/api/v1/member_registration/{first}/transition/transfer_out",
                        json={"note": "迁往外区"}, headers=headers)
    assert moved.status_code == 200, moved.get_data(as_text=True)
    again = client.post("/api/v1/member_registration/", json=body, headers=headers)
    assert again.status_code == 201, again.get_data(as_text=True)
    rows = ctx.execute(text("SELECT status, active_key, certificate_no FROM member_registration "
                            "WHERE member_id = :m ORDER BY id"), {"m": member}).all()
    assert [r.status for r in rows] == ["已转出", "待确认"]
    assert rows[0].active_key is None and rows[1].active_key == str(member)
    # The certificate number is generated: the year and the row's id.
    assert re.fullmatch(rf"DY{clock.today().year}\d{{6}}", rows[1].certificate_no)


def test_registering_in_another_community_needs_a_transfer_first(ctx, api):
    community = home_community(ctx, "shequ01")
    other = scalar(ctx, "SELECT max(id) FROM organization WHERE type = 'community'")
    assert other != community
    member = new_members(ctx, community, 1)[0]
    registration(ctx, member, community)
    client, headers = api("zuzhibu")
    refused_by_api(client.post("/api/v1/member_registration/", headers=headers, json={
        "member": member, "community": other, "registered_on": str(clock.today())}),
        "须先办理转出才能在其他社区报到")
    assert count(ctx, "member_registration", "member_id = :m", m=member) == 1


def test_a_claim_over_the_headcount_is_refused(ctx, as_user, api):
    community = home_community(ctx, "shequ01")
    post = new_post(ctx, community, headcount=1, name="满员岗位")
    first, second = new_members(ctx, community, 2)
    client, headers = api("shequ01")
    taken = client.post("/api/v1/post_claim/", json={"member": first, "post": post},
                        headers=headers)
    assert taken.status_code == 201, taken.get_data(as_text=True)
    before = count(ctx, "post_claim")
    message = "的1个名额已满，不能再认领"

    response = as_user("shequ01").post("/post_claim/add", form_of(
        member=second, post=post, claimed_on=clock.today()), follow_redirects=True)
    shown_in_page(response, message)
    refused_by_api(client.post("/api/v1/post_claim/", json={"member": second, "post": post},
                               headers=headers), message)
    assert count(ctx, "post_claim") == before
    assert scalar(ctx, "SELECT claimed FROM service_post WHERE id = :p", p=post) == 1

    # The same member cannot hold the post twice either.
    refused_by_api(client.post("/api/v1/post_claim/", json={"member": first, "post": post},
                               headers=headers), "不能重复认领")
    # Withdrawing frees the place, which the other member can then take.
    claim = scalar(ctx, "SELECT id FROM post_claim WHERE post_id = :p AND member_id = :m",
                   p=post, m=first)
    out = client.post(f"/api/v1/post_claim/{claim}/transition/withdraw", headers=headers)
    assert out.status_code == 200, out.get_data(as_text=True)
    assert scalar(ctx, "SELECT claimed FROM service_post WHERE id = :p", p=post) == 0
    again = client.post("/api/v1/post_claim/", json={"member": second, "post": post},
                        headers=headers)
    assert again.status_code == 201, again.get_data(as_text=True)
    assert scalar(ctx, "SELECT claimed FROM service_post WHERE id = :p", p=post) == 1
    # A headcount below the places taken is refused.
    refused_by_api(client.put(f"/api/v1/service_post/{post}", json={"headcount": 0},
                              headers=headers), "岗位人数至少为1人")


def test_an_agreement_ending_before_it_starts_is_refused(ctx, as_user, api):
    community = home_community(ctx, "shequ01")
    unit = link(ctx, "danwei01").unit_id
    before = count(ctx, "agreement")
    body = {"community": community, "unit": unit, "title": "倒置日期的协议",
            "valid_from": "2026-06-01", "valid_to": "2026-05-31", "yearly_target": 5}
    message = "协议到期日期不能早于生效日期"

    response = as_user("shequ01").post("/agreement/add", form_of(**body, commitments="三个一"),
                                       follow_redirects=True)
    shown_in_page(response, message)
    client, headers = api("shequ01")
    refused_by_api(client.post("/api/v1/agreement/", json=body, headers=headers), message)
    assert count(ctx, "agreement") == before
    assert count(ctx, "agreement", "title = :t", t=body["title"]) == 0


def test_a_negative_number_of_hours_is_refused(ctx, as_user, api):
    member = link(ctx, "dangyuan01").member_id
    before = count(ctx, "service_record")
    body = {"member": member, "served_on": str(clock.today()), "hours": -2,
            "description": "负数时长"}
    message = "服务时长必须大于0小时"

    response = as_user("dangyuan01").post("/service_record/add", form_of(**body),
                                          follow_redirects=True)
    shown_in_page(response, message)
    client, headers = api("dangyuan01")
    refused_by_api(client.post("/api/v1/service_record/", json=body, headers=headers), message)
    refused_by_api(client.post("/api/v1/service_record/", json={**body, "hours": 0},
                               headers=headers), message)
    assert count(ctx, "service_record") == before


def test_a_new_agreement_is_prefilled_with_the_three_ones(ctx, as_user, api):
    page = as_user("shequ01").get("/agreement/add").get_data(as_text=True)
    assert "每季度参加一次党建联席会议" in page
    client, headers = api("shequ01")
    created = client.post("/api/v1/agreement/", headers=headers, json={
        "community": home_community(ctx), "unit": link(ctx, "danwei02").unit_id,
        "title": "默认条款的协议", "valid_from": "2026-01-01", "valid_to": "2028-12-31"})
    assert created.status_code == 201, created.get_data(as_text=True)
    commitments = scalar(ctx, "SELECT commitments FROM agreement WHERE id = :i",
                         i=created.json["id"])
    assert commitments.startswith("一、签订一份共驻共建协议")


def test_a_certified_record_cannot_be_changed_until_revoked(ctx, api):
    member = link(ctx, "dangyuan01").member_id
    record = new_record(ctx, member, hours="1.5")
    admin, admin_headers = api("shequ01")
    assert admin.post(f"/api/v1/service_record/{record}/transition/certify",
                      headers=admin_headers).status_code == 200
    client, headers = api("dangyuan01")
    refused_by_api(client.put(f"/api/v1/service_record/{record}", json={"hours": 8},
                              headers=headers), "已认证的服务记录不能修改")
    assert scalar(ctx, "SELECT hours FROM service_record WHERE id = :i", i=record) == \
        Decimal("1.5")


# --- agreements: the scanned file, expiry ------------------------------------------------------

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def uploads(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", str(tmp_path))
    return tmp_path


def agreement_of(ctx, username):
    return scalar(ctx, "SELECT min(id) FROM agreement WHERE unit_id = :u",
                  u=link(ctx, username).unit_id)


def file_columns(ctx, pk):
    return ctx.execute(text("SELECT file_name, file_id, file_type, file_size FROM agreement "
                            "WHERE id = :i"), {"i": pk}).one()


def upload(browser, pk, name, content):
    return browser.post(f"/agreement/upload/{pk}", {"file": (io.BytesIO(content), name)},
                        form_url=f"/agreement/upload/{pk}", content_type="multipart/form-data",
                        follow_redirects=True)


def test_a_wrong_file_is_refused_clearly_and_nothing_is_kept(ctx, as_user, api, uploads, app,
                                                             monkeypatch):
    pk = agreement_of(ctx, "danwei01")
    before = file_columns(ctx, pk)
    browser = as_user("shequ01")
    shown_in_page(upload(browser, pk, "协议.docx", PDF), "只能上传 PDF、JPG 或 PNG 格式的协议扫描件")
    shown_in_page(upload(browser, pk, "协议.pdf", b"MZ\x90\x00 not a pdf"),
                  "文件内容不是有效的 PDF 文件（扩展名与内容不符）")
    shown_in_page(upload(browser, pk, "协议.png", PDF), "文件内容不是有效的 PNG 文件")
    monkeypatch.setitem(app.config, "UPLOAD_MAX_BYTES", 1024)
    shown_in_page(upload(browser, pk, "协议.pdf", PDF + b" " * 2048), "文件大小超过上限（1 KB）")
    client, headers = api("shequ01")
    refused = client.post(f"/api/v1/agreement/{pk}/file", headers=headers,
                          data={"file": (io.BytesIO(b"GIF89a"), "scan.jpg")},
                          content_type="multipart/form-data")
    refused_by_api(refused, "文件内容不是有效的 JPG 文件")
    assert file_columns(ctx, pk) == before
    assert list(uploads.rglob("*.*")) == []
    assert scalar(ctx, "SELECT count(*) FROM stored_file WHERE name LIKE '协议%' OR name = 'scan.jpg'") == 0


def test_the_scanned_file_is_uploaded_and_downloaded_within_scope(ctx, as_user, api, uploads):
    pk = agreement_of(ctx, "danwei01")
    response = upload(as_user("shequ01"), pk, "签订协议扫描件.pdf", PDF)
    assert "协议扫描件已上传" in response.get_data(as_text=True)
    stored = file_columns(ctx, pk)
    assert (stored.file_name, stored.file_type, stored.file_size) == ("签订协议扫描件.pdf", "pdf",
                                                                      len(PDF))
    # In the shared storage (issue 21), not on this host's disk.
    assert scalar(ctx, "SELECT size FROM stored_file WHERE id = :f", f=stored.file_id) == len(PDF)
    assert list(uploads.rglob("*.*")) == []
    # The unit's liaison reads it; the other unit's liaison does not see the agreement at all.
    own = as_user("danwei01").get(f"/agreement/scan/{pk}")
    assert own.status_code == 200 and own.data == PDF
    assert own.headers["Content-Type"] == "application/pdf"
    assert as_user("danwei02").get(f"/agreement/scan/{pk}").status_code == 404
    assert as_user("danwei03").get(f"/agreement/show/{pk}").status_code == 404
    client, headers = api("danwei02")
    assert client.get(f"/api/v1/agreement/{pk}/file", headers=headers).status_code == 404
    client, headers = api("danwei01")
    assert client.get(f"/api/v1/agreement/{pk}/file", headers=headers).data == PDF
    # A liaison reads its agreement but may not replace the file.
    assert as_user("danwei01").get(f"/agreement/upload/{pk}").status_code == 403
    refused = client.post(f"/api/v1/agreement/{pk}/file", headers=headers,
                          data={"file": (io.BytesIO(PNG), "scan.png")},
                          content_type="multipart/form-data")
    assert refused.status_code == 403
    assert file_columns(ctx, pk) == stored


def test_agreements_ending_within_30_days_are_listed_for_their_community_and_unit(ctx, as_user):
    today = clock.today()
    unit = link(ctx, "danwei01").unit_id
    soon = ctx.execute(text("SELECT id FROM agreement WHERE status = '已签订' AND valid_to >= :a "
                            "AND valid_to <= :b AND unit_id = :u"),
                       {"a": today, "b": today + timedelta(days=30), "u": unit}).scalars().all()
    later = ctx.execute(text("SELECT id FROM agreement WHERE status = '已签订' AND valid_to > :b"),
                        {"b": today + timedelta(days=30)}).scalars().all()
    assert soon, "the demo data give danwei01's unit an agreement ending within 30 days"
    for username in ("shequ01", "danwei01"):
        page = as_user(username).get("/agreement/list/?_flt_0_expiring=1&psize_AgreementView=100")
        listed = {int(i) for i in re.findall(r'href="/agreement/show/(\d+)"',
                                             page.get_data(as_text=True))}
        assert set(soon) <= listed
        assert listed.isdisjoint(later)
    unit_page = as_user("danwei01").get(f"/unit/show/{unit}").get_data(as_text=True)
    assert "天后到期" in unit_page


# --- printable registration documents, the unit's and the member's pages ---------------------

def test_the_printable_receipt_and_certificate_are_a4_chinese_and_scoped(ctx, as_user):
    unit = link(ctx, "danwei01").unit_id
    receipt = scalar(ctx, "SELECT min(id) FROM unit_registration WHERE unit_id = :u", u=unit)
    number = scalar(ctx, "SELECT receipt_no FROM unit_registration WHERE id = :i", i=receipt)
    page = as_user("danwei01").get(f"/unit_registration/receipt/{receipt}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "@page { size: A4" in html and "驻区单位党组织报到回执" in html and number in html
    assert not re.search(r'(href|src)="https?://', html), "no external fonts or CSS"
    assert as_user("danwei03").get(f"/unit_registration/receipt/{receipt}").status_code == 404

    member = link(ctx, "dangyuan01").member_id
    certificate = scalar(ctx, "SELECT min(id) FROM member_registration WHERE member_id = :m",
                         m=member)
    number = scalar(ctx, "SELECT certificate_no FROM member_registration WHERE id = :i",
                    i=certificate)
    html = as_user("dangyuan01").get(f"/member_registration/certificate/{certificate}") \
        .get_data(as_text=True)
    assert "在职党员到社区报到证" in html and number in html and "@page { size: A4" in html
    assert as_user("danwei03").get(
        f"/member_registration/certificate/{certificate}").status_code == 404


def test_the_unit_and_member_pages_show_their_co_building(ctx, as_user):
    unit = link(ctx, "danwei01").unit_id
    points = scalar(ctx, "SELECT coalesce(sum(delta), 0) FROM point_entry "
                         "WHERE subject_type = 'unit' AND unit_id = :u", u=unit)
    receipt = scalar(ctx, "SELECT receipt_no FROM unit_registration WHERE unit_id = :u "
                          "ORDER BY registered_on DESC", u=unit)
    html = as_user("danwei01").get(f"/unit/show/{unit}").get_data(as_text=True)
    assert "共驻共建" in html and receipt in html and f"{Decimal(points):.2f}" in html
    assert "在职党员报到" in html

    member = link(ctx, "dangyuan01").member_id
    hours = scalar(ctx, "SELECT coalesce(sum(hours), 0) FROM service_record "
                        "WHERE member_id = :m AND status = '已认证'", m=member)
    post = scalar(ctx, "SELECT p.name FROM post_claim c JOIN service_post p ON p.id = c.post_id "
                       "WHERE c.member_id = :m AND c.status = '已认领'", m=member)
    html = as_user("dangyuan01").get(f"/member/show/{member}").get_data(as_text=True)
    assert "双报到与志愿服务" in html and f"{Decimal(hours):.1f} 小时" in html
    assert post and post in html
