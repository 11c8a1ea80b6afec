"""A meeting's 纪要 to print (issue 28): the record as a document — the meeting, who came at which
level, the agenda, the minutes, the decisions with their lead units and deadlines, a signature
line — with nothing only a screen needs, for those who may read the meeting."""
import re

import pytest
from sqlalchemy import text

pytestmark = pytest.mark.db


def held_meeting(ctx):
    """A held meeting of shequ01's community with attendance and decisions recorded."""
    return ctx.execute(text(
        "SELECT m.id, b.name FROM meeting m JOIN joint_body b ON b.id = m.body_id "
        "JOIN ab_user u ON u.username = 'shequ01' AND u.org_id = b.host_id "
        "WHERE m.status = '已召开' AND m.deleted_on IS NULL "
        "AND EXISTS (SELECT 1 FROM attendance a WHERE a.meeting_id = m.id AND a.deleted_on IS NULL) "
        "AND EXISTS (SELECT 1 FROM resolution r WHERE r.meeting_id = m.id AND r.deleted_on IS NULL) "
        "ORDER BY m.id")).first()


def test_the_minutes_print_as_a_document(ctx, as_user):
    meeting, body = held_meeting(ctx)
    page = as_user("shequ01").get(f"/meeting/minutes/{meeting}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert body in html and "纪要" in html and "主持人（签字）" in html
    for unit, in ctx.execute(text(
            "SELECT u.name FROM attendance a JOIN unit u ON u.id = a.unit_id "
            "WHERE a.meeting_id = :m AND a.deleted_on IS NULL"), {"m": meeting}):
        assert unit in html
    for content, in ctx.execute(text("SELECT content FROM resolution WHERE meeting_id = :m "
                                     "AND deleted_on IS NULL"), {"m": meeting}):
        assert content in html  # whole, never cut with "…"
    # Nothing to click: no links, buttons, forms or scripts on the printed page.
    assert not re.search(r"<(a|button|form|script|input)\b", html)
    # The meeting's page offers it.
    assert f'href="/meeting/minutes/{meeting}"' in as_user("shequ01").get(
        f"/meeting/show/{meeting}").get_data(as_text=True)


def test_the_minutes_are_read_as_the_meeting_is(ctx, as_user):
    meeting, _ = held_meeting(ctx)
    assert as_user("danwei03").get(f"/meeting/minutes/{meeting}").status_code == 404
    assert as_user("shenji").get(f"/meeting/minutes/{meeting}").status_code == 200
