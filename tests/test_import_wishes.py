"""Micro-wishes granted before the panel (issue 19, backfill): an office's ledger of wishes
imported with their status, claimant and dates, checked against the wish's loop (待审核 →
待认领 → 已认领 → 已实现 → 已确认) by the same rule as needs (`PastWork`); only a role that
reviews wishes may import rows past 待审核; re-import updates by who wished what and when;
the dashboard counts backfilled wishes in the months of their steps."""
from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from tests.conftest import tables_kept_by
from tests.test_import_office import PREVIEWED, count, csv_data, errors, names, upload

pytestmark = pytest.mark.db

HEADERS = ["社区", "居民姓名", "电话", "心愿内容", "提出日期", "状态", "认领单位", "认领日期",
           "实现日期", "实现情况", "居民反馈"]


@pytest.fixture(scope="module", autouse=True)
def _kept(app):
    with tables_kept_by(app):
        yield


def ledger(area, unit):
    return [HEADERS,
            [area, "补录甲", "13900008801", "补录心愿：修理水龙头", "2025-03-02", "已确认", unit,
             "2025-03-05", "2025/3/12", "已上门修好", "很满意，谢谢"],
            [area, "补录乙", "13900008802", "补录心愿：一套字典", "2025年3月3日", "已认领", unit,
             "2025-03-20", "", "", ""],
            [area, "补录丙", "", "补录心愿：轮椅借用", "2025-03-04", "待认领", "", "", "", "", ""]]


def wishes_in(as_user, month):
    from tests.test_dashboard_figures import figure

    [row] = figure(as_user, "shequ01", "wishes_per_month", period=month)
    return int(row["posted"]), int(row["claimed"]), int(row["fulfilled"])


def test_wishes_granted_before_the_panel_count_in_their_months(ctx, as_user):
    n = names(ctx)
    browser = as_user("shequ01")
    before = wishes_in(as_user, "2025-03")
    data = csv_data(ledger(n["area"], n["unit"]))
    page = upload(browser, "micro_wish", "心愿台账.csv", data)
    assert "导入成功：新增 3 条" in page, errors(page)
    rows = ctx.execute(text("SELECT resident_name, status, claimant_unit_id IS NOT NULL AS claimed, "
                            "feedback FROM micro_wish WHERE content LIKE '补录心愿%' "
                            "ORDER BY resident_name")).all()
    assert [(r.resident_name, r.status, bool(r.claimed), r.feedback) for r in rows] == [
        ("补录丙", "待认领", False, None), ("补录乙", "已认领", True, None),
        ("补录甲", "已确认", True, "很满意，谢谢")]
    assert wishes_in(as_user, "2025-03") == (before[0] + 3, before[1] + 2, before[2] + 1), \
        "the dashboard counts each step in the month of its date"
    audit = ctx.execute(text("SELECT changes FROM audit_log WHERE action = 'import' "
                             "AND resource = 'micro_wish' ORDER BY id DESC")).scalar()
    assert '"created": 3' in audit
    # The same ledger again: by phone (or name) + content + 提出日期, nothing new.
    assert PREVIEWED.search(upload(browser, "micro_wish", "心愿台账.csv", data, dry_run=True)
                            ).groups() == ("0", "0", "3")
    again = ledger(n["area"], n["unit"])
    again[3][9] = "借用三个月"
    page = upload(browser, "micro_wish", "心愿台账.csv", csv_data(again), dry_run=True)
    assert errors(page) == [("4", "实现凭证", "状态为“待认领”的心愿尚未到“已实现”，不应填写实现凭证")], \
        "past work written onto an existing wish is checked as a new one's"
    again = ledger(n["area"], n["unit"])
    again[1][9] = "已上门修好并更换了阀门"
    assert PREVIEWED.search(upload(browser, "micro_wish", "心愿台账.csv", csv_data(again),
                                   dry_run=True)).groups() == ("0", "1", "2")


def test_a_wish_status_its_dates_could_not_reach_is_a_row_error(ctx, as_user):
    n = names(ctx)
    area, unit = n["area"], n["unit"]
    rows = [HEADERS,
            [area, "错甲", "", "实现了却没有实现日期", "2025-04-01", "已实现", unit, "2025-04-02", "", "", ""],
            [area, "错乙", "", "待认领却有认领单位", "2025-04-01", "待认领", unit, "", "", "", ""],
            [area, "错丙", "", "先认领后提出", "2025-04-05", "已认领", unit, "2025-04-02", "", "", ""],
            [area, "错丁", "", "确认了没有反馈", "2025-04-01", "已确认", unit, "2025-04-02", "2025-04-03",
             "已修好", ""],
            [area, "错戊", "", "认领了没有认领人", "2025-04-01", "已认领", "", "2025-04-02", "", "", ""],
            [area, "错己", "", "驳回的不应有日期", "2025-04-01", "已驳回", "", "", "2025-04-03", "", ""]]
    before = count(ctx, "SELECT count(*) FROM micro_wish")
    page = upload(as_user("shequ01"), "micro_wish", "心愿台账.csv", csv_data(rows))
    assert "未导入任何数据" in page
    found = {row: (column, message) for row, column, message in errors(page)}
    assert found["2"] == ("实现时间", "状态为“已实现”的心愿须填写实现时间")
    assert found["3"][0] == "认领单位" and "尚未到“已认领”" in found["3"][1]
    assert found["4"] == ("认领时间", "认领时间不能早于创建时间")
    assert found["5"] == ("居民反馈", "状态为“已确认”的心愿须填写居民反馈")
    assert found["6"] == ("认领党员", "状态为“已认领”的心愿须填写认领党员或认领单位")
    assert found["7"][0] == "实现时间" and "尚未到“已实现”" in found["7"][1]
    assert count(ctx, "SELECT count(*) FROM micro_wish") == before


def test_a_grid_secretarys_file_with_granted_wishes_is_refused(ctx, as_user):
    grid = ctx.execute(text("SELECT g.name AS grid, c.name AS community FROM ab_user u "
                            "JOIN organization g ON g.id = u.org_id "
                            "JOIN organization c ON c.id = g.parent_id WHERE u.username = 'wangge01'")).one()
    rows = [["社区", "网格", "居民姓名", "心愿内容", "状态", "实现日期"],
            [grid.community, grid.grid, "网格补录", "网格员补录的心愿", "已实现", "2025-03-10"]]
    before = count(ctx, "SELECT count(*) FROM micro_wish")
    browser = as_user("wangge01")
    page = upload(browser, "micro_wish", "心愿台账.csv", csv_data(rows))
    assert "未导入任何数据" in page
    assert "您的角色不能导入已办理过的微心愿" in page
    assert count(ctx, "SELECT count(*) FROM micro_wish") == before
    # Without the past work, its grid's new wishes come in (待审核, for the community to review).
    rows = [row[:4] for row in rows]
    page = upload(browser, "micro_wish", "心愿台账.csv", csv_data(rows))
    assert "导入成功：新增 1 条" in page, errors(page)
    assert count(ctx, "SELECT status FROM micro_wish WHERE content = '网格员补录的心愿'") == "待审核"


def test_a_community_admin_imports_only_its_own_communitys_wishes(ctx, as_user):
    own = names(ctx)["community"]
    other = ctx.execute(text("SELECT name FROM organization WHERE type = 'community' AND name <> :n "
                             "AND deleted_on IS NULL ORDER BY id"), {"n": own}).scalars().first()
    rows = [["社区", "居民姓名", "联系电话", "心愿内容"],
            [other, "外社区居民", "13900008811", "别的社区的心愿"]]
    before = count(ctx, "SELECT count(*) FROM micro_wish")
    browser = as_user("shequ01")
    page = upload(browser, "micro_wish", "心愿.csv", csv_data(rows))
    assert [(r, c) for r, c, _ in errors(page)] == [("2", "所在社区")], errors(page)
    assert count(ctx, "SELECT count(*) FROM micro_wish") == before
    report = browser.get("/micro_wish/import/report").get_data().decode("utf-8-sig")
    [line] = list(csv.reader(io.StringIO(report)))[1:]
    assert line[2] != "13900008811" and line[2].startswith("139"), "the phone is masked in the report"


def test_the_wish_template_and_the_command(app, ctx, as_user, tmp_path):
    response = as_user("shequ01").get("/micro_wish/import/template")
    assert response.status_code == 200
    headers = [c.value for c in load_workbook(io.BytesIO(response.data))["导入模板"][1]]
    assert headers[:5] == ["所在社区", "所在网格", "居民姓名", "居民电话", "心愿内容"]
    assert {"状态", "认领党员", "认领单位", "认领时间", "实现时间", "居民反馈"} <= set(headers)
    path = tmp_path / "心愿.csv"
    path.write_bytes(csv_data([["社区", "居民姓名", "心愿内容", "提出日期"],
                               [names(ctx)["area"], "命令行居民", "命令行导入的心愿", "2025-05-06"]]))
    result = app.test_cli_runner().invoke(args=["import", "micro_wish", str(path), "--as", "shequ01"])
    assert result.exit_code == 0, result.output
    assert "新增 1 条" in result.output
    assert count(ctx, "SELECT status FROM micro_wish WHERE content = '命令行导入的心愿'") == "待审核"
