"""time: every stored instant in UTC (issue 21)

Until this revision each process wrote its host's local wall-clock time into the date-time
columns. ASSUMPTION: those values are the wall-clock time of `GONGJIAN_TIMEZONE` (default
Asia/Shanghai) — the hosts ran in the zone the panel serves. Set `GONGJIAN_TIMEZONE` to the
zone the hosts actually ran in before `flask db upgrade` if it differs; a deployment whose
hosts already ran with TZ=UTC must instead stamp past this revision
(`flask db stamp 0009_utc_timestamps`) after upgrading to 0008.

Upgrade converts each value from the zone's wall clock to UTC, downgrade back; date columns
(calendar dates: signed on, served on, deadlines of resolutions) are left as they are. One
UPDATE per table, in the database's own arithmetic: where the zone changed its offset
(daylight saving) within the stored values, a CASE picks each value's offset from the zone's
transitions, computed here in Python (zoneinfo) over the range the table holds. A wall-clock
time in a daylight-saving gap or fold takes the earlier offset.

Revision ID: 0009_utc_timestamps
Revises: 0008_sessions
Create Date: 2026-12-06 16:00:00

"""
import os
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0009_utc_timestamps'
down_revision = '0008_sessions'
branch_labels = None
depends_on = None

ENTITY = ('created_on', 'changed_on', 'deleted_on')
# Every date-time column at revision 0008 (FAB's ab_* tables included).
INSTANTS = {
    'ab_api_key': ('created_on', 'expires_on', 'revoked_on', 'last_used_on'),
    'ab_register_user': ('registration_date',),
    'ab_user': ('last_login', 'created_on', 'changed_on', 'locked_until'),
    'audit_log': ('time',),
    'refresh_token': ('expires_on',),
    'user_session': ('created_on', 'seen_on'),
    'agreement': ('file_uploaded_on',) + ENTITY,
    'member_registration': ('confirmed_on',) + ENTITY,
    'micro_wish': ('claimed_on', 'fulfilled_on', 'confirmed_on') + ENTITY,
    'need': ('deadline', 'accepted_on', 'dispatched_on', 'taken_on', 'completed_on') + ENTITY,
    'service_record': ('certified_on',) + ENTITY,
    'star_rating': ('computed_on', 'reviewed_on', 'published_on') + ENTITY,
    'unit_registration': ('confirmed_on',) + ENTITY,
    **{name: ENTITY for name in (
        'agenda_item', 'attendance', 'body_member', 'dictionary', 'joint_body', 'meeting',
        'meeting_attachment', 'member', 'organization', 'point_entry', 'point_rule',
        'post_claim', 'resolution', 'resource', 'service_item', 'service_post',
        'supervision_note', 'unit')},
}


def _zone() -> ZoneInfo:
    try:
        from flask import current_app
        name = current_app.config.get('GONGJIAN_TIMEZONE')
    except RuntimeError:  # outside the app (a bare alembic run)
        name = None
    return ZoneInfo(name or os.environ.get('GONGJIAN_TIMEZONE') or 'Asia/Shanghai')


def _local_offset(zone):
    """Offset of a naive wall-clock time of the zone (upgrade: the stored values are those)."""
    return lambda moment: moment.replace(tzinfo=zone).utcoffset()


def _utc_offset(zone):
    """Offset of the zone at a naive UTC instant (downgrade: the stored values are those)."""
    return lambda moment: moment.replace(tzinfo=timezone.utc).astimezone(zone).utcoffset()


def _pieces(offset_of, first: datetime, last: datetime) -> list[tuple[datetime | None, timedelta]]:
    """[(exclusive end or None for the last, offset)] covering first..last: the offset is found
    day by day and each change pinned to the second (zones change at most once a day)."""
    pieces, day, current = [], first.replace(microsecond=0), offset_of(first)
    while day <= last:
        step = day + timedelta(days=1)
        if offset_of(step) != current:
            low, high = day, step  # offset_of(low) == current != offset_of(high)
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                middle = middle.replace(microsecond=0)
                if middle <= low:
                    break
                low, high = (middle, high) if offset_of(middle) == current else (low, middle)
            pieces.append((high, current))
            current = offset_of(high)
        day = step
    pieces.append((None, current))
    return pieces


def _shifted(column, seconds: int, dialect: str):
    if seconds == 0:
        return column
    if dialect == 'sqlite':  # ISO text: the whole seconds moved, the fraction kept as it was
        # (datetime() of a fraction may round up a second)
        return sa.func.datetime(sa.func.substr(column, 1, 19), f'{seconds:+d} seconds') \
            .concat(sa.func.substr(column, 20))
    if dialect == 'postgresql':
        return column + sa.literal_column(f"interval '{seconds} seconds'")
    return sa.func.date_add(column, sa.literal_column(f'INTERVAL {seconds} SECOND'))


def _convert(offset_of, sign: int) -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    existing = set(sa.inspect(bind).get_table_names())
    for name, names in INSTANTS.items():
        if name not in existing:
            continue
        table = sa.table(name, *(sa.column(c, sa.DateTime()) for c in names))
        values = {}
        for column in table.c:
            first, last = bind.execute(sa.select(sa.func.min(column), sa.func.max(column))).one()
            if first is None:
                continue
            if isinstance(first, str):  # SQLite hands back text under a plain select of min()
                first, last = datetime.fromisoformat(first), datetime.fromisoformat(last)
            pieces = _pieces(offset_of, first, last)
            shifted = [(end, _shifted(column, sign * int(offset.total_seconds()), dialect))
                       for end, offset in pieces]
            if len(shifted) == 1:
                values[column.name] = shifted[0][1]
            else:
                values[column.name] = sa.case(*((column < end, value) for end, value in shifted[:-1]),
                                              else_=shifted[-1][1])
        if values:
            bind.execute(table.update().values(**values))


def upgrade():
    _convert(_local_offset(_zone()), -1)


def downgrade():
    _convert(_utc_offset(_zone()), +1)
