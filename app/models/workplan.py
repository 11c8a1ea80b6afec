"""工作要点 — a node's annual work plan: numbered items, each led by a unit (with co-units) and
due by a date, supervised to done like a joint meeting's resolutions (app/models/supervision.py).
The year's assessment reads how many were closed on time (issue 26)."""
from __future__ import annotations

from datetime import date

from sqlalchemy import Column, ForeignKey, Integer, String, Text, case, select
from sqlalchemy.orm import relationship
from sqlalchemy.orm.attributes import get_history

from app.errors import DomainError
from app.i18n import N_
from app.models.base import Entity, Scope, caption, live_order
from app.models.org import Organization, Unit, UnitStatus, _exists
from app.models.supervision import (
    ProgressNote,
    Supervised,
    TaskStatus,
    co_unit_rule,
    co_unit_table,
    tasks_of_units,
)

# The nodes that keep an annual work plan: 组织部 (the district), a street, a community.
PLANNING_NODES = ("district", "street", "community")
MIN_YEAR, MAX_YEAR = 2000, 2100

work_plan_item_co_unit = co_unit_table("work_plan_item")


def _org_of_item(item_id):
    item = WorkPlanItem.__table__
    return select(item.c.org_id).where(item.c.id == item_id).scalar_subquery()


class WorkPlanItem(Supervised, Entity):
    __tablename__ = "work_plan_item"
    __table_args__ = live_order("work_plan_item", "year", "deadline", "status", "closed_on")
    __label__ = N_("工作要点")
    __note_model__ = "WorkPlanNote"
    __scope__ = Scope(
        org=(lambda: WorkPlanItem.org_id,),
        unit=(lambda: WorkPlanItem.lead_unit_id,),
        shared=(lambda p: co_unit_rule(WorkPlanItem, work_plan_item_co_unit)(p),),
    )
    __choices__ = {"org": lambda: Organization.type.in_(PLANNING_NODES),
                   "lead_unit": lambda: Unit.status == UnitStatus.REGISTERED,
                   "co_units": lambda: Unit.status == UnitStatus.REGISTERED}
    __list_loads__ = ("org",)
    __extra_labels__ = {"overdue": N_("是否逾期"), "closed_on_time": N_("按期办结")}
    # Open items first by deadline, then the closed ones, latest closed first.
    __orders__ = {"open_first": lambda: (
        case((WorkPlanItem.status == TaskStatus.DONE, 1), else_=0),
        case((WorkPlanItem.status != TaskStatus.DONE, WorkPlanItem.deadline)),
        WorkPlanItem.closed_on.desc(), WorkPlanItem.id.desc())}

    org_id = Column(Integer, ForeignKey("organization.id"), nullable=False, index=True,
                    info=caption("党组织"))
    year = Column(Integer, nullable=False, index=True, info=caption("年度"))
    number = Column(String(20), nullable=False, info=caption("序号"))
    content = Column(Text, nullable=False, info=caption("工作要点"))

    org = relationship("Organization", info=caption("党组织"))
    lead_unit = relationship("Unit", info=caption("牵头单位"))
    co_units = relationship("Unit", secondary=work_plan_item_co_unit, info=caption("配合单位"))
    notes = relationship("WorkPlanNote", back_populates="item",
                         order_by="[WorkPlanNote.note_date, WorkPlanNote.id]",
                         info=caption("督办记录"))

    def supervisor_org_id(self) -> int | None:
        return self.org_id

    def validate(self, session) -> None:
        if self.org is None:
            raise DomainError("请选择党组织", "org")
        if self.org.type not in PLANNING_NODES:
            raise DomainError("工作要点只能属于区委组织部、街道党工委或社区党组织", "org")
        if self.year is None or not MIN_YEAR <= self.year <= MAX_YEAR:
            raise DomainError("请填写年度（如 2026）", "year")
        if not (self.number or "").strip():
            raise DomainError("请填写序号", "number")
        if not (self.content or "").strip():
            raise DomainError("请填写工作要点内容", "content")
        self.check_assignment()
        if self.deadline < date(self.year, 1, 1):
            raise DomainError("办结时限不能早于计划年度", "deadline")
        # The units answering for a node's plan stand in its subtree (checked when chosen).
        chosen = [self.lead_unit] if self.id is None or get_history(self, "lead_unit").has_changes() else []
        if self.id is None or get_history(self, "co_units").has_changes():
            chosen += list(self.co_units)
        for unit in chosen:
            community = session.get(Organization, unit.community_id)
            if community is None or not community.path.startswith(self.org.path):
                raise DomainError(f"“{unit.name}”不在“{self.org.name}”的范围内", "lead_unit")
        if _exists(session, select(WorkPlanItem.id).where(
                WorkPlanItem.org_id == self.org.id, WorkPlanItem.year == self.year,
                WorkPlanItem.number == self.number.strip(), WorkPlanItem.deleted_on.is_(None),
                WorkPlanItem.id != (self.id or 0))):
            raise DomainError(f"“{self.org.name}”{self.year} 年的工作要点已有序号 {self.number}", "number")
        self.number = self.number.strip()
        self.check_closing(date(self.year, 1, 1), "计划年度")

    def __str__(self) -> str:
        text = self.content or ""
        return f"{self.year}-{self.number} " + text[:24] + ("…" if len(text) > 24 else "")


class WorkPlanNote(ProgressNote, Entity):
    __tablename__ = "work_plan_note"
    __table_args__ = live_order("work_plan_note", "note_date", "progress")
    __label__ = N_("工作要点督办记录")
    __task__ = "item"
    __task_label__ = "工作要点"
    __scope__ = Scope(
        org=(lambda: _org_of_item(WorkPlanNote.item_id),),
        unit=(lambda: WorkPlanNote.unit_id,),
        shared=(lambda p: WorkPlanNote.item_id.in_(
            tasks_of_units(WorkPlanItem, work_plan_item_co_unit, p.unit_ids))
            if p.unit_ids else None,),
    )
    __choices__ = {"item": lambda: WorkPlanItem.status != TaskStatus.DONE}
    __extra_labels__ = {"kind": N_("类型")}

    item_id = Column(Integer, ForeignKey("work_plan_item.id"), nullable=False, index=True,
                     info=caption("工作要点"))

    item = relationship("WorkPlanItem", back_populates="notes", info=caption("工作要点"))
    unit = relationship("Unit", info=caption("报送单位"))
