"""What every business entity shares: its labels, who created and changed it, soft delete,
and its place in the organisation tree (the scope declaration of DOMAIN.md §4)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from flask_appbuilder import Model
from flask_babel import lazy_gettext
from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    cast,
    event,
    func,
    inspect,
    literal,
    select,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, declared_attr, object_session
from sqlalchemy.sql.functions import FunctionElement

from app import clock
from app.errors import DomainError
from app.security.principal import current_principal, unscoped

# Named constraints, so that later migrations can alter them on every database (SQLite's batch
# mode needs names). FAB's own ab_* tables were defined before this and keep theirs.
Model.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def state_choices(states: type[StrEnum]) -> dict[str, str]:
    """A status column's choices (stored value -> label) from its workflow's named states."""
    return {state.value: state.value for state in states}


def caption(text: str, **info) -> dict:
    """Column `info` carrying the label (Chinese, translatable): labels are defined once, on
    the model."""
    return {"label": lazy_gettext(text), **info}


@dataclass(frozen=True)
class Scope:
    """Where a row sits for data scope. Each anchor is a callable returning a SQL expression
    on the model (a column, or a correlated subquery when the anchor lies on a related row).

    - ``org``: organisation node ids placing the row in the tree (subtree scopes match them).
    - ``unit``: unit ids owning the row (a liaison's scope).
    - ``member``: member ids the row belongs to (a member's own scope).
    - ``shared``: callables ``(principal) -> clause | None`` for rows visible by rule (published
      to those who may claim them, submitted by or dispatched to one): read, never write.
    - ``directory``: readable by every logged-in user (names and places, no personal data);
      writes stay scoped.
    """

    org: tuple[Callable, ...] = ()
    unit: tuple[Callable, ...] = ()
    member: tuple[Callable, ...] = ()
    shared: tuple[Callable, ...] = ()
    directory: bool = False
    is_global: bool = field(default=False)
    # Rows one files for others (a need a liaison submits): creating one needs only that the
    # new row be readable by a `shared` rule; changing it later needs ownership.
    created_by_rule: bool = False


GLOBAL = Scope(is_global=True)


# Rows not deleted: what every read asks for (app/security/scope.py).
LIVE = "deleted_on IS NULL"


def live_order(table: str, *columns: str) -> tuple[Index, ...]:
    """`__table_args__`: for each column the table's list orders by, an index on (column, id) of
    the live rows — partial on PostgreSQL and SQLite (MariaDB has no partial index: all rows).
    Every read filters `deleted_on IS NULL` and every list order ends with the id, so a first
    page, page 500 or a page sorted either way reads one index range instead of sorting the live
    rows (issue #9). Partial, not led by deleted_on: PostgreSQL does not take `IS NULL` as fixing
    an index's first column for the order, and SQLite's statistics count each NULL as distinct."""
    live = {"postgresql_where": text(LIVE), "sqlite_where": text(LIVE)}
    return tuple(Index(f"ix_{table}_live_{column}", column, "id", **live) for column in columns)


def live_index(table: str, name: str, *columns: str) -> Index:
    """An index of the live rows (partial as `live_order`'s) on `columns`, named
    ix_<table>_live_<name>: it holds every column a figure over all live rows reads, so that a
    GROUP BY of the city (the annual assessment, the dashboard) reads the index, not the
    table's rows one by one (SQLite fetched 600,000 member rows in index order)."""
    return Index(f"ix_{table}_live_{name}", *columns,
                 postgresql_where=text(LIVE), sqlite_where=text(LIVE))


class epoch_seconds(FunctionElement):
    """A stored instant (naive UTC) as seconds since 1970, in each database's own arithmetic: so
    that instants plus durations (a step due some hours after intake) compare and order in SQL."""

    type = Float()
    inherit_cache = True


@compiles(epoch_seconds)
def _epoch_sqlite(element, compiler, **kw):
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element, compiler, **kw):
    return f"EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})"


@compiles(epoch_seconds, "mysql")
@compiles(epoch_seconds, "mariadb")
def _epoch_mysql(element, compiler, **kw):
    return f"TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', {compiler.process(element.clauses, **kw)})"


class plus_seconds(FunctionElement):
    """A stored instant (naive UTC) plus whole seconds, as a stored instant in the column's own
    form: on SQLite the text SQLAlchemy writes, its fraction of a second kept, so that the sum
    compares and orders with instants the ORM stored (a step due some hours after intake). SQLite
    adds to the whole seconds only: it rounds an instant to the millisecond, and 55.9996 s
    became 56 s plus the fraction kept — a second late (CI, one need in two thousand)."""

    type = DateTime()
    inherit_cache = True


@compiles(plus_seconds)
def _plus_sqlite(element, compiler, **kw):
    at, seconds = (compiler.process(c, **kw) for c in element.clauses)
    return (f"(strftime('%Y-%m-%d %H:%M:%S', substr({at}, 1, 19), '+' || ({seconds}) || ' seconds')"
            f" || substr({at}, 20))")


@compiles(plus_seconds, "postgresql")
def _plus_postgresql(element, compiler, **kw):
    at, seconds = (compiler.process(c, **kw) for c in element.clauses)
    return f"({at} + ({seconds}) * INTERVAL '1 second')"


@compiles(plus_seconds, "mysql")
@compiles(plus_seconds, "mariadb")
def _plus_mysql(element, compiler, **kw):
    at, seconds = (compiler.process(c, **kw) for c in element.clauses)
    return f"DATE_ADD({at}, INTERVAL ({seconds}) SECOND)"


def status_is_version(status_column) -> dict:
    """`__mapper_args__` making the status the row's version: every UPDATE then says
    `WHERE status = <the status read>`, so of two people moving the same row at once exactly
    one succeeds (compare and set, on every database)."""
    return {"version_id_col": status_column, "version_id_generator": False}


class ReviewedResult:
    """A result a run computes and its raters then review and publish (已计算 → 已审核 → 已公示:
    a star rating, an annual assessment): when each step happened and who reviewed it, stated
    once. Each keeps its own status column (its states and default), unique key and subject."""

    computed_on = Column(DateTime, info=caption("计算时间"))
    reviewed_on = Column(DateTime, info=caption("审核时间"))
    published_on = Column(DateTime, info=caption("公示时间"))

    @declared_attr
    def reviewed_by_id(cls):
        return Column(Integer, ForeignKey("ab_user.id"), nullable=True, info=caption("审核人"))


class Entity(Model):
    """Base of every business table: audited, soft-deletable, scoped.

    A subclass must declare ``__scope__`` (a `Scope`); `app.security.scope` refuses to start
    when one is missing, so that forgetting data scope is not possible.
    """

    __abstract__ = True
    __label__: str = ""
    __scope__: Scope
    # Fields whose values the audit trail shows masked (DOMAIN.md §6).
    __audit_masked__: frozenset[str] = frozenset()
    # What a related field may point at, as a clause on the target (e.g. a home community is a
    # community node): offered by forms and the API, and the only ids they accept.
    __choices__: dict = {}
    # Rows deleted and restored with this one, each named "Model.column" by its foreign key to
    # it (a unit's lists: "Resource.unit_id"). Those deleted with it carry its deletion time,
    # so that a restore brings them back, and not the ones deleted earlier on their own.
    __soft_delete_cascade__: tuple[str, ...] = ()
    # Relationships that the row's caption (`__str__`) and computed columns read: a list showing
    # these rows, or a caption of one, loads them with it (app/views/base.py, no N+1).
    __list_loads__: tuple[str, ...] = ()
    # The column that is the row's caption (`str(row)`, empty when unset), if one is.
    __caption__: str | None = None
    # Computed columns that a CSV export may also compute in SQL: name -> callable taking
    # `caption(relation)` (a related row's caption in SQL) and returning the cell's text, equal
    # to the Python property (app/exports.py; tests/test_exports_sql.py).
    __sql_columns__: dict = {}

    id = Column(Integer, primary_key=True)
    created_on = Column(DateTime, default=clock.utcnow, nullable=False, info=caption("创建时间"))
    changed_on = Column(DateTime, default=clock.utcnow, onupdate=clock.utcnow, nullable=False,
                        info=caption("修改时间"))
    deleted_on = Column(DateTime, nullable=True, index=True, info=caption("删除时间"))

    @declared_attr
    def created_by_id(cls):
        return Column(Integer, ForeignKey("ab_user.id"), nullable=True, info=caption("创建人"))

    @declared_attr
    def changed_by_id(cls):
        return Column(Integer, ForeignKey("ab_user.id"), nullable=True, info=caption("修改人"))

    @declared_attr
    def deleted_by_id(cls):
        return Column(Integer, ForeignKey("ab_user.id"), nullable=True, info=caption("删除人"))

    @property
    def is_deleted(self) -> bool:
        return self.deleted_on is not None

    def on_create(self, principal) -> None:
        """Fill what a new row takes from who creates it (e.g. the submitting unit)."""

    def check_codes(self) -> None:
        """A coded column (type, status, urgency…) holds one of its codes: the API's body is
        not a form's select, and 紧急 was stored as an urgency no time limit knows."""
        for key, info in _coded_columns(type(self)):
            value = getattr(self, key)
            if value is not None and value not in info["choices"]:
                raise DomainError(f"「{info.get('label', key)}」不能是「{value}」，可选："
                                  + "、".join(map(str, info["choices"].values())), field=key)

    def validate(self, session) -> None:
        """Business rules checked before every flush of a new or changed row (forms, API,
        import and services alike); raise `DomainError` with a Chinese message."""

    def check_delete(self, session) -> None:
        """Refuse a delete that would orphan other rows; raise `DomainError`."""

    def soft_delete(self, user_id: int | None) -> None:
        """Mark deleted, with the rows of `__soft_delete_cascade__`; subclasses with an active
        key clear it so the value can be reused."""
        children = self._cascade(lambda model: model.deleted_on.is_(None))
        moment = clock.utcnow().replace(microsecond=0)  # equal on every database
        earlier = [t for t in self._cascade(None) if t is not None]
        if earlier and max(earlier) >= moment:  # a child deleted on its own this very second
            moment = max(earlier) + timedelta(seconds=1)
        self.deleted_on = moment
        self.deleted_by_id = user_id
        for child in children:
            child.check_delete(object_session(self))
            child.soft_delete(user_id)
            child.deleted_on = moment

    def restore(self) -> None:
        deleted_on = self.deleted_on
        children = self._cascade(lambda model: model.deleted_on == deleted_on) \
            if deleted_on else []
        self.deleted_on = None
        self.deleted_by_id = None
        for child in children:
            child.restore()

    def _cascade(self, state) -> list:
        """The rows of `__soft_delete_cascade__` pointing at this one in `state` (a clause on
        the child model), whoever acts — the write check decides; with None, when the last of
        them was deleted."""
        session = object_session(self)
        found = []
        for target in self.__soft_delete_cascade__ if session and self.id else ():
            model_name, column = target.split(".")
            model = self.registry._class_registry[model_name]
            stmt = select(model) if state else select(func.max(model.deleted_on))
            stmt = stmt.where(getattr(model, column) == self.id)
            with unscoped(), session.no_autoflush:
                if state:
                    found += session.execute(stmt.where(state(model))).scalars().all()
                else:
                    found.append(session.execute(stmt).scalar())
        return found

    def __str__(self) -> str:
        if self.__caption__:
            return getattr(self, self.__caption__) or ""
        return getattr(self, "name", None) or f"{self.__label__ or type(self).__name__} #{self.id}"

    @classmethod
    def __caption_sql__(cls, table):
        """The caption (`str(row)`) as SQL over the Core `table`, for exports that render in
        the database; None where only Python makes it. A model overriding `__str__` overrides
        this with it (tests/test_exports_sql.py holds the two equal)."""
        if cls.__str__ is not Entity.__str__:
            return None
        if cls.__caption__:
            return func.coalesce(table.c[cls.__caption__], "")
        if "name" not in table.c:
            return None
        return func.coalesce(func.nullif(table.c.name, ""),
                             literal(f"{cls.__label__ or cls.__name__} #", String)
                             + cast(table.c.id, String))


def labels_of(model) -> dict[str, str]:
    """Chinese labels declared once, in the columns' and relationships' `info`."""
    labels = {}
    for prop in model.__mapper__.attrs:
        info = getattr(prop, "info", None) or {}
        if not info and hasattr(prop, "columns"):
            info = prop.columns[0].info
        if "label" in info:
            labels[prop.key] = info["label"]
    labels.update({key: lazy_gettext(text)
                   for key, text in getattr(model, "__extra_labels__", {}).items()})
    return labels


def choices_of(model) -> dict[str, dict]:
    """Coded columns (types, statuses) and their Chinese labels."""
    return {c.key: c.info["choices"] for c in model.__table__.columns if "choices" in c.info}


_CODED: dict[type, list[tuple[str, dict]]] = {}


def _coded_columns(model) -> list[tuple[str, dict]]:
    """A model's coded columns (attribute, column info), found once per class: every row of a
    flush is checked, and reading each of its columns to find the coded ones cost an import of
    10,000 rows a tenth of its time."""
    found = _CODED.get(model)
    if found is None:
        found = _CODED[model] = [(prop.key, prop.columns[0].info)
                                 for prop in inspect(model).column_attrs
                                 if "choices" in prop.columns[0].info]
    return found


@event.listens_for(Session, "before_flush")
def _validate(session, flush_context, instances) -> None:
    new = session.new  # a set built on each access: once, not once per row
    for obj in new:
        if isinstance(obj, Entity):
            obj.on_create(current_principal())
    for obj in list(new) + list(session.dirty):
        if isinstance(obj, Entity) and (obj in new or session.is_modified(obj)) \
                and not obj.is_deleted:
            obj.validate(session)  # a model's own word on a code comes first
            obj.check_codes()
    # A row a validation opened (a failing finding's rectification task) goes through the same
    # steps, in this flush: it is written with the row that opened it, or neither is.
    seen = {id(obj) for obj in new}
    opened = [obj for obj in session.new if id(obj) not in seen and isinstance(obj, Entity)]
    while opened:
        seen.update(id(obj) for obj in opened)
        for obj in opened:
            obj.on_create(current_principal())
            obj.validate(session)
        opened = [obj for obj in session.new if id(obj) not in seen and isinstance(obj, Entity)]
