"""Lists that open on what matters (issue 28): the meeting list on the next meeting, the
resolution list on what is still to do — the first page as the SQL of the rule orders it."""
import re

import pytest
from sqlalchemy import text

from app import clock

pytestmark = pytest.mark.db


def listed(browser, resource):
    page = browser.get(f"/{resource}/list/?psize_{resource.title().replace('_', '')}View=25")
    assert page.status_code == 200
    return [int(pk) for pk in re.findall(rf'href="/{resource}/show/(\d+)"', page.get_data(as_text=True))]


def test_the_meeting_list_opens_on_the_next_meeting(ctx, as_user):
    rows = listed(as_user("shequ01"), "meeting")
    today = clock.today().isoformat()
    in_scope = ctx.execute(text(
        "SELECT m.id, m.planned_date FROM meeting m JOIN joint_body b ON b.id = m.body_id "
        "JOIN ab_user u ON u.username = 'shequ01' AND u.org_id = b.host_id "
        "WHERE m.deleted_on IS NULL")).all()
    coming = sorted((str(d)[:10], -i) for i, d in in_scope if str(d)[:10] >= today)
    past = sorted(((str(d)[:10], i) for i, d in in_scope if str(d)[:10] < today), reverse=True)
    assert coming and past, "the demo has meetings to come and meetings past"
    expected = [-i for _, i in coming] + [i for _, i in past]
    assert rows == expected[:len(rows)] and len(rows) == min(25, len(expected))


def test_the_resolution_list_opens_on_what_is_still_to_do(ctx, as_user):
    rows = listed(as_user("zuzhibu"), "resolution")
    status = dict(ctx.execute(text("SELECT id, status FROM resolution")).all())
    deadline = dict(ctx.execute(text("SELECT id, deadline FROM resolution")).all())
    assert status[rows[0]] != "已办结"
    opened = [r for r in rows if status[r] != "已办结"]
    assert rows[:len(opened)] == opened, "open resolutions before closed ones"
    assert [str(deadline[r]) for r in opened] == sorted(str(deadline[r]) for r in opened)


def test_the_need_list_opens_on_the_step_falling_due_soonest(app, ctx, as_user):
    """Open needs by when their current step falls due (the late ones first), closed ones last."""
    from app.models.lists import NEED_CLOSED, Need
    from tests.security.support import LIST_PAGE_SIZE, listed_on_pages

    browser = as_user("shequ01")
    # The whole list, page after page (other modules may add open needs before the closed).
    rows, page = [], 0
    while len(rows) == page * LIST_PAGE_SIZE:
        shown = browser.get(f"/need/list/?psize_NeedView={LIST_PAGE_SIZE}&page_NeedView={page}")
        rows += [int(pk) for pk in dict.fromkeys(re.findall(r'href="/need/show/(\d+)"',
                                                            shown.get_data(as_text=True)))]
        page += 1
    with ctx.session() as session:
        due = {n.id: (n.status in NEED_CLOSED, n.step_due) for n in session.query(Need).filter(
            Need.id.in_(listed_on_pages(browser, "/need/list/", "need", "NeedView")))}
    assert sorted(rows) == sorted(due)
    closed = [r for r in rows if due[r][0]]
    assert closed and len(closed) < len(rows), "the demo has open and closed needs"
    assert rows[len(rows) - len(closed):] == closed, "closed needs after the open ones"
    timed = sorted((d for d, (shut, d) in ((r, due[r]) for r in due) if not shut and d is not None))
    shown = [due[r][1] for r in rows if not due[r][0] and due[r][1] is not None]
    assert shown == timed[:len(shown)], "the open needs by when their step falls due"
    now = clock.utcnow()
    assert any(d < now for d in timed), "the demo has late needs, which come first"


def test_a_needs_step_due_is_the_same_in_sql_and_says_when_it_is_late(app, ctx):
    """The order's SQL and the page's column agree, and a need is late exactly past it."""
    from sqlalchemy import select

    from app.models.base import epoch_seconds
    from app.models.lists import NEED_CLOSED, Need
    from app.security.scope import unscoped

    now = clock.utcnow()
    with ctx.session() as session, unscoped():
        rows = session.execute(select(Need, Need.step_due_sql(), epoch_seconds(Need.created_on),
                                      Need.overdue)).all()
        assert rows
        for need, seconds, created, late in rows:
            if need.status in NEED_CLOSED or need.step_due is None:
                assert seconds is None or need.status not in NEED_CLOSED
                continue
            # The database's seconds of the Python instant (created_on as the same origin).
            expected = float(created) + (need.step_due - need.created_on).total_seconds()
            assert abs(float(seconds) - expected) < 1.5, (need.id, seconds, expected)
            assert late == (need.step_due < now), (need.id, need.status, need.step_due)


@pytest.mark.parametrize("resource, view, args", [
    ("need", "NeedView", ""),  # the default order (Need.__orders__)
    ("need", "NeedView", "&_oc_NeedView=title&_od_NeedView=desc"),
    ("member", "MemberView", "&_oc_MemberView=status&_od_MemberView=desc&_flt_0_category=在职"),
])
def test_a_deep_page_shows_the_rows_its_order_puts_there(as_user, monkeypatch, resource, view,
                                                         args):
    """A page far into a list reads its ids first, then its rows (app/views/interface.py):
    the same rows, in the same order, as a page read whole."""
    from app.views import interface

    browser = as_user("zuzhibu")

    def page(n):
        shown = browser.get(f"/{resource}/list/?psize_{view}=5&page_{view}={n}{args}")
        assert shown.status_code == 200
        return [int(pk) for pk in dict.fromkeys(re.findall(rf'href="/{resource}/show/(\d+)"',
                                                           shown.get_data(as_text=True)))]

    whole = [page(n) for n in (1, 2, 3)]
    monkeypatch.setattr(interface, "DEEP_OFFSET", 5)
    assert [page(n) for n in (1, 2, 3)] == whole
    assert all(len(rows) == 5 for rows in whole), "the demo fills three pages of five"

