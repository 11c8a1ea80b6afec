"""How a page shows a value: coded columns by their Chinese labels, empty values as empty,
related rows by their names."""
from __future__ import annotations

from datetime import date, datetime

from markupsafe import Markup, escape

from app import clock
from app.i18n import gettext
from app.models.base import choices_of


def shown(value):
    """How a value reads wherever a user reads it — list cells, show pages, the audit log (one
    rule, issue 27): empty as empty, never "None" or "[]"; yes/no as 是/否 (as exports write
    them); an instant in the configured zone to the minute, a date without a time; related
    rows by their names. FAB would print the raw Python value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return gettext("是") if value else gettext("否")
    if isinstance(value, (list, tuple, set, frozenset)):
        return "、".join(str(shown(v)) for v in value)
    if isinstance(value, datetime):
        return clock.local_text(value, seconds=False)
    if isinstance(value, date):
        return value.isoformat()
    return value


class PageFormatters(dict):
    """The list and show pages ask `formatters_columns.get(column)`: every column without a
    formatter of its own gets `shown`. Exports test `column in formatters` and are unaffected."""

    def __bool__(self):
        # FAB keeps `formatters_columns or {}`: an empty one (a model without coded columns)
        # was replaced by a plain dict, and its pages printed "None" and "True".
        return True

    def get(self, key, default=None):
        own = super().get(key, default)
        if own is None:
            return lambda value: one_line(value, shown(value))
        # A coded column's labels are translated once here, not once per cell: a list page
        # asks for each column's formatter once and applies it to every row (issue 30).
        choices = getattr(own, "choices", None)
        if choices is not None:
            labels = {code: gettext(label) for code, label in choices.items()}
            return lambda value: one_line(value, shown(labels.get(value, value or "")), True)
        # A column's own formatter decides the text; empty values and yes/no still read as
        # everywhere else (a formatter passing None or a flag through printed "None", "True").
        return lambda value: one_line(value, shown(own(value)))


def one_line(value, text, coded: bool = False):
    """A date, an instant or a coded value (a status, an urgency) kept on one line: squeezed
    into a narrow column they broke as "2025-12-/08" and "已办/结" (panel.css `.gj-nowrap`)."""
    if text != "" and (coded or isinstance(value, (date, datetime))):
        return Markup(f'<span class="gj-nowrap">{escape(text)}</span>')
    return text


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
