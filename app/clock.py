"""The panel's one clock: instants stored as naive UTC, shown and cut into days in the zone.

Every host writes the same instant the same way whatever its own clock's zone (a need accepted
on a host at UTC+8 after it was created on a host at UTC is later, not 8 hours earlier), so a
date-time column holds naive UTC on every engine. What people read and the calendar they count
by — today's date, a month, a quarter, a deadline's day — are those of `GONGJIAN_TIMEZONE`
(default Asia/Shanghai). Date columns (signed on, served on, a resolution's deadline) are
calendar dates of that zone and are compared with `today()`.

Nothing here reads the host's zone: `utcnow()` asks for UTC explicitly, so a process started
without TZ=UTC still writes UTC (TZ=UTC in gunicorn.conf.py and the units is for the libraries
that read the local clock themselves, such as Flask-AppBuilder's user timestamps).
"""
from __future__ import annotations

import os
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app, has_app_context

DEFAULT_ZONE = "Asia/Shanghai"


def zone() -> ZoneInfo:
    """The zone people count days in (`GONGJIAN_TIMEZONE`; ZoneInfo caches each zone)."""
    name = current_app.config.get("GONGJIAN_TIMEZONE") if has_app_context() else None
    return ZoneInfo(name or os.environ.get("GONGJIAN_TIMEZONE") or DEFAULT_ZONE)


def check_zone(name: str) -> None:
    """Refuse to start with a zone name the zone database does not know."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RuntimeError(f"GONGJIAN_TIMEZONE 不是有效的时区名称：{name!r}"
                           "（例如 Asia/Shanghai）") from None


def utcnow() -> datetime:
    """Now as stored: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def local_now() -> datetime:
    """Now on the zone's wall clock (naive), for what people read."""
    return to_local(utcnow())


def today() -> date:
    """Today's date in the zone: the calendar of dates, deadlines and periods."""
    return local_now().date()


def to_local(moment: datetime | None) -> datetime | None:
    """A stored instant (naive UTC) on the zone's wall clock (naive)."""
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC).astimezone(zone()).replace(tzinfo=None)
    except OverflowError:  # within hours of year 1 or 9999: shown as stored
        return moment


def to_utc(wall: datetime | None) -> datetime | None:
    """A wall-clock time of the zone (as a person enters it) as stored: naive UTC. In a
    daylight-saving fold the earlier reading is taken."""
    if wall is None:
        return None
    try:
        return wall.replace(tzinfo=zone()).astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise ValueError("日期时间超出可表示的范围") from None


# Since when an offset must have held to count as the zone's one offset (older instants are not
# stored: the panel is younger).
_FIXED_SINCE = datetime(2000, 1, 1)


@lru_cache(maxsize=8)
def _fixed_offset(name: str) -> timedelta | None:
    tz = ZoneInfo(name)
    first = datetime(_FIXED_SINCE.year, 1, 1, tzinfo=UTC).astimezone(tz).utcoffset()
    moment = _FIXED_SINCE
    while moment.year < 2100:  # daily steps: a daylight-saving zone changes within a year
        if moment.replace(tzinfo=UTC).astimezone(tz).utcoffset() != first:
            return None
        moment += timedelta(days=1)
    return first


def fixed_offset() -> timedelta | None:
    """The zone's offset from UTC if it is one offset for every instant the panel stores (Asia/
    Shanghai: +08:00 since 1991), else None (a zone with daylight saving) — lets SQL shift
    instants into the zone (exports) instead of Python converting each."""
    return _fixed_offset(zone().key)


def from_text(text: str) -> datetime:
    """An ISO date-time a person or client sent as stored: naive UTC. Without an offset it is
    the zone's wall clock (as the pages show it); with one, that instant."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return to_utc(moment)
    try:
        return moment.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise ValueError("日期时间超出可表示的范围") from None


def from_timestamp(seconds: float) -> datetime:
    """A POSIX timestamp (a token's expiry) as stored: naive UTC."""
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def timestamp(moment: datetime) -> float:
    """A stored instant (naive UTC) as a POSIX timestamp (naive .timestamp() would read it in
    the host's zone)."""
    return moment.replace(tzinfo=UTC).timestamp()


def day_begins(day: date) -> datetime:
    """The first instant (naive UTC) of a calendar day of the zone: a day, month or quarter
    `[first, last]` covers the instants `day_begins(first) <= t < day_begins(last + 1 day)`."""
    return to_utc(datetime.combine(day, time.min))


def day_ends(day: date) -> datetime:
    """The first instant (naive UTC) after a calendar day of the zone (an exclusive bound)."""
    return day_begins(day + timedelta(days=1))


def local_text(moment: datetime | date | None, seconds: bool = True) -> str:
    """How an instant reads on pages, exports and in messages: the zone's wall clock,
    `YYYY-MM-DD HH:MM[:SS]`. A date is a calendar date already and reads as itself."""
    if moment is None:
        return ""
    if not isinstance(moment, datetime):
        return moment.isoformat()
    return to_local(moment).isoformat(sep=" ", timespec="seconds" if seconds else "minutes")


def local_iso(moment: datetime | None) -> str | None:
    """An instant for machines (the API): ISO 8601 with the zone's offset, unambiguous."""
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC).astimezone(zone()).isoformat(timespec="seconds")
    except OverflowError:  # as to_local
        return moment.replace(tzinfo=UTC).isoformat(timespec="seconds")
