"""The public board's free text (DOMAIN.md §6, issue 17 finding 3): a phone number or an
身份证号 typed into a published title or text is masked however it is written — spaces, dots,
dashes, full-width digits — and nothing else is: dates, amounts and year ranges stay as typed."""

import pytest
from sqlalchemy import text

from app import clock
from app.views.public import scrubbed

# Personal numbers as residents and liaisons type them.
PERSONAL = [
    "13800138000",
    "138 0013 8000",
    "138-0013-8000",
    "138.0013.8000",
    "138·0013·8000",
    "１３８００１３８０００",
    "１３８－００１３－８０００",
    "138 - 0013 - 8000",
    "+86 138 0013 8000",
    "0086-13800138000",
    "0591-87654321",
    "（0591）87654321",
    "110101199003071234",
    "11010119900307123X",
    "110101 19900307 1234",
    "110101-1990-0307-123x",
    "１１０１０１１９９００３０７１２３４",
]

# Text that must come out exactly as it went in.
HARMLESS = [
    "2026-12-06",
    "2026.12.06",
    "2026/12/06",
    "2026年12月06日",
    "2025-2026年度",
    "2026.12.06-2026.12.31",
    "2026-12-06 至 2027-01-05",
    "2026-12-06 14:30-16:00",
    "资金 138,000 元",
    "金额 12345.67 元",
    "共 1,380,013,800 元",
    "50 人次，3 场",
    "第 2026 期",
    "20261206",
    "编号 NO.2026-0012",
]


@pytest.mark.parametrize("number", PERSONAL)
def test_a_personal_number_in_free_text_is_masked(number):
    shown = scrubbed(f"请联系{number}咨询")
    digits = [c for c in number if c.isdigit()]
    assert shown.startswith("请联系") and shown.endswith("咨询"), shown
    # No run of its digits long enough to be read back survives.
    assert sum(c.isdigit() for c in shown) == 0, (number, shown)
    assert len(digits) >= 10


@pytest.mark.parametrize("phrase", HARMLESS)
def test_dates_amounts_and_ranges_are_left_alone(phrase):
    assert scrubbed(f"活动时间：{phrase}，欢迎参加") == f"活动时间：{phrase}，欢迎参加"


def test_a_number_beside_a_date_is_masked_and_the_date_kept():
    assert scrubbed("2026-12-06 联系 138.0013.8000") == "2026-12-06 联系 ****"
    assert scrubbed("2026.12.06 13800138000") == "2026.12.06 ****"


@pytest.fixture
def typed_need(ctx):
    """A need accepted by the platform (so on the board) whose title carries a phone number
    written with dots, and a resource whose text carries a date and a spaced one."""
    from app.models.lists import Need, Resource
    from app.models.org import Dictionary

    community = ctx.execute(text("SELECT org_id FROM ab_user WHERE username = 'shequ01'")).scalar()
    unit = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username = 'danwei01'")).scalar()
    with ctx.session() as session:
        need_category = session.query(Dictionary).filter_by(kind="need_category").first().id
        category = session.query(Dictionary).filter_by(kind="resource_category").first().id
        rows = [Need(community_id=community, category_id=need_category, status="已受理",
                     title="修路灯请打138.0013.8000找王师傅"),
                Resource(unit_id=unit, year=clock.today().year, category_id=category,
                         status="已发布", title="会议室 １３８ ００１３ ８０００",
                         content="开放时间 2026-12-06 至 2026.12.31，电话 139 0013 9000")]
        session.add_all(rows)
        session.commit()
        keys = [(type(r).__tablename__, r.id) for r in rows]
    yield community
    with ctx.session() as session:
        for table, pk in keys:
            session.execute(text(f"DELETE FROM {table} WHERE id = :i"), {"i": pk})
        session.commit()


def test_the_board_masks_numbers_typed_into_titles(app, typed_need):
    page = app.test_client().get(f"/public/community/{typed_need}").get_data(as_text=True)
    assert "修路灯请打****找王师傅" in page
    assert "138.0013.8000" not in page and "１３８ ００１３" not in page
    assert "开放时间 2026-12-06 至 2026.12.31，电话 ****" in page
