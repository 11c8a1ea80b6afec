"""Office files as offices keep them (issue 19), on every database: workbooks written by
LibreOffice (IDs stored as numbers, or as text), a GB18030 CSV, Excel's "Unicode 文本" (UTF-16,
tab-separated), an .xls; headers in the offices' own words, a 序号 column and a title row;
dictionary values by alias; the same files imported again change nothing.

LibreOffice converts the sources once per session (`soffice --headless --convert-to`, a
profile of its own per call). Without soffice the tests that need it are skipped outside CI;
.ci/run installs it and sets OFFICE_FILES_REQUIRED, so there they must run.
"""
from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from sqlalchemy import text

from app.validators import credit_code_check_char, id_number_check_char
from tests.conftest import tables_kept_by

pytestmark = pytest.mark.db

SOFFICE = shutil.which("soffice")
PREVIEWED = re.compile(r"预览：将新增 (\d+) 条，更新 (\d+) 条，无变化 (\d+) 条")


@pytest.fixture(scope="module", autouse=True)
def _kept(app):
    with tables_kept_by(app):
        yield


def id_number(n: int) -> str:
    body = f"330106198503{n % 28 + 1:02d}{n:03d}"
    return body + id_number_check_char(body)


def credit_code(n: int) -> str:
    body = f"91330106MA2LQ{n:04d}"
    return body + credit_code_check_char(body)


def names(ctx) -> dict[str, str]:
    row = ctx.execute(text(
        "SELECT o.name AS community, u.name AS unit FROM ab_user a JOIN ab_user b "
        "ON b.username = 'danwei01' JOIN organization o ON o.id = a.org_id "
        "JOIN unit u ON u.id = b.unit_id WHERE a.username = 'shequ01'")).one()
    area = re.sub(r"(党委|党总支|党支部)$", "", row.community)
    assert area != row.community, "the demo's communities are named by their Party organisation"
    return {"community": row.community, "area": area, "unit": row.unit}


def member_rows(area: str) -> list[list[str]]:
    return [[f"{area}党员花名册（2026年）"],
            ["序号", "姓名", "身份证号码", "性别", "手机", "社区", "党员类别", "是否党员中心户"],
            ["1", "办公甲", id_number(1), "男性", "13900000001", area, "在职党员", "√"],
            ["2", "办公乙", id_number(2), "女", "13900000002", area, "退休", "×"],
            ["3", "办公丙", id_number(3), "女性", "13900000003", area, "流动党员", ""]]


def csv_data(rows, encoding="utf-8", delimiter=",") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode(encoding)


def write_csv(path: Path, rows) -> Path:
    path.write_bytes(csv_data(rows))
    return path


def libreoffice(sources: list[Path], target: str, infilter: str, outdir: Path) -> None:
    """One soffice call for several files, with a profile of its own (LibreOffice refuses to
    share one between processes, and is slow to start: one call per kind of conversion)."""
    profile = tempfile.mkdtemp(prefix="gongjian-lo-")
    try:
        subprocess.run([SOFFICE, f"-env:UserInstallation=file://{profile}", "--headless",
                        f"--infilter={infilter}", "--convert-to", target, "--outdir",
                        str(outdir), *map(str, sources)],
                       check=True, capture_output=True, timeout=300)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def office(app, tmp_path_factory) -> dict[str, Path]:
    """The files as LibreOffice saves them, converted once."""
    if SOFFICE is None:
        if os.environ.get("OFFICE_FILES_REQUIRED"):
            pytest.fail("soffice is missing, and CI requires the LibreOffice tests to run")
        pytest.skip("LibreOffice (soffice) is not installed: apt-get install libreoffice-calc-nogui")
    source, out = tmp_path_factory.mktemp("office-src"), tmp_path_factory.mktemp("office")
    from tests.conftest import Db

    n = names(Db(app))
    numbers = write_csv(source / "members-numbers.csv", member_rows(n["area"]))
    write_csv(source / "members-text.csv", member_rows(n["area"]))
    formula = write_csv(source / "resources-formula.csv", [
        ["提供单位", "年度", "资源类别", "资源名称"],
        [n["unit"], "=2000+26", "设备", "公式年度的投影仪"]])
    needs = write_csv(source / "needs.csv", [
        ["序号", "社区", "类别", "标题", "内容", "紧急程度", "来源", "提出人", "电话"],
        ["1", n["area"], "助老", "办公独居老人助餐", "每日午餐", "普通", "群众", "李大爷", "13900001111"],
        ["2", n["area"], "法律", "办公法律咨询", "租房纠纷", "紧急", "网格", "王阿姨", "13900002222"]])
    # CSV import filter: comma, double quote, UTF-8 (76), from line 1; the text variant sets
    # column 3 (身份证号码) to 文本 (format 2), as an office that formatted its column does.
    libreoffice([numbers, formula], "xlsx", "CSV:44,34,76,1", out)
    libreoffice([source / "members-text.csv"], "xlsx", "CSV:44,34,76,1,3/2", out)
    libreoffice([needs], "xls", "CSV:44,34,76,1", out)
    files = {p.stem + p.suffix: p for p in out.iterdir()}
    assert {"members-numbers.xlsx", "members-text.xlsx", "resources-formula.xlsx",
            "needs.xls"} <= set(files), sorted(files)
    return files


def upload(browser, resource, name, data, dry_run=False) -> str:
    form = {"file": (io.BytesIO(data), name)}
    if dry_run:
        form["dry_run"] = "1"
    return browser.post(f"/{resource}/import/", form, form_url=f"/{resource}/import/",
                        content_type="multipart/form-data").get_data(as_text=True)


def errors(page: str) -> list[tuple[str, str, str]]:
    return re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", page)


def count(ctx, sql, **params):
    return ctx.execute(text(sql), params).scalar()


def test_ids_libreoffice_stored_as_numbers_name_the_cause_and_nothing_is_written(ctx, as_user, office):
    before = count(ctx, "SELECT count(*) FROM member")
    page = upload(as_user("shequ01"), "member", "党员.xlsx", office["members-numbers.xlsx"].read_bytes())
    assert "未导入任何数据" in page
    found = errors(page)
    assert [(row, column) for row, column, _ in found] == [("3", "身份证号"), ("4", "身份证号"), ("5", "身份证号")]
    for _, _, message in found:
        assert "按数字保存，已丢失末尾几位" in message and "文本" in message
        assert "校验位" not in message, "the cause, not its symptom"
    assert count(ctx, "SELECT count(*) FROM member") == before


def test_ids_kept_as_text_import_whole_and_again_change_nothing(ctx, as_user, office):
    browser = as_user("shequ01")
    data = office["members-text.xlsx"].read_bytes()
    page = upload(browser, "member", "党员.xlsx", data)
    assert "导入成功：新增 3 条，更新 0 条，无变化 0 条" in page, errors(page)
    assert "未导入的列：序号" in page
    rows = ctx.execute(text("SELECT name, gender, category, is_household_center, phone FROM member "
                            "WHERE name LIKE '办公%' ORDER BY name")).all()
    assert [tuple(r) for r in rows] == [
        ("办公丙", "女", "流动", False, "13900000003"), ("办公乙", "女", "退休", False, "13900000002"),
        ("办公甲", "男", "在职", True, "13900000001")]
    members = count(ctx, "SELECT count(*) FROM member")
    assert PREVIEWED.search(upload(browser, "member", "党员.xlsx", data, dry_run=True)).groups() == ("0", "0", "3")
    page = upload(browser, "member", "党员.xlsx", data)
    assert "导入成功：新增 0 条，更新 0 条，无变化 3 条" in page
    assert count(ctx, "SELECT count(*) FROM member") == members


def test_a_formula_imports_the_value_libreoffice_saved(ctx, as_user, office):
    page = upload(as_user("danwei01"), "resource", "资源.xlsx", office["resources-formula.xlsx"].read_bytes())
    assert "导入成功：新增 1 条" in page, errors(page)
    assert count(ctx, "SELECT year FROM resource WHERE title = '公式年度的投影仪'") == 2026


def test_a_formula_saved_without_its_value_is_a_row_error(ctx, as_user):
    n = names(ctx)
    book = Workbook()
    book.active.append(["提供单位", "年度", "资源类别", "资源名称"])
    book.active.append([n["unit"], "=2000+26", "设备", "脚本写的公式"])
    buffer = io.BytesIO()
    book.save(buffer)
    page = upload(as_user("danwei01"), "resource", "资源.xlsx", buffer.getvalue())
    assert ("2", "年度") in [(r, c) for r, c, _ in errors(page)]
    assert "公式没有保存计算结果" in page


def test_an_xls_of_needs_with_the_offices_words(ctx, as_user, office):
    browser = as_user("shequ01")
    data = office["needs.xls"].read_bytes()
    page = upload(browser, "need", "需求.xls", data)
    assert "导入成功：新增 2 条，更新 0 条" in page, errors(page)
    rows = ctx.execute(text(
        "SELECT n.title, d.label, n.urgency, n.source, o.name FROM need n "
        "JOIN dictionary d ON d.id = n.category_id JOIN organization o ON o.id = n.community_id "
        "WHERE n.title LIKE '办公%' ORDER BY n.title")).all()
    community = names(ctx)["community"]
    assert [tuple(r) for r in rows] == [
        ("办公法律咨询", "法律服务", "重大", "网格员", community),
        ("办公独居老人助餐", "助老扶幼", "一般", "居民", community)]
    assert PREVIEWED.search(upload(browser, "need", "需求.xls", data, dry_run=True)).groups() == ("0", "0", "2")


def unit_rows(area, category="机关"):
    return [[f"{area}驻区单位名单"], [],
            ["序号", "单位名称", "信用代码", "单位类型", "社区", "一把手", "职务", "联系人", "电话", "党员数"],
            ["1", "办公测试局", credit_code(1), category, area, "赵局长", "局长", "钱联络", "0571-88886666", "1,200"],
            ["2", "办公测试公司", credit_code(2), "国企", f"{area}党委", "孙总", "总经理", "李联络", "13900003333", "35"]]


def test_a_gb18030_csv_with_a_title_row_and_synonyms(ctx, as_user):
    browser = as_user("shequ01")
    data = csv_data(unit_rows(names(ctx)["area"]), "gb18030")
    page = upload(browser, "unit", "单位.csv", data)
    assert "导入成功：新增 2 条" in page, errors(page)
    rows = ctx.execute(text(
        "SELECT u.name, d.label, u.leader_name, u.leader_title, u.liaison_name, u.contact_phone, "
        "u.party_member_count FROM unit u JOIN dictionary d ON d.id = u.category_id "
        "WHERE u.name LIKE '办公测试%' ORDER BY u.credit_code")).all()
    assert [tuple(r) for r in rows] == [
        ("办公测试局", "党政机关", "赵局长", "局长", "钱联络", "0571-88886666", 1200),
        ("办公测试公司", "国有企业", "孙总", "总经理", "李联络", "13900003333", 35)]
    page = upload(browser, "unit", "单位.csv", data, dry_run=True)
    assert PREVIEWED.search(page).groups() == ("0", "0", "2")


def test_a_utf16_tab_file_as_excel_saves_unicode_text(ctx, as_user):
    n = names(ctx)
    rows = [["提供单位", "年份", "资源类型", "名称", "数量", "单位", "开始日期", "电话"],
            [n["unit"], "2026年", "场所", "办公会议室", "1,200", "平方米", "2026年3月1日", "0571 88886666"],
            [n["unit"], "2026", "人力", "办公志愿者", "１２", "人", "2026/3/1", "13900004444"]]
    data = csv_data(rows, "utf-16", "\t")  # with its BOM, little-endian: Excel's own
    browser = as_user("danwei01")
    page = upload(browser, "resource", "资源.txt", data)
    assert "导入成功：新增 2 条" in page, errors(page)
    found = ctx.execute(text("SELECT r.title, d.label, r.quantity, r.measure, r.available_from, r.phone "
                             "FROM resource r JOIN dictionary d ON d.id = r.category_id "
                             "WHERE r.title LIKE '办公%' ORDER BY r.title")).all()
    assert [(r.title, r.label, float(r.quantity), r.measure, str(r.available_from)[:10], r.phone)
            for r in found] == [("办公会议室", "场地", 1200.0, "平方米", "2026-03-01", "057188886666"),
                                ("办公志愿者", "人员", 12.0, "人", "2026-03-01", "13900004444")]
    page = upload(browser, "resource", "资源.txt", data, dry_run=True)
    assert PREVIEWED.search(page).groups() == ("0", "0", "2")


def community_files(area) -> dict[str, tuple[str, bytes]]:
    """One community's four files as its office keeps them: units (GB18030, title row, 序号),
    members (Excel's "Unicode 文本"), resources of those units and needs (UTF-8 with BOM), in
    the office's words."""
    units = [[f"{area}驻区单位台账"], ["序号", "单位名称", "统一社会信用代码", "单位类型", "社区",
                                   "主要负责人", "联系人", "联系电话"],
             ["1", "四表测试医院", credit_code(21), "事业", area, "周院长", "吴联络", "13900007001"],
             ["2", "四表测试银行", credit_code(22), "国企", area, "郑行长", "王联络", "13900007002"]]
    members = [["序号", "姓名", "公民身份号码", "性别", "手机号", "社区", "党员类别"],
               ["1", "四表甲", id_number(21), "男", "13900007011", area, "在职"],
               ["2", "四表乙", id_number(22), "女", "13900007012", area, "退休党员"]]
    resources = [["序号", "单位名称", "年度", "资源类型", "资源名称", "数量"],
                 ["1", "四表测试医院", "2026年", "场地", "四表义诊室", "1"],
                 ["2", "四表测试银行", "2026", "人力", "四表金融志愿者", "8"]]
    needs = [["序号", "社区", "类别", "标题", "电话", "提出日期", "紧急程度"],
             ["1", area, "医疗", "四表义诊需求", "13900007021", "2026/3/2", "普通"],
             ["2", area, "就业", "四表就业咨询", "13900007022", "2026年3月3日", "一般"]]
    return {"unit": ("单位.csv", csv_data(units, "gb18030")),
            "member": ("党员.txt", csv_data(members, "utf-16", "\t")),
            "resource": ("资源.csv", csv_data(resources, "utf-8-sig")),
            "need": ("需求.csv", csv_data(needs, "utf-8-sig"))}


def test_a_communitys_four_files_imported_twice_change_no_counts(ctx, as_user):
    """Units, members, resources and needs imported by the community's office, then the same
    files again: nothing added, every row found unchanged, the tables' counts as before; a
    corrected cell in a file imported again updates its row only."""
    browser = as_user("shequ01")
    files = community_files(names(ctx)["area"])
    for resource, (name, data) in files.items():  # in order: the units before their resources
        page = upload(browser, resource, name, data)
        assert "导入成功：新增 2 条，更新 0 条，无变化 0 条" in page, (resource, errors(page))
    counts = {r: count(ctx, f"SELECT count(*) FROM {r}") for r in files}
    for resource, (name, data) in files.items():
        page = upload(browser, resource, name, data)
        assert "导入成功：新增 0 条，更新 0 条，无变化 2 条" in page, (resource, errors(page))
    assert {r: count(ctx, f"SELECT count(*) FROM {r}") for r in files} == counts
    # The office corrects a phone in its unit file and brings it in again: an update.
    name, data = files["unit"]
    corrected = data.decode("gb18030").replace("13900007002", "13900007003").encode("gb18030")
    page = upload(browser, "unit", name, corrected)
    assert "导入成功：新增 0 条，更新 1 条，无变化 1 条" in page, errors(page)
    assert count(ctx, "SELECT contact_phone FROM unit WHERE name = '四表测试银行'") == "13900007003"
    assert {r: count(ctx, f"SELECT count(*) FROM {r}") for r in files} == counts


def test_an_ambiguous_or_unknown_dictionary_value_lists_the_accepted_ones(ctx, as_user):
    area = names(ctx)["area"]
    rows = unit_rows(area, category="企业")
    rows[4][3] = "外星单位"
    page = upload(as_user("shequ01"), "unit", "单位.csv", csv_data(rows, "utf-8-sig"))
    found = {(r, c): m for r, c, m in errors(page)}
    assert "不明确，可能是：国有企业、非公企业" in found[("4", "单位类别")]
    assert "无法识别" in found[("5", "单位类别")] and "党政机关" in found[("5", "单位类别")]


def test_a_near_miss_of_a_community_suggests_it(ctx, as_user):
    n = names(ctx)
    rows = [["社区", "类别", "标题"], [n["community"] + "会", "助老", "近似名称的需求"]]
    page = upload(as_user("shequ01"), "need", "需求.csv", csv_data(rows))
    assert f"您是不是要找：{n['community']}" in page


def test_two_headers_for_one_field_are_named(ctx, as_user):
    data = "单位名称,信用代码,单位类别,社区,电话,手机\n甲,1,2,3,4,5\n".encode()
    page = upload(as_user("shequ01"), "unit", "单位.csv", data)
    assert "列“电话”和“手机”都对应“联系电话”" in page


def test_the_same_natural_key_twice_names_the_earlier_row(ctx, as_user):
    n = names(ctx)
    rows = [["提供单位", "年度", "资源类别", "资源名称"],
            [n["unit"], "2026", "场地", "重复的会议室"], [n["unit"], "2026", "场地", "重复的会议室"]]
    page = upload(as_user("danwei01"), "resource", "资源.csv", csv_data(rows))
    assert ("3", "提供单位", "与文件中第 2 行重复（提供单位、年度、资源名称相同）") in errors(page)


def test_a_text_longer_than_its_column_is_a_row_error_new_or_updated(ctx, as_user):
    """PostgreSQL and MariaDB refuse a text longer than its VARCHAR: the import's flush failed
    whole (a 500) — the hostile file tests found it updating a resource's 单位 (16)."""
    n = names(ctx)
    browser = as_user("danwei01")
    headers = ["提供单位", "年度", "资源类别", "资源名称", "单位"]
    page = upload(browser, "resource", "资源.csv", csv_data(
        [headers, [n["unit"], "2026", "设备", "长度之内的投影仪", "台"]]))
    assert "导入成功：新增 1 条" in page, errors(page)
    before = count(ctx, "SELECT count(*) FROM resource")
    page = upload(browser, "resource", "资源.csv", csv_data([
        headers, [n["unit"], "2026", "设备", "长度之内的投影仪", "台" * 17],
        [n["unit"], "2026", "设备", "名" * 101, "台"]]))
    assert ("2", "单位", "“单位”最多 16 个字（本格 17 个字）") in errors(page)
    assert ("3", "资源名称", "“资源名称”最多 100 个字（本格 101 个字）") in errors(page)
    assert count(ctx, "SELECT count(*) FROM resource") == before
    assert count(ctx, "SELECT measure FROM resource WHERE title = '长度之内的投影仪'") == "台"


def test_data_on_the_third_sheet_with_a_chart_on_the_first(ctx, as_user):
    n = names(ctx)
    book = Workbook()
    notes = book.active
    notes.title = "说明"
    notes.append(["本表由办公室整理"])
    data = book.create_sheet("资源")
    data.append(["序号", "提供单位", "年度", "资源类别", "资源名称", "数量"])
    data.append([1, n["unit"], 2026, "设备", "第三张表的音响", 2])
    chart = BarChart()
    chart.add_data(Reference(data, min_col=6, min_row=1, max_row=2), titles_from_data=True)
    book.create_chartsheet("图表", 0).add_chart(chart)
    book.move_sheet("资源", offset=1)
    buffer = io.BytesIO()
    book.save(buffer)
    page = upload(as_user("danwei01"), "resource", "资源.xlsx", buffer.getvalue())
    assert "导入成功：新增 1 条" in page, errors(page)
    assert "工作表“资源”" in page


def test_merged_title_and_header_cells(ctx, as_user):
    n = names(ctx)
    book = Workbook()
    sheet = book.active
    sheet.append(["2026年资源清单"])
    sheet.merge_cells("A1:F1")
    sheet.append(["提供单位", "年度", "资源类别", "资源名称", "联系方式", None])
    sheet.merge_cells("E2:F2")
    sheet.append([n["unit"], 2026, "设备", "合并表头的话筒", "13900005555", "备用"])
    buffer = io.BytesIO()
    book.save(buffer)
    page = upload(as_user("danwei01"), "resource", "资源.xlsx", buffer.getvalue())
    assert "导入成功：新增 1 条" in page, errors(page)
    assert count(ctx, "SELECT phone FROM resource WHERE title = '合并表头的话筒'") == "13900005555"


def test_files_past_the_limits_or_unreadable_are_refused_clearly(app, ctx, as_user):
    browser = as_user("danwei01")
    n = names(ctx)
    before = count(ctx, "SELECT count(*) FROM resource")
    rows = "提供单位,年度,资源类别,资源名称\n" + f"{n['unit']},2026,场地,行\n" * 50_001
    assert "一次最多导入 50000 行（本文件 50001 行）" in upload(browser, "resource", "a.csv", rows.encode())
    big = b"a" * (30 * 1024 * 1024)
    assert "文件超过 20 MB" in upload(browser, "resource", "a.csv", big)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (60 * 1024 * 1024))
    assert "解压后过大" in upload(browser, "resource", "bomb.xlsx", bomb.getvalue())
    utf32 = "提供单位,年度\n甲,2026\n".encode("utf-32")
    page = upload(browser, "resource", "a.csv", utf32)
    assert "无法识别文件编码" in page and "GB18030" in page and "UTF-16" in page
    assert count(ctx, "SELECT count(*) FROM resource") == before


# --- past work: needs recorded after the fact, with their status and dates ---------------------

PAST_HEADERS = ["社区", "类别", "标题", "电话", "提出时间", "状态", "受理时间", "派单时间", "办结时间",
                "办理结果", "满意度"]


def past_needs(area):
    # The first raised in February and closed in March: it counts in March's 办结.
    return [PAST_HEADERS,
            [area, "助老", "补录的助餐需求", "13900006661", "2025-02-20", "已办结", "2025-02-21",
             "2025-02-24", "2025-03-10", "已安排志愿者送餐", ""],
            [area, "环境", "补录的清理需求", "13900006662", "2025/3/5", "已回访", "2025/3/5",
             "2025/3/6", "2025年3月8日", "楼道已清理", "5"]]


def month_of(as_user, month) -> dict:
    from tests.test_dashboard_figures import figure

    [row] = figure(as_user, "shequ01", "needs_per_month", period=month)
    return {key: int(row[key]) for key in ("raised", "closed")}


def closed_card(app, as_user, month) -> tuple[int, set[int]]:
    """The dashboard's 本期办结 card for the month: its number and the rows its link lists."""
    from tests.test_dashboard_drilldown import links_on, listed_ids

    browser = as_user("shequ01")
    page = browser.get(f"/dashboard/?period={month}").get_data(as_text=True)
    [(url, count)] = [(url, n) for url, n, what in links_on(page) if what == "card 本期办结"]
    return count, listed_ids(browser, app, url)


def test_closed_needs_recorded_after_the_fact_count_in_their_month_of_closing(app, ctx, as_user):
    from datetime import datetime

    from app import clock

    browser = as_user("shequ01")
    february, march = month_of(as_user, "2025-02"), month_of(as_user, "2025-03")
    data = csv_data(past_needs(names(ctx)["area"]))
    page = upload(browser, "need", "台账.csv", data)
    assert "导入成功：新增 2 条" in page, errors(page)
    rows = ctx.execute(text("SELECT id, title, status, satisfaction, completed_on FROM need "
                            "WHERE title LIKE '补录的%' ORDER BY title")).all()
    with app.app_context():  # stored in UTC, the day as the office wrote it where it is
        days = [str(clock.to_local(r.completed_on if not isinstance(r.completed_on, str) else
                                   datetime.fromisoformat(r.completed_on)).date()) for r in rows]
    assert [(r.title, r.status, r.satisfaction, day) for r, day in zip(rows, days)] == [
        ("补录的助餐需求", "已办结", None, "2025-03-10"), ("补录的清理需求", "已回访", 5, "2025-03-08")]
    # Raised in February and in March, both closed in March: the dashboard's March counts both.
    assert month_of(as_user, "2025-02") == {"raised": february["raised"] + 1, "closed": february["closed"]}
    assert month_of(as_user, "2025-03") == {"raised": march["raised"] + 1, "closed": march["closed"] + 2}
    count, listed = closed_card(app, as_user, "2025-03")
    assert count == march["closed"] + 2 and {r.id for r in rows} <= listed and len(listed) == count
    assert not {r.id for r in rows} & closed_card(app, as_user, "2025-02")[1]
    from tests.test_dashboard_figures import figure

    [mean] = figure(as_user, "shequ01", "need_mean_time_to_close", period="2025-03")
    assert float(mean["hours"]) > 0, "raised to closed, from the dates the office wrote"
    audit = ctx.execute(text("SELECT changes FROM audit_log WHERE action = 'import' AND resource = 'need' "
                             "ORDER BY id DESC")).scalar()
    assert '"created": 2' in audit
    assert PREVIEWED.search(upload(browser, "need", "台账.csv", data, dry_run=True)).groups() == ("0", "0", "2")


def test_a_status_the_dates_could_not_reach_is_a_row_error(ctx, as_user):
    area = names(ctx)["area"]
    rows = [PAST_HEADERS,
            [area, "助老", "缺办结时间", "13900006671", "2025-04-01", "已办结", "2025-04-02", "2025-04-03", "", "", ""],
            [area, "助老", "待受理却已办结", "13900006672", "2025-04-01", "待受理", "", "", "2025-04-05", "", ""],
            [area, "助老", "先办结后受理", "13900006673", "2025-04-01", "已办结", "2025-04-09", "2025-04-10",
             "2025-04-05", "", ""],
            [area, "助老", "回访没有满意度", "13900006674", "2025-04-01", "已回访", "2025-04-02", "2025-04-03",
             "2025-04-05", "", ""]]
    before = count(ctx, "SELECT count(*) FROM need")
    page = upload(as_user("shequ01"), "need", "台账.csv", csv_data(rows))
    found = {row: (column, message) for row, column, message in errors(page)}
    assert found["2"] == ("办结时间", "状态为“已办结”的需求须填写办结时间")
    assert found["3"][0] == "办结时间" and "尚未到“已办结”" in found["3"][1]
    assert found["4"] == ("办结时间", "办结时间不能早于派单时间")
    assert found["5"] == ("满意度", "状态为“已回访”的需求须填写满意度")
    assert count(ctx, "SELECT count(*) FROM need") == before


def test_a_liaisons_file_with_past_work_is_refused(ctx, as_user):
    n = names(ctx)
    rows = [["社区", "类别", "标题", "状态", "办结时间"],
            [n["area"], "助老", "联络员补录的需求", "已办结", "2025-03-10"]]
    before = count(ctx, "SELECT count(*) FROM need")
    page = upload(as_user("danwei01"), "need", "台账.csv", csv_data(rows))
    assert "未导入任何数据" in page
    assert "您的角色不能导入已办理过的需求清单" in page
    assert count(ctx, "SELECT count(*) FROM need") == before


def test_an_import_does_not_move_an_existing_needs_status(ctx, as_user):
    area = names(ctx)["area"]
    browser = as_user("shequ01")
    rows = [["社区", "类别", "标题", "电话"], [area, "助老", "状态不由导入改变", "13900006681"]]
    assert "导入成功：新增 1 条" in upload(browser, "need", "a.csv", csv_data(rows))
    rows = [["社区", "类别", "标题", "电话", "状态", "受理时间"],
            [area, "助老", "状态不由导入改变", "13900006681", "已受理", "2025-03-03"]]
    page = upload(browser, "need", "a.csv", csv_data(rows))
    assert "状态只能在办理流程中变更" in page
    assert count(ctx, "SELECT status FROM need WHERE title = '状态不由导入改变'") == "待受理"


def test_the_error_report_corrected_imports_as_it_is(ctx, as_user):
    n = names(ctx)
    browser = as_user("danwei01")
    rows = [["序号", "提供单位", "年度", "资源类别", "资源名称", "数量", "电话"],
            ["1", n["unit"], "2026", "场地", "报告更正甲", "2", "13900007771"],
            ["2", n["unit"], "2026", "场地", "报告更正乙", "两个", "13900007772"]]
    page = upload(browser, "resource", "资源.csv", csv_data(rows))
    assert ("3", "数量") in [(r, c) for r, c, _ in errors(page)]
    report = list(csv.reader(io.StringIO(browser.get("/resource/import/report").get_data().decode("utf-8-sig"))))
    assert report[0] == [*rows[0], "错误"], "the file's own columns, then 错误 — no padding"
    assert len(report) == 2 and report[1][-1].startswith("第 3 行：")
    assert report[1][6] != "13900007772", "the phone is masked in the report"
    report[1][5] = "2"  # the correction
    page = upload(browser, "resource", "更正.csv", csv_data(report))
    assert errors(page) == [("2", "联系电话", "“联系电话”是隐去了部分数字的号码（如错误报告中的），请填写完整号码")]
    report[1][6] = "13900007772"
    page = upload(browser, "resource", "更正.csv", csv_data(report))
    assert "导入成功：新增 1 条" in page and "未导入的列：序号、错误" in page


# --- a need's re-import key: its 编号, else community + phone + title + 提出日期 ----------------

def test_needs_with_the_offices_numbers_update_by_them(ctx, as_user):
    """A ledger with 编号: a second upload updates the need its number names (a changed title
    included), never adds one; the same number twice in a file names the earlier row."""
    area = names(ctx)["area"]
    browser = as_user("shequ01")
    headers = ["编号", "社区", "类别", "标题", "电话", "提出时间"]
    rows = [headers, ["XQ-2025-017", area, "助老", "编号需求甲", "13900006691", "2025-05-06"],
            ["XQ-2025-018", area, "助老", "编号需求乙", "13900006691", "2025-05-06"]]
    assert "导入成功：新增 2 条" in upload(browser, "need", "台账.csv", csv_data(rows))
    rows[1][3], rows[2][4] = "编号需求甲（改）", "13900006692"
    assert PREVIEWED.search(upload(browser, "need", "台账.csv", csv_data(rows), dry_run=True)
                            ).groups() == ("0", "2", "0")
    page = upload(browser, "need", "台账.csv", csv_data(rows))
    assert "更新 2 条" in page, errors(page)
    assert ctx.execute(text("SELECT code, title, requester_phone FROM need WHERE code LIKE 'XQ-2025-01%' "
                            "ORDER BY code")).all() == [
        ("XQ-2025-017", "编号需求甲（改）", "13900006691"), ("XQ-2025-018", "编号需求乙", "13900006692")]
    twice = upload(browser, "need", "台账.csv", csv_data([headers, rows[1], rows[1]]))
    assert errors(twice) == [("3", "编号", "与文件中第 2 行重复（编号、所在社区相同）")]


def test_needs_without_numbers_update_by_who_asked_what_and_when(ctx, as_user):
    """Without 编号: the same community, phone and title on the same 提出日期 is the same need
    (unchanged on a second upload); on another day, another need."""
    area = names(ctx)["area"]
    browser = as_user("shequ01")
    headers = ["社区", "类别", "标题", "电话", "提出时间"]
    first = [headers, [area, "助老", "每月一次的助浴", "13900006693", "2025-06-02"]]
    assert "导入成功：新增 1 条" in upload(browser, "need", "台账.csv", csv_data(first))
    assert PREVIEWED.search(upload(browser, "need", "台账.csv", csv_data(first), dry_run=True)
                            ).groups() == ("0", "0", "1")
    again = [headers, [area, "助老", "每月一次的助浴", "13900006693", "2025/7/1"]]
    assert "导入成功：新增 1 条" in upload(browser, "need", "台账.csv", csv_data(again))
    assert count(ctx, "SELECT count(*) FROM need WHERE title = '每月一次的助浴'") == 2


# --- the preview maps each unknown value once, remembered per user and column ----------------

def post_mapping(browser, resource, choices, dry_run=False) -> str:
    form = {"kept": "1", **{f"map:{column}:{word}": value for (column, word), value in choices.items()}}
    if dry_run:
        form["dry_run"] = "1"
    return browser.post(f"/{resource}/import/", form, form_url=f"/{resource}/import/").get_data(as_text=True)


def test_unknown_values_are_mapped_once_for_the_file_and_remembered(ctx, as_user):
    """护老 (no entry, alias or prefix of one) and 特急 on two rows each: the preview lists each
    value once with the entries it may be mapped to; mapped there, the kept file imports whole,
    and the user's next file with those words needs no mapping — another user's still does.
    A community admin, who may not edit the dictionary, is offered no new entry."""
    area = names(ctx)["area"]
    rows = [["社区", "类别", "标题", "电话", "紧急程度"],
            [area, "护老", "映射需求甲", "13900006701", "特急"],
            [area, "护老", "映射需求乙", "13900006702", "特急"]]
    browser = as_user("shequ01")
    before = count(ctx, "SELECT count(*) FROM need")
    page = upload(browser, "need", "台账.csv", csv_data(rows))
    assert "未导入任何数据" in page
    assert page.count('name="map:category:护老"') == 1 and page.count('name="map:urgency:特急"') == 1
    assert "新增字典条目" not in page
    elderly = count(ctx, "SELECT id FROM dictionary WHERE kind = 'need_category' AND code = 'elderly'")
    refused = post_mapping(browser, "need", {("category", "护老"): "__new__"})
    assert "您不能在数据字典中新增条目" in refused
    assert count(ctx, "SELECT count(*) FROM dictionary WHERE label = '护老'") == 0
    done = post_mapping(browser, "need", {("category", "护老"): str(elderly), ("urgency", "特急"): "重大"})
    assert "导入成功：新增 2 条" in done, errors(done)
    assert count(ctx, "SELECT count(*) FROM need") == before + 2
    assert ctx.execute(text("SELECT DISTINCT category_id, urgency FROM need WHERE title LIKE '映射需求%'")
                       ).all() == [(elderly, "重大")]
    later = [rows[0], [area, "护老", "映射需求丙", "13900006703", "特急"]]
    assert "导入成功：新增 1 条" in upload(browser, "need", "台账.csv", csv_data(later))
    other = upload(as_user("jiedao01"), "need", "台账.csv", csv_data(
        [rows[0], [area, "护老", "映射需求丁", "13900006704", "一般"]]))
    assert 'name="map:category:护老"' in other and "新增字典条目" not in other


def test_a_dictionary_editor_adds_an_entry_from_the_preview(ctx, as_user):
    """组织部 may edit the dictionary: the preview offers the unknown value as a new entry, which
    is added (audited) and used for the file."""
    area = names(ctx)["area"]
    rows = [["社区", "类别", "标题", "电话"], [area, "垃圾分类", "新类别的需求", "13900006711"]]
    browser = as_user("zuzhibu")
    # Records from now on: SQLite may give the entry the id of a row another module erased.
    before = count(ctx, "SELECT coalesce(max(id), 0) FROM audit_log")
    page = upload(browser, "need", "台账.csv", csv_data(rows))
    assert "新增字典条目“垃圾分类”" in page
    done = post_mapping(browser, "need", {("category", "垃圾分类"): "__new__"})
    assert "导入成功：新增 1 条" in done, errors(done)
    entry = count(ctx, "SELECT id FROM dictionary WHERE kind = 'need_category' AND label = '垃圾分类'")
    assert entry and count(ctx, "SELECT category_id FROM need WHERE title = '新类别的需求'") == entry
    assert count(ctx, "SELECT count(*) FROM audit_log WHERE action = 'create' AND resource = 'dictionary' "
                      "AND record_id = :pk AND id > :before", pk=str(entry), before=before) == 1


def test_the_sheet_is_chosen_on_the_page(ctx, as_user):
    """Two sheets of resources: the best-matching one is read, the preview offers the others,
    and the kept file is read again from the sheet the user chose."""
    n = names(ctx)
    book = Workbook()
    first = book.active
    first.title = "今年"
    first.append(["提供单位", "年度", "资源类别", "资源名称", "数量", "单位"])
    first.append([n["unit"], 2026, "设备", "选表的投影仪", 1, "台"])
    second = book.create_sheet("去年")
    second.append(["提供单位", "年度", "资源类别", "资源名称"])
    second.append([n["unit"], 2025, "设备", "选表的旧音响"])
    buffer = io.BytesIO()
    book.save(buffer)
    browser = as_user("danwei01")
    page = upload(browser, "resource", "资源.xlsx", buffer.getvalue(), dry_run=True)
    assert "工作表“今年”" in page and '<option value="去年">去年</option>' in page
    done = browser.post("/resource/import/", {"kept": "1", "sheet": "去年"},
                        form_url="/resource/import/").get_data(as_text=True)
    assert "导入成功：新增 1 条" in done and "工作表“去年”" in done, errors(done)
    assert count(ctx, "SELECT count(*) FROM resource WHERE title = '选表的旧音响'") == 1
    assert count(ctx, "SELECT count(*) FROM resource WHERE title = '选表的投影仪'") == 0
