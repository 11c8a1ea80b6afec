"""Validation and masking of Chinese identifiers used in the admin forms.

Pure standard-library code (no Flask, no third-party packages) so that forms,
import scripts and the seed generator can all share it and it can be tested
in isolation.

* 统一社会信用代码 — GB 32100-2015
* 居民身份证号码 — GB 11643-1999 (18-digit form only)

Every ``normalize_*`` function returns the canonical form or raises
``ValueError`` with a Chinese message that can be shown to the user as-is.
"""

import datetime
import unicodedata

from app import clock

__all__ = [
    "birth_date_of",
    "credit_code_check_char",
    "gender_of",
    "id_number_check_char",
    "mask_id_number",
    "mask_phone",
    "normalize_credit_code",
    "normalize_id_number",
]

# --- 统一社会信用代码 (GB 32100-2015) -------------------------------------

# 31 characters: digits and capital letters without I, O, Z, S, V
# (too easily confused with 1, 0, 2, 5, U).  A character's value is its index.
CREDIT_CODE_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_CODE_VALUES = {c: i for i, c in enumerate(CREDIT_CODE_CHARSET)}
_CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# Position 1: 登记管理部门代码 (1 机构编制, 5 民政, 9 工商/市场监管, Y 其他 ...).
_CREDIT_CODE_AUTHORITIES = frozenset("123456789ANY")


def _clean(value):
    """NFKC (full-width ＡＢ１２ typed with a Chinese IME → AB12), drop all
    whitespace, uppercase.  None is treated as empty."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFKC", str(value))
    return "".join(text.split()).upper()


def four_digit_year(text) -> int | None:
    """A year written as 2026 (2000 on), or None: the one reading of a year typed or posted."""
    raw = str(text or "").strip()
    return int(raw) if ascii_digits(raw) and len(raw) == 4 and int(raw) >= 2000 else None


def ascii_digits(text) -> bool:
    """Whether text is made of 0–9 only. str.isdigit() alone also accepts '²⁰²⁶' (which int()
    then refuses: a 500 where a Chinese message was meant) and other scripts' digits."""
    text = str(text)
    return text.isascii() and text.isdigit()


def _check_credit_charset(text):
    for ch in text:
        if ch not in _CREDIT_CODE_VALUES:
            raise ValueError(f"统一社会信用代码含有无效字符：{ch}")


def credit_code_check_char(first17: str) -> str:
    """Check character (position 18) for the first 17 characters of a code."""
    body = _clean(first17)
    if len(body) != 17:
        raise ValueError("计算校验位需要统一社会信用代码的前17位")
    _check_credit_charset(body)
    total = sum(_CREDIT_CODE_VALUES[c] * w for c, w in zip(body, _CREDIT_CODE_WEIGHTS))
    return CREDIT_CODE_CHARSET[(31 - total % 31) % 31]


def normalize_credit_code(value: str) -> str:
    """Validate a 统一社会信用代码 and return it normalised (uppercase, no spaces)."""
    code = _clean(value)
    if not code:
        raise ValueError("统一社会信用代码不能为空")
    if len(code) != 18:
        raise ValueError(f"统一社会信用代码应为18位，当前为{len(code)}位")
    _check_credit_charset(code)
    if code[0] not in _CREDIT_CODE_AUTHORITIES:
        raise ValueError(f"统一社会信用代码第1位（登记管理部门代码）无效：{code[0]}")
    # Position 2 (机构类别代码) only has to be a charset character: the list of
    # categories is extended by the registration authorities over time.
    if not ascii_digits(code[2:8]):
        raise ValueError("统一社会信用代码第3-8位（登记管理机关行政区划码）应为数字")
    # Positions 9-17 are the GB 11714 organisation code, which carries its own
    # check digit.  It is deliberately not verified: codes issued to
    # 个体工商户 and other entities without a pre-existing organisation code
    # are not guaranteed to satisfy it, and the outer check character below
    # already catches typing errors over the whole code.
    if code[17] != credit_code_check_char(code[:17]):
        raise ValueError("统一社会信用代码校验位错误，请核对后重新输入")
    return code


# --- 居民身份证号码 (GB 11643-1999) ----------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"  # indexed by weighted sum % 11
# Only the province part of the region code is checked.  County codes are
# renumbered and merged over time, but an ID number keeps the code that was
# valid when it was issued, so a full region-table lookup would reject real
# people.  83 = 台湾居民居住证, 91 = 外国人永久居留身份证 (2023 format).
_ID_PROVINCES = frozenset(
    [str(n) for n in range(11, 16)]
    + [str(n) for n in range(21, 24)]
    + [str(n) for n in range(31, 38)]
    + [str(n) for n in range(41, 47)]
    + [str(n) for n in range(50, 55)]
    + [str(n) for n in range(61, 66)]
    + ["71", "81", "82", "83", "91"]
)


def id_number_check_char(first17: str) -> str:
    """Check character (position 18) for the first 17 digits of an ID number."""
    body = _clean(first17)
    if len(body) != 17 or not ascii_digits(body):
        raise ValueError("计算校验位需要身份证号的前17位数字")
    total = sum(int(c) * w for c, w in zip(body, _ID_WEIGHTS))
    return _ID_CHECK_CHARS[total % 11]


def normalize_id_number(value: str) -> str:
    """Validate an 18-digit 居民身份证号 and return it normalised (uppercase X)."""
    number = _clean(value)
    if not number:
        raise ValueError("身份证号不能为空")
    if len(number) == 15 and number.isdigit():
        raise ValueError("不支持15位旧身份证号，请填写18位身份证号")
    if len(number) != 18:
        raise ValueError(f"身份证号应为18位，当前为{len(number)}位")
    if not ascii_digits(number[:17]):
        raise ValueError("身份证号前17位应为数字")
    if number[17] not in "0123456789X":
        raise ValueError("身份证号最后一位应为数字或X")
    if number[:2] not in _ID_PROVINCES:
        raise ValueError(f"身份证号地区码无效：{number[:6]}")
    _parse_birth_date(number)
    if number[17] != id_number_check_char(number[:17]):
        raise ValueError("身份证号校验位错误，请核对后重新输入")
    return number


def _parse_birth_date(number):
    try:
        born = datetime.datetime.strptime(number[6:14], "%Y%m%d").date()
    except ValueError:
        raise ValueError("身份证号出生日期无效") from None
    if born.year < 1900:
        raise ValueError("身份证号出生日期无效：年份早于1900年")
    if born > clock.today():
        raise ValueError("身份证号出生日期无效：晚于今天")
    return born


def birth_date_of(id_number: str) -> datetime.date:
    """Date of birth encoded in a (valid) ID number; raises ValueError otherwise."""
    return _parse_birth_date(normalize_id_number(id_number))


def gender_of(id_number: str) -> str:
    """'男' or '女' from the 17th digit (odd = male); raises ValueError if invalid."""
    return "男" if int(normalize_id_number(id_number)[16]) % 2 else "女"


# --- Masking for list views and exports --------------------------------------


def _mask_keep(text, head, tail):
    """Keep ``head`` leading and ``tail`` trailing characters, star the rest.
    Too-short values are masked completely rather than shown in clear."""
    if len(text) <= head + tail:
        return "*" * len(text)
    return text[:head] + "*" * (len(text) - head - tail) + text[len(text) - tail:]


def mask_id_number(v) -> str:
    """'110105194912310021' → '110105********0021'.  None/'' → ''."""
    text = "" if v is None else str(v).strip()
    if not text:
        return ""
    if len(text) > 10:
        return _mask_keep(text, 6, 4)
    return _mask_keep(text, 0, 4)


def mask_phone(v) -> str:
    """'13812345678' → '138****5678'; other lengths keep only the last 4."""
    text = "" if v is None else str(v).strip()
    if not text:
        return ""
    if len(text) == 11 and text.isdigit() and text.startswith("1"):
        return _mask_keep(text, 3, 4)
    return _mask_keep(text, 0, 4)
