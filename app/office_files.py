"""Office files as offices keep them: .xlsx, .xls, .csv and .txt read into rows of cells.

A cell keeps what the file stored — text, a number, a date, a flag — so that the importer can
tell a 身份证号 typed as text from one a spreadsheet stored as a number (and rounded). A formula
is its value as last saved by Excel, WPS or LibreOffice (`FORMULA_WITHOUT_VALUE` when the file
keeps none). Which sheet, and which of its first rows is the header, is the caller's choice
(`score`): a title row and blank rows above the header, or the data on the third sheet, are
what offices keep.

Files are refused, with a message that says how to fix them, when they cannot be read: an
unknown encoding, a type that is not a spreadsheet, a zip that would inflate past reason.
"""
from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time

from app.errors import DomainError
from app.spreadsheet import unmarked

HEADER_ROWS = 10  # the header is found among a sheet's first rows
MAX_COLUMNS = 200  # past this a column carries no header of any importer
# An .xlsx is a zip: what it inflates to is bounded, whatever its size on disk (a zip bomb).
MAX_INFLATED = 400 * 1024 * 1024
MAX_RATIO = 200


class Unreadable(DomainError):
    """The file cannot be read as a table."""


class _NoValue:
    def __repr__(self):
        return "FORMULA_WITHOUT_VALUE"

    def __str__(self):
        return ""


FORMULA_WITHOUT_VALUE = _NoValue()


@dataclass
class Table:
    sheet: str  # "" for text files
    header_row: int  # the header's row number in the file (1-based)
    headers: list[str]
    rows: list[tuple[int, list]]  # (row number in the file, cells)
    sheets: list[str] = field(default_factory=list)  # the workbook's sheets, to choose from


def read_table(filename: str, data: bytes, score, sheet: str | None = None) -> Table:
    """The best-matching sheet's header and data rows — or those of `sheet`, the one the user
    chose on the page. `score(cells)` rates a row as a header (how many known columns it
    names); the sheet whose best header row scores highest wins, and its first row with that
    score (within HEADER_ROWS) is the header."""
    name = (filename or "").lower()
    if data[:2] == b"PK" or name.endswith((".xlsx", ".xlsm")):
        sheets = _xlsx_sheets(data)
    elif data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" or name.endswith(".xls"):
        sheets = _xls_sheets(data)
    elif name.endswith((".csv", ".txt", ".tsv")):
        sheets = [("", [(n, r) for n, r in enumerate(
            _text_rows(data, tabbed=name.endswith((".txt", ".tsv"))), start=1)
            if any(_filled(c) for c in r)])]
    else:
        raise Unreadable("只能导入 .xlsx、.xls、.csv 或 .txt 文件")
    names = [name for name, _ in sheets if name]
    if sheet and sheet not in names:
        raise Unreadable(f"文件中没有名为“{sheet}”的工作表")
    best = None
    for title, rows in sheets:  # rows: (row number, cells), blank rows left out
        if sheet and title != sheet:
            continue
        scored = [(score(_texts(cells)), -i) for i, (_, cells) in enumerate(rows[:HEADER_ROWS])]
        if not scored:
            continue
        top, at = max(scored)
        if best is None or top > best[0]:
            best = (top, title, -at, rows)
    if best is None:
        raise Unreadable(f"工作表“{sheet}”中没有数据" if sheet else "文件中没有数据")
    _, sheet, at, rows = best
    number, cells = rows[at]
    headers = _texts(cells)
    while headers and not headers[-1]:  # a sheet widened by a stray cell: no padded columns
        headers.pop()
    return Table(sheet, number, headers, [(n, r[:len(headers)]) for n, r in rows[at + 1:]],
                 names)


def _filled(cell) -> bool:
    return cell is not None and (not isinstance(cell, str) or cell.strip() != "")


def _texts(row) -> list[str]:
    return [text_of(c).strip() for c in row]


def text_of(value) -> str:
    """A cell as the text a user would read in it (for headers and the error report)."""
    if value is None or value is FORMULA_WITHOUT_VALUE:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


# --- .xlsx -------------------------------------------------------------------------------------

def _check_zip(data: bytes) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise Unreadable("无法读取该 Excel 文件，请确认是 .xlsx 格式（可在 Excel/WPS 中另存为 .xlsx）") from None
    inflated = sum(m.file_size for m in members)
    if inflated > MAX_INFLATED or inflated > MAX_RATIO * max(len(data), 1) + 10 * 1024 * 1024:
        raise Unreadable("该 Excel 文件解压后过大（可能已损坏或不是办公软件保存的文件），请在 Excel/WPS 中重新保存或拆分后导入")
    return archive


def _looked_at(data: bytes) -> tuple[str, bool]:
    """Which reader reads this .xlsx — "calamine", or "openpyxl" for a file that holds formulas
    or that calamine would not read as openpyxl does (`_dense_reads`) — and whether its sheets
    hold formulas, from one read of its parts. Every XML part is looked at, wherever the
    workbook's relations put its sheets; a zip that is no .xlsx (calamine would read an .ods or
    an .xlsb too) is openpyxl's to refuse."""
    archive = _check_zip(data)
    names = archive.namelist()
    if "xl/workbook.xml" not in names:
        return "openpyxl", False
    parts = {m: archive.read(m) for m in names if m.endswith(".xml")}
    formulas = any(_holds_formula(xml) for m, xml in parts.items()
                   if m.startswith("xl/worksheets/"))
    dense = all(_dense_reads(xml) for xml in parts.values())
    return ("calamine" if dense and not formulas else "openpyxl"), formulas


def xlsx_reader(data: bytes) -> str:
    """Which reader reads this .xlsx (`_looked_at`)."""
    return _looked_at(data)[0]


def _xlsx_sheets(data: bytes):
    reader, has_formulas = _looked_at(data)
    if reader == "calamine":
        sheets = _calamine_sheets(data)
        if sheets is not None:
            return sheets
    # A formula's cached value is what the importer reads; a formula saved without one (files
    # written by scripts) is found by a second, formula-keeping read — only of files that hold
    # formulas at all, so the common file is parsed once.
    return _openpyxl_sheets(data, has_formulas)


# python-calamine (Rust) reads an .xlsx ten times faster than openpyxl — but into a dense grid of
# each sheet's used range, blank cells included, formulas without a cached value and error cells
# (#N/A) as blanks. So it reads only a file it reads as openpyxl would (`_dense_reads`): no
# formula, no error cell, and a used range the grid holds — no cell past column AZ or row 99,999
# (a stray cell at XFD1048576 would be a grid of 17 billion cells), each cell naming its place
# (a cell without one is placed by calamine, unchecked). Any other file takes openpyxl's path,
# which skips blank rows and columns past MAX_COLUMNS unread.
# A cell that is not one of "A1" to "AZ99999" by its r attribute, or has none (one pass).
_UNCHECKED_CELL = re.compile(rb'<c(?:>|/>| (?!r="A?[A-Z][0-9]{1,5}"))')


def _dense_reads(xml: bytes) -> bool:
    if b't="e"' in xml or b":sheetData" in xml:  # an error cell; a prefixed (x:c) sheet
        return False
    return _UNCHECKED_CELL.search(xml) is None


def _calamine_sheets(data: bytes):
    """Each worksheet's non-blank rows, numbered as in the file, its cells as openpyxl gives
    them: None for a blank, a whole number as an int (calamine gives every number as a float).
    None when calamine cannot read the file: openpyxl's path then says what is wrong with it."""
    from python_calamine import CalamineWorkbook, SheetTypeEnum

    try:
        with CalamineWorkbook.from_filelike(io.BytesIO(data)) as book:
            grids = [(meta.name, book.get_sheet_by_name(meta.name).to_python(skip_empty_area=False))
                     for meta in book.sheets_metadata if meta.typ == SheetTypeEnum.WorkSheet]
    except Exception:  # noqa: BLE001 — a reader's errors on a file it cannot read are anything
        return None
    sheets = []
    for title, grid in grids:
        rows = []
        for number, cells in enumerate(grid, start=1):
            cells = [c if type(c) is str and c else _calamine_cell(c) for c in cells[:MAX_COLUMNS]]
            if cells.count(None) < len(cells):
                rows.append((number, cells))
        sheets.append((title, rows))
    return sheets


def _calamine_cell(value):
    if value == "":
        return None
    if type(value) is float and value.is_integer() and abs(value) < 1e15:
        return int(value)  # as openpyxl reads "2026" (Excel writes a whole number without ".0")
    if type(value) is date:
        return datetime.combine(value, time())  # openpyxl's date cells are date-times
    return value


def _openpyxl_sheets(data: bytes, has_formulas: bool):
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        formulas = load_workbook(io.BytesIO(data), read_only=True, data_only=False) \
            if has_formulas else None
    except Exception:  # noqa: BLE001 — openpyxl and xlrd raise anything on a broken file
        raise Unreadable("无法读取该 Excel 文件，请确认是 .xlsx 格式（可在 Excel/WPS 中另存为 .xlsx）") from None
    sheets = []
    try:
        for sheet in book.worksheets:  # chart sheets are not worksheets
            # openpyxl widens each row to the sheet's last column and yields every missing row:
            # a stray cell at XFD1048576 would be a million rows of 16,384 cells. Columns past
            # MAX_COLUMNS are not read, blank rows are skipped unread.
            rows = [(n, list(r)) for n, r in enumerate(
                sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True), start=1)
                if r.count(None) < len(r)]
            if formulas is not None:
                _mark_formulas_without_value(formulas[sheet.title], rows)
            sheets.append((sheet.title, rows))
    except Unreadable:
        raise
    except Exception:  # noqa: BLE001 — openpyxl and xlrd raise anything on a broken file
        raise Unreadable("无法读取该 Excel 文件中的工作表，请在 Excel/WPS 中重新保存后导入") from None
    finally:
        book.close()
        if formulas is not None:
            formulas.close()
    return sheets


def _holds_formula(xml: bytes) -> bool:
    return b"</f>" in xml or b"<f " in xml or b"<f>" in xml


def _mark_formulas_without_value(sheet, rows) -> None:
    kept = {n: r for n, r in enumerate(
        sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True), start=1) if r.count(None) < len(r)}
    for number, cached in rows:
        written = kept.get(number, ())
        for i, value in enumerate(written):
            if isinstance(value, str) and value.startswith("=") and i < len(cached) and \
                    cached[i] is None:
                cached[i] = FORMULA_WITHOUT_VALUE


# --- .xls --------------------------------------------------------------------------------------

def _xls_sheets(data: bytes):
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True)
    except Exception:  # noqa: BLE001 — openpyxl and xlrd raise anything on a broken file
        raise Unreadable("无法读取该 .xls 文件，请在 Excel/WPS 中另存为 .xlsx 后导入") from None
    sheets = []
    try:
        for index in range(book.nsheets):
            sheet = book.sheet_by_index(index)
            rows = []
            for r in range(sheet.nrows):
                cells = [_xls_cell(book, sheet.cell(r, c)) for c in range(min(sheet.ncols, MAX_COLUMNS))]
                if any(_filled(c) for c in cells):
                    rows.append((r + 1, cells))
            sheets.append((sheet.name, rows))
    except Exception:  # noqa: BLE001 — openpyxl and xlrd raise anything on a broken file
        raise Unreadable("无法读取该 .xls 文件，请在 Excel/WPS 中另存为 .xlsx 后导入") from None
    finally:
        book.release_resources()
    return sheets


def _xls_cell(book, cell):
    import xlrd

    if cell.ctype == xlrd.XL_CELL_DATE:
        try:
            return xlrd.xldate_as_datetime(cell.value, book.datemode)
        except (xlrd.xldate.XLDateError, ValueError, OverflowError):
            return cell.value
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return bool(cell.value)
    if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK, xlrd.XL_CELL_ERROR):
        return None
    return cell.value


# --- .csv and .txt -----------------------------------------------------------------------------

ENCODINGS_TO_SAVE_AS = "UTF-8、GB18030（GBK）或 Excel 的“Unicode 文本”（UTF-16）"


def decode(data: bytes) -> str:
    """UTF-8 with or without BOM, UTF-16 (Excel's "Unicode 文本"), GB18030 (which covers GBK)."""
    if data[:3] == b"\xef\xbb\xbf":
        candidates = ("utf-8-sig",)
    elif data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        candidates = ("utf-16",)
    elif len(data) >= 4 and data[1:4:2] == b"\x00\x00":  # UTF-16 without its BOM: ASCII's zeros
        candidates = ("utf-16-le",)
    elif len(data) >= 4 and data[0:4:2] == b"\x00\x00":
        candidates = ("utf-16-be",)
    else:
        candidates = ("utf-8", "gb18030")
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text or _controls(text):
            continue
        return text
    raise Unreadable(f"无法识别文件编码，请另存为 {ENCODINGS_TO_SAVE_AS} 后导入")


def _controls(text: str) -> bool:
    """Binary read as text: control characters other than line breaks and tabs."""
    sample = text[:4096]
    return sum(1 for c in sample if ord(c) < 32 and c not in "\r\n\t") > max(3, len(sample) // 100)


def _text_rows(data: bytes, tabbed: bool) -> list[list[str]]:
    text = decode(data)
    first = text.split("\n", 1)[0]
    # Excel's "Unicode 文本" and .txt files are tab-separated; a CSV may be too.
    delimiter = "\t" if first.count("\t") > first.count(",") or (tabbed and "\t" in first) else ","
    try:
        # The marks the panel's own CSV exports put on codes and formula-like text come off.
        return [[unmarked(cell) for cell in row]
                for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]
    except csv.Error:
        raise Unreadable("CSV 文件格式有误，无法读取（请在 Excel/WPS 中另存为 CSV 后导入）") from None
