"""The form fields a business page derives from its model: select boxes for coded columns,
AJAX selects searching within scope for related records (and the `choices` endpoint's answer),
plain checkboxes for yes/no columns, and validators from `app.validators`' normalisers."""
from __future__ import annotations

from flask import jsonify, request
from flask_appbuilder.fieldwidgets import Select2Widget
from flask_appbuilder.forms import FieldConverter
from markupsafe import Markup, escape
from sqlalchemy import Boolean, false, or_
from wtforms import BooleanField, DateTimeField, Field, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, ValidationError

from app.errors import storable_id
from app.extensions import db
from app.i18n import gettext, lazy_gettext
from app.models.base import Entity, choices_of
from app.models.org import Organization
from app.security.scope import current_principal, placed_only_by, related_choices
from app.views.times import LocalDateTimeField

# FAB turns a DateTime column into WTForms' DateTimeField (with its own date-time picker
# widget), which WTForms 3.3 deprecates — a warning each time a form with one is made (every
# list page with a time to search by). DateTimeLocalField is its non-deprecated subclass: same
# "%Y-%m-%d %H:%M:%S" rendering, and it reads what the picker sends — here in the zone's wall
# clock, stored as UTC (app/views/times.py). Set once, for every form FAB builds from a model
# (ours and FAB's own user views alike).
FieldConverter.conversion_table = tuple(
    (marker, LocalDateTimeField if field is DateTimeField else field, widget)
    for marker, field, widget in FieldConverter.conversion_table)

CHOICES_PAGE_SIZE = 20


class AjaxSelectWidget:
    """A <select> that select2 fills from the view's `choices` endpoint as the user types; a
    field settled to its one possible value (`settle_single_choices`) shows that value, with
    no box to open."""

    def __call__(self, field, **kwargs):
        if getattr(field, "settled", False):
            return Markup(f'<p class="form-control-static gj-settled" id="{escape(field.id)}-text">'
                          f'{escape(str(field.data))}</p><input type="hidden" id="{escape(field.id)}"'
                          f' name="{escape(field.name)}" value="{field.data.id}">')
        chosen = field.data if field.multiple else [field.data]
        current = "".join(f'<option value="{row.id}" selected>{escape(str(row))}</option>'
                          for row in chosen or () if row is not None)
        attrs = {
            "id": field.id, "name": field.name, "class": "form-control gj-ajax-select",
            "data-url": field.url, "data-placeholder": gettext("输入关键字搜索"),
        }
        html = " ".join(f'{k}="{escape(v)}"' for k, v in attrs.items())
        if field.multiple:
            return Markup(f'<select {html} multiple>{current}</select>')
        return Markup(f'<select {html}><option value=""></option>{current}</select>')


class AjaxSelectField(Field):
    """A many-to-one field (or, `multiple`, a many-to-many one) whose submitted ids are loaded
    from the same choices it offers (`related_choices`): an id the user may not pick is refused
    like one that does not exist."""

    widget = AjaxSelectWidget()

    def __init__(self, label=None, validators=None, owner=None, relation="", url="",
                 required=False, multiple=False, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.owner, self.relation, self.url, self.required = owner, relation, url, required
        self.multiple = multiple
        # The form's label marks it (FAB's render_field: a red *), as other required fields.
        self.flags.required = required
        self.settled = False

    def process_formdata(self, valuelist):
        self.data = [] if self.multiple else None
        raws = [v for v in valuelist if v] if self.multiple else valuelist[:1]
        if not raws or not raws[0]:
            return
        try:
            pks = {int(raw) for raw in raws}
        except ValueError:
            raise ValueError(gettext("所选记录无效")) from None
        stmt = related_choices(self.owner, self.relation)
        target = stmt.column_descriptions[0]["entity"]
        rows = db.session.execute(stmt.where(target.id.in_(pks))).scalars().all()
        if len(rows) != len(pks):
            raise ValueError(gettext("所选%(field)s不存在或超出您的数据范围", field=self.label.text))
        self.data = rows if self.multiple else rows[0]

    def pre_validate(self, form):
        if self.required and not self.data:
            raise ValidationError(gettext("请选择%(field)s", field=self.label.text))


def settle_single_choices(form, skipped=()) -> None:
    """An add form's required related-record fields that can take one value only — in the
    user's scope, by the model's rules (`related_choices`) — hold it, shown as a value, not a
    box: a community admin's need is in its community, a member's service record its own. An
    optional field that alone places the row in the user's scope (`placed_only_by`: a grid
    secretary's need, by its grid) is required for that user, and starts at the user's own
    node when it may take others (the grid's building groups). The submitted id is still loaded
    and checked like any other (`process_formdata`, the write scope): nothing is trusted
    because it was fixed on the page."""
    principal = current_principal()
    for field in form:
        if not isinstance(field, AjaxSelectField) or field.multiple or field.name in skipped:
            continue
        placing = not field.required and placed_only_by(db.session, field.owner,
                                                         field.relation, principal)
        if not (field.required or placing):
            continue
        field.required = field.flags.required = True
        stmt = related_choices(field.owner, field.relation)
        rows = db.session.execute(stmt.limit(2)).scalars().all()
        if len(rows) == 1:
            if field.data is None:
                field.data = rows[0]
            field.settled = field.data.id == rows[0].id and not field.errors
        elif placing and field.data is None:
            target = stmt.column_descriptions[0]["entity"]
            field.data = db.session.execute(
                stmt.where(target.path.in_(principal.org_paths)).limit(1)).scalar()


def choices_response(stmt):
    """One page of select2 choices from `related_choices`, searched by name as the user types."""
    target = stmt.column_descriptions[0]["entity"]
    term = (request.args.get("q") or "").strip()
    page = min(max(request.args.get("page", 1, type=int), 1), 10 ** 6)
    if request.args.get("id"):  # the label of a value already chosen
        chosen = storable_id(request.args["id"])
        stmt = stmt.where(false() if chosen is None else target.id == chosen)
    if term:
        text_cols = [getattr(target, c) for c in ("name", "label", "code", "title")
                     if hasattr(target, c)]
        stmt = stmt.where(or_(*[c.contains(term, autoescape=True) for c in text_cols]))
    order = getattr(target, "name", None) or getattr(target, "label", None) or target.id
    rows = db.session.execute(
        stmt.order_by(order, target.id).offset((page - 1) * CHOICES_PAGE_SIZE)
        .limit(CHOICES_PAGE_SIZE + 1)).scalars().all()
    return jsonify(results=[{"id": r.id, "text": str(r)} for r in rows[:CHOICES_PAGE_SIZE]],
                   pagination={"more": len(rows) > CHOICES_PAGE_SIZE})


def checked_by(normalize):
    """A form validator from one of `app.validators`' normalisers (Chinese message inline)."""
    def check(form, field):
        try:
            field.data = normalize(field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
    return check


# --- a model's fields, step by step (as FAB's GeneralModelConverter converts a column) -------

def choice_fields(model, labels) -> dict:
    """A select box for each coded column (types, statuses), with "（无）" where it may be empty."""
    fields = {}
    for key, choices in choices_of(model).items():
        column = model.__table__.columns[key]
        pairs = [SelectChoice(code, lazy_gettext(text)) for code, text in choices.items()]
        if column.nullable:
            pairs.insert(0, SelectChoice("", lazy_gettext("（无）")))
        # Coerce "" to None (not a filter, which runs after the choice check): the
        # "（无）" choice of a nullable column must match the None it stands for.
        # A column that may not be empty is required, and its label marked so.
        fields[key] = SelectField(labels.get(key, key), choices=pairs, widget=Select2Widget(),
                                  coerce=lambda v: v or None,
                                  validators=[] if column.nullable else [InputRequired()])
    return fields


def related_fields(model, labels) -> dict:
    """An AJAX select for each related record (many-to-one, or many-to-many: `multiple`),
    offering what `related_choices` offers through the view's `choices` endpoint."""
    fields = {}
    resource = model.__tablename__
    for prop in model.__mapper__.relationships:
        if not issubclass(prop.mapper.class_, Entity):
            continue
        label, url = labels.get(prop.key, prop.key), f"/{resource}/choices/{prop.key}"
        if prop.direction.name == "MANYTOONE":
            nullable = all(c.nullable for c in prop.local_columns)
            fields[prop.key] = AjaxSelectField(label, owner=model, relation=prop.key, url=url,
                                               required=not nullable)
        elif prop.direction.name == "MANYTOMANY":
            fields[prop.key] = AjaxSelectField(label, owner=model, relation=prop.key, url=url,
                                               multiple=True)
    return fields


def boolean_fields(model, labels, taken) -> dict:
    """An unticked checkbox sends nothing, and FAB makes a non-nullable column required: "否"
    could never be saved. A plain checkbox means False when unticked."""
    fields = {}
    for column in model.__table__.columns:
        if isinstance(column.type, Boolean) and column.key not in taken:
            default = column.default.arg if column.default is not None else False
            fields[column.key] = BooleanField(labels.get(column.key, column.key),
                                              default=bool(default))
    return fields


def within_field(label) -> AjaxSelectField:
    """The search form's organisation node, for the subtree filter (app/views/filters.py)."""
    return AjaxSelectField(label, owner=Organization, relation="parent",
                           url="/organization/choices/parent")


def computed_field(label, choices: dict) -> SelectField:
    """The search form's box of a computed column of several values (its words)."""
    return SelectField(label, choices=[SelectChoice(value, lazy_gettext(word))
                                       for value, word in choices.items()])


def flag_field(label) -> SelectField:
    """The search form's yes/no box of a computed flag."""
    return SelectField(label, choices=[SelectChoice("1", lazy_gettext("是")),
                                       SelectChoice("0", lazy_gettext("否"))])


def required(label: str):
    """FAB's own "required" check speaks English: say it in Chinese, by the field's label."""
    return [InputRequired(f"请填写{label}")]
