"""Text cells of the CSV files the panel writes, and the marks it puts on them.

Excel, WPS and LibreOffice read a CSV cell as a number when it looks like one and as a formula
when it starts like one. The exports write such text so that a double-click shows it unchanged
(`neutralise`); the import takes the marks off again (`unmarked`), so an exported file
re-imports as it was. Per kind of text (what the exports' SQL form, app/exports.py, repeats):

- a code of more than ten ASCII digits or with a leading zero (身份证号, all-digit 统一社会信用代码,
  phones, landlines, 组织编码): `="110105198102065123"` — a formula whose value is the text;
- formula-like text (=, +, -, @, tab, carriage return first): the same `="…"`, its quotes doubled
  — a text constant runs nothing, and no apostrophe shows;
- formula-like text longer than Excel's 255-character limit on a text constant, or with a line
  break (which LibreOffice's default options do not evaluate): an apostrophe before it, the
  one case where a mark shows;
- everything else, numbers included, as it is.
"""
from __future__ import annotations

# A text cell starting with one of these is a formula to Excel or WPS (DDE and friends).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Excel's limit on a text constant inside a formula.
FORMULA_TEXT_MAX = 255


def _digits_a_spreadsheet_alters(value: str) -> bool:
    """A code of ASCII digits that a spreadsheet would read as a number and change: a leading
    zero dropped (landlines, 组织编码), more than ten digits shown as 1.10105E+17 and cut to 15
    (身份证号, all-digit 统一社会信用代码, phones)."""
    return value.isascii() and value.isdigit() and (len(value) > 10 or len(value) > 1
                                                    and value[0] == "0")


def neutralise(value):
    """A CSV text cell as the spreadsheets should show it, with no visible mark where one can be
    avoided. A code a spreadsheet would turn into a number, and formula-like text (DDE and
    friends), are written as a formula whose value is that text: `="…"` — Excel, WPS and
    LibreOffice (whose default CSV options evaluate formulas) show the text itself, and a text
    constant runs nothing. Where such a formula is not possible (longer than Excel allows, or
    with a line break, which LibreOffice does not evaluate), formula-like text gets the
    apostrophe instead. Numbers stay numbers; the panel's import removes either mark."""
    if not isinstance(value, str):
        return value
    if _digits_a_spreadsheet_alters(value):
        return f'="{value}"'
    if value.startswith(FORMULA_STARTS):
        if len(value) <= FORMULA_TEXT_MAX and "\n" not in value and "\r" not in value:
            return '="' + value.replace('"', '""') + '"'
        return "'" + value
    return value


def unmarked(text: str) -> str:
    """A CSV cell's text without the mark `neutralise` put on it (files the panel exported,
    edited and brought back)."""
    if len(text) >= 3 and text.startswith('="') and text.endswith('"'):
        inner = text[2:-1]
        # Only what neutralise writes: quotes inside come doubled.
        if '"' not in inner.replace('""', ""):
            return inner.replace('""', '"')
    if len(text) >= 2 and text[0] == "'" and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text
