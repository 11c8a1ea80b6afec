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
