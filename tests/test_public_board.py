"""The public notice board (公示栏) at /public/: open without login, it shows published rows only
and no personal data — residents' and members' names masked (张*), no phone, no ID number."""
import re

import pytest
from sqlalchemy import text

from app import clock

pytestmark = pytest.mark.db

PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
ID_NUMBER = re.compile(r"(?<![0-9])\d{17}[\dXx](?![0-9])")
MARK = "公示测试"


def public_pages(client) -> dict[str, str]:
    index = client.get("/public/")
    assert index.status_code == 200
    pages = {"/public/": index.get_data(as_text=True)}
    for pk in re.findall(r'href="/public/community/(\d+)"', pages["/public/"]):
        response = client.get(f"/public/community/{pk}")
        assert response.status_code == 200
        pages[f"/public/community/{pk}"] = response.get_data(as_text=True)
    assert len(pages) > 2
    return pages


@pytest.fixture
def community(ctx):
    return ctx.execute(text("SELECT org_id FROM ab_user WHERE username = 'shequ01'")).scalar()


@pytest.fixture
def planted(ctx, community):
    """Rows of every kind in shequ01's community: published ones that must show, and
    unpublished, deleted or personal ones that must not."""
    from app.models.cobuild import StarRating
    from app.models.lists import MicroWish, Need, Resource, ServiceItem
    from app.models.org import Dictionary, Member

    unit = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username = 'danwei01'")).scalar()
    with ctx.session() as session:
        category = session.query(Dictionary).filter_by(kind="resource_category").first().id
        need_category = session.query(Dictionary).filter_by(kind="need_category").first().id
        member = session.query(Member).filter_by(community_id=community).order_by(Member.id).first()
        rows = [
            Resource(unit_id=unit, year=clock.today().year, category_id=category, status="已发布",
                     title=f"{MARK}公开资源", content="联系 13812345678 或身份证 110101199003071234",
                     contact="资源联系人甲", phone="13900001111"),
            Resource(unit_id=unit, year=clock.today().year, category_id=category, status="草稿",
                     title=f"{MARK}草稿资源"),
            Resource(unit_id=unit, year=clock.today().year, category_id=category, status="已发布",
                     title=f"{MARK}已删除资源", deleted_on=clock.utcnow()),
            ServiceItem(provider_unit_id=unit, year=clock.today().year, category_id=need_category,
                        status="进行中", title=f"{MARK}公开项目", commitment=f"{MARK}公开承诺",
                        fulfilment=f"{MARK}践诺情况"),
            ServiceItem(provider_unit_id=unit, year=clock.today().year, category_id=need_category,
                        status="待审核", title=f"{MARK}待审核项目", commitment=f"{MARK}未公开承诺"),
            Need(community_id=community, category_id=need_category, status="已派单",
                 title=f"{MARK}公开需求", requester_name="需求人甲乙", requester_phone="13700002222",
                 assigned_unit_id=unit),
            Need(community_id=community, category_id=need_category, status="待受理",
                 title=f"{MARK}未受理需求", requester_name="需求人丙丁"),
            Need(community_id=community, category_id=need_category, status="已驳回",
                 title=f"{MARK}已驳回需求", reject_reason="不受理"),
            MicroWish(community_id=community, resident_name="欧阳娜娜", resident_phone="13600003333",
                      content=f"{MARK}公开心愿", status="已认领", claimant_member_id=member.id,
                      claimed_on=clock.utcnow()),
            MicroWish(community_id=community, resident_name="司马光明", content=f"{MARK}未审核心愿",
                      status="待审核"),
            StarRating(subject_type="member", member_id=member.id, period="2001", period_kind="year",
                       score=95, stars=5, status="已公示"),
            StarRating(subject_type="unit", unit_id=unit, period="2001Q1", period_kind="quarter",
                       score=90, stars=5, status="已计算"),
        ]
        session.add_all(rows)
        session.commit()
        keys = [(type(r).__tablename__, r.id) for r in rows]
        names = {"member": member.name}
    yield names
    with ctx.session() as session:
        for table, pk in keys:
            session.execute(text(f"DELETE FROM {table} WHERE id = :i"), {"i": pk})
        session.commit()


def test_the_board_is_open_without_login_and_readable_on_a_phone(app):
    client = app.test_client()
    pages = public_pages(client)
    for url, page in pages.items():
        assert 'name="viewport" content="width=device-width' in page, url
        assert "<script" not in page, url
        assert not re.search(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", page), url
        assert "/static/css/public.css" in page
    css = client.get("/static/css/public.css")
    assert css.status_code == 200 and b"@media (max-width" in css.data


def test_only_published_rows_show(app, community, planted):
    page = app.test_client().get(f"/public/community/{community}").get_data(as_text=True)
    for shown in ("公开资源", "公开项目", "公开承诺", "践诺情况", "公开需求", "公开心愿"):
        assert f"{MARK}{shown}" in page, shown
    for hidden in ("草稿资源", "已删除资源", "待审核项目", "未公开承诺", "未受理需求", "已驳回需求",
                   "未审核心愿"):
        assert f"{MARK}{hidden}" not in page, hidden
    ratings = page.split('id="stars"', 1)[1].split("</section>", 1)[0]
    assert "2001Q1" not in ratings  # published ratings only (the demo's: the next test)


def test_no_personal_data_in_clear(app, ctx, community, planted):
    pages = public_pages(app.test_client())
    everything = "\n".join(pages.values())
    assert not PHONE.findall(everything), PHONE.findall(everything)[:5]
    assert not ID_NUMBER.findall(everything)
    from app import crypto

    with ctx.session() as session:
        numbers = [crypto.decrypt(v) for (v,) in session.execute(
            text("SELECT id_number_enc FROM member"))]
    assert numbers and not any(n in everything for n in numbers)
    people = set()
    for sql in ("SELECT name FROM member", "SELECT requester_name FROM need",
                "SELECT resident_name FROM micro_wish", "SELECT contact FROM resource",
                "SELECT secretary FROM organization", "SELECT liaison_name FROM unit",
                "SELECT leader_name FROM unit", "SELECT attendee FROM attendance"):
        people |= {name for (name,) in ctx.execute(text(sql)) if name and len(name) >= 2}
    phones = set()
    for sql in ("SELECT phone FROM member", "SELECT requester_phone FROM need",
                "SELECT resident_phone FROM micro_wish", "SELECT phone FROM resource",
                "SELECT contact_phone FROM unit", "SELECT phone FROM organization"):
        phones |= {phone for (phone,) in ctx.execute(text(sql)) if phone}
    assert len(people) > 50 and len(phones) > 50
    # A name may happen to be part of a public word (a unit named after a person, a place):
    # only what is personal and nothing else must stay out.
    public_words = set()
    for sql in ("SELECT name FROM unit", "SELECT name FROM organization", "SELECT title FROM need",
                "SELECT title FROM resource", "SELECT title FROM service_item",
                "SELECT place FROM service_item", "SELECT name FROM joint_body"):
        public_words |= {w for (w,) in ctx.execute(text(sql)) if w}
    leaked = [name for name in people
              if name in everything and not any(name in word for word in public_words)]
    assert not leaked, leaked
    assert not [p for p in phones if p in everything]
    page = pages[f"/public/community/{community}"]
    assert "欧***" in page and "欧阳娜娜" not in page  # the resident, masked
    member = planted["member"]
    assert member[0] + "*" * (len(member) - 1) in page  # the claimant and the rated member
    assert "联系 **** 或身份证 ****" in page  # numbers typed into a published text, masked


def test_an_unknown_or_non_community_node_is_not_found(app, ctx):
    client = app.test_client()
    street = ctx.execute(text("SELECT id FROM organization WHERE type = 'street' ORDER BY id")).scalar()
    assert client.get(f"/public/community/{street}").status_code == 404
    assert client.get("/public/community/999999").status_code == 404


def test_the_board_reads_nothing_as_an_anonymous_principal_could_not(app, community):
    """The board's rows come from its own published-only queries: the scope filter, which
    shows an anonymous principal no business rows, is not what hides the unpublished ones."""
    from app.extensions import db
    from app.models.lists import Need
    from app.security.scope import ANONYMOUS, acting_as

    with app.test_request_context("/public/"):
        with acting_as(ANONYMOUS):
            assert db.session.query(Need).count() == 0
        db.session.remove()
    page = app.test_client().get(f"/public/community/{community}").get_data(as_text=True)
    assert page.count("<tr>") > 1


def test_the_demo_board_shows_last_years_published_stars(app, ctx, community):
    """The demo data carry the last full year rated and published (seed.cobuild.seed_stars)."""
    year = clock.today().year - 1
    published = ctx.execute(text(
        "SELECT period FROM star_rating WHERE status = '已公示' AND period LIKE :y"),
        {"y": f"{year}%"}).scalars().all()
    assert {str(year), *(f"{year}Q{q}" for q in range(1, 5))} <= set(published)
    page = app.test_client().get(f"/public/community/{community}").get_data(as_text=True)
    ratings = page.split('id="stars"', 1)[1].split("</section>", 1)[0]
    assert str(year) in ratings
    # only the latest quarter and year published, as columns; units first, then members
    assert f"<th>{year}年第4季度</th>" in ratings and f"<th>{year}年度</th>" in ratings
    assert f"{year}年第1季度" not in ratings and f"{year}Q" not in ratings
    assert "★" in ratings
    assert ratings.index("驻区单位") < ratings.index("党员")
