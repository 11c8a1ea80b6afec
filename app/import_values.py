"""Cells as offices fill them, turned into the values a column holds — or a message saying
what is wrong with the cell and how to fix it (a ValueError the importer puts on the row).

Codes (身份证号, 统一社会信用代码) and phones are text that spreadsheets like to store as
numbers: a number of up to 15 significant digits is exact and is taken back as text; past that
the spreadsheet rounded it and its last digits are lost, which the message says (the cause a
"校验位错误" would hide). Dates come in every form offices write; a day/month order that cannot
be told is an error, never a guess.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from app.import_words import choice_words, fold

CODE_COLUMNS = ("id_number", "credit_code")  # codes of digits a spreadsheet may round
EXACT_DIGITS = 15  # what a spreadsheet's number (a double, shown to 15 digits) keeps exactly
EXCEL_EPOCH = date(1899, 12, 30)  # serial 1 is 1900-01-01 (Excel's 1900 leap-year bug included)

_SCIENTIFIC = re.compile(r"^[+-]?\d+(\.\d+)?[eE][+-]?\d+$")
_TEXT_AS_NUMBER_FIX = "请将该列设置为“文本”格式后重新录入（或在号码前加英文单引号 '）"


def is_code(name: str) -> bool:
    return name in CODE_COLUMNS


def is_phone(name: str) -> bool:
    return name.endswith("phone")


def plain(value) -> str:
    """A text cell cleaned of what typing adds: NFKC (full-width digits and letters), stray
    spaces at the ends."""
    return unicodedata.normalize("NFKC", str(value)).strip()


def _digits_of_number(value) -> str | None:
    """The digits of a number a spreadsheet stored (a numeric cell, or text such as
    "1.10105E+17" a CSV got from one); None when the cell is ordinary text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    elif isinstance(value, str) and ("e" in value or "E" in value) and _SCIENTIFIC.match(plain(value)):
        number = Decimal(plain(value))
    else:
        return None
    if number != number.to_integral_value() or number < 0:
        return None
    return str(int(number))


def code_text(header: str, name: str, value) -> str:
    """A 身份证号, credit code or phone as text, refusing one a spreadsheet rounded."""
    digits = _digits_of_number(value)
    if digits is None:
        text = "".join(plain(value).split())
        if "*" in text:  # copied from a masked list, export or error report
            raise ValueError(f"“{header}”是隐去了部分数字的号码（如错误报告中的），请填写完整号码")
        return text
    if isinstance(value, str) or len(digits.rstrip("0") or "0") > EXACT_DIGITS or \
            (is_code(name) and len(digits) > EXACT_DIGITS):
        raise ValueError(f"“{header}”被表格软件按数字保存，已丢失末尾几位（显示为 {plain(value) if isinstance(value, str) else digits}）；"
                         + _TEXT_AS_NUMBER_FIX)
    if is_phone(name) and not (len(digits) == 11 and digits.startswith("1")) and 9 <= len(digits) <= 11:
        # A landline with its area code (010…, 0571…) stored as a number lost its leading 0.
        raise ValueError(f"“{header}”被表格软件按数字保存，开头的 0（区号）已丢失（显示为 {digits}）；"
                         + _TEXT_AS_NUMBER_FIX)
    return digits


def number_of(header: str, value, whole: bool):
    """A number from a numeric cell or text with thousands separators, full-width digits, a
    trailing 年 (a year column) or spaces."""
    wanted = "整数" if whole else "数字"
    if isinstance(value, bool):
        raise ValueError(f"“{header}”应为{wanted}")  # noqa: TRY004 — a cell of the wrong kind: the row's message
    if isinstance(value, (int, float)):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    else:
        try:
            number = Decimal(value)  # the common cell, as typed: no cleaning needed
        except InvalidOperation:
            text = "".join(plain(value).split()).replace(",", "").rstrip("年")
            try:
                number = Decimal(text)
            except InvalidOperation:
                raise ValueError(f"“{header}”应为{wanted}") from None
    if not number.is_finite():
        raise ValueError(f"“{header}”应为{wanted}")
    if whole and number != number.to_integral_value():
        raise ValueError(f"“{header}”应为整数")
    return number


_YMD = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[T\s].*)?$")
_DMY = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})(?:\s.*)?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


def date_of(header: str, value) -> date:
    """2026-01-05, 2026/1/5, 2026.1.5, 2026年1月5日, 20260105, an Excel serial number or a date
    cell; 05/01/2026 only when the day cannot be the month (13/01/2026)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    wrong = f"“{header}”应为日期，如 2026-01-05、2026/1/5、2026年1月5日"
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(wrong)  # noqa: TRY004 — a cell of the wrong kind: the row's message
    if isinstance(value, (int, float)):
        if value != int(value):
            value = int(value)  # a date and time serial: the day
        return _serial_or_compact(int(value), wrong)
    if len(value) == 10 and value[4] == "-":  # the common cell, 2026-01-05
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    text = plain(value)
    if text.isdigit():
        return _serial_or_compact(int(text), wrong)
    ymd, dmy = _YMD.match(text), _DMY.match(text)
    if ymd:
        parts = tuple(map(int, ymd.groups()))
    elif dmy:
        first, second, year = map(int, dmy.groups())
        if first <= 12 and second <= 12 and first != second:
            raise ValueError(f"“{header}”的日期 {text} 无法判断日和月的顺序，请写成 {year}-MM-DD 的形式")
        parts = (year, second, first) if first > 12 else (year, first, second)
    else:
        raise ValueError(wrong)
    try:
        return date(*parts)
    except ValueError:
        raise ValueError(f"“{header}”的日期 {text} 不存在") from None


def _serial_or_compact(number: int, wrong: str) -> date:
    compact = _COMPACT.match(str(number))
    if compact:
        try:
            return date(*map(int, compact.groups()))
        except ValueError:
            raise ValueError(wrong) from None
    if 1 <= number <= 2958465:  # Excel's serial numbers, 1900-01-01 … 9999-12-31
        return EXCEL_EPOCH + timedelta(days=number)
    raise ValueError(wrong)


TRUE_WORDS = frozenset(fold(w) for w in ("是", "√", "✓", "✔", "Y", "yes", "true", "1", "有", "对"))
FALSE_WORDS = frozenset(fold(w) for w in ("否", "×", "✗", "✘", "N", "no", "false", "0", "无", "不是"))


def flag_of(header: str, value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    word = fold(value)
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"“{header}”应填 是/否（也可填 √/×、Y/N、1/0）")


def choice_index(choices: dict[str, str]) -> dict[str, str]:
    """A coded column's accepted words (folded) -> the stored code: its codes, labels and
    their synonyms (app/import_words.py). A word two codes claim is left out."""
    index: dict[str, str | None] = {}
    for label, code in choices.items():
        for word in choice_words(code, label):
            key = fold(word)
            index[key] = code if index.get(key, code) == code else None
    return {k: v for k, v in index.items() if v is not None}


def near(text: str, candidates, limit: int = 3) -> list[str]:
    """Names a user may have meant: one inside the other, or within two edits."""
    folded = fold(text)
    found = []
    for name in candidates:
        other = fold(name)
        if not other or not folded:
            continue
        if folded in other or other in folded or _within_two_edits(folded, other):
            found.append(name)
            if len(found) >= limit:
                break
    return found


def _within_two_edits(a: str, b: str) -> bool:
    if abs(len(a) - len(b)) > 2:
        return False
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        if min(current) > 2:
            return False
        previous = current
    return previous[-1] <= 2
