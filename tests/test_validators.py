import datetime
import random

import pytest

from app import clock
from app.validators import (
    birth_date_of,
    credit_code_check_char,
    gender_of,
    id_number_check_char,
    mask_id_number,
    mask_phone,
    normalize_credit_code,
    normalize_id_number,
)

# --- 统一社会信用代码 --------------------------------------------------------

# Published real codes (their check characters were not produced by this code).
REAL_CREDIT_CODES = [
    "91350100M000100Y43",  # the example commonly cited in GB 32100 material
    "9144030071526726XG",  # 腾讯科技（深圳）有限公司: org-code check digit is X
    "91110000100010433L",  # 中国石油天然气集团有限公司
]


@pytest.mark.parametrize("code", REAL_CREDIT_CODES)
def test_real_credit_codes_are_valid(code):
    assert normalize_credit_code(code) == code
    assert credit_code_check_char(code[:17]) == code[17]


def test_credit_code_check_char_values():
    assert credit_code_check_char("91350100M000100Y4") == "3"
    assert credit_code_check_char("9144030071526726X") == "G"


def test_credit_code_check_value_31_maps_to_0():
    # weighted sum % 31 == 0 → 31 - 0 = 31 → check character "0"
    assert credit_code_check_char("91350100MA1000021") == "0"
    assert normalize_credit_code("91350100MA10000210") == "91350100MA10000210"


CREDIT_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def test_credit_check_char_satisfies_mod31_congruence():
    # Independent restatement of GB 32100: with weights 3**i mod 31 for
    # positions 1-17 and weight 1 for the check character, the weighted sum
    # of all 18 values is divisible by 31.
    rng = random.Random(32100)
    seen = set()
    for _ in range(3000):
        first17 = rng.choice("159Y") + "".join(rng.choice(CREDIT_CHARSET) for _ in range(16))
        check = credit_code_check_char(first17)
        total = sum(CREDIT_CHARSET.index(c) * pow(3, i, 31) for i, c in enumerate(first17))
        assert (total + CREDIT_CHARSET.index(check)) % 31 == 0
        seen.add(check)
    assert seen == set(CREDIT_CHARSET)


def test_generated_credit_code_is_valid():
    first17 = "52110105MJ1234567"  # 民政 / 社会团体-like code
    code = first17 + credit_code_check_char(first17)
    assert normalize_credit_code(code) == code


def test_credit_code_is_normalised():
    assert normalize_credit_code("  91350100m000100y43\n") == "91350100M000100Y43"
    assert normalize_credit_code("9135 0100 M000 100Y 43") == "91350100M000100Y43"
    # full-width characters typed with a Chinese input method
    assert normalize_credit_code("９１３５０１００Ｍ０００１００Ｙ４３") == "91350100M000100Y43"


def test_credit_code_wrong_check_char_refused():
    with pytest.raises(ValueError, match="校验位错误"):
        normalize_credit_code("91350100M000100Y44")
    with pytest.raises(ValueError, match="校验位错误"):
        # two characters swapped
        normalize_credit_code("91350100M000010Y43")


@pytest.mark.parametrize("letter", ["I", "O", "Z", "S", "V"])
def test_credit_code_forbidden_letters_refused(letter):
    code = "91350100M000100Y43"
    bad = code[:8] + letter + code[9:]
    with pytest.raises(ValueError, match=f"含有无效字符：{letter}"):
        normalize_credit_code(bad)


@pytest.mark.parametrize("code", ["", "91350100M000100Y4", "91350100M000100Y433"])
def test_credit_code_wrong_length_refused(code):
    with pytest.raises(ValueError, match="统一社会信用代码"):
        normalize_credit_code(code)


def test_credit_code_length_message():
    with pytest.raises(ValueError, match="应为18位"):
        normalize_credit_code("91350100M000100Y4")
    with pytest.raises(ValueError, match="不能为空"):
        normalize_credit_code(None)


def test_credit_code_bad_authority_refused():
    first17 = "B1350100M000100Y4"
    code = first17 + credit_code_check_char(first17)
    with pytest.raises(ValueError, match="第1位"):
        normalize_credit_code(code)


def test_credit_code_non_digit_region_refused():
    first17 = "9135A100M000100Y4"
    code = first17 + credit_code_check_char(first17)
    with pytest.raises(ValueError, match="第3-8位"):
        normalize_credit_code(code)


def test_credit_code_check_char_helper_rejects_bad_input():
    with pytest.raises(ValueError):
        credit_code_check_char("9135")
    with pytest.raises(ValueError, match="I"):
        credit_code_check_char("91350100I000100Y4")


# --- 居民身份证号 -------------------------------------------------------------


def test_known_id_number_is_valid():
    assert normalize_id_number("11010519491231002X") == "11010519491231002X"
    assert id_number_check_char("11010519491231002") == "X"
    assert birth_date_of("11010519491231002X") == datetime.date(1949, 12, 31)
    assert gender_of("11010519491231002X") == "女"


@pytest.mark.parametrize(
    "first17, check",
    [
        ("11010519900101001", "0"),
        ("11010519900101006", "1"),
        ("11010519900101000", "2"),
        ("11010519900101005", "3"),
        ("11010519900101004", "5"),
        ("11010519900101007", "X"),
    ],
)
def test_id_check_char_table(first17, check):
    assert id_number_check_char(first17) == check
    assert normalize_id_number(first17 + check) == first17 + check


def test_id_check_char_satisfies_iso7064_mod11_2():
    # Independent restatement of GB 11643 (ISO 7064 MOD 11-2): with weights
    # 2**(17-i) mod 11 and X = 10, the weighted sum of all 18 digits is 1 mod 11.
    rng = random.Random(11643)
    seen = set()
    for _ in range(2000):
        first17 = "".join(rng.choice("0123456789") for _ in range(17))
        check = id_number_check_char(first17)
        digits = [int(c) for c in first17] + [10 if check == "X" else int(check)]
        total = sum(d * pow(2, 17 - i, 11) for i, d in enumerate(digits))
        assert total % 11 == 1
        seen.add(check)
    assert seen == set("0123456789X")


def test_lowercase_x_and_spaces_normalised():
    assert normalize_id_number(" 11010519491231002x ") == "11010519491231002X"


def test_id_number_wrong_check_digit_refused():
    with pytest.raises(ValueError, match="校验位错误"):
        normalize_id_number("110105194912310021")


def test_id_number_renamed_region_is_accepted():
    # 610527 白水县: the county code changed in 1994, but numbers issued
    # before that keep it and must still be accepted.
    assert id_number_check_char("61052719810101001") == "1"
    assert normalize_id_number("610527198101010011") == "610527198101010011"
    assert gender_of("610527198101010011") == "男"
    assert birth_date_of("610527198101010011") == datetime.date(1981, 1, 1)


def test_id_number_invalid_date_refused():
    first17 = "11010519990230001"  # 30 February
    number = first17 + id_number_check_char(first17)
    with pytest.raises(ValueError, match="出生日期无效"):
        normalize_id_number(number)


def test_id_number_future_date_refused():
    tomorrow = clock.today() + datetime.timedelta(days=1)  # the zone's calendar
    first17 = "110105" + tomorrow.strftime("%Y%m%d") + "001"
    number = first17 + id_number_check_char(first17)
    with pytest.raises(ValueError, match="出生日期无效"):
        normalize_id_number(number)


def test_id_number_before_1900_refused():
    first17 = "11010518991231001"
    number = first17 + id_number_check_char(first17)
    with pytest.raises(ValueError, match="出生日期无效"):
        normalize_id_number(number)


def test_id_number_unknown_province_refused():
    first17 = "99010519491231002"
    number = first17 + id_number_check_char(first17)
    with pytest.raises(ValueError, match="地区码"):
        normalize_id_number(number)


def test_id_number_length_and_legacy():
    with pytest.raises(ValueError, match="应为18位"):
        normalize_id_number("1101051949123100")
    with pytest.raises(ValueError, match="18位身份证号"):
        normalize_id_number("110105491231002")  # 15-digit legacy number
    with pytest.raises(ValueError, match="不能为空"):
        normalize_id_number("")


def test_id_number_bad_characters_refused():
    with pytest.raises(ValueError, match="前17位应为数字"):
        normalize_id_number("1101051949123100A2")
    with pytest.raises(ValueError, match="最后一位"):
        normalize_id_number("11010519491231002Y")


def test_gender_and_birth_date_reject_invalid_numbers():
    with pytest.raises(ValueError):
        gender_of("110105194912310021")
    with pytest.raises(ValueError):
        birth_date_of("not an id")


def test_gender_male():
    first17 = "11010519800101003"  # 17th digit 3 → odd → 男
    assert gender_of(first17 + id_number_check_char(first17)) == "男"


# --- masking ------------------------------------------------------------------


def test_mask_id_number():
    assert mask_id_number("11010519491231002X") == "110105********002X"
    assert mask_id_number("110101199001011234") == "110101********1234"
    assert mask_id_number(None) == ""
    assert mask_id_number("") == ""
    assert mask_id_number("1234") == "****"


def test_mask_phone():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone(" 13812345678 ") == "138****5678"
    assert mask_phone("010-12345678") == "********5678"
    assert mask_phone("12345") == "*2345"
    assert mask_phone("5678") == "****"
    assert mask_phone(None) == ""
    assert mask_phone("") == ""
