"""Helpers of the joint-meeting tests (no tests here): the seeded body of 社区 YX0101, whose
member units include danwei01's and danwei02's (not danwei03's), and rows made for a test
through the models as the system — so every business rule runs."""
import itertools
import re
from datetime import date, timedelta

from sqlalchemy import text

from app import clock

# Meetings made by tests are planned on days no seeded meeting uses (the seed plans from a
# year back to the next quarter), one new day each, so plan keys never collide.
_days = itertools.count()


def fresh_day() -> date:
    return date(2015, 1, 1) + timedelta(days=next(_days))


def body_id(ctx, code="YX0101") -> int:
    return ctx.execute(text(
        "SELECT b.id FROM joint_body b JOIN organization o ON o.id = b.host_id "
        "WHERE o.code = :c AND b.deleted_on IS NULL ORDER BY b.id"), {"c": code}).scalars().first()


def unit_of(ctx, username) -> int:
    return ctx.execute(text("SELECT unit_id FROM ab_user WHERE username = :u"),
                       {"u": username}).scalar()


def member_units(ctx, body) -> list[int]:
    return list(ctx.execute(text(
        "SELECT unit_id FROM body_member WHERE body_id = :b AND deleted_on IS NULL ORDER BY id"),
        {"b": body}).scalars())


def count(ctx, table, where="1=1", **params) -> int:
    return ctx.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"), params).scalar()


def make_meeting(ctx, body, type_="月推进会", held=True, planned=None, **extra) -> int:
    from app.models.meetings import JointBody, Meeting

    planned = planned or fresh_day()
    with ctx.session() as session:
        meeting = Meeting(body=session.get(JointBody, body), type=type_, planned_date=planned,
                          status="已召开" if held else "计划中",
                          held_on=planned if held else None, **extra)
        session.add(meeting)
        session.commit()
        return meeting.id


def make_attendance(ctx, meeting, unit, level="一把手", status="出席") -> int:
    from app.models.meetings import Attendance, Meeting
    from app.models.org import Unit

    with ctx.session() as session:
        row = Attendance(meeting=session.get(Meeting, meeting), unit=session.get(Unit, unit),
                         attendee="测试参会人" if status in ("出席", "迟到") else None,
                         attendee_level=level if status in ("出席", "迟到") else None,
                         status=status)
        session.add(row)
        session.commit()
        return row.id


def make_resolution(ctx, meeting, lead, co=(), deadline=None, status="待办",
                    closed_on=None) -> int:
    from app.models.meetings import Meeting, Resolution
    from app.models.org import Unit

    with ctx.session() as session:
        held = session.get(Meeting, meeting).held_on
        row = Resolution(meeting=session.get(Meeting, meeting), content="测试议定事项",
                         lead_unit=session.get(Unit, lead),
                         co_units=[session.get(Unit, u) for u in co],
                         deadline=deadline or held + timedelta(days=30), status=status,
                         closed_on=closed_on, result="已完成" if closed_on else None)
        session.add(row)
        session.commit()
        return row.id


def make_note(ctx, resolution, unit=None, content="主办方督办：请加快进度") -> int:
    from app.models.meetings import Resolution, SupervisionNote

    with ctx.session() as session:
        note = SupervisionNote(resolution=session.get(Resolution, resolution), content=content,
                               unit_id=unit, note_date=clock.today())
        session.add(note)
        session.commit()
        return note.id


def page_says(response, message: str) -> None:
    """A form's answer (redirects followed): a page, not a 500, that says why in Chinese."""
    assert response.status_code == 200, response.status_code
    page = response.get_data(as_text=True)
    said = re.findall(r'class="alert[^"]*">(.*?)</div>|class="help-block">([^<]+)<', page, re.DOTALL)
    said = [" ".join("".join(parts).split()) for parts in said]
    assert message in page, f"“{message}” not shown in the page, which says {said}"


def api_says(response, message: str, status=422) -> None:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert message in str(response.json["message"]), response.json["message"]


def shown_ids(browser, resource, view) -> set[int]:
    from tests.security.support import listed_on_pages

    return listed_on_pages(browser, f"/{resource}/list/", resource, view)


def api_ids(api, username, resource, session=None) -> set[int]:
    client, headers = session or api(username)
    found, page = set(), 0
    while True:
        response = client.get(f"/api/v1/{resource}/?q=(page_size:100,page:{page})",
                              headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        found |= {row["id"] for row in response.json["result"]}
        if len(found) >= response.json["count"] or not response.json["result"]:
            return found
        page += 1
