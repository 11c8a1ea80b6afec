"""A unit's page shows the members entered in the panel beside the 党员人数 it declares
(issue 20), linking to them."""
import re

from sqlalchemy import text


def test_a_units_page_counts_its_members_beside_the_declared_number(ctx, as_user):
    unit = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username = 'danwei01'")).scalar()
    declared, in_panel = ctx.execute(text(
        "SELECT party_member_count, (SELECT count(*) FROM member WHERE work_unit_id = u.id AND "
        "deleted_on IS NULL) FROM unit u WHERE id = :u"), {"u": unit}).one()
    page = as_user("zuzhibu").get(f"/unit/show/{unit}").get_data(as_text=True)
    shown = re.search(r"申报 (\d+)，平台在册\s*<a href=\"/member/list/\?_flt_0_work_unit=(\d+)\">(\d+)</a>",
                      page)
    assert shown, page[page.find("共驻共建"):][:600]
    assert (int(shown.group(1)), int(shown.group(2)), int(shown.group(3))) == (declared, unit,
                                                                                in_panel)
    assert in_panel > 0
