"""Data scope (DOMAIN.md §4): the one mechanism for reads and the one place that checks writes.

Reads: every ORM SELECT issued while a request (or a CLI command acting as a user) is under way
gets, for each scoped model, the criteria of the acting principal — plus the soft-delete
filter — through SQLAlchemy's ``do_orm_execute`` hook and ``with_loader_criteria``. Lists,
show/edit/delete, FAB's bulk actions (which skip ``base_filters``), related-record dropdowns, the
REST API with its ``_info`` and ``related`` choices, exports and figures all query through the
session, so none of them can forget the filter.

Writes: ``before_flush`` checks that every changed row was writable before the change, and
``after_flush`` (inside the same transaction) that it is writable after it and that every
related id it now carries points at a row the principal may read. Anything else raises
`ScopeViolation`, and the transaction is rolled back.

System work (migrations, seed, the CLI without ``--as``) runs with the `SYSTEM` principal,
which sees everything; a request always has a principal, anonymous at worst, which sees only
public rows.
"""
from __future__ import annotations

from contextlib import contextmanager

from flask import g, has_app_context
from sqlalchemy import event, false, or_, select, true
from sqlalchemy.orm import Mapper, Session, with_loader_criteria
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression
from sqlalchemy.sql.selectable import ScalarSelect, TableClause

from app.errors import DomainError
from app.models.base import Entity
from app.security.principal import (  # noqa: F401 (who acts, re-exported to the scope's callers)
    ANONYMOUS,
    REVEALED,
    SYSTEM,
    Principal,
    acting_as,
    current_principal,
    is_unscoped,
    own_rows_by,
    principal_for,
    sees_personal_data,
    unscoped,
)
from app.security.roles import editable_fields


class ScopeViolation(DomainError):
    """A write outside the principal's data scope."""


class FieldRefused(ScopeViolation):
    """A change to a column the principal's roles may not change (roles.FIELD_RIGHTS): an
    operation its role lacks, told as such (403 on the API)."""


_OWNED = "_gongjian_owned_rows"
_OWNED_BATCH = 500


def _owns(row, principal: Principal) -> bool:
    """Whether `row` lies in the principal's own scope (not only readable). Asked row by row
    while a page or an export formats its cells, answered a batch at a time: the first row
    of a model asks for every row of it the session holds (one query per page or export
    chunk, not one per row), and remembers the answers for the request."""
    model = type(row)
    scope = getattr(model, "__scope__", None)
    if principal.sees_all or (scope is not None and scope.is_global):
        return True
    if scope is None:  # an account (ab_user): no data scope, owned only by who sees all
        return False
    if not has_app_context():
        return False
    known = g.setdefault(_OWNED, {}).setdefault((model, principal), {})
    if row.id not in known:
        from sqlalchemy.orm import object_session

        session = object_session(row)
        if session is None:
            from app.extensions import db

            session = db.session
        pending = [row.id] + [o.id for o in list(session.identity_map.values())
                              if type(o) is model and o.id is not None and o.id not in known
                              and o.id != row.id]
        clause = owner_clause(model, principal)
        for start in range(0, len(pending), _OWNED_BATCH):
            ids = pending[start:start + _OWNED_BATCH]
            owned = _ids_passing(session, model, ids, clause)
            known.update({i: i in owned for i in ids})
    return known[row.id]


_READ_SCOPE_WRITES = "write_within_read_scope"


@contextmanager
def writes_within_read_scope(session):
    """A workflow move may change a row its maker may only read (a need dispatched to one's
    unit): the move's own rule decides who may make it; scope still requires the row to be
    readable before it, and every row it points at to be readable."""
    session.info[_READ_SCOPE_WRITES] = True
    try:
        yield
    finally:
        session.info.pop(_READ_SCOPE_WRITES, None)


def _write_clause(session):
    return read_clause if session.info.get(_READ_SCOPE_WRITES) else owner_clause


def may_read(session, model, pk) -> bool:
    """Whether the acting principal may read row `pk` of `model` (deleted rows included)."""
    principal = current_principal()
    if principal.system:
        return True
    clause = read_clause(model, principal)
    return clause is true() or pk in _ids_passing(session, model, [pk], clause)


def may_write(session, obj) -> bool:
    """Whether the acting principal may change `obj` (the write check's own predicate): an edit
    form of a row it may only read (the directory) is not found, not offered and then refused."""
    principal = current_principal()
    if principal.system:
        return True
    clause = owner_clause(type(obj), principal)
    return clause is true() or obj.id in _ids_passing(session, type(obj), [obj.id], clause)


def field_limits(model, principal: Principal | None = None) -> frozenset[str] | None:
    """The columns `principal` may change on `model`'s rows (None: every one)."""
    principal = principal or current_principal()
    if principal.system:
        return None
    return editable_fields(model.__tablename__, principal.role_names)


def field_allowed(model, key: str, limits: frozenset[str] | None) -> bool:
    """Whether attribute `key` (a column, or a many-to-one relationship: its columns) may change."""
    if limits is None or key in limits:
        return True
    relation = model.__mapper__.relationships.get(key)
    return relation is not None and all(c.key in limits for c in relation.local_columns)


# Columns a write sets by itself (who and when, the soft-delete pair, derived keys): never the
# user's choice, so never refused field by field.
_BOOKKEEPING = {"created_on", "changed_on", "created_by_id", "changed_by_id", "deleted_on",
                "deleted_by_id"}


def _check_fields(session, objs) -> None:
    from sqlalchemy.orm import attributes

    principal = current_principal()
    for obj in objs:
        limits = field_limits(type(obj), principal)
        if limits is None:
            continue
        mapper = obj.__mapper__
        keys = [a.key for a in mapper.column_attrs] + [
            r.key for r in mapper.relationships if r.direction.name == "MANYTOONE"]
        refused = [key for key in keys
                   if key not in _BOOKKEEPING and not key.endswith("_key")
                   and attributes.get_history(
                       obj, key, passive=attributes.PASSIVE_NO_INITIALIZE).has_changes()
                   and not field_allowed(type(obj), key, limits)]
        # A relationship and its column name the same field: say it once, by its label.
        labels = []
        for key in refused:
            prop = mapper.attrs[key]
            info = getattr(prop, "info", None) or (prop.columns[0].info if hasattr(prop, "columns") else {})
            label = str(info.get("label", key))
            if label not in labels:
                labels.append(label)
        if labels:
            raise FieldRefused(f"无权修改该{type(obj).__label__ or type(obj).__name__}的"
                               f"“{'、'.join(labels)}”：请联系所在社区办理", refused[0])


# --- predicates ---------------------------------------------------------------------------

def subtree_ids(paths: tuple[str, ...]):
    from app.models.org import Organization

    table = Organization.__table__  # Core table: scope criteria do not apply inside it
    # Never correlated: the outer query may itself list organisations.
    return (select(table.c.id).where(or_(*[table.c.path.like(p + "%") for p in paths]))
            .correlate(None))


def _ancestor_ids(paths: tuple[str, ...]) -> list[int]:
    """The nodes above (and at) the principal's nodes, read off their materialised paths."""
    return sorted({int(part) for path in paths for part in path.strip("/").split("/") if part})


_ANCHORS: dict = {}


def _anchor(model: type[Entity], anchor):
    """An anchor's expression; one lying on a related row (a scalar subquery) correlates to
    the scoped row only. Left to auto-correlation, it would also correlate away the related
    table whenever the outer query joins it (a figure joining joint bodies, a list ordered by a
    related column), and select from nothing. Built once: it depends on the model only."""
    expr = _ANCHORS.get((model, anchor))
    if expr is None:
        expr = anchor()
        if isinstance(expr, ScalarSelect):
            inner = expr.element
            others = [f for f in inner.get_final_froms() if f is not model.__table__]
            expr = inner.correlate_except(*others).scalar_subquery()
        _ANCHORS[(model, anchor)] = expr
    return expr


_SEMIJOINS: dict = {}


def _anchor_in(model: type[Entity], anchor, values):
    """`anchor IN values`. An anchor read off a related row by that row's primary key (a
    service record's member's community: `(SELECT community_id FROM member WHERE member.id =
    service_record.member_id)`) is asked the other way round, `member_id IN (SELECT id FROM
    member WHERE community_id IN values)`: the same rows (the key is unique, and the related
    table's own criteria still apply inside), but the subquery is run once, not once per
    row — shequ01's service-record list spent 80 ms of each of its count and page queries
    on SQLite evaluating two correlated subqueries for every one of 25,000 records (issue 30).
    Any other anchor is compared as it is."""
    key = (model, anchor)
    if key not in _SEMIJOINS:
        _SEMIJOINS[key] = _semijoin_shape(model, anchor())
    shape = _SEMIJOINS[key]
    if shape is None:
        return _anchor(model, anchor).in_(values)
    owner_column, related_key, related_column = shape
    # Never correlated: the outer query may join the related table itself (a list ordered by
    # a member's column).
    return owner_column.in_(select(related_key).where(related_column.in_(values))
                            .correlate(None))


def _semijoin_shape(model, expr):
    """(the owner's column, the related row's key, the anchor's column) when `expr` is
    `SELECT column FROM related WHERE related.pk = owner.column`, else None."""
    if not isinstance(expr, ScalarSelect):
        return None
    inner = expr.element
    # The owner's table is among the FROMs until correlated away.
    froms = [f for f in inner.get_final_froms() if f is not model.__table__]
    where = inner.whereclause
    columns = list(inner.selected_columns)
    if len(froms) != 1 or not isinstance(froms[0], TableClause) or len(columns) != 1 \
            or not isinstance(where, BinaryExpression) or where.operator is not operators.eq \
            or inner._limit_clause is not None or inner._group_by_clauses \
            or inner._having_criteria:
        return None
    related, column = froms[0], columns[0]
    pk = list(related.primary_key)
    for key, owner in ((where.left, where.right), (where.right, where.left)):
        if len(pk) == 1 and getattr(key, "table", None) is related and key.name == pk[0].name \
                and getattr(owner, "table", None) is model.__table__ \
                and getattr(column, "table", None) is related:
            return owner, key, column
    return None


def placed_under(model: type[Entity], path: str):
    """Rows that the model's scope declaration places in the subtree at `path`: what a
    street's figures count and its drill-down lists show (a filter, not a grant)."""
    anchors = model.__scope__.org
    if not anchors:
        return false()
    subtree = subtree_ids((path,))
    return or_(*[_anchor_in(model, anchor, subtree) for anchor in anchors])


def owner_clause(model: type[Entity], principal: Principal):
    """Rows the principal owns through its roles: what it may write (and read)."""
    scope = model.__scope__
    if principal.sees_all or scope.is_global:
        return true()
    parts = []
    if principal.org_paths:
        subtree = subtree_ids(principal.org_paths)
        parts += [_anchor_in(model, anchor, subtree) for anchor in scope.org]
    if principal.unit_ids:
        parts += [_anchor_in(model, anchor, principal.unit_ids) for anchor in scope.unit]
    if principal.member_ids:
        parts += [_anchor_in(model, anchor, principal.member_ids) for anchor in scope.member]
    return or_(*parts) if parts else false()


# The models mask personal data by who owns a row (principal.sees_personal_data) without
# importing this module: they are handed its rule.
own_rows_by(_owns, owner_clause)


def choice_clause(model: type[Entity], column, target: type[Entity], principal: Principal):
    """Which `target` rows a form may offer for `model.column`: those under which the row could
    be saved. When the principal's scope reaches the row through another anchor, any readable
    target will do (None); when only through this column, just the targets in scope."""
    scope = model.__scope__
    if principal.sees_all or scope.is_global:
        return None
    grants = [(principal.org_paths, scope.org), (principal.unit_ids, scope.unit),
              (principal.member_ids, scope.member)]
    through_column = []
    for granted, anchors in grants:
        if not granted or not anchors:
            continue
        if any(anchor().compare(column) for anchor in anchors):
            through_column.append(granted)
        else:
            return None
    if not through_column:
        # Rows one files for others (a need) are placed anywhere one may read; otherwise none.
        return None if scope.created_by_rule else false()
    parts = []
    if principal.org_paths in through_column:
        parts.append(target.id.in_(subtree_ids(principal.org_paths)))
        if len(scope.org) > 1:
            # Placed in one's subtree by another anchor (its grid), the row may name a node
            # above one's own: a grid secretary's need names the grid's community.
            parts.append(target.id.in_(_ancestor_ids(principal.org_paths)))
    for granted in through_column:
        if granted is not principal.org_paths:
            parts.append(target.id.in_(granted))
    return or_(*parts)


def related_choices(model, relation: str):
    """The rows a form, a filter or the API may offer — and accept — for `model.relation`: those
    the user may read (the session's filter), that the model's own rule allows (`__choices__`,
    e.g. a home community must be a community node), and under which the row could be saved."""
    prop = model.__mapper__.relationships[relation]
    target = prop.mapper.class_
    stmt = select(target)
    rule = getattr(model, "__choices__", {}).get(relation)
    if rule is not None:
        stmt = stmt.where(rule())
    if hasattr(model, "__scope__"):
        within = choice_clause(model, next(iter(prop.local_columns)), target, current_principal())
        if within is not None:
            stmt = stmt.where(within)
    return stmt


def placed_only_by(session, model, relation: str, principal: Principal) -> bool:
    """Whether a row of `model` the principal makes lies in its scope only through `relation`:
    its grants reach the model by the model's org anchors alone, `relation` is one of them, and
    the others can name no node of its subtree. A grid secretary's need is its own through its
    grid only (the need's community lies above the grid); a community admin's is placed by its
    community, its grid left free. The add form holds such a field as a required one, set to
    the principal's own node (`app.views.fields.settle_single_choices`)."""
    scope = getattr(model, "__scope__", None)
    if scope is None or scope.is_global or principal.sees_all or not principal.org_paths:
        return False
    if (principal.unit_ids and scope.unit) or (principal.member_ids and scope.member):
        return False  # the row may be placed by the principal's unit or member instead
    relationships = model.__mapper__.relationships
    column = next(iter(relationships[relation].local_columns))
    others = [anchor() for anchor in scope.org if not anchor().compare(column)]
    if len(others) == len(scope.org):
        return False  # not an anchor of the model's place
    subtree = subtree_ids(principal.org_paths)
    for expr in others:
        other = next((r for r in relationships
                      if len(r.local_columns) == 1 and expr.compare(next(iter(r.local_columns)))),
                     None)
        if other is None:
            return False  # an anchor read through related rows: it may place the row
        target = other.mapper.class_
        offered = related_choices(model, other.key).where(target.id.in_(subtree)).limit(1)
        if session.execute(offered).first() is not None:
            return False
    return True


def read_clause(model: type[Entity], principal: Principal):
    """Rows the principal may read: its own, the directory, and rows visible by rule."""
    scope = model.__scope__
    if principal.sees_all or scope.is_global or scope.directory:
        return true()
    parts = [owner_clause(model, principal)]
    for rule in scope.shared:
        clause = rule(principal)
        if clause is not None:
            parts.append(clause)
    return or_(*parts)


def _not_deleted(model):
    return model.deleted_on.is_(None)


def scoped_models() -> list[type[Entity]]:
    return [m.class_ for m in Entity.registry.mappers if issubclass(m.class_, Entity)]


def check_declarations() -> None:
    """Refuse to start when a business model forgets its scope declaration."""
    missing = [m.__name__ for m in scoped_models() if not hasattr(m, "__scope__")]
    if missing:
        raise RuntimeError(f"These models declare no __scope__ (DOMAIN.md §4): {missing}")


# --- reads ----------------------------------------------------------------------------------

_BY_TABLE: dict = {}


@event.listens_for(Mapper, "mapper_configured")
def _forget_models_by_table(mapper, cls) -> None:
    # A model mapped later is configured before it is first queried: counting the registry's
    # mappers on every statement instead (a frozenset of all of them built each time) was a
    # thirtieth of a list page (issue 30).
    _BY_TABLE.clear()
    _REFERENCES.clear()


def _models_by_table() -> dict:
    """Scoped models by table name (rebuilt should a model be mapped later)."""
    if "models" not in _BY_TABLE:
        _BY_TABLE["models"] = {m.__table__.name: m for m in scoped_models()}
    return _BY_TABLE["models"]


def _models_in(element, by_table) -> set:
    """The scoped models whose tables a statement (or a clause) names anywhere: its FROM list,
    joins, subqueries, and the relationships its loader options will join or load."""
    found = {by_table[e.name] for e in visitors.iterate(element)
             if isinstance(e, TableClause) and e.name in by_table}
    for option in getattr(element, "_with_options", ()):
        for load in getattr(option, "context", ()):
            for step in getattr(getattr(load, "path", None), "path", ()):
                cls = getattr(step, "class_", None)
                if cls in by_table.values():
                    found.add(cls)
    return found


_CRITERIA = "_gongjian_read_criteria"


def _criteria_for(model, principal, filter_scope, deleted_filter, by_table):
    """The loader criteria of one model for one principal, with the other scoped models they
    name (an anchor on a related row), built once per request: building and hashing a
    criterion for every model on every query was most of a page's time."""
    key = (model, principal, filter_scope, deleted_filter)
    cache = g.setdefault(_CRITERIA, {}) if has_app_context() else {}
    if key not in cache:
        clauses = []
        if filter_scope:
            clause = read_clause(model, principal)
            if clause is not true():
                clauses.append(clause)
        if deleted_filter:
            clauses.append(_not_deleted(model))
        if not clauses:
            cache[key] = (None, set())
        else:
            criteria = clauses[0] if len(clauses) == 1 else clauses[0] & clauses[1]
            cache[key] = (with_loader_criteria(model, criteria, include_aliases=True),
                          _models_in(criteria, by_table) - {model})
    return cache[key]


def read_criteria(statement, relationship_load: bool = False, include_deleted: bool = False):
    """The loader options making `statement` read what the acting principal may read: what
    every ORM SELECT gets below, and what a statement the session does not run itself (an
    export's PostgreSQL COPY) gets explicitly."""
    # Criteria go to the scoped models the statement involves, and to those their own criteria
    # name in turn: a criterion on a model the statement never names would change nothing.
    by_table = _models_by_table()
    pending = _models_in(statement, by_table)
    if not pending:
        return []
    deleted_filter = not include_deleted
    # Relationship loads hang off a row already in scope; they only drop deleted rows.
    filter_scope = not relationship_load
    principal = current_principal() if filter_scope else SYSTEM
    filter_scope = filter_scope and not principal.system
    involved, named = set(), pending
    while named:
        involved |= named
        named = set().union(*(_criteria_for(m, principal, filter_scope, deleted_filter,
                                            by_table)[1] for m in named)) - involved
    return [option for model in sorted(involved, key=lambda m: m.__tablename__)
            if (option := _criteria_for(model, principal, filter_scope, deleted_filter,
                                        by_table)[0]) is not None]


def related_rows(session, model, ids) -> dict:
    """The rows of `model` with these ids, by id, read as a relationship load reads them (what
    a selectinload of a many-to-one sends, without its cost): the rows pointing at them are in
    scope already, so only deleted ones are left out — the related record shown is the one the
    row points at."""
    # Marked as a load in bulk (one per table, whatever the page size), as a selectinload is.
    statement = select(model).where(model.id.in_(ids)).execution_options(gongjian_bulk_load=True)
    statement = statement.options(*read_criteria(statement, relationship_load=True))
    with unscoped():  # the criteria are the relationship load's, given above
        return {row.id: row for row in session.execute(statement).scalars()}


@event.listens_for(Session, "do_orm_execute")
def _filter_reads(state) -> None:
    if not state.is_select or state.is_column_load or is_unscoped():
        return
    options = read_criteria(state.statement, state.is_relationship_load,
                            bool(state.execution_options.get("include_deleted")))
    if options:
        state.statement = state.statement.options(*options)


# --- writes ---------------------------------------------------------------------------------

def _changed_entities(session, collections):
    for obj in collections:
        if isinstance(obj, Entity) and session.is_modified(obj, include_collections=False):
            yield obj


def _ids_passing(session, model, ids, clause) -> set:
    if not ids:
        return set()
    with unscoped():
        rows = session.execute(select(model.id).where(model.id.in_(ids), clause))
        return {row[0] for row in rows}


def _check(session, objs, clause_for, message) -> None:
    by_model: dict[type, list] = {}
    for obj in objs:
        by_model.setdefault(type(obj), []).append(obj)
    principal = current_principal()
    for model, items in by_model.items():
        clause = clause_for(model, principal)
        if clause is true():
            continue
        ids = [o.id for o in items]
        passing = _ids_passing(session, model, ids, clause)
        for obj in items:
            if obj.id not in passing:
                raise ScopeViolation(message.format(label=model.__label__ or model.__name__))


def _related_targets(obj):
    """(target model, id) of each many-to-one reference the object carries now."""
    for target, key in _references(type(obj)):
        value = getattr(obj, key, None)
        if value is not None:
            yield target, value


_REFERENCES: dict[type, list[tuple[type, str]]] = {}


def _references(model) -> list[tuple[type, str]]:
    """(target model, attribute of the local column) of each many-to-one reference to a scoped
    model, worked out once per model: an import's flush asks for every row it writes."""
    found = _REFERENCES.get(model)
    if found is None:
        mapper, found = model.__mapper__, []
        for rel in mapper.relationships:
            if rel.direction.name != "MANYTOONE" or not issubclass(rel.mapper.class_, Entity):
                continue
            found.extend((rel.mapper.class_, mapper.get_property_by_column(local).key)
                         for local in rel.local_columns)
        _REFERENCES[model] = found
    return found


@event.listens_for(Session, "before_flush")
def _check_writes_before(session, flush_context, instances) -> None:
    principal = current_principal()
    if principal.system or is_unscoped():
        return
    for obj in session.deleted:
        if isinstance(obj, Entity) and not session.info.get("purge"):
            raise ScopeViolation("业务数据只能软删除（移入回收站），不能直接删除")
    # "Writable before the change" means before this transaction's first change to the row:
    # a later flush of the same transaction would see the row as the first one left it.
    checked = session.info.setdefault(_CHECKED, set())
    existing = [o for o in _changed_entities(session, session.dirty)
                if (type(o), o.id) not in checked]
    _check(session, existing, _write_clause(session), "无权修改该{label}（超出数据范围）")
    checked.update((type(o), o.id) for o in existing)
    _check_fields(session, _changed_entities(session, session.dirty))


_CHECKED = "scope_checked_rows"


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _forget_checked(session) -> None:
    session.info.pop(_CHECKED, None)


@event.listens_for(Session, "after_flush")
def _check_writes_after(session, flush_context) -> None:
    principal = current_principal()
    if principal.system or is_unscoped():
        return
    new = session.new  # a set built on each access: once, not once per row
    written = list(new) + list(_changed_entities(session, session.dirty))
    written = [o for o in written if isinstance(o, Entity)]
    filed = [o for o in new if isinstance(o, Entity) and o.__scope__.created_by_rule]
    # A workflow move may take a row out of its maker's sight (a liaison declining a need):
    # its table decides who may make it, so only the rows it creates are checked after it.
    filed_ids = {id(o) for o in filed}
    placed = [o for o in written if id(o) not in filed_ids and (
        o in new or not session.info.get(_READ_SCOPE_WRITES))]
    _check(session, placed, _write_clause(session), "该{label}超出您的数据范围，不能保存")
    _check(session, filed, read_clause, "该{label}超出您的数据范围，不能保存")
    refs: dict[type, set] = {}
    for obj in written:
        if obj.is_deleted:  # moved to the recycle bin (with its parent, say): it places nothing
            continue
        for target, value in _related_targets(obj):
            refs.setdefault(target, set()).add(value)
    for target, ids in refs.items():
        clause = read_clause(target, principal) & _not_deleted(target)
        visible = _ids_passing(session, target, list(ids), clause)
        if visible != ids:
            raise ScopeViolation(f"所选{target.__label__ or target.__name__}不存在或超出您的数据范围")
