"""月汇报 (issue 25): a community's monthly reports composed from the panel's figures — equal to
the dashboard's for the same node and month — submitted, returned with a reason, resubmitted
as the same record and approved by the street; what the street's to-do shows; the refusals of
the Bad input list; the .docx as python-docx reads it back."""
import csv
import io
import re
import warnings
from contextlib import contextmanager

import pytest
from docx import Document
from sqlalchemy import text

from app import clock
from app.errors import Conflict
from app.exports import cell_value
from app.services.work_report import REPORT_FIGURES, last_month
from tests.conftest import tables_kept_by

pytestmark = pytest.mark.db

MARKUP = '<script>alert("x")</script> {{ 7*7 }} <b>粗体</b>'


@pytest.fixture(scope="module", autouse=True)
def _kept(app):
    with tables_kept_by(app):
        yield


def months_back(count: int) -> list[str]:
    """The `count` months that ended last, oldest first."""
    today = clock.today()
    year, month, found = today.year, today.month, []
    for _ in range(count):
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        found.append(f"{year}-{month:02d}")
    return found[::-1]


def node_of(ctx, username) -> int:
    return ctx.execute(text("SELECT org_id FROM ab_user WHERE username = :u"), {"u": username}).scalar()


def report_id(ctx, org_id, month):
    return ctx.execute(text("SELECT id FROM work_report WHERE org_id = :o AND month = :m "
                            "AND deleted_on IS NULL"), {"o": org_id, "m": month}).scalar()


def report_row(ctx, pk):
    return ctx.execute(text("SELECT * FROM work_report WHERE id = :i"), {"i": pk}).mappings().one()


def open_report(browser, org_id, month, **narrative):
    response = browser.post("/work_report/add", {"org": org_id, "month": month, **narrative},
                            form_url="/work_report/add")
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return response


def move(browser, pk, name, **data):
    response = browser.post(f"/work_report/transition/{pk}/{name}", data,
                            form_url=f"/work_report/show/{pk}")
    with browser.client.session_transaction() as session:
        flashed = " ".join(m for _, m in session.pop("_flashes", []))
    # A move with a form shows its refusal on the form re-shown; others flash it.
    return response, flashed + response.get_data(as_text=True)


def dashboard_rows(browser, name, month, org_id):
    """A figure's rows as the dashboard's CSV gives them, by column key."""
    from app.dashboards.figures import FIGURES

    response = browser.get(f"/dashboard/figure/{name}.csv",
                           query_string={"period": month, "org": org_id})
    assert response.status_code == 200
    reader = csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff")))
    header = next(reader)
    keys = {label: key for key, label in FIGURES[name].columns.items()}
    return [{keys[h]: v for h, v in zip(header, row) if h in keys} for row in reader]


def report_figures(client, headers, pk):
    response = client.get(f"/api/v1/work_report/{pk}/figures", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


def assert_equal_to_dashboard(browser, figures, month, org_id):
    from app.dashboards.figures import FIGURES

    compared = 0
    for name in REPORT_FIGURES:
        board = dashboard_rows(browser, name, month, org_id)
        mine = [{k: str(cell_value(row.get(k))) for k in FIGURES[name].columns}
                for row in figures[name]]
        assert mine == board, (name, month)
        compared += len(board)
    return compared


def test_three_months_composed_submitted_returned_resubmitted_and_approved(app, ctx, as_user, api):
    community = node_of(ctx, "shequ01")
    shequ, jiedao = as_user("shequ01"), as_user("jiedao01")
    client, headers = api("shequ01")
    months = months_back(3)
    ids = []
    compared = 0
    for month in months:
        open_report(shequ, community, month, summary=f"{month} 工作总结", problems="人手不足",
                    plans="下月继续")
        pk = report_id(ctx, community, month)
        ids.append(pk)
        live = report_figures(client, headers, pk)
        assert live["frozen"] is False
        compared += assert_equal_to_dashboard(shequ, live["figures"], month, community)
    assert compared > 0, "the demo community should have figures in the last three months"

    # Nothing submitted yet: the street's to-do names the community among those not in.
    page = jiedao.get("/").get_data(as_text=True)
    assert "待审核的月汇报" in page
    community_name = ctx.execute(text("SELECT name FROM organization WHERE id = :i"),
                                 {"i": community}).scalar()
    if months[-1] == last_month():
        assert f"{community_name}：{last_month()} 月汇报未提交" in page

    for pk in ids:
        response, flashed = move(shequ, pk, "submit")
        assert "已提交" in flashed, flashed
        row = report_row(ctx, pk)
        assert row["status"] == "已提交" and row["figures"] and row["submitted_on"]
    # Frozen: the figures are those submitted, still equal to the dashboard's.
    frozen = report_figures(client, headers, ids[0])
    assert frozen["frozen"] is True
    assert_equal_to_dashboard(shequ, frozen["figures"], months[0], community)

    # The street's to-do: the three reports await it, and its link lists exactly them.
    page = jiedao.get("/").get_data(as_text=True)
    found = re.search(r'<a href="([^"]+)" data-count="(\d+)">待审核的月汇报</a>', page)
    assert found and int(found.group(2)) == 3
    listed = jiedao.get(found.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert all(f"/work_report/show/{pk}" in listed for pk in ids)
    assert f"{community_name}：{last_month()} 月汇报未提交" not in page

    # The community cannot review its own; the street returns one with a reason.
    _, flashed = move(shequ, ids[1], "approve")
    assert "不能执行" in flashed
    _, flashed = move(jiedao, ids[1], "return")
    assert "请填写退回原因" in flashed
    _, flashed = move(jiedao, ids[1], "return", reason="按期办结率偏低，请补充原因分析")
    assert report_row(ctx, ids[1])["status"] == "已退回"
    for pk in (ids[0], ids[2]):
        move(jiedao, pk, "approve")
        assert report_row(ctx, pk)["status"] == "已通过"

    # Returned, it is written again and resubmitted as the same record.
    response = shequ.post(f"/work_report/edit/{ids[1]}", {
        "summary": "补充：逾期需求已督办", "problems": "人手不足", "plans": "下月继续"},
        form_url=f"/work_report/edit/{ids[1]}")
    assert response.status_code == 302
    assert report_row(ctx, ids[1])["summary"] == "补充：逾期需求已督办"
    move(shequ, ids[1], "submit")
    move(jiedao, ids[1], "approve")
    row = report_row(ctx, ids[1])
    assert row["status"] == "已通过" and row["return_reason"] == "按期办结率偏低，请补充原因分析"
    assert report_id(ctx, community, months[1]) == ids[1]
    history = [r[0] for r in ctx.execute(text(
        "SELECT changes FROM audit_log WHERE resource = 'work_report' AND record_id = :i "
        "AND action = 'transition' ORDER BY id"), {"i": str(ids[1])})]
    assert len(history) == 4  # submit, return, submit, approve
    assert "按期办结率偏低" in " ".join(history)
    page = jiedao.get("/").get_data(as_text=True)
    assert re.search(r'data-count="0">待审核的月汇报</a>', page)


def test_a_month_not_ended_is_previewed_not_submitted(ctx, as_user):
    community = node_of(ctx, "shequ01")
    shequ = as_user("shequ01")
    month = f"{clock.today():%Y-%m}"
    open_report(shequ, community, month, summary="本月进行中")
    pk = report_id(ctx, community, month)
    page = shequ.get(f"/work_report/show/{pk}").get_data(as_text=True)
    assert "需求办理漏斗" in page and "实时数据" in page
    assert ">提交<" not in page  # the move is not offered
    _, flashed = move(shequ, pk, "submit")
    assert "尚未结束" in flashed
    assert report_row(ctx, pk)["status"] == "草稿"


def test_a_second_report_for_the_month_opens_the_first(ctx, as_user):
    community = node_of(ctx, "shequ01")
    shequ = as_user("shequ01")
    month = months_back(5)[0]
    open_report(shequ, community, month, summary="第一份")
    first = report_id(ctx, community, month)
    response = open_report(shequ, community, month, summary="第二份")
    assert response.headers["Location"].endswith(f"/work_report/show/{first}")
    assert ctx.execute(text("SELECT count(*) FROM work_report WHERE org_id = :o AND month = :m"),
                       {"o": community, "m": month}).scalar() == 1
    assert report_row(ctx, first)["summary"] == "第一份"


def test_no_edit_after_submission_and_no_review_outside_scope(app, ctx, as_user, api):
    community, street = node_of(ctx, "shequ01"), node_of(ctx, "jiedao01")
    shequ, jiedao = as_user("shequ01"), as_user("jiedao01")
    month = months_back(6)[0]
    open_report(shequ, community, month, summary="原文")
    pk = report_id(ctx, community, month)
    move(shequ, pk, "submit")
    shequ.post(f"/work_report/edit/{pk}", {"summary": "改过"}, form_url=f"/work_report/edit/{pk}")
    assert report_row(ctx, pk)["summary"] == "原文"
    client, headers = api("shequ01")
    response = client.put(f"/api/v1/work_report/{pk}", json={"summary": "改过"}, headers=headers)
    assert response.status_code == 422 and "不能修改" in response.json["message"]

    # The street's own report is reviewed by 组织部, not by the street.
    open_report(jiedao, street, month, summary="街道")
    street_pk = report_id(ctx, street, month)
    move(jiedao, street_pk, "submit")
    _, flashed = move(jiedao, street_pk, "approve")
    assert "本级党组织不能审核" in flashed
    assert report_row(ctx, street_pk)["status"] == "已提交"
    client, headers = api("zuzhibu")
    response = client.post(f"/api/v1/work_report/{street_pk}/transition/approve", json={},
                           headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert report_row(ctx, street_pk)["status"] == "已通过"

    # Another street's community: not found for this street (404), on the page and the API.
    other = ctx.execute(text(
        "SELECT o.id FROM organization o JOIN unit u ON u.community_id = o.id "
        "JOIN ab_user a ON a.unit_id = u.id WHERE a.username = 'danwei03'")).scalar()
    from app.extensions import db
    from app.models.reports import WorkReport
    from app.security.principal import SYSTEM, acting_as

    with app.app_context(), acting_as(SYSTEM):
        report = WorkReport(org_id=other, month=month, summary="外街道")
        db.session.add(report)
        db.session.commit()
        other_pk = report.id
    client, headers = api("jiedao01")
    response = client.post(f"/api/v1/work_report/{other_pk}/transition/approve", json={},
                           headers=headers)
    assert response.status_code == 404
    assert jiedao.get(f"/work_report/show/{other_pk}").status_code == 404


def test_units_and_members_see_no_report(ctx, as_user, api):
    for username in ("danwei01", "dangyuan01"):
        assert as_user(username).get("/work_report/list/").status_code == 403
        client, headers = api(username)
        assert client.get("/api/v1/work_report/", headers=headers).status_code == 403
    assert as_user("shenji").get("/work_report/list/").status_code == 200


@contextmanager
def _as(app, username):
    from app.extensions import db
    from app.security.models import UserAccount
    from app.security.principal import acting_as, principal_for

    with app.app_context():
        user = db.session.execute(text("SELECT id FROM ab_user WHERE username = :u"),
                                  {"u": username}).scalar()
        with acting_as(principal_for(db.session.get(UserAccount, user))):
            yield db.session


def test_two_reviewers_at_once_one_wins_the_other_is_told(app, ctx, as_user):
    from app.models.reports import WorkReport
    from app.services.work_report import REPORT_FLOW

    community = node_of(ctx, "shequ01")
    shequ = as_user("shequ01")
    month = months_back(7)[0]
    open_report(shequ, community, month, summary="并发")
    pk = report_id(ctx, community, month)
    move(shequ, pk, "submit")
    with _as(app, "jiedao01") as first:
        mine = first.get(WorkReport, pk)
        with _as(app, "jiedao01") as second:
            theirs = second.get(WorkReport, pk)
            REPORT_FLOW.run(second, theirs, "approve")
        with pytest.raises(Conflict) as refused:
            REPORT_FLOW.run(first, mine, "return", {"reason": "退回"})
    # Told: the move lost (or, on SQLite, met the winner's write lock), nothing written.
    assert "他人" in str(refused.value)
    assert report_row(ctx, pk)["status"] == "已通过"


def test_markup_in_the_narrative_is_inert_on_the_page_and_in_the_docx(ctx, as_user):
    community = node_of(ctx, "shequ01")
    shequ = as_user("shequ01")
    month = months_back(8)[0]
    open_report(shequ, community, month, summary=MARKUP, problems="第一行\n第二行", plans="")
    pk = report_id(ctx, community, month)
    for url in (f"/work_report/show/{pk}", f"/work_report/print/{pk}"):
        page = shequ.get(url).get_data(as_text=True)
        assert "<script>alert" not in page and "<b>粗体</b>" not in page
        assert "&lt;script&gt;" in page and "{{ 7*7 }}" in page

    # The charts' Chinese is drawn, not boxes: matplotlib warns of every glyph its font lacks.
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r".*[Gg]lyph .* missing from")
        document = docx_of(shequ, pk)
    body = [p.text for p in document.paragraphs]
    assert MARKUP in body and "第一行" in body and "第二行" in body
    name = ctx.execute(text("SELECT name FROM organization WHERE id = :i"), {"i": community}).scalar()
    assert any(name in p and "共驻共建工作月汇报" in p for p in body)
    assert any("负责人签字" in p for p in body)
    assert document.tables and document.tables[0].rows[0].cells[0].text
    assert document.inline_shapes, "the charts are pictures in the document"
    footer = document.sections[0].footer.paragraphs[0]._p.xml
    assert "PAGE" in footer and "NUMPAGES" in footer
    # Its file was composed by a job and kept in the storage.
    job = ctx.execute(text("SELECT status, file_id FROM job WHERE kind = 'work_report_document' "
                           "ORDER BY id DESC")).first()
    assert job.status == "已完成" and job.file_id


def test_the_reviewers_to_do_names_the_nodes_that_have_not_reported(ctx, as_user):
    """组织部's to-do names the streets without last month's report (a draft is not one), the
    street's its communities (test above); a community's and a unit's to-do have no such list."""
    street = node_of(ctx, "jiedao01")
    month = last_month()
    streets = dict(ctx.execute(text("SELECT id, name FROM organization WHERE type = 'street' "
                                    "AND active = :t"), {"t": True}).all())
    assert len(streets) > 1
    missing = f"{streets[street]}：{month} 月汇报未提交"
    zuzhibu, jiedao = as_user("zuzhibu"), as_user("jiedao01")
    page = zuzhibu.get("/").get_data(as_text=True)
    assert all(f"{name}：{month} 月汇报未提交" in page for name in streets.values()), page

    open_report(jiedao, street, month, summary="街道月度工作")
    pk = report_id(ctx, street, month)
    assert missing in zuzhibu.get("/").get_data(as_text=True)  # a draft is not submitted
    move(jiedao, pk, "submit")
    page = zuzhibu.get("/").get_data(as_text=True)
    assert missing not in page
    assert f'href="/work_report/show/{pk}"' in page  # awaiting 组织部's review
    assert sum(f"{name}：{month} 月汇报未提交" in page for name in streets.values()) \
        == len(streets) - 1

    zuzhibu.get("/lang/en")
    page = zuzhibu.get("/").get_data(as_text=True)
    other = next(name for pk_, name in streets.items() if pk_ != street)
    assert f"{other}: monthly report for {month} not submitted" in page
    assert "月汇报未提交" not in page

    for username in ("shequ01", "danwei01", "dangyuan01"):
        page = as_user(username).get("/").get_data(as_text=True)
        assert "月汇报未提交" not in page and "待审核的月汇报" not in page, username


def test_the_list_exports_what_the_reader_may_read(app, ctx, as_user):
    """The street's CSV of 月汇报 holds its communities' reports and not another street's;
    组织部's holds both; the export is audited."""
    from app.extensions import db
    from app.models.reports import WorkReport
    from app.security.principal import SYSTEM, acting_as

    community = node_of(ctx, "shequ01")
    month = months_back(10)[0]
    open_report(as_user("shequ01"), community, month, summary="导出")
    other = ctx.execute(text(
        "SELECT o.id FROM organization o JOIN unit u ON u.community_id = o.id "
        "JOIN ab_user a ON a.unit_id = u.id WHERE a.username = 'danwei03'")).scalar()
    with app.app_context(), acting_as(SYSTEM):
        db.session.add(WorkReport(org_id=other, month=month, summary="外街道"))
        db.session.commit()
    names = dict(ctx.execute(text("SELECT id, name FROM organization WHERE id IN (:a, :b)"),
                             {"a": community, "b": other}).all())

    def exported(username):
        response = as_user(username).get("/work_report/export/csv",
                                          query_string={"_flt_0_month": month})
        assert response.status_code == 200
        rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
        assert rows[0][:3] == ["党组织", "月份", "状态"], rows[0]
        return {row[0] for row in rows[1:] if row[1] == month}

    assert exported("jiedao01") == {names[community]}
    assert exported("zuzhibu") >= {names[community], names[other]}
    assert ctx.execute(text("SELECT count(*) FROM audit_log WHERE action = 'export' "
                            "AND resource = 'work_report'")).scalar() >= 2


HAN = re.compile(r"[\u4e00-\u9fff]")


def test_the_document_speaks_the_readers_language(ctx, as_user):
    """In English, the .docx's labels — title, headings, table titles and columns, chart
    captions, page numbers, signature line — are the English catalog's: no Chinese is left but
    the node's name (the figures' values are data and stay as recorded)."""
    community = node_of(ctx, "shequ01")
    name = ctx.execute(text("SELECT name FROM organization WHERE id = :i"),
                       {"i": community}).scalar()
    shequ = as_user("shequ01")
    month = months_back(9)[0]
    open_report(shequ, community, month, summary="A fair with the units", problems="Few hands",
                plans="More visits")
    pk = report_id(ctx, community, month)
    shequ.get("/lang/en")
    document = docx_of(shequ, pk)
    said = [p.text for p in document.paragraphs]
    said += [cell.text for table in document.tables for cell in table.rows[0].cells]
    footer = document.sections[0].footer.paragraphs[0].text
    assert f"{name}: monthly co-building work report, {month}" in said
    assert "1. Summary of work" in said and "5. Charts" in said
    assert footer.startswith("Page ") and " of " in footer
    left = [text_ for text_ in [*said, footer] if HAN.search(text_.replace(name, ""))]
    assert not left, left
    page = shequ.get(f"/work_report/print/{pk}").get_data(as_text=True)
    assert f"<h1>{name}: monthly co-building work report, {month}</h1>" in page


def docx_of(browser, pk) -> Document:
    response = browser.post(f"/work_report/document/{pk}/docx", {},
                            form_url=f"/work_report/show/{pk}")
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    location = response.headers["Location"]
    assert location.endswith("/download"), location
    download = browser.get(location)
    assert download.status_code == 200
    return Document(io.BytesIO(download.get_data()))
