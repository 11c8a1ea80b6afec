"""Which reader reads an .xlsx (issue 30): python-calamine, ten times faster than openpyxl, reads
the common file into the very rows openpyxl gives; a file it would read otherwise — a formula
(its cached value may be missing), an error cell (calamine: a blank), a stray cell far out (a
dense grid of billions of cells), a cell without its place — is read by openpyxl, as before."""
import io
import zipfile
from datetime import date, datetime, time

import pytest
from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference

from app.office_files import (
    FORMULA_WITHOUT_VALUE,
    Unreadable,
    _openpyxl_sheets,
    _xlsx_sheets,
    read_table,
    xlsx_reader,
)

HEADERS = ["名称", "年度", "数量", "开始日期", "时间", "是否", "电话", "身份证号"]


def score(cells):
    return sum(1 for c in cells if c in HEADERS)


def saved(book) -> bytes:
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def workbook(*extra):
    """A title row, a blank row, the header, rows of every kind of cell a user's file holds."""
    book = Workbook()
    sheet = book.active
    sheet.title = "资源"
    sheet["B1"] = "2026年资源清单"
    sheet.append([])
    sheet.append(HEADERS)
    sheet.append(["会议室", 2026, 2.5, datetime(2026, 1, 5), datetime(2026, 1, 5, 8, 30), True,
                  13900005555, 1.10101199001011E+17])
    sheet.append(["音响", "2026", 0, date(2026, 2, 1), time(9, 15), False, "013900005555",
                  "110101199001011234"])
    sheet.append([])
    sheet.append(["空行之后", -3, 1e20, None, None, None, None, None])
    for cell, value in extra:
        sheet[cell] = value
    notes = book.create_sheet("说明")
    notes.append(["本表由办公室整理"])
    chart = BarChart()
    chart.add_data(Reference(sheet, min_col=3, min_row=3, max_row=5), titles_from_data=True)
    book.create_chartsheet("图表").add_chart(chart)
    return book


def trimmed(sheets):
    """openpyxl widens a row to MAX_COLUMNS; the importer cuts every row to its header."""
    out = []
    for title, rows in sheets:
        kept = []
        for number, cells in rows:
            cells = list(cells)
            while cells and cells[-1] is None:
                cells.pop()
            kept.append((number, cells))
        out.append((title, kept))
    return out


def test_a_common_workbook_is_read_by_calamine_into_openpyxls_rows():
    data = saved(workbook())
    assert xlsx_reader(data) == "calamine"
    sheets = _xlsx_sheets(data)
    assert trimmed(sheets) == trimmed(_openpyxl_sheets(data, has_formulas=False))
    [(title, rows), _notes] = sheets  # the chart sheet is not a worksheet
    assert title == "资源" and [n for n, _ in rows] == [1, 3, 4, 5, 7]
    assert rows[2][1][:4] == ["会议室", 2026, 2.5, datetime(2026, 1, 5)]
    assert type(rows[2][1][1]) is int and type(rows[2][1][6]) is int  # as openpyxl: not 2026.0
    table = read_table("资源.xlsx", data, score)
    assert (table.sheet, table.header_row, table.headers) == ("资源", 3, HEADERS)


def _rewritten(data: bytes, change) -> bytes:
    """The workbook with each part as `change(name, content)` gives it back (name, content)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(*change(item.filename, source.read(item)))
    return out.getvalue()


def _without_places(data: bytes) -> bytes:
    """The workbook with its cells' r attributes taken off (a reader places them in order)."""
    return _rewritten(data, lambda name, content: (name, content.replace(
        b'<c r="A4"', b"<c") if name == "xl/worksheets/sheet1.xml" else content))


@pytest.mark.parametrize("what,book", [
    ("a stray cell at the sheet's far corner", lambda: saved(workbook(("XFD1048576", "角落")))),
    ("a cell past column AZ", lambda: saved(workbook(("BA2", "备注")))),
    ("a cell past row 99,999", lambda: saved(workbook(("A100000", "末行")))),
    ("a formula", lambda: saved(workbook(("C8", "=1+1")))),
    ("an error cell", lambda: saved(workbook(("C8", "#N/A")))),
    ("a cell without its place", lambda: _without_places(saved(workbook()))),
])
def test_files_calamine_would_read_otherwise_are_read_by_openpyxl(what, book):
    data = book()
    assert xlsx_reader(data) == "openpyxl", what
    table = read_table("资源.xlsx", data, score)
    assert table.headers == HEADERS and table.header_row == 3
    assert [row[:2] for _, row in table.rows[:2]] == [["会议室", 2026], ["音响", "2026"]]


def test_an_error_cell_stays_what_openpyxl_reads_not_a_blank():
    table = read_table("资源.xlsx", saved(workbook(("C8", "#N/A"))), score)
    assert table.rows[-1] == (8, [None, None, "#N/A", None, None, None, None, None])


def test_a_formula_without_its_value_is_still_found():
    table = read_table("资源.xlsx", saved(workbook(("C7", "=1+1"))), score)
    assert table.rows[-1][0] == 7 and table.rows[-1][1][2] is FORMULA_WITHOUT_VALUE


def test_a_file_neither_reader_can_read_is_refused_with_openpyxls_message():
    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"<worksheet><sheetData>")
    with pytest.raises(Unreadable, match="无法读取该 Excel 文件"):
        read_table("a.xlsx", broken.getvalue(), score)


def test_a_sheet_kept_outside_xl_worksheets_is_looked_at_too():
    """The workbook's relations name its sheets' parts: a stray cell in a part elsewhere is
    found all the same."""
    def moved(name, content):
        if name == "xl/_rels/workbook.xml.rels":
            content = content.replace(b"worksheets/sheet1.xml", b"elsewhere.xml")
        return "xl/elsewhere.xml" if name == "xl/worksheets/sheet1.xml" else name, content
    assert xlsx_reader(_rewritten(saved(workbook(("XFD1048576", "角落"))), moved)) == "openpyxl"


def test_an_opendocument_spreadsheet_is_not_calamines_to_read():
    ods = io.BytesIO()
    with zipfile.ZipFile(ods, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", "<office:document-content/>")
    assert xlsx_reader(ods.getvalue()) == "openpyxl"
    with pytest.raises(Unreadable, match="xlsx"):
        read_table("a.xlsx", ods.getvalue(), score)
