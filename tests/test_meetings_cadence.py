"""The cadence of joint meetings (DOMAIN.md §2): the dates each type falls on in a quarter, per
body configuration; generating a period twice creates nothing the second time; and minutes
pasted as text read as paragraphs and lists, never as HTML."""
from datetime import date

import pytest
from sqlalchemy import text

from app.errors import DomainError
from app.minutes import render_minutes
from app.models.meetings import JointBody
from app.services.meetings import cadence_dates, parse_period
from tests.test_meetings_support import api_says, body_id, count, page_says


def body(**cadence) -> JointBody:
    values = {"xun_enabled": True, "xun_days": "1,11,21", "monthly_enabled": True,
              "monthly_day": 25, "quarterly_enabled": True, "quarterly_day": 25,
              "yearly_enabled": True, "yearly_month": 12, "yearly_day": 20, **cadence}
    return JointBody(name="测试联席会", **values)


def by_type(planned) -> dict[str, list[date]]:
    out: dict[str, list[date]] = {}
    for type_, day in planned:
        out.setdefault(type_, []).append(day)
    return out


def test_the_fourth_quarter_with_the_domain_defaults():
    got = by_type(cadence_dates(body(), date(2026, 10, 1), date(2026, 12, 31)))
    assert got == {
        "旬例会": [date(2026, m, d) for m in (10, 11, 12) for d in (1, 11, 21)],
        "月推进会": [date(2026, 10, 25), date(2026, 11, 25), date(2026, 12, 25)],
        "季研讨会": [date(2026, 12, 25)],
        "年总结会": [date(2026, 12, 20)],
    }


def test_a_quarter_without_the_year_end_has_no_yearly_meeting():
    got = by_type(cadence_dates(body(), date(2027, 1, 1), date(2027, 3, 31)))
    assert got["季研讨会"] == [date(2027, 3, 25)]
    assert "年总结会" not in got
    assert len(got["旬例会"]) == 9 and len(got["月推进会"]) == 3


def test_each_type_is_configurable_per_body_and_optional():
    custom = body(xun_enabled=False, monthly_day=31, quarterly_day=30, yearly_month=6,
                  yearly_day=28)
    got = by_type(cadence_dates(custom, date(2027, 4, 1), date(2027, 6, 30)))
    assert "旬例会" not in got
    # A day the month lacks falls on its last day (30 April, 30 June).
    assert got["月推进会"] == [date(2027, 4, 30), date(2027, 5, 31), date(2027, 6, 30)]
    assert got["季研讨会"] == [date(2027, 6, 30)]
    assert got["年总结会"] == [date(2027, 6, 28)]
    only_quarterly = body(xun_enabled=False, monthly_enabled=False, yearly_enabled=False)
    assert cadence_dates(only_quarterly, date(2027, 1, 1), date(2027, 12, 31)) == [
        ("季研讨会", date(2027, m, 25)) for m in (3, 6, 9, 12)]


def test_a_period_cut_mid_month_keeps_only_its_days():
    got = cadence_dates(body(), date(2027, 2, 5), date(2027, 2, 24))
    assert got == [("旬例会", date(2027, 2, 11)), ("旬例会", date(2027, 2, 21))]
    leap = body(xun_days="10,20,30")
    assert by_type(cadence_dates(leap, date(2028, 2, 1), date(2028, 2, 29)))["旬例会"] == [
        date(2028, 2, 10), date(2028, 2, 20), date(2028, 2, 29)]


def test_periods_are_named_as_people_say_them():
    assert parse_period("2026Q3") == (date(2026, 7, 1), date(2026, 9, 30))
    assert parse_period("2026年第4季度") == (date(2026, 10, 1), date(2026, 12, 31))
    assert parse_period("2026") == (date(2026, 1, 1), date(2026, 12, 31))
    assert parse_period("2027-02") == (date(2027, 2, 1), date(2027, 2, 28))
    with pytest.raises(DomainError, match="期间格式不正确"):
        parse_period("明年")


def test_bad_cadence_settings_are_refused_in_chinese():
    with pytest.raises(DomainError, match="旬例会日期"):
        body(xun_days="1,11,32").xun_day_list()
    with pytest.raises(DomainError, match="旬例会日期"):
        body(xun_days="初一").xun_day_list()


# --- generation, through the page and the API --------------------------------------------

@pytest.fixture
def new_body(ctx, api):
    """A body of its own (the seeded ones have their year planned already)."""
    host = ctx.execute(text("SELECT id FROM organization WHERE code = 'YX0102'")).scalar()
    client, headers = api("jiedao01")
    response = client.post("/api/v1/joint_body/", headers=headers, json={
        "name": "生成测试联席会", "host": host, "xun_enabled": False})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.json["id"]


def planned(ctx, pk):
    return ctx.execute(text("SELECT type, planned_date FROM meeting WHERE body_id = :b "
                            "AND deleted_on IS NULL ORDER BY planned_date, type"),
                       {"b": pk}).all()


def test_generating_a_quarter_twice_creates_no_duplicates(ctx, api, new_body):
    client, headers = api("jiedao01")
    first = client.post(f"/api/v1/joint_body/{new_body}/generate", headers=headers,
                        json={"period": "2027Q4"})
    assert first.status_code == 200, first.get_data(as_text=True)
    assert len(first.json["created"]) == 5 and first.json["skipped"] == 0
    rows = planned(ctx, new_body)
    assert {(t, str(d)[:10]) for t, d in rows} == {
        ("月推进会", "2027-10-25"), ("月推进会", "2027-11-25"), ("年总结会", "2027-12-20"),
        ("季研讨会", "2027-12-25"), ("月推进会", "2027-12-25")}
    again = client.post(f"/api/v1/joint_body/{new_body}/generate", headers=headers,
                        json={"start": "2027-10-01", "end": "2027-12-31"})
    assert again.status_code == 200
    assert again.json["created"] == [] and again.json["skipped"] == 5
    assert sorted(planned(ctx, new_body)) == sorted(rows)
    # A meeting moved by hand keeps its place: generating again does not plan it twice.
    moved = ctx.execute(text("SELECT id FROM meeting WHERE body_id = :b AND type = '月推进会' "
                             "ORDER BY planned_date"), {"b": new_body}).scalars().first()
    assert client.put(f"/api/v1/meeting/{moved}", headers=headers,
                      json={"planned_date": "2027-10-27"}).status_code == 200
    client.post(f"/api/v1/joint_body/{new_body}/generate", headers=headers,
                json={"period": "2027Q4"})
    assert count(ctx, "meeting", "body_id = :b AND deleted_on IS NULL", b=new_body) == 5
    assert count(ctx, "meeting", "body_id = :b AND planned_date = :d", b=new_body,
                 d=date(2027, 10, 27)) == 1


def test_the_generation_page_generates_and_says_what_it_did(ctx, as_user, new_body):
    browser = as_user("jiedao01")
    response = browser.post(f"/joint_body/generate/{new_body}", {"period": "2028Q1"},
                            form_url=f"/joint_body/generate/{new_body}", follow_redirects=True)
    page_says(response, "已生成 4 次会议计划")
    response = browser.post(f"/joint_body/generate/{new_body}", {"period": "2028Q1"},
                            form_url=f"/joint_body/generate/{new_body}", follow_redirects=True)
    page_says(response, "已生成 0 次会议计划；4 次已存在")
    assert count(ctx, "meeting", "body_id = :b", b=new_body) == 4


def test_generation_is_refused_for_bad_periods_and_outside_scope(ctx, as_user, api, new_body):
    before = count(ctx, "meeting")
    client, headers = api("jiedao01")
    api_says(client.post(f"/api/v1/joint_body/{new_body}/generate", headers=headers,
                         json={"start": "2028-12-31", "end": "2028-01-01"}), "结束日期不能早于开始日期")
    api_says(client.post(f"/api/v1/joint_body/{new_body}/generate", headers=headers,
                         json={"period": "下个季度"}), "期间格式不正确")
    api_says(client.post(f"/api/v1/joint_body/{new_body}/generate", headers=headers,
                         json={"start": "2028-01-01", "end": "2031-01-01"}), "最多生成两年")
    # danwei03's unit stands in another street: the body does not exist for it; a liaison
    # may not plan meetings at all.
    other, other_headers = api("danwei03")
    assert other.post(f"/api/v1/joint_body/{new_body}/generate", headers=other_headers,
                      json={"period": "2028Q2"}).status_code in (403, 404)
    assert as_user("danwei01").post(f"/joint_body/generate/{new_body}", {"period": "2028Q2"},
                                    form_url="/supervision_note/add").status_code == 403
    assert count(ctx, "meeting") == before


def test_the_cli_generates_a_body_plan(app, ctx):
    pk = body_id(ctx)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["gongjian", "generate-meetings", "--body", str(pk),
                                 "--period", "2029Q2"])
    assert result.exit_code == 0, result.output
    assert "已生成 13 次" in result.output
    again = runner.invoke(args=["gongjian", "generate-meetings", "--body", str(pk),
                                "--period", "2029Q2"])
    assert "已生成 0 次" in again.output
    assert count(ctx, "meeting", "body_id = :b AND planned_date BETWEEN :s AND :e", b=pk,
                 s=date(2029, 4, 1), e=date(2029, 6, 30)) == 13


# --- minutes ---------------------------------------------------------------------------------

MINUTES = """会议时间：2026年9月25日
主持人：王芳

一、会议议题
1. 研究加装电梯
2. 部署<script>alert(1)</script>排查
   （续）涉及3个小区

会议认为，各单位要高度重视。

- 要按期报送进展
- 要做好群众工作"""


def test_minutes_read_as_paragraphs_and_lists_and_no_html_gets_through():
    html = str(render_minutes(MINUTES))
    assert html.startswith('<div class="gj-minutes"><p>会议时间：2026年9月25日<br>主持人：王芳</p>')
    assert ('<ol class="gj-minutes-ol"><li><span class="gj-marker">一、</span>会议议题</li>'
            '<li><span class="gj-marker">1.</span>研究加装电梯</li>') in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;排查<br>（续）涉及3个小区</li></ol>" in html
    assert "<script>" not in html
    assert "<p>会议认为，各单位要高度重视。</p>" in html
    assert '<ul class="gj-minutes-ul"><li>要按期报送进展</li><li>要做好群众工作</li></ul>' in html
    assert str(render_minutes("")) == "" and str(render_minutes(None)) == ""
