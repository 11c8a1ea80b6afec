"""How a page shows a value: coded columns by their Chinese labels, empty values as empty,
related rows by their names."""
from __future__ import annotations

from datetime import datetime

from app import clock
from app.i18n import gettext
from app.models.base import choices_of


def _shown(value):
    """An empty value reads as empty and related rows as their names — FAB would print the raw
    Python value ("None", "[]")."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, set)):
        return "、".join(str(v) for v in value)
    if isinstance(value, datetime):
        return clock.local_text(value)
    return value


class PageFormatters(dict):
    """The list and show pages ask `formatters_columns.get(column)`: every column without a
    formatter of its own gets `_shown`. Exports test `column in formatters` and are unaffected."""

    def get(self, key, default=None):
        return super().get(key, default or _shown)


def display_choice(choices):
    def display(value):
        return gettext(choices[value]) if value in choices else (value or "")
    display.choices = choices  # exports write the same labels in SQL (app/exports.py)
    return display


def page_formatters(model, declared) -> PageFormatters:
    """The labels of the model's coded columns, then the view's own formatters."""
    return PageFormatters({
        **{key: display_choice(choices) for key, choices in choices_of(model).items()},
        **(declared or {}),
    })
