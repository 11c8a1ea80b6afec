"""督办 — the supervised task, one mechanism for every kind of it (issue 26).

A resolution of a joint meeting (议定事项), a rectification task opened by a failing inspection
finding (整改任务) and an item of a node's annual work plan (工作要点) are the same thing to
supervise: a lead unit (or, for a rectification, a responsible node) and co-units, a deadline, the
states 待办 → 办理中 → 已办结, a closing date and result, progress notes written by the lead unit
and supervision notes by the supervising side, "overdue" and "closed on time" computed in the
query, to-do entries and notices. Each model declares its own columns of that shape by mixing in
`Supervised`, and its notes by mixing in `ProgressNote`; the workflow (app/services/supervision.py)
and the notices (app/services/notices.py) read only what these mixins give.

The column names are fixed here on purpose — `lead_unit_id`, `deadline`, `status`, `closed_on`,
`result`, co-units in `<table>_co_unit` — so that code reading every supervised model (the annual
assessment's "closed on time", the scan for deadlines) is written once.
"""
from __future__ import annotations

from datetime import date
from enum import StrEnum

from sqlalchemy import (
    Column,
    Date,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    and_,
    or_,
    select,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import declared_attr, object_session

from app import clock
from app.errors import DomainError
from app.models.base import Model, caption, state_choices, status_is_version


class TaskStatus(StrEnum):
    """The states of a supervised task; the values are what the database stores."""

    TODO = "待办"
    IN_HAND = "办理中"
    DONE = "已办结"


TASK_STATUSES = state_choices(TaskStatus)
# Every supervised model, in the order their modules load (`Supervised` adds each).
SUPERVISED: list[type] = []


def co_unit_table(table: str) -> Table:
    """The co-units (配合单位) of a supervised table: `<table>_co_unit(<table>_id, unit_id)`."""
    return Table(
        f"{table}_co_unit", Model.metadata,
        Column(f"{table}_id", Integer, ForeignKey(f"{table}.id"), primary_key=True),
        Column("unit_id", Integer, ForeignKey("unit.id"), primary_key=True, index=True),
    )


def co_unit_rule(model, co_units: Table):
    """A `Scope.shared` rule: co-units read the task (the lead unit answers for it)."""
    key = co_units.c[f"{model.__tablename__}_id"]
    return lambda p: model.id.in_(select(key).where(co_units.c.unit_id.in_(p.unit_ids))) \
        if p.unit_ids else None


def tasks_of_units(model, co_units: Table, unit_ids):
    """Ids of the tasks these units lead or co-lead (Core tables: no scope criteria inside)."""
    table = model.__table__
    key = co_units.c[f"{model.__tablename__}_id"]
    return select(table.c.id).where(or_(
        table.c.lead_unit_id.in_(unit_ids),
        table.c.id.in_(select(key).where(co_units.c.unit_id.in_(unit_ids)))))


class Supervised:
    """The columns, computed flags and checks every supervised task shares. A model sets
    `__lead_required__` False when a node may answer for the task instead of a unit (a
    rectification), and names its note model in `__note_model__`."""

    __lead_required__ = True
    __note_model__: str = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__tablename__" in cls.__dict__:
            SUPERVISED.append(cls)

    @declared_attr
    def lead_unit_id(cls):
        return Column(Integer, ForeignKey("unit.id"), nullable=not cls.__lead_required__,
                      index=True, info=caption("牵头单位"))

    @declared_attr
    def deadline(cls):
        return Column(Date, nullable=False, index=True, info=caption("办结时限"))

    @declared_attr
    def status(cls):
        return Column(String(8), nullable=False, default=TaskStatus.TODO, index=True,
                      info=caption("状态", choices=TASK_STATUSES))

    @declared_attr
    def closed_on(cls):
        return Column(Date, nullable=True, index=True, info=caption("办结日期"))

    @declared_attr
    def result(cls):
        return Column(Text, info=caption("办理结果"))

    @declared_attr.directive
    def __mapper_args__(cls):
        # The status is the row's version: of two people moving a task at once, one wins.
        return status_is_version(cls.status)

    @hybrid_property
    def overdue(self) -> bool:
        """Past its deadline and not done: computed in the query, never a stored flag."""
        return bool(self.deadline and self.deadline < clock.today()
                    and self.status != TaskStatus.DONE)

    @overdue.inplace.expression
    @classmethod
    def _overdue_expression(cls):
        # The application's clock, as for the deadlines people write (the database's may be UTC).
        return and_(cls.deadline < clock.today(), cls.status != TaskStatus.DONE)

    @hybrid_property
    def closed_on_time(self) -> bool | None:
        """Closed on or before its deadline (None while open). In SQL a condition, false while
        open: `func.sum(case((Model.closed_on_time, 1), else_=0))` counts them."""
        if self.status != TaskStatus.DONE or self.closed_on is None:
            return None
        return self.closed_on <= self.deadline

    @closed_on_time.inplace.expression
    @classmethod
    def _closed_on_time_expression(cls):
        return and_(cls.status == TaskStatus.DONE, cls.closed_on <= cls.deadline)

    @property
    def latest_note(self):
        return self.notes[-1] if self.notes else None

    # --- what the mechanism asks of each model -------------------------------------------

    def supervisor_org_id(self) -> int | None:
        """The node whose admins supervise the task (told when it is overdue)."""
        raise NotImplementedError

    def responsible_org_id(self) -> int | None:
        """The node answering for the task instead of a unit, if any (a rectification's)."""
        return None

    def add_note(self, content: str) -> None:
        """A supervision note written by the system's own moves (the reason of a reopening)."""
        model = self.registry._class_registry[self.__note_model__]
        self.notes.append(model(content=content, note_date=clock.today()))

    # --- checks ---------------------------------------------------------------------------

    def check_assignment(self, lead_missing: str = "请选择牵头单位") -> None:
        if self.lead_unit is None and (self.__lead_required__ or self.responsible_org_id() is None):
            raise DomainError(lead_missing, "lead_unit")
        if self.deadline is None:
            raise DomainError("请填写办结时限", "deadline")
        if self.lead_unit is not None and any(u.id == self.lead_unit.id for u in self.co_units):
            raise DomainError("配合单位不能包含牵头单位", "co_units")

    def check_closing(self, started: date | None = None, started_text: str = "") -> None:
        """A done task carries its closing date (not in the future, not before it began);
        an open one none."""
        if self.status == TaskStatus.DONE:
            if self.closed_on is None:
                raise DomainError("请填写办结日期", "closed_on")
            if self.closed_on > clock.today():
                raise DomainError("办结日期不能晚于今天", "closed_on")
            if started and self.closed_on < started:
                raise DomainError(f"办结日期不能早于{started_text}", "closed_on")
        elif self.closed_on is not None:
            raise DomainError("尚未办结的事项不能填写办结日期", "closed_on")


class ProgressNote:
    """A note on a supervised task: the supervising side's 督办意见 (no unit), or the lead
    unit's 进展报告 (its unit: the liaison writes it and owns it). The model names the
    relationship to its task in `__task__`."""

    __task__: str = ""
    __task_label__: str = ""  # how messages name the task (议定事项, 整改任务, 工作要点)

    @declared_attr
    def note_date(cls):
        return Column(Date, nullable=False, default=date.today, index=True, info=caption("日期"))

    @declared_attr
    def author(cls):
        return Column(String(50), index=True, info=caption("填报人"))

    @declared_attr
    def content(cls):
        return Column(Text, nullable=False, info=caption("督办情况/办理进展"))

    @declared_attr
    def progress(cls):
        return Column(Integer, index=True, info=caption("完成进度（%）"))

    @declared_attr
    def unit_id(cls):
        return Column(Integer, ForeignKey("unit.id"), nullable=True, index=True,
                      info=caption("报送单位"))

    @property
    def task(self):
        return getattr(self, self.__task__)

    @property
    def kind(self) -> str:
        return "进展报告" if self.unit_id else "督办意见"

    def on_create(self, principal) -> None:
        """A liaison's note is its unit's progress report; the author defaults to who wrote it."""
        from app.models.org import Unit

        if not self.author:
            self.author = _current_user_name()
        if principal.sees_all or principal.org_paths or not principal.unit_ids:
            return
        if self.unit_id is None and self.unit is None:
            lead = self.task.lead_unit_id if self.task is not None else None
            # Set the relationship, not only the column: a form may have set it to None.
            self.unit = object_session(self).get(
                Unit, lead if lead in principal.unit_ids else principal.unit_ids[0])

    def validate(self, session) -> None:
        task = self.task
        noun = self.__task_label__
        if task is None:
            raise DomainError(f"请选择{noun}", self.__task__)
        if not (self.content or "").strip():
            raise DomainError("请填写督办情况或办理进展", "content")
        if self.id is None and task.status == TaskStatus.DONE:
            raise DomainError(f"该{noun}已办结，不能再添加督办记录；如需继续督办，请先“重新办理”",
                              self.__task__)
        unit_id = self.unit.id if self.unit is not None else self.unit_id
        lead_id = task.lead_unit.id if task.lead_unit is not None else task.lead_unit_id
        if unit_id is not None and unit_id != lead_id:
            raise DomainError("只有牵头单位可以报送办理进展", "unit")
        if self.progress is not None and not 0 <= self.progress <= 100:
            raise DomainError("完成进度应为0到100之间的整数", "progress")
        if self.note_date is None:
            self.note_date = clock.today()
        if self.note_date > clock.today():
            raise DomainError("日期不能晚于今天", "note_date")

    def __str__(self) -> str:
        text = self.content or ""
        return f"{self.note_date} {text[:20]}"


def _current_user_name() -> str | None:
    from flask import has_request_context
    from flask_login import current_user

    if not has_request_context() or not getattr(current_user, "is_authenticated", False):
        return None
    name = f"{current_user.first_name or ''}{current_user.last_name or ''}".strip()
    return name or current_user.username
