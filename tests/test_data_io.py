"""Data in and out (issue 6): exports are exactly the rows the user may list, filtered and
ordered as on the page, safe to open in Excel; imports are validated completely and written
all at once or not at all."""
import csv
import io
import itertools
import re

import pandas as pd
import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import text

from app import crypto
from app.validators import id_number_check_char

pytestmark = pytest.mark.db


def unit_of(ctx, username):
    return ctx.execute(text("SELECT unit_id FROM ab_user WHERE username=:u"), {"u": username}).scalar()


def body_of(response) -> bytes:
    """Read a streamed download and close it, as a browser does (which ends its request)."""
    body = response.get_data()
    response.close()
    return body


def csv_rows(response):
    body = body_of(response)
    assert body.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM, so Excel opens Chinese intact"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_export_is_exactly_the_listed_rows(ctx, as_user):
    browser = as_user("shequ01")
    community = ctx.execute(text("SELECT org_id FROM ab_user WHERE username='shequ01'")).scalar()
    expected = ctx.execute(text(
        "SELECT count(*) FROM need WHERE deleted_on IS NULL AND community_id=:c AND status='已派单'"),
        {"c": community}).scalar()
    response = browser.get("/need/export/csv?_flt_3_status=已派单")
    assert response.status_code == 200
    rows = csv_rows(response)
    assert rows[0][:3] == ["需求标题", "来源渠道", "提出人"]
    status_col = rows[0].index("状态")
    assert len(rows) - 1 == expected > 0
    assert {r[status_col] for r in rows[1:]} == {"已派单"}


def test_export_respects_scope_and_masks(ctx, as_user):
    unit = unit_of(ctx, "danwei01")
    want = ctx.execute(text("SELECT count(*) FROM member WHERE deleted_on IS NULL AND work_unit_id=:u"),
                       {"u": unit}).scalar()
    liaison = csv_rows(as_user("danwei01").get("/member/export/csv"))
    assert len(liaison) - 1 == want
    auditor = as_user("shenji").get("/member/export/csv")
    frame = pd.read_csv(io.BytesIO(body_of(auditor)), encoding="utf-8-sig", dtype=str)
    everyone = ctx.execute(text("SELECT count(*) FROM member WHERE deleted_on IS NULL")).scalar()
    assert len(frame) == everyone
    assert frame["身份证号"].str.contains(r"\*{8}").all(), "the auditor's export is masked"
    assert as_user("dangyuan01").get("/member/export/csv").status_code == 403


def test_export_is_audited(ctx, as_user):
    before = ctx.execute(text("SELECT count(*) FROM audit_log WHERE action='export'")).scalar()
    body_of(as_user("shenji").get("/unit/export/xlsx"))
    row = ctx.execute(text("SELECT resource, username, changes FROM audit_log WHERE action='export' "
                           "ORDER BY id DESC")).first()
    assert ctx.execute(text("SELECT count(*) FROM audit_log WHERE action='export'")).scalar() == before + 1
    assert row.resource == "unit" and row.username == "shenji" and '"rows": ' in row.changes


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_formula_injection_is_neutralised(ctx, api, as_user, prefix):
    client, headers = api("zuzhibu")
    unit = unit_of(ctx, "danwei01")
    category = ctx.execute(text("SELECT id FROM dictionary WHERE kind='resource_category'")).scalar()
    title = f"{prefix}cmd|' /C calc'!A0 注入{ord(prefix)}"
    created = client.post("/api/v1/resource/", headers=headers, json={
        "unit": unit, "year": 2026, "category": category, "title": title, "quantity": -5})
    assert created.status_code == 201, created.json
    browser = as_user("zuzhibu")
    rows = csv_rows(browser.get(f"/resource/export/csv?_flt_2_title=注入{ord(prefix)}"))
    title_col, qty_col = rows[0].index("资源名称"), rows[0].index("数量")
    # A text constant `="…"` (shown without a mark); with a line break, which LibreOffice would
    # not evaluate there, the apostrophe (app/spreadsheet.py)
    assert rows[1][title_col] == ("'" + title if prefix == "\r" else '="' + title.replace(
        '"', '""') + '"')
    assert rows[1][qty_col] == "-5.0" or rows[1][qty_col] == "-5"
    book = load_workbook(io.BytesIO(body_of(browser.get(
        f"/resource/export/xlsx?_flt_2_title=注入{ord(prefix)}"))))
    sheet = book.active
    header = [c.value for c in sheet[1]]
    cell = sheet.cell(row=2, column=header.index("资源名称") + 1)
    # (a carriage return reads back as itself or, where the XML reader normalises line ends, as
    # a line feed — the same cell, as text; which one depends on the process, not the export)
    assert cell.data_type == "s" and cell.value in (title, title.replace("\r", "\n"))
    assert sheet.cell(row=2, column=header.index("数量") + 1).data_type == "n"


def id_number(n):
    body = f"110105198001{n % 28 + 1:02d}{n % 1000:03d}"
    return body + id_number_check_char(body)


def fresh_id_numbers(app, ctx, count):
    """身份证号 no member holds: another module may leave a member whose number is one of ours
    (a whole run once imported 999 new and updated 1)."""
    taken = set(ctx.execute(text("SELECT id_number_hash FROM member")).scalars())
    with app.app_context():  # the hash's key is the app's
        fresh = (number for number in map(id_number, itertools.count(1))
                 if crypto.keyed_hash(number) not in taken)
        return list(itertools.islice(fresh, count))


def member_file(ctx, numbers, bad_row=None):
    # By its code: another module may leave a community of the same name (a name then asks
    # for the code, "对应多条记录").
    community = ctx.execute(text("SELECT code FROM organization WHERE type='community' ORDER BY id")).scalar()
    table = [["姓名", "身份证号", "居住社区", "党员类别", "状态"]]
    for n, number in enumerate(numbers):
        if n == bad_row:  # the check character made wrong
            number = number[:-1] + ("0" if number[-1] != "0" else "1")
        table.append([f"导入党员{n}", number, community, "退休", "正常"])
    return table


def xlsx(table):
    book = Workbook()
    for row in table:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def upload(browser, resource, name, data, dry_run=False):
    form = {"file": (io.BytesIO(data), name)}
    if dry_run:
        form["dry_run"] = "1"
    return browser.post(f"/{resource}/import/", form, form_url=f"/{resource}/import/",
                        content_type="multipart/form-data")


def test_one_bad_row_among_a_thousand_writes_nothing_and_the_fixed_file_imports(app, ctx, as_user):
    before = ctx.execute(text("SELECT count(*) FROM member")).scalar()
    browser = as_user("zuzhibu")
    numbers = fresh_id_numbers(app, ctx, 1000)
    page = upload(browser, "member", "党员.xlsx", xlsx(member_file(ctx, numbers, bad_row=499)))
    html = page.get_data(as_text=True)
    assert "未导入任何数据" in html
    assert re.search(r"<td>501</td><td>身份证号</td><td>[^<]*校验位", html), "row 501, column 身份证号"
    assert ctx.execute(text("SELECT count(*) FROM member")).scalar() == before
    report = body_of(browser.get("/member/import/report")).decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(report)))
    # Only the row in error, by its number (issue 17: a report keeps what is to be fixed).
    assert lines[0][-1] == "错误" and len(lines) == 2
    assert lines[0][:-1] == ["姓名", "身份证号", "居住社区", "党员类别", "状态"], "the file's own columns"
    assert lines[1][-1].startswith("第 501 行：") and "校验位" in lines[1][-1]
    page = upload(browser, "member", "党员.xlsx", xlsx(member_file(ctx, numbers)))
    html = page.get_data(as_text=True)
    assert "导入成功：新增 1000 条" in html, re.findall(r'class="alert[^"]*"[^>]*>(.*?)</div>', html, re.DOTALL)[:3] \
        or re.findall(r"<td>\d+</td><td>[^<]*</td><td>[^<]*</td>", html)[:5]
    assert ctx.execute(text("SELECT count(*) FROM member")).scalar() == before + 1000
    audit = ctx.execute(text("SELECT changes FROM audit_log WHERE action='import' AND resource='member' "
                             "ORDER BY id DESC")).scalar()
    assert '"created": 1000' in audit
    # the same file again matches by 身份证号 instead of duplicating: nothing to change
    page = upload(browser, "member", "党员.xlsx", xlsx(member_file(ctx, numbers)), dry_run=True)
    assert "将新增 0 条，更新 0 条，无变化 1000 条" in page.get_data(as_text=True)


def csv_bytes(table, encoding):
    buffer = io.StringIO()
    csv.writer(buffer).writerows(table)
    return buffer.getvalue().encode(encoding)


def test_gb18030_and_utf8_bom_import_identically(ctx, as_user):
    unit = ctx.execute(text("SELECT name FROM unit WHERE id=:u"), {"u": unit_of(ctx, "danwei01")}).scalar()
    category = "场地"
    browser = as_user("danwei01")
    results = []
    for encoding, tag in (("utf-8-sig", "甲"), ("gb18030", "乙")):
        table = [["提供单位", "年度", "资源类别", "资源名称", "资源内容"],
                 [unit, "2026", category, f"编码测试{tag}活动室", "周末开放，可容纳“三十”人"]]
        page = upload(browser, "resource", "资源.csv", csv_bytes(table, encoding))
        assert "导入成功：新增 1 条" in page.get_data(as_text=True), encoding
        results.append(ctx.execute(text("SELECT content, status, unit_id FROM resource WHERE title=:t"),
                                   {"t": f"编码测试{tag}活动室"}).one())
    assert results[0] == results[1]
    assert results[0].content == "周末开放，可容纳“三十”人" and results[0].status == "草稿"


def test_a_liaisons_file_with_another_units_row_is_refused(ctx, as_user):
    own = ctx.execute(text("SELECT name FROM unit WHERE id=:u"), {"u": unit_of(ctx, "danwei01")}).scalar()
    other = ctx.execute(text("SELECT name FROM unit WHERE id=:u"), {"u": unit_of(ctx, "danwei02")}).scalar()
    before = ctx.execute(text("SELECT count(*) FROM resource")).scalar()
    table = [["提供单位", "年度", "资源类别", "资源名称"],
             [own, "2026", "场地", "本单位会议室"], [other, "2026", "场地", "别的单位会议室"]]
    page = upload(as_user("danwei01"), "resource", "资源.xlsx", xlsx(table)).get_data(as_text=True)
    assert "未导入任何数据" in page
    assert re.search(r"<td>3</td><td>提供单位</td>", page), "row 3 names a unit outside the liaison's choices"
    assert ctx.execute(text("SELECT count(*) FROM resource")).scalar() == before


def test_a_related_record_outside_scope_is_refused_at_the_write_check_with_its_row(ctx, as_user,
                                                                                   monkeypatch):
    """A new row names its related records by their columns (app/imports.py `foreign_keys`):
    the scope's write check still judges each row — should a record outside the liaison's
    scope ever be resolved (here the lookup is made to offer another unit), its row is refused
    by number and the file writes nothing; the file's other rows hold the unit they named."""
    from app import imports

    own, other = unit_of(ctx, "danwei01"), unit_of(ctx, "danwei02")
    own_name = ctx.execute(text("SELECT name FROM unit WHERE id=:u"), {"u": own}).scalar()
    found = imports._Lookups.find

    def offering_another_unit(self, col, text_):
        if text_ == "别的单位":
            from app.models.org import Unit
            from app.security.scope import unscoped

            with unscoped():
                return imports.db.session.get(Unit, other)
        return found(self, col, text_)
    monkeypatch.setattr(imports._Lookups, "find", offering_another_unit)
    before = ctx.execute(text("SELECT count(*) FROM resource")).scalar()
    table = [["提供单位", "年度", "资源类别", "资源名称"],
             [own_name, "2026", "场地", "范围检查本单位会议室"],
             ["别的单位", "2026", "场地", "范围检查别的单位会议室"]]
    page = upload(as_user("danwei01"), "resource", "资源.xlsx", xlsx(table)).get_data(as_text=True)
    assert "未导入任何数据" in page
    assert re.search(r"<td>3</td><td></td><td>该资源清单超出您的数据范围，不能保存</td>", page), \
        "row 3, refused by the write check"
    assert not re.search(r"<td>2</td>", page), "row 2 is right"
    assert ctx.execute(text("SELECT count(*) FROM resource")).scalar() == before
    page = upload(as_user("danwei01"), "resource", "资源.xlsx", xlsx(table[:2])).get_data(as_text=True)
    assert "导入成功：新增 1 条" in page
    assert ctx.execute(text("SELECT unit_id FROM resource WHERE title='范围检查本单位会议室'")).scalar() == own


def test_template_has_chinese_headers_dropdowns_text_codes_and_a_skipped_example(as_user):
    browser = as_user("danwei01")
    body = body_of(browser.get("/need/import/template"))
    book = load_workbook(io.BytesIO(body))
    sheet, options = book["导入模板"], book["选项"]
    headers = [c.value for c in sheet[1]]
    assert headers[:3] == ["所在社区", "所在网格", "需求类别"]
    listed = {}
    for rule in sheet.data_validations.dataValidation:
        column = str(rule.sqref).split(":")[0].rstrip("0123456789")
        ref = rule.formula1.split("!")[1].replace("$", "")
        values = [c.value for row in options[ref] for c in row]
        listed[headers[ord(column) - ord("A")]] = values
    assert listed["紧急程度"] == ["一般", "重大", "复杂"]
    assert "助老扶幼" in listed["需求类别"], "a dictionary column offers its entries"
    phone = headers.index("联系电话") + 1
    assert sheet.cell(row=2, column=phone).number_format == "@"
    assert sheet.cell(row=50, column=phone).number_format == "@", "typed numbers stay text"
    # The template as downloaded, example row and all, has no data to import.
    page = upload(browser, "need", "模板.xlsx", body).get_data(as_text=True)
    assert "文件中没有数据" in page


def test_files_it_cannot_read_are_refused_clearly(as_user):
    browser = as_user("zuzhibu")
    assert "只能导入 .xlsx、.xls、.csv 或 .txt" in upload(browser, "unit", "a.pdf", b"%PDF-1.4").get_data(as_text=True)
    assert "文件是空的" in upload(browser, "unit", "a.csv", b"").get_data(as_text=True)
    assert "缺少必填列" in upload(browser, "unit", "a.csv", "单位名称\n甲".encode()).get_data(as_text=True)
    assert "找不到可识别的列名" in upload(browser, "unit", "a.csv", "名字\n甲".encode()).get_data(as_text=True)
