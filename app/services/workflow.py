"""Workflows as tables of transitions (DOMAIN.md §3): the UI's buttons and bulk actions, the
API's `POST /api/v1/<resource>/<pk>/transition/<name>` and the tests all go through `run`.

A transition names the statuses it leaves from, the status it reaches, the roles that may make
it (granted as the FAB permission ``can_<name>`` on the resource by `flask gongjian init`), an
optional row rule (e.g. "the liaison of the unit it was dispatched to"), the fields it asks for
and what it does with them. A move is one audit record of kind transition.

Concurrency: the status column is the model's version column (``version_id_col`` with
``version_id_generator=False``), so every UPDATE says ``WHERE id = … AND status = <read>``: of two
users taking the same row at once, exactly one matches; the other gets `Conflict`, on every
database.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask import current_app

from app import clock
from app.errors import Conflict, DomainError, committed
from app.security.scope import (
    Principal,
    ScopeViolation,
    current_principal,
    writes_within_read_scope,
)
from app.services import audit, notices


class Forbidden(DomainError):
    """The role, or the row rule, does not allow this move (403)."""


@dataclass(frozen=True)
class Field:
    """An input a transition asks for."""

    name: str
    label: str
    kind: str = "text"  # text, textarea, int, date, choice, relation, relations, photo (a file)
    required: bool = False
    choices: tuple = ()  # for kind choice: (value, label) pairs
    relation: str = ""  # for relation(s): the model's relationship it fills


@dataclass(frozen=True)
class Transition:
    name: str
    label: str
    source: tuple[str, ...]
    target: str
    roles: frozenset[str]
    fields: tuple[Field, ...] = ()
    # (obj, principal) -> True, or a Chinese reason why not.
    rule: Callable[[Any, Principal], bool | str] | None = None
    # (obj, data, principal) -> None: sets the fields the move changes besides the status.
    apply: Callable[[Any, dict, Principal], None] | None = None
    confirm: str = ""
    style: str = "primary"
    # What a user who lost the race for this move is told (default: the row was moved meanwhile).
    lost: str = ""

    @property
    def bulk(self) -> bool:
        """Moves that ask for nothing can be made on many rows at once."""
        return not any(f.required for f in self.fields)


@dataclass
class Workflow:
    model: type
    transitions: tuple[Transition, ...]
    status_field: str = "status"
    by_name: dict = field(init=False)

    def __post_init__(self):
        self.by_name = {t.name: t for t in self.transitions}
        REGISTRY[self.model.__tablename__] = self

    def get(self, name: str) -> Transition:
        if name not in self.by_name:
            raise DomainError(f"没有名为“{name}”的操作")
        return self.by_name[name]

    def status_of(self, obj) -> str:
        return getattr(obj, self.status_field)

    @property
    def first_status(self) -> str:
        return self.model.__table__.columns[self.status_field].default.arg

    def may_record_past_work(self, principal: Principal) -> bool:
        """Whether `principal` may create rows past the first status (work done before the
        panel, imported): a role that makes the first moves out of it (the need's accept —
        the community admin or above)."""
        return any(_granted(t, principal) for t in self.transitions if self.first_status in t.source)

    def refusal(self, obj, transition: Transition, principal: Principal) -> DomainError | None:
        """Why `principal` may not make this move on this row now (None: it may)."""
        if not _granted(transition, principal):
            return Forbidden(f"您的角色不能执行“{transition.label}”")
        if self.status_of(obj) not in transition.source:
            return Conflict(f"当前状态为“{self.status_of(obj)}”，不能执行“{transition.label}”")
        if transition.rule is not None:
            verdict = transition.rule(obj, principal)
            if verdict is not True:
                return Forbidden(verdict or f"您不能对该记录执行“{transition.label}”")
        return None

    def available(self, obj, principal: Principal | None = None) -> list[Transition]:
        principal = principal or current_principal()
        return [t for t in self.transitions if self.refusal(obj, t, principal) is None]

    def run(self, session, obj, name: str, data: dict | None = None) -> Any:
        """Make the move, commit it, or raise (nothing written)."""
        principal = current_principal()
        transition = self.get(name)
        refusal = self.refusal(obj, transition, principal)
        if refusal is not None:
            raise refusal
        values = clean(transition.fields, data or {})
        lost = transition.lost or f"该记录已被他人处理（{transition.label}），请刷新后查看"
        try:
            with writes_within_read_scope(session), committed(session, lost):
                if transition.apply is not None:
                    transition.apply(obj, values, principal)
                setattr(obj, self.status_field, transition.target)
                audit.mark_operation(session, "transition", transition.name)
                session.flush()
                # Its notices, in its transaction: a move rolled back tells nobody.
                notices.on_move(session, obj, transition.name, principal.user_id)
        except ScopeViolation:
            # The row was readable when loaded: if it is not now, somebody moved it meanwhile.
            raise Conflict(lost) from None
        return obj


REGISTRY: dict[str, Workflow] = {}


def may_make(transition: Transition, principal: Principal | None = None) -> bool:
    """Whether the user's roles may make this move at all (its row rule aside): the pages
    offer a move as a bulk action only to those who may (issue 27)."""
    return _granted(transition, principal or current_principal())


def _granted(transition: Transition, principal: Principal) -> bool:
    """The roles named in the table (and the administrator, who may do everything)."""
    return principal.system or bool(
        principal.role_names & (transition.roles | {current_app.config["AUTH_ROLE_ADMIN"]}))


def clean(fields: tuple[Field, ...], data: dict) -> dict:
    """Validate a move's input; Chinese messages, nothing written on error."""
    values = {}
    for f in fields:
        raw = data.get(f.name)
        if isinstance(raw, str):
            raw = raw.strip()
        if raw in (None, "", []):
            if f.required:
                raise DomainError(f"请填写{f.label}", f.name)
            values[f.name] = [] if f.kind == "relations" else None
            continue
        try:
            values[f.name] = _convert(f, raw)
        except (TypeError, ValueError):
            raise DomainError(f"{f.label}格式不正确", f.name) from None
    return values


def _convert(f: Field, raw):
    if f.kind == "int":
        return int(raw)
    if f.kind == "date":
        return raw if isinstance(raw, date) else date.fromisoformat(str(raw)[:10])
    if f.kind == "datetime":  # typed by a person: the zone's wall clock, or with an offset
        return raw if isinstance(raw, datetime) else clock.from_text(str(raw))
    if f.kind == "choice":
        allowed = {str(value) for value, _ in f.choices}
        if str(raw) not in allowed:
            raise ValueError
        return str(raw)
    if f.kind == "photo":  # an uploaded file (a form's); its checks are the move's own
        if not getattr(raw, "filename", None) or not hasattr(raw, "stream"):
            raise ValueError
        return raw
    if f.kind == "relation":
        return int(raw)
    if f.kind == "relations":
        items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
        return [int(x) for x in items if str(x).strip()]
    return str(raw)
