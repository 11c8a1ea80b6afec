"""Exports that survive the office suites (issue 28): the default CSV, opened by LibreOffice with
the options its import dialog proposes, keeps every 身份证号, credit code and phone exactly — text
cells equal to the code, no apostrophe, no tab — formula-like text stays inert text, and the file
comes back through the panel's import unchanged."""
import csv
import io
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from app.spreadsheet import neutralise, unmarked
from app.validators import credit_code_check_char
from tests.test_data_io import body_of, upload

pytestmark = pytest.mark.db

SOFFICE = shutil.which("soffice")
# The dialog's proposal for a UTF-8 file with a BOM: comma, double quote, UTF-8, from line 1;
# every other option at LibreOffice's default (formulas evaluated, quoted fields not forced
# to text).
DOUBLE_CLICK = "Text - txt - csv (StarCalc):44,34,76,1"


def opened_by_libreoffice(data: bytes, tmp_path: Path) -> list[tuple]:
    """The cells LibreOffice makes of a CSV: converted to .xlsx headless (a profile of its own),
    read back with the values it computed."""
    if SOFFICE is None:
        pytest.skip("LibreOffice (soffice) is not installed: apt-get install libreoffice-calc-nogui")
    source = tmp_path / "export.csv"
    source.write_bytes(data)
    profile = tempfile.mkdtemp(prefix="gongjian-lo-")
    try:
        subprocess.run([SOFFICE, f"-env:UserInstallation=file://{profile}", "--headless",
                        f"--infilter={DOUBLE_CLICK}", "--convert-to", "xlsx", "--outdir",
                        str(tmp_path), str(source)], check=True, capture_output=True, timeout=300)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    sheet = load_workbook(tmp_path / "export.xlsx", data_only=True).active
    return list(sheet.iter_rows(values_only=True))


def exported(browser, url) -> tuple[bytes, list[list[str]]]:
    response = browser.get(url)
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"  # one charset
    data = body_of(response)
    return data, list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


@pytest.mark.parametrize("value, written", [
    ("110105198102065123", '="110105198102065123"'),   # 身份证号: 18 digits
    ("11010519810206512X", "11010519810206512X"),      # already text to a spreadsheet
    ("01087654321", '="01087654321"'),                 # a landline's leading zero
    ("13812345678", '="13812345678"'),                 # a mobile: more than ten digits
    ("2026", "2026"),                                  # a number stays a number
    ("=HYPERLINK(\"http://x\",\"点我\")", '="=HYPERLINK(""http://x"",""点我"")"'),
    ("-5", '="-5"'),
    ("第一行\n=SUM(1)", "第一行\n=SUM(1)"),
    ("=SUM(1)\n第二行", "'=SUM(1)\n第二行"),           # a line break: LibreOffice would not evaluate
    ("=" + "x" * 300, "'=" + "x" * 300),               # past Excel's text-constant limit
])
def test_each_kind_of_text_is_written_so_and_read_back(value, written):
    assert neutralise(value) == written
    assert unmarked(written) == value


def test_libreoffice_reads_codes_and_formula_like_text_as_the_panel_holds_them(tmp_path):
    values = ["110105198102065123", "911101087109202201", "01087654321", "13812345678",
              "=cmd|' /C calc'!A0", "+86 138 0000 0000", "@SUM(1)", "-", "普通文字"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)
    writer.writerow(["值"])
    writer.writerows([neutralise(v)] for v in values)
    cells = [row[0] for row in opened_by_libreoffice(
        ("\ufeff" + buffer.getvalue()).encode("utf-8"), tmp_path)[1:]]
    assert cells == values  # text, exactly: no float, no apostrophe, no tab


def test_members_and_units_csv_open_in_libreoffice_with_every_code_exact(ctx, as_user, tmp_path):
    browser = as_user("zuzhibu")
    data, rows = exported(browser, "/member/export/csv")
    header = rows[0]
    columns = [i for i, h in enumerate(header) if h in ("身份证号", "联系电话", "手机号")]
    assert columns, header
    (tmp_path / "members").mkdir()
    cells = opened_by_libreoffice(data, tmp_path / "members")
    assert len(cells) == len(rows)
    codes = 0
    for row, opened in zip(rows[1:], cells[1:]):
        for i in columns:
            assert opened[i] == (unmarked(row[i]) or None), (header[i], row[i], opened[i])
            codes += bool(re.fullmatch(r"\d{11,}", unmarked(row[i])))
    assert codes > 100, "the export carries all-digit codes in full (组织部 sees them unmasked)"

    # One unit's credit code all digits (valid: its check character happens to be a digit).
    body = next(b for b in (f"9111010871092{n:04d}" for n in range(100))
                if credit_code_check_char(b).isdigit())
    unit, code = ctx.execute(text("SELECT id, credit_code FROM unit WHERE deleted_on IS NULL "
                                  "ORDER BY id")).first()
    with ctx.session() as session:
        session.execute(text("UPDATE unit SET credit_code = :c WHERE id = :u"),
                        {"c": body + credit_code_check_char(body), "u": unit})
        session.commit()
    try:
        data, rows = exported(browser, "/unit/export/csv")
    finally:
        with ctx.session() as session:
            session.execute(text("UPDATE unit SET credit_code = :c WHERE id = :u"),
                            {"c": code, "u": unit})
            session.commit()
    column = rows[0].index("统一社会信用代码")
    (tmp_path / "units").mkdir()
    opened = [r[column] for r in opened_by_libreoffice(data, tmp_path / "units")[1:]]
    assert opened == [unmarked(r[column]) or None for r in rows[1:]]
    assert body + credit_code_check_char(body) in opened


def test_the_members_csv_reimports_with_no_change(ctx, as_user):
    browser = as_user("zuzhibu")
    data, rows = exported(browser, "/member/export/csv")
    page = upload(browser, "member", "党员.csv", data, dry_run=True).get_data(as_text=True)
    assert f"预览：将新增 0 条，更新 0 条，无变化 {len(rows) - 1} 条" in page, re.sub(
        r"<[^>]+>", " ", page)[:3000]


def test_excel_exports_write_dates_as_date_cells(ctx, as_user):
    browser = as_user("zuzhibu")
    sheet = load_workbook(io.BytesIO(body_of(browser.get("/service_record/export/xlsx")))).active
    header = [c.value for c in sheet[1]]
    served, created = header.index("服务日期") + 1, header.index("创建时间") + 1
    rows = list(sheet.iter_rows(min_row=2))
    assert rows
    for row in rows:
        assert row[served - 1].is_date and row[created - 1].is_date
    first = ctx.execute(text("SELECT min(served_on) FROM service_record WHERE deleted_on IS NULL")
                        ).scalar()
    assert min(r[served - 1].value for r in rows).date().isoformat() == str(first)[:10]


def test_a_control_character_is_left_out_of_an_excel_cell():
    """A worksheet cannot hold control characters (openpyxl refuses the cell and the whole file
    failed): the cell keeps the rest, tabs and line breaks included."""
    from app.exports import excel_value

    assert excel_value("编码\x01A\x1fB") == "编码AB"
    assert excel_value("第一行\n第二行\t完") == "第一行\n第二行\t完"
