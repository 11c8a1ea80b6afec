"""Cells as offices fill them (issue 19): dates in every written form, flags, numbers with
thousands separators and full-width digits, and codes a spreadsheet stored as numbers — taken
back when exact, refused with the cause when their digits are lost."""
from datetime import date, datetime

import pytest

from app.import_values import choice_index, code_text, date_of, flag_of, near, number_of
from app.import_words import fold


@pytest.mark.parametrize("cell", [
    "2026-01-05", "2026/1/5", "2026.1.5", "2026年1月5日", "2026 年 1 月 5 日", "20260105",
    20260105, 46027, 46027.5, "46027", datetime(2026, 1, 5), date(2026, 1, 5), "2026-01-05 08:30:00",
    "２０２６－０１－０５", "2026/01/05"])
def test_dates_as_offices_write_them(cell):
    assert date_of("提出日期", cell) == date(2026, 1, 5)


def test_a_day_month_order_that_cannot_be_told_is_an_error_that_says_so():
    with pytest.raises(ValueError, match="无法判断日和月的顺序"):
        date_of("开始日期", "01/05/2026")
    assert date_of("开始日期", "13/01/2026") == date(2026, 1, 13)
    assert date_of("开始日期", "01/13/2026") == date(2026, 1, 13)
    assert date_of("开始日期", "05/05/2026") == date(2026, 5, 5)


@pytest.mark.parametrize("cell", ["2026-02-30", "明天", "2026年13月1日", "99999999", -3])
def test_what_is_not_a_date_is_refused(cell):
    with pytest.raises(ValueError, match="开始日期"):
        date_of("开始日期", cell)


@pytest.mark.parametrize("cell,flag", [
    ("是", True), ("否", False), ("√", True), ("×", False), ("Y", True), ("n", False),
    ("1", True), ("0", False), (1, True), (0.0, False), (True, True), (" 是 ", True)])
def test_flags(cell, flag):
    assert flag_of("党员中心户", cell) is flag


def test_a_flag_that_is_neither_says_what_to_write():
    with pytest.raises(ValueError, match="是/否"):
        flag_of("党员中心户", "也许")


@pytest.mark.parametrize("cell,number", [
    ("1,234", 1234), ("１２３", 123), (" 12 ", 12), ("2026年", 2026), (12.0, 12), ("1,234.50", "1234.50")])
def test_numbers_with_separators_full_width_digits_and_units(cell, number):
    from decimal import Decimal

    assert number_of("数量", cell, whole=not isinstance(number, str)) == Decimal(str(number))


def test_a_fraction_in_a_whole_number_column_is_refused():
    with pytest.raises(ValueError, match="整数"):
        number_of("党员人数", "12.5", whole=True)


def test_an_id_number_stored_as_a_number_names_the_lost_digits():
    # 110105194912310021 as Excel keeps it: 15 significant digits, the rest rounded.
    for cell in (110105194912310000, 1.10105194912310e17, "1.10105E+17"):
        with pytest.raises(ValueError, match="按数字保存，已丢失末尾几位.*文本"):
            code_text("身份证号", "id_number", cell)


def test_exact_numbers_are_taken_back_as_text():
    assert code_text("手机号", "phone", 13800000000) == "13800000000"
    assert code_text("手机号", "phone", 13800000000.0) == "13800000000"
    assert code_text("联系电话", "contact_phone", 88886666) == "88886666", "a local number"
    assert code_text("身份证号", "id_number", " 11010519491231002x ") == "11010519491231002x"
    assert code_text("手机号", "phone", "１３８ ０００ ０００００") == "13800000000"


def test_a_landline_that_lost_its_leading_zero_says_so():
    with pytest.raises(ValueError, match="开头的 0"):
        code_text("联系电话", "contact_phone", 1088886666)


def test_coded_choices_resolve_by_code_label_and_synonym():
    index = choice_index({"一般": "一般", "重大": "重大", "复杂": "复杂"})
    assert index[fold("紧急")] == "重大" and index[fold(" 普通 ")] == "一般"
    genders = choice_index({"男": "男", "女": "女"})
    assert genders[fold("男性")] == "男" and genders[fold("f")] == "女"


def test_near_names():
    names = ["工农社区党总支", "红旗社区党委", "东风社区党支部"]
    assert near("工农社区", names) == ["工农社区党总支"]
    assert near("红旗社区党委会", names) == ["红旗社区党委"]
    assert near("东风社区党支", names) == ["东风社区党支部"]
    assert near("西湖街道", names) == []


def test_headers_fold_widths_spaces_case_and_marks():
    assert fold("联系电话（必填）") == fold("联系电话(必填)")
    assert fold(" 身份证号： ") == fold("身份证号")
    assert fold("*单位名称") == fold("单位名称")


def test_a_masked_number_from_a_report_is_not_taken_as_a_number():
    with pytest.raises(ValueError, match="隐去了部分数字"):
        code_text("联系电话", "phone", "139****0001")
