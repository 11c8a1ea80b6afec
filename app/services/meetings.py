"""Joint meetings: the cadence that plans a body's meetings, the workflows of meetings and
resolutions (DOMAIN.md §3), minutes rendered as a record, attachments, and the figures the
dashboards show (DOMAIN.md §5) — each figure one GROUP BY in SQL, scoped like every query."""
from __future__ import annotations

import io
import os
import re
import uuid
import zipfile
from calendar import monthrange
from dataclasses import dataclass
from datetime import date

from flask import current_app
from sqlalchemy import and_, case, extract, func, literal_column, select

from app import clock, rollups, storage
from app.errors import Conflict, DomainError, committed
from app.models.meetings import (
    DONE,
    MEETING_TYPES,
    PRESENT,
    REQUIRED_LEVEL_COLUMN,
    Attendance,
    JointBody,
    Meeting,
    MeetingAttachment,
    MeetingStatus,
    Resolution,
    level_rank,
)
from app.models.org import Organization
from app.security.roles import ADMIN_GROUP
from app.security.scope import unscoped
from app.services.supervision import supervision_flow
from app.services.workflow import Field, Transition, Workflow

_TYPE_ORDER = {t: i for i, t in enumerate(MEETING_TYPES)}
MAX_PERIOD_DAYS = 731


# --- the cadence -------------------------------------------------------------------------------

def _months(start: date, end: date):
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        yield year, month
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def cadence_dates(body: JointBody, start: date, end: date) -> list[tuple[str, date]]:
    """The (type, date) of every meeting the body's cadence plans between start and end,
    inclusive. A day the month lacks (31 in April) falls on the month's last day."""
    planned = set()
    for year, month in _months(start, end):
        last = monthrange(year, month)[1]

        def on(day: int, year=year, month=month, last=last) -> date:
            return date(year, month, min(day, last))

        if body.xun_enabled:
            planned.update(("旬例会", on(day)) for day in body.xun_day_list())
        if body.monthly_enabled:
            planned.add(("月推进会", on(body.monthly_day)))
        if body.quarterly_enabled and month % 3 == 0:
            planned.add(("季研讨会", on(body.quarterly_day)))
        if body.yearly_enabled and month == body.yearly_month:
            planned.add(("年总结会", on(body.yearly_day)))
    return sorted(((t, d) for t, d in planned if start <= d <= end),
                  key=lambda item: (item[1], _TYPE_ORDER[item[0]]))


def parse_period(text: str) -> tuple[date, date]:
    """'2026' (a year), '2026Q3' (a quarter) or '2026-07' (a month) → (first day, last day)."""
    raw = (text or "").strip().upper().replace(" ", "")
    if m := re.fullmatch(r"(\d{4})年?", raw):
        year = int(m.group(1))
        return date(year, 1, 1), date(year, 12, 31)
    if m := re.fullmatch(r"(\d{4})(?:-|年)?(?:Q|第)([1-4])(?:季度)?", raw):
        year, quarter = int(m.group(1)), int(m.group(2))
        last_month = quarter * 3
        return (date(year, last_month - 2, 1),
                date(year, last_month, monthrange(year, last_month)[1]))
    if m := re.fullmatch(r"(\d{4})[-年](\d{1,2})月?", raw):
        year, month = int(m.group(1)), int(m.group(2))
        if 1 <= month <= 12:
            return date(year, month, 1), date(year, month, monthrange(year, month)[1])
    raise DomainError("期间格式不正确，请填写如 2026（年）、2026Q3（季度）或 2026-07（月）", "period")


@dataclass
class Generated:
    created: list
    skipped: int


def generate_meetings(session, body: JointBody, start: date, end: date) -> Generated:
    """Plan the body's meetings for a period from its cadence and commit them. A meeting the
    cadence gives that exists already — planned by hand on that day, generated before and
    since moved to another day, or deleted — is skipped: generating twice creates nothing the
    second time."""
    if start is None or end is None:
        raise DomainError("请填写生成期间的开始和结束日期", "start")
    if end < start:
        raise DomainError("结束日期不能早于开始日期", "end")
    if (end - start).days > MAX_PERIOD_DAYS:
        raise DomainError("一次最多生成两年的会议计划", "end")
    wanted = cadence_dates(body, start, end)
    with unscoped():
        rows = session.execute(
            select(Meeting.type, Meeting.planned_date, Meeting.cadence_date)
            .where(Meeting.body_id == body.id,
                   Meeting.planned_date.between(start, end)
                   | Meeting.cadence_date.between(start, end))
            .execution_options(include_deleted=True)).all()
    existing = {(t, d) for t, planned, cadence in rows for d in (planned, cadence) if d}
    created = [Meeting(body=body, type=t, planned_date=d, cadence_date=d) for t, d in wanted
               if (t, d) not in existing]
    lost = "会议计划正由他人同时生成，请刷新后查看"
    try:
        with committed(session, lost):
            session.add_all(created)
    except DomainError as exc:
        if exc.field == "planned_date":  # planned meanwhile by someone else (see Meeting)
            raise Conflict(lost) from None
        raise
    return Generated(created=created, skipped=len(wanted) - len(created))


# --- workflows -----------------------------------------------------------------------------

def _hold(meeting, data, principal):
    meeting.held_on = data["held_on"]
    for key in ("place", "chair", "recorder"):
        if data.get(key):
            setattr(meeting, key, data[key])


def _cancel(meeting, data, principal):
    meeting.cancel_reason = data["reason"]


def _replan(meeting, data, principal):
    meeting.cancel_reason = None


MEETING_FLOW = Workflow(Meeting, (
    Transition("hold", "标记已召开", (MeetingStatus.PLANNED,), MeetingStatus.HELD, ADMIN_GROUP, fields=(
        Field("held_on", "召开日期", "date", required=True),
        Field("place", "会议地点"), Field("chair", "主持人"), Field("recorder", "记录人"),
    ), apply=_hold, style="success"),
    Transition("cancel", "取消会议", (MeetingStatus.PLANNED,), MeetingStatus.CANCELLED, ADMIN_GROUP,
               fields=(Field("reason", "取消原因", "textarea", required=True),), apply=_cancel,
               style="danger"),
    Transition("replan", "恢复计划", (MeetingStatus.CANCELLED,), MeetingStatus.PLANNED, ADMIN_GROUP, apply=_replan,
               style="warning"),
))


RESOLUTION_FLOW = supervision_flow(Resolution)


# --- the meeting page: what is still open, what comes next ---------------------------------

def open_resolutions_for_review(session, meeting: Meeting) -> list[Resolution]:
    """The body's resolutions still open from earlier meetings: reviewed at this one."""
    return list(session.execute(
        select(Resolution).join(Meeting, Meeting.id == Resolution.meeting_id)
        .where(Meeting.body_id == meeting.body_id, Resolution.status != DONE,
               Meeting.planned_date < meeting.planned_date)
        .order_by(Resolution.deadline, Resolution.id)).scalars())


def next_meeting(session, body: JointBody, today: date | None = None) -> Meeting | None:
    return session.execute(
        select(Meeting).where(Meeting.body_id == body.id, Meeting.status == MeetingStatus.PLANNED,
                              Meeting.planned_date >= (today or clock.today()))
        .order_by(Meeting.planned_date, Meeting.id).limit(1)).scalar_one_or_none()


# --- attachments -------------------------------------------------------------------------------

ALLOWED_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
}
DEFAULT_MAX_BYTES = 10 * 1024 * 1024  # config UPLOAD_MAX_BYTES, shared with other uploads


def upload_folder() -> str:
    """Where attachments lived before the shared storage (app.storage.move_local_uploads)."""
    root = current_app.config.get("UPLOAD_FOLDER") or os.path.join(current_app.instance_path,
                                                                   "uploads")
    return os.path.join(root, "meetings")


def max_bytes() -> int:
    return int(current_app.config.get("UPLOAD_MAX_BYTES") or DEFAULT_MAX_BYTES)


def _content_is(ext: str, data: bytes) -> bool:
    """The file is what its extension says (magic bytes; Office files by their parts)."""
    if ext == "pdf":
        return data.startswith(b"%PDF-")
    if ext in ("jpg", "jpeg"):
        return data.startswith(b"\xff\xd8\xff")
    if ext == "png":
        return data.startswith(b"\x89PNG\r\n\x1a\n")
    if ext in ("docx", "xlsx"):
        if not data.startswith(b"PK\x03\x04"):
            return False
        part = "word/document.xml" if ext == "docx" else "xl/workbook.xml"
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return part in archive.namelist()
        except zipfile.BadZipFile:
            return False
    return False


ALLOWED_TEXT = "PDF、Word（.docx）、Excel（.xlsx）、JPG 或 PNG"


def check_upload(filename: str, stream, allowed=ALLOWED_TYPES,
                 allowed_text: str = ALLOWED_TEXT) -> tuple[str, str, bytes]:
    """(clean name, extension, content) of an uploaded file, or a Chinese refusal: one of the
    `allowed` extensions, within UPLOAD_MAX_BYTES, its content what its extension says."""
    name = os.path.basename((filename or "").replace("\\", "/")).strip()
    if not name or stream is None:
        raise DomainError("请选择要上传的文件", "file")
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext not in allowed:
        raise DomainError(f"只能上传 {allowed_text} 文件", "file")
    limit = max_bytes()
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise DomainError(f"文件超过 {limit / (1024 * 1024):g} MB 的大小限制", "file")
    if not data:
        raise DomainError("文件是空的", "file")
    if not _content_is(ext, data):
        raise DomainError(f"文件内容与扩展名 .{ext} 不符，请上传真实的 {ext.upper()} 文件", "file")
    return name[-200:], ext, data


def add_attachment(session, meeting: Meeting, filename: str, stream) -> MeetingAttachment:
    """Store a meeting's file and record it (both or neither)."""
    name, ext, data = check_upload(filename, stream)
    with committed(session, "该会议已被他人修改，附件未保存；请刷新后重试"):
        stored = storage.save([data], name, ALLOWED_TYPES[ext], session=session)
        attachment = MeetingAttachment(meeting=meeting, filename=name, file_id=stored.id,
                                       stored_name=uuid.uuid4().hex,
                                       content_type=ALLOWED_TYPES[ext], size=len(data))
        session.add(attachment)
    return attachment


# --- figures (DOMAIN.md §5), for the dashboards ---------------------------------------------
#
# Each takes a session (its reads are scoped to whoever is viewing), a period (first and last
# day, inclusive) and optionally an organisation node whose subtree hosts the bodies counted.

def _one(value: int):
    """A constant written into the SQL text, so that the same expression in SELECT and
    GROUP BY is the same text on PostgreSQL (bound parameters would differ)."""
    return literal_column(str(value))


def _quarter_of(column):
    month = extract("month", column)
    return case((month <= _one(3), _one(1)), (month <= _one(6), _one(2)),
                (month <= _one(9), _one(3)), else_=_one(4))


def _count_if(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _node_path(session, org_id: int | None) -> str | None:
    if org_id is None:
        return None
    path = session.execute(select(Organization.path).where(Organization.id == org_id)).scalar()
    if path is None:
        raise DomainError("所选党组织不存在或超出您的数据范围", "org")
    return path


def _within(stmt, session, org_id: int | None):
    """Restrict to bodies hosted in the node's subtree."""
    stmt = stmt.join(JointBody, JointBody.id == Meeting.body_id)
    path = _node_path(session, org_id)
    if path is None:
        return stmt
    org = Organization.__table__
    return stmt.where(JointBody.host_id.in_(select(org.c.id).where(org.c.path.like(path + "%"))))


def _rolled(session, rollup, start: date, end: date, org_id: int | None):
    """(table, where): the cells of a meetings' rollup (app/rollups.py HostMonths) that the
    viewer's figure sums over the period's months under the node — or None: the raw query (a
    viewer whose scope is not on the cells' keys, a range not of whole months of one year, the
    rollup not readable)."""
    whole_months = (start.day == 1 and start.year == end.year
                    and end.day == monthrange(end.year, end.month)[1])
    if not whole_months:
        return None
    found = rollups.cells(session, rollup.name, _node_path(session, org_id))
    if found is None or not rollups.readable(session, rollup.name):
        return None
    table, cells = found
    return table, and_(cells, table.c.year == start.year,
                       table.c.month.between(start.month, end.month))


def _rate(part, whole):
    return round(part / whole, 4) if whole else None


def meetings_held_vs_planned(session, start: date, end: date, org_id: int | None = None):
    """Per meeting type and quarter (of the planned date): planned, held and cancelled."""
    year = extract("year", Meeting.planned_date)
    quarter = _quarter_of(Meeting.planned_date)
    stmt = (select(Meeting.type, year, quarter, func.count(Meeting.id),
                   _count_if(Meeting.status == MeetingStatus.HELD), _count_if(Meeting.status == MeetingStatus.CANCELLED))
            .where(Meeting.planned_date.between(start, end)))
    stmt = _within(stmt, session, org_id).group_by(Meeting.type, year, quarter)
    rows = [{"type": t, "quarter": f"{int(y)}Q{int(q)}", "planned": int(planned),
             "held": int(held), "cancelled": int(cancelled), "rate": _rate(int(held), int(planned))}
            for t, y, q, planned, held, cancelled in session.execute(stmt)]
    return sorted(rows, key=lambda r: (r["quarter"], _TYPE_ORDER[r["type"]]))


def attendance_rate(session, start: date, end: date, org_id: int | None = None):
    """Per meeting type, at meetings held in the period: attendance records, units present
    (出席 or 迟到) and the rate — summed from the rollup's cells where the viewer's scope and
    the node are put on their keys (app/rollups.py MeetingAttendance), else counted."""
    found = _rolled(session, rollups.MeetingAttendance, start, end, org_id)
    if found is not None:
        cell, cells = found
        stmt = (select(cell.c.type, func.sum(cell.c.records), func.sum(cell.c.present))
                .where(cells).group_by(cell.c.type))
    else:
        stmt = (select(Meeting.type, func.count(Attendance.id),
                       _count_if(Attendance.status.in_(PRESENT)))
                .select_from(Attendance).join(Meeting, Meeting.id == Attendance.meeting_id)
                .where(Meeting.status == MeetingStatus.HELD, Meeting.held_on.between(start, end)))
        stmt = _within(stmt, session, org_id).group_by(Meeting.type)
    rows = [{"type": t, "expected": int(n), "present": int(p), "rate": _rate(int(p), int(n))}
            for t, n, p in session.execute(stmt) if n]
    return sorted(rows, key=lambda r: _TYPE_ORDER[r["type"]])


def leader_compliance(session, start: date, end: date, org_id: int | None = None):
    """At meetings held in the period, per type with a required attendee level (the body's:
    the 一把手 at 季研讨会 and 年总结会 by default): units present, how many came at that level
    or above (compliant), how many did not (non-compliant) and the compliance rate — summed
    from the rollup's cells where the viewer's scope and the node are put on their keys
    (app/rollups.py MeetingAttendance), else counted."""
    found = _rolled(session, rollups.MeetingAttendance, start, end, org_id)
    if found is not None:
        cell, cells = found
        stmt = (select(cell.c.type, func.sum(cell.c.present), func.sum(cell.c.below))
                .where(cells, cell.c.type.in_(tuple(REQUIRED_LEVEL_COLUMN)))
                .group_by(cell.c.type))
    else:
        stmt = _leader_compliance_counted(session, start, end, org_id)
    rows = [{"type": t, "present": int(n), "compliant": int(n) - int(k), "non_compliant": int(k),
             "rate": _rate(int(n) - int(k), int(n))} for t, n, k in session.execute(stmt) if n]
    return sorted(rows, key=lambda r: _TYPE_ORDER[r["type"]])


def _leader_compliance_counted(session, start: date, end: date, org_id: int | None):
    """`leader_compliance`'s raw query: per type, the units present and those below."""
    # `Attendance.non_compliant`, its required level read off the meeting and body this query
    # joins (the hybrid looks them up again per record: twice per attendance in the city).
    required = case(*((Meeting.type == type_, getattr(JointBody, column))
                      for type_, column in REQUIRED_LEVEL_COLUMN.items()), else_=None)
    below = level_rank(Attendance.attendee_level) > level_rank(required)
    stmt = (select(Meeting.type, func.count(Attendance.id), _count_if(below))
            .select_from(Attendance).join(Meeting, Meeting.id == Attendance.meeting_id)
            .where(Meeting.status == MeetingStatus.HELD, Meeting.held_on.between(start, end),
                   Meeting.type.in_(tuple(REQUIRED_LEVEL_COLUMN)), Attendance.status.in_(PRESENT)))
    return _within(stmt, session, org_id).group_by(Meeting.type)


def resolution_figures(session, start: date, end: date, org_id: int | None = None,
                       today: date | None = None):
    """Per quarter of the deadline, resolutions due in the period: total, closed, closed on
    time (on or before the deadline), closed late, still open, and overdue (open and past the
    deadline today). The first three are summed from the rollup's cells where the viewer's
    scope and the node are put on their keys (app/rollups.py Resolutions). Overdue depends on
    the day: in a month before today's every deadline has passed, and its cells' open ones are
    its overdue ones; today's month's are counted live (its deadlines before today), a later
    month has none."""
    today = today or clock.today()
    year = extract("year", Resolution.deadline)
    quarter = _quarter_of(Resolution.deadline)
    done = Resolution.status == DONE
    found = _rolled(session, rollups.Resolutions, start, end, org_id)
    if found is None:
        stmt = (select(year, quarter, func.count(Resolution.id), _count_if(done),
                       _count_if(and_(done, Resolution.closed_on <= Resolution.deadline)),
                       _count_if(and_(~done, Resolution.deadline < today)))
                .select_from(Resolution).join(Meeting, Meeting.id == Resolution.meeting_id)
                .where(Resolution.deadline.between(start, end)))
        counted = session.execute(_within(stmt, session, org_id).group_by(year, quarter)).all()
    else:
        cell, cells = found
        this_month = today.replace(day=1)
        sums: dict[tuple[int, int], list[int]] = {}
        for y, m, total, closed, on_time in session.execute(
                select(cell.c.year, cell.c.month, func.sum(cell.c.total), func.sum(cell.c.closed),
                       func.sum(cell.c.on_time)).where(cells).group_by(cell.c.year, cell.c.month)):
            y, m, total, closed = int(y), int(m), int(total or 0), int(closed or 0)
            quarter_sums = sums.setdefault((y, (m - 1) // 3 + 1), [0, 0, 0, 0])
            passed = date(y, m, 1) < this_month
            for i, n in enumerate((total, closed, int(on_time or 0), total - closed if passed else 0)):
                quarter_sums[i] += n
        if start <= today and this_month <= end:
            late = session.execute(_within(
                select(year, quarter, func.count(Resolution.id))
                .select_from(Resolution).join(Meeting, Meeting.id == Resolution.meeting_id)
                .where(Resolution.deadline >= max(start, this_month), Resolution.deadline <= end,
                       Resolution.deadline < today, Resolution.status != DONE),
                session, org_id).group_by(year, quarter)).all()
            for y, q, n in late:
                sums.setdefault((int(y), int(q)), [0, 0, 0, 0])[3] += int(n)
        counted = [(y, q, *values) for (y, q), values in sums.items() if values[0]]
    rows = []
    for y, q, total, closed, on_time, overdue in counted:
        total, closed, on_time, overdue = int(total), int(closed), int(on_time), int(overdue)
        rows.append({"quarter": f"{int(y)}Q{int(q)}", "total": total, "closed": closed,
                     "closed_on_time": on_time, "closed_late": closed - on_time,
                     "open": total - closed, "overdue": overdue,
                     "on_time_rate": _rate(on_time, total)})
    return sorted(rows, key=lambda r: r["quarter"])


def unit_attendance_rates(session, period_start: date, period_end: date,
                          unit_ids) -> dict[int, float | None]:
    """An input of the star rating, for many units in one GROUP BY: the share of the joint
    meetings held in the period that each unit attended (出席 or 迟到) among those it was
    recorded for; None when it was recorded for none. Counted over all its bodies, whoever asks:
    a rating must not depend on who runs it."""
    ids = list(unit_ids)
    with unscoped():
        rows = session.execute(
            select(Attendance.unit_id, func.count(Attendance.id),
                   _count_if(Attendance.status.in_(PRESENT)))
            .select_from(Attendance).join(Meeting, Meeting.id == Attendance.meeting_id)
            .where(Attendance.unit_id.in_(ids), Attendance.deleted_on.is_(None),
                   Meeting.deleted_on.is_(None), Meeting.status == MeetingStatus.HELD,
                   Meeting.held_on.between(period_start, period_end))
            .group_by(Attendance.unit_id)).all()
    rates = {unit: int(present) / int(total) for unit, total, present in rows if total}
    return {i: rates.get(i) for i in ids}


def unit_attendance_rate(session, unit_id: int, period_start: date,
                         period_end: date) -> float | None:
    """One unit's joint-meeting attendance rate in the period (see `unit_attendance_rates`)."""
    return unit_attendance_rates(session, period_start, period_end, [unit_id])[unit_id]


def attendance_measure(session, period, ids) -> dict[int, float | None]:
    """`unit_attendance_rates` in the shape of the star rating's inputs (`measure(session,
    period, ids)`, a period with `start` and `end`): ready to be appended to its inputs as
    `RatingInput("attendance", "联席会议出席率", <weight>, "unit", attendance_measure)`."""
    return unit_attendance_rates(session, period.start, period.end, ids)
