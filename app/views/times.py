"""Instants as people read and write them: the zone's wall clock in forms and the API, naive
UTC in the database (app/clock.py)."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder.models.sqla.filters import (
    FilterEqual,
    FilterGreater,
    FilterNotEqual,
    FilterSmaller,
)
from marshmallow import fields
from wtforms import DateTimeLocalField

from app import clock


class LocalDateTimeField(DateTimeLocalField):
    """A date-time form field whose data is the stored instant (naive UTC) and whose text is the
    zone's wall clock: what a person types is local time, as everything the pages show."""

    def _value(self):
        if self.raw_data:
            return " ".join(self.raw_data)
        return self.data and clock.to_local(self.data).strftime(self.format[0]) or ""

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if valuelist and self.data is not None:
            self.data = clock.to_utc(self.data)


class LocalDateTime(fields.DateTime):
    """An API date-time: written out with the zone's offset (`2026-12-07T09:30:00+08:00`);
    read in with its offset, or as the zone's wall clock when it has none; stored naive UTC."""

    def _serialize(self, value, attr, obj, **kwargs):
        return clock.local_iso(value)

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return clock.from_text(moment.isoformat())
        except ValueError:  # out of range once moved to UTC
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE) from None


def _stored(value):
    """A date-time a list's search (or a drill-down link, or the API's `q`) compares with: the
    zone's wall clock as typed, or with an offset, as the stored UTC instant."""
    if isinstance(value, datetime):
        return value
    try:
        return clock.from_text(str(value).strip())
    except ValueError:
        return value  # not ISO 8601: FAB's own parsing has its say, as before


def _in_local_time(base):
    class Filter(base):
        def apply(self, query, value):
            return super().apply(query, _stored(value))

    Filter.__name__ = Filter.__qualname__ = f"Local{base.__name__}"
    return Filter


# FAB's filters of a date-time column, reading their value in the zone's wall clock.
DATETIME_FILTERS = [_in_local_time(f) for f in (FilterEqual, FilterGreater, FilterSmaller,
                                                FilterNotEqual)]
