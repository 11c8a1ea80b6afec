"""季度督查 — quarterly inspection (DOMAIN.md §1: 月汇报、季督查、年考核; issue 26).

A street, or 组织部, plans a round (`inspection`) in a quarter over a set of communities and
units — its subjects. It checks each subject against the checklist (`inspection_item`, kept by
组织部) and records a finding per item and subject (`inspection_finding`: 符合 / 部分符合 /
不符合, a note, photos). Each failing finding opens a rectification task (`rectification`) for
the unit or the node answering for it, with a deadline: a supervised task like a resolution
(app/models/supervision.py), whose progress the responsible side reports and which only the
inspecting side closes. The round's summary is published on the public board when the
inspector chooses.

Where rows sit: a round, its findings and rectifications belong to the inspecting node (they
write them); a subject reads the round, its own findings and the rectifications it answers for
(read only: it reports progress through the rectification's notes).
"""
from __future__ import annotations

from datetime import date
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    case,
    or_,
    select,
)
from sqlalchemy.orm import relationship
from sqlalchemy.orm.attributes import get_history

from app.errors import DomainError
from app.i18n import N_
from app.models.base import (
    Entity,
    Model,
    Scope,
    caption,
    live_order,
    state_choices,
    status_is_version,
)
from app.models.org import Organization, Unit, UnitStatus, _exists
from app.models.supervision import (
    ProgressNote,
    Supervised,
    TaskStatus,
    co_unit_rule,
    co_unit_table,
    tasks_of_units,
)

# Who inspects: 组织部 (the district) or a street.
INSPECTING_NODES = ("district", "street")
RESULTS = {s: N_(s) for s in ("符合", "部分符合", "不符合")}
FAILING = ("部分符合", "不符合")


class InspectionStatus(StrEnum):
    """The states of a round; the values are what the database stores."""

    OPEN = "督查中"
    PUBLISHED = "已公示"


INSPECTION_STATUSES = state_choices(InspectionStatus)

inspection_community = Table(
    "inspection_community", Model.metadata,
    Column("inspection_id", Integer, ForeignKey("inspection.id"), primary_key=True),
    Column("org_id", Integer, ForeignKey("organization.id"), primary_key=True, index=True),
)
inspection_unit = Table(
    "inspection_unit", Model.metadata,
    Column("inspection_id", Integer, ForeignKey("inspection.id"), primary_key=True),
    Column("unit_id", Integer, ForeignKey("unit.id"), primary_key=True, index=True),
)
rectification_co_unit = co_unit_table("rectification")


# --- where rows sit: Core tables (scope criteria stay out of them) ------------------------------

def nodes_under(paths):
    """Ids of the nodes in the subtrees at `paths` (never correlated)."""
    org = Organization.__table__
    return select(org.c.id).where(or_(*[org.c.path.like(p + "%") for p in paths])).correlate(None)


def _organizer_of_inspection(inspection_id):
    table = Inspection.__table__
    return select(table.c.organizer_id).where(table.c.id == inspection_id).scalar_subquery()


def _organizer_of_finding(finding_id):
    insp, finding = Inspection.__table__, InspectionFinding.__table__
    return (select(insp.c.organizer_id)
            .select_from(finding.join(insp, insp.c.id == finding.c.inspection_id))
            .where(finding.c.id == finding_id).scalar_subquery())


def _organizer_of_rectification(rectification_id):
    insp, finding, rect = (Inspection.__table__, InspectionFinding.__table__,
                           Rectification.__table__)
    return (select(insp.c.organizer_id)
            .select_from(rect.join(finding, finding.c.id == rect.c.finding_id)
                         .join(insp, insp.c.id == finding.c.inspection_id))
            .where(rect.c.id == rectification_id).scalar_subquery())


def _responsible_node(rectification_id):
    rect = Rectification.__table__
    return select(rect.c.org_id).where(rect.c.id == rectification_id).scalar_subquery()


def _rounds_of(p):
    """A `shared` rule: the rounds one's community (or a node below it) or unit is a subject of."""
    parts = []
    if p.org_paths:
        parts.append(select(inspection_community.c.inspection_id).where(
            inspection_community.c.org_id.in_(nodes_under(p.org_paths))))
    if p.unit_ids:
        parts.append(select(inspection_unit.c.inspection_id).where(
            inspection_unit.c.unit_id.in_(p.unit_ids)))
    return or_(*[Inspection.id.in_(part) for part in parts]) if parts else None


def _subject_rule(model):
    """A `shared` rule: rows whose subject (a node, a unit) is one's own."""
    def rule(p):
        parts = []
        if p.org_paths:
            parts.append(model.org_id.in_(nodes_under(p.org_paths)))
        if p.unit_ids:
            parts.append(model.lead_unit_id.in_(p.unit_ids) if hasattr(model, "lead_unit_id")
                         else model.unit_id.in_(p.unit_ids))
        return or_(*parts) if parts else None
    return rule


class InspectionItem(Entity):
    """A line of the checklist (督查内容), kept by 组织部 for every round."""

    __tablename__ = "inspection_item"
    __table_args__ = live_order("inspection_item", "seq")
    __label__ = N_("督查项目")
    __scope__ = Scope(is_global=True)

    seq = Column(Integer, nullable=False, default=1, index=True, info=caption("序号"))
    name = Column(String(100), nullable=False, info=caption("督查项目"))
    description = Column(Text, info=caption("督查要点"))
    active = Column(Boolean, nullable=False, default=True, info=caption("启用"))

    def validate(self, session) -> None:
        if not (self.name or "").strip():
            raise DomainError("请填写督查项目名称", "name")
        if self.seq is None or self.seq < 0:
            raise DomainError("序号应为不小于0的整数", "seq")


class Inspection(Entity):
    __tablename__ = "inspection"
    __table_args__ = live_order("inspection", "year", "status")
    __label__ = N_("季度督查")
    __scope__ = Scope(org=(lambda: Inspection.organizer_id,), shared=(_rounds_of,))
    __choices__ = {"organizer": lambda: Organization.type.in_(INSPECTING_NODES),
                   "communities": lambda: Organization.type == "community",
                   "units": lambda: Unit.status == UnitStatus.REGISTERED}
    __list_loads__ = ("organizer",)
    __orders__ = {"latest_first": lambda: (Inspection.year.desc(), Inspection.quarter.desc(),
                                           Inspection.id.desc())}

    organizer_id = Column(Integer, ForeignKey("organization.id"), nullable=False, index=True,
                          info=caption("督查单位"))
    title = Column(String(100), nullable=False, info=caption("督查名称"))
    year = Column(Integer, nullable=False, index=True, info=caption("年度"))
    quarter = Column(Integer, nullable=False, info=caption("季度"))
    inspected_on = Column(Date, nullable=True, info=caption("督查日期"))
    summary = Column(Text, info=caption("督查小结"))
    status = Column(String(8), nullable=False, default=InspectionStatus.OPEN, index=True,
                    info=caption("状态", choices=INSPECTION_STATUSES))
    __mapper_args__ = status_is_version(status)
    published_on = Column(DateTime, nullable=True, info=caption("公示时间"))

    organizer = relationship("Organization", info=caption("督查单位"))
    communities = relationship("Organization", secondary=inspection_community,
                               order_by="Organization.code", info=caption("被督查社区"))
    units = relationship("Unit", secondary=inspection_unit, order_by="Unit.name",
                         info=caption("被督查单位"))
    findings = relationship("InspectionFinding", back_populates="inspection",
                            info=caption("督查发现"))

    @property
    def period(self) -> str:
        return f"{self.year}Q{self.quarter}" if self.year and self.quarter else ""

    def covers(self, org_id=None, unit_id=None) -> bool:
        """Whether the community or unit is a subject of this round."""
        if org_id is not None:
            return any(c.id == org_id for c in self.communities)
        return unit_id is not None and any(u.id == unit_id for u in self.units)

    def validate(self, session) -> None:
        if self.organizer is None:
            raise DomainError("请选择督查单位", "organizer")
        if self.organizer.type not in INSPECTING_NODES:
            raise DomainError("督查单位应为街道党工委或区委组织部", "organizer")
        if not (self.title or "").strip():
            raise DomainError("请填写督查名称", "title")
        if self.year is None or not 2000 <= self.year <= 2100:
            raise DomainError("请填写年度（如 2026）", "year")
        if self.quarter not in (1, 2, 3, 4):
            raise DomainError("季度应为1到4之间的整数", "quarter")
        if self.inspected_on is not None and (self.inspected_on.year, (self.inspected_on.month + 2) // 3) \
                != (self.year, self.quarter):
            raise DomainError("督查日期应在所选季度内", "inspected_on")
        if not self.communities and not self.units:
            raise DomainError("请选择被督查的社区或单位", "communities")
        # Subjects lie under the inspecting node (checked when chosen).
        if self.id is None or get_history(self, "communities").has_changes():
            for node in self.communities:
                if node.type != "community" or not node.path.startswith(self.organizer.path):
                    raise DomainError(f"“{node.name}”不是“{self.organizer.name}”所辖的社区",
                                      "communities")
        if self.id is None or get_history(self, "units").has_changes():
            for unit in self.units:
                community = session.get(Organization, unit.community_id)
                if community is None or not community.path.startswith(self.organizer.path):
                    raise DomainError(f"“{unit.name}”不在“{self.organizer.name}”的范围内", "units")

    def __str__(self) -> str:
        return f"{self.period} {self.title or ''}".strip()


class InspectionFinding(Entity):
    __tablename__ = "inspection_finding"
    __table_args__ = live_order("inspection_finding", "result")
    __label__ = N_("督查发现")
    __list_loads__ = ("inspection", "item", "org", "unit")
    __scope__ = Scope(org=(lambda: _organizer_of_inspection(InspectionFinding.inspection_id),),
                      shared=(lambda p: _subject_rule(InspectionFinding)(p),))
    __choices__ = {"inspection": lambda: Inspection.status == InspectionStatus.OPEN,
                   "item": lambda: InspectionItem.active.is_(True),
                   "org": lambda: Organization.type == "community",
                   "responsible_unit": lambda: Unit.status == UnitStatus.REGISTERED,
                   "responsible_org": lambda: Organization.type.in_(("community", "street"))}
    __extra_labels__ = {"subject": N_("督查对象"), "failing": N_("需整改")}

    inspection_id = Column(Integer, ForeignKey("inspection.id"), nullable=False, index=True,
                           info=caption("季度督查"))
    item_id = Column(Integer, ForeignKey("inspection_item.id"), nullable=False, index=True,
                     info=caption("督查项目"))
    org_id = Column(Integer, ForeignKey("organization.id"), nullable=True, index=True,
                    info=caption("被督查社区"))
    unit_id = Column(Integer, ForeignKey("unit.id"), nullable=True, index=True,
                     info=caption("被督查单位"))
    result = Column(String(8), nullable=False, index=True, info=caption("督查结果", choices=RESULTS))
    note = Column(Text, info=caption("情况说明"))
    # What a failing finding requires (asked when it is recorded): the unit or node answering
    # for its rectification and the deadline. Saving it opens the task with them (validate);
    # from then on the task carries them — the finding keeps what the inspection required.
    responsible_unit_id = Column(Integer, ForeignKey("unit.id"), nullable=True, index=True,
                                 info=caption("整改责任单位"))
    responsible_org_id = Column(Integer, ForeignKey("organization.id"), nullable=True,
                                index=True, info=caption("整改责任党组织"))
    deadline = Column(Date, nullable=True, info=caption("整改时限"))
    # One live finding per round, item and subject.
    finding_key = Column(String(40), nullable=True, unique=True)

    inspection = relationship("Inspection", back_populates="findings", info=caption("季度督查"))
    item = relationship("InspectionItem", info=caption("督查项目"))
    org = relationship("Organization", foreign_keys=[org_id], info=caption("被督查社区"))
    unit = relationship("Unit", foreign_keys=[unit_id], info=caption("被督查单位"))
    responsible_unit = relationship("Unit", foreign_keys=[responsible_unit_id],
                                    info=caption("整改责任单位"))
    responsible_org = relationship("Organization", foreign_keys=[responsible_org_id],
                                   info=caption("整改责任党组织"))
    photos = relationship("FindingPhoto", back_populates="finding", order_by="FindingPhoto.id",
                          info=caption("现场照片"))

    @property
    def subject(self):
        return self.org or self.unit

    @property
    def failing(self) -> bool:
        return self.result in FAILING

    def _key(self) -> str | None:
        if not (self.inspection and self.item):
            return None
        subject = f"o{self.org.id}" if self.org else f"u{self.unit.id}" if self.unit else ""
        return f"{self.inspection.id}:{self.item.id}:{subject}"

    def validate(self, session) -> None:
        if self.inspection is None:
            raise DomainError("请选择季度督查", "inspection")
        if self.item is None:
            raise DomainError("请选择督查项目", "item")
        if (self.org is None) == (self.unit is None):
            raise DomainError("请选择一个督查对象：被督查社区或被督查单位（二选一）", "org")
        if self.result not in RESULTS:
            raise DomainError("请选择督查结果（符合、部分符合或不符合）", "result")
        if self.inspection.status == InspectionStatus.PUBLISHED:
            raise DomainError("该轮督查已公示，不能再修改督查发现；如需修改，请先撤回公示", "inspection")
        if not self.inspection.covers(self.org.id if self.org else None,
                                      self.unit.id if self.unit else None):
            raise DomainError(f"“{self.subject}”不是本轮督查（{self.inspection}）的督查对象",
                              "org" if self.org else "unit")
        if self.result in FAILING and not (self.note or "").strip():
            raise DomainError("督查结果为“部分符合”或“不符合”时，请填写情况说明", "note")
        self._rectify(session)
        self.finding_key = self._key() if self.inspection.id else None
        if self.finding_key and _exists(session, select(InspectionFinding.id).where(
                InspectionFinding.finding_key == self.finding_key,
                InspectionFinding.id != (self.id or 0))):
            raise DomainError(f"“{self.subject}”在本轮督查的“{self.item.name}”已有督查发现", "item")

    def _rectify(self, session) -> None:
        """A failing finding opens its rectification task when it is saved — the one way a
        task is opened: the responsible unit or node and the deadline are asked here, and the
        task is written in the same flush (base.py validates it there too)."""
        fields = ("responsible_unit", "responsible_org", "deadline")
        opened = self.id is not None and _exists(session, select(Rectification.id).where(
            Rectification.finding_id == self.id, Rectification.deleted_on.is_(None)))
        if opened:
            if self.result not in FAILING:
                raise DomainError("该督查发现已下达整改任务，不能改为“符合”；如确属误判，"
                                  "请先删除其整改任务", "result")
            if any(get_history(self, name).has_changes() for name in fields):
                raise DomainError("整改任务已下达：整改责任方和整改时限请在整改任务中修改",
                                  "deadline")
            return
        if self.result not in FAILING:  # a passing finding requires nothing
            self.responsible_unit = self.responsible_org = self.deadline = None
            return
        if self.responsible_unit is None and self.responsible_org is None:
            raise DomainError("督查结果为“部分符合”或“不符合”时，请选择整改责任单位或责任党组织"
                              "（保存即下达整改任务）", "responsible_unit")
        if self.deadline is None:
            raise DomainError("督查结果为“部分符合”或“不符合”时，请填写整改时限", "deadline")
        if self.deadline < _inspected_on(self):
            raise DomainError("整改时限不能早于督查日期", "deadline")
        session.add(Rectification(finding=self, lead_unit=self.responsible_unit,
                                  org=self.responsible_org, deadline=self.deadline))

    def check_delete(self, session) -> None:
        if self.inspection is not None and self.inspection.status == InspectionStatus.PUBLISHED:
            raise DomainError("该轮督查已公示，不能删除督查发现")

    def soft_delete(self, user_id):
        super().soft_delete(user_id)
        self.finding_key = None

    def restore(self):
        super().restore()
        self.finding_key = self._key()

    def __str__(self) -> str:
        return f"{self.subject or ''} {self.item.name if self.item else ''}：{self.result or ''}"


class FindingPhoto(Entity):
    """A photo of a finding (an image, checked and cleaned: app/services/photos.py), in the
    shared storage; read through the finding's page, in its scope."""

    __tablename__ = "finding_photo"
    __label__ = N_("督查照片")
    __scope__ = Scope(
        org=(lambda: _organizer_of_finding(FindingPhoto.finding_id),),
        shared=(lambda p: FindingPhoto.finding_id.in_(
            select(InspectionFinding.__table__.c.id).where(
                _subject_rule(InspectionFinding)(p))) if p.org_paths or p.unit_ids else None,),
    )

    finding_id = Column(Integer, ForeignKey("inspection_finding.id"), nullable=False,
                        index=True, info=caption("督查发现"))
    filename = Column(String(200), nullable=False, info=caption("文件名"))
    file_id = Column(Integer, ForeignKey("stored_file.id", ondelete="SET NULL"))
    content_type = Column(String(100), nullable=False, info=caption("文件类型"))
    size = Column(Integer, nullable=False, info=caption("大小（字节）"))

    finding = relationship("InspectionFinding", back_populates="photos", info=caption("督查发现"))

    __caption__ = "filename"

    def _published(self) -> bool:
        return self.finding is not None and self.finding.inspection.status == InspectionStatus.PUBLISHED

    def check_delete(self, session) -> None:
        if self._published():
            raise DomainError("该轮督查已公示，不能删除照片；如需删除，请先撤回公示")

    def restore(self) -> None:
        # A published round's photos stand as published, in the bin as out of it.
        if self._published():
            raise DomainError("该轮督查已公示，不能恢复照片；如需恢复，请先撤回公示")
        super().restore()


class Rectification(Supervised, Entity):
    __tablename__ = "rectification"
    __table_args__ = live_order("rectification", "deadline", "status", "closed_on")
    __label__ = N_("整改任务")
    __lead_required__ = False
    __note_model__ = "RectificationNote"
    __scope__ = Scope(
        org=(lambda: _organizer_of_finding(Rectification.finding_id),),
        # The unit or node answering for it, and co-units, read it (and report progress in
        # its notes); only the inspecting side writes and closes it.
        shared=(lambda p: _subject_rule(Rectification)(p),
                lambda p: co_unit_rule(Rectification, rectification_co_unit)(p)),
    )
    __choices__ = {"finding": lambda: InspectionFinding.result.in_(FAILING),
                   "org": lambda: Organization.type.in_(("community", "street")),
                   "lead_unit": lambda: Unit.status == UnitStatus.REGISTERED,
                   "co_units": lambda: Unit.status == UnitStatus.REGISTERED}
    __list_loads__ = ("lead_unit", "org")
    __extra_labels__ = {"overdue": N_("是否逾期"), "closed_on_time": N_("按期办结"),
                        "responsible": N_("整改责任方")}
    __orders__ = {"open_first": lambda: (
        case((Rectification.status == TaskStatus.DONE, 1), else_=0),
        case((Rectification.status != TaskStatus.DONE, Rectification.deadline)),
        Rectification.closed_on.desc(), Rectification.id.desc())}

    finding_id = Column(Integer, ForeignKey("inspection_finding.id"), nullable=False,
                        index=True, info=caption("督查发现"))
    # Empty in a form or API body: filled from the finding (on_create); never empty once saved.
    content = Column(Text, nullable=True, info=caption("整改要求"))
    # The node answering for it when no unit does (a community found failing).
    org_id = Column(Integer, ForeignKey("organization.id"), nullable=True, index=True,
                    info=caption("责任党组织"))

    finding = relationship("InspectionFinding", info=caption("督查发现"))
    org = relationship("Organization", info=caption("责任党组织"))
    lead_unit = relationship("Unit", info=caption("责任单位"))
    co_units = relationship("Unit", secondary=rectification_co_unit, info=caption("配合单位"))
    notes = relationship("RectificationNote", back_populates="rectification",
                         order_by="[RectificationNote.note_date, RectificationNote.id]",
                         info=caption("整改进展"))

    @property
    def responsible(self):
        return self.lead_unit or self.org

    def supervisor_org_id(self) -> int | None:
        return self.finding.inspection.organizer_id if self.finding is not None else None

    def responsible_org_id(self) -> int | None:
        return self.org.id if self.org is not None else self.org_id

    def on_create(self, principal) -> None:
        """The task's text defaults to what the finding says."""
        if not (self.content or "").strip() and self.finding is not None:
            self.content = f"{self.finding.item.name}：{self.finding.note or self.finding.result}"

    def validate(self, session) -> None:
        finding = self.finding
        if finding is None:
            raise DomainError("请选择督查发现", "finding")
        if finding.result not in FAILING:
            raise DomainError("只有“部分符合”或“不符合”的督查发现需要整改", "finding")
        if self.lead_unit is None and self.org is None:
            raise DomainError("请选择整改责任单位或责任党组织", "lead_unit")
        if self.deadline is None:
            raise DomainError("请填写整改时限", "deadline")
        self.check_assignment("请选择整改责任单位或责任党组织")
        if not (self.content or "").strip():
            raise DomainError("请填写整改要求", "content")
        if self.id is None and self.deadline < _inspected_on(finding):
            raise DomainError("整改时限不能早于督查日期", "deadline")
        self.check_closing(_inspected_on(finding), "督查日期")

    def __str__(self) -> str:
        text = self.content or ""
        return text[:30] + ("…" if len(text) > 30 else "")


def _inspected_on(finding) -> date:
    inspection = finding.inspection
    if inspection.inspected_on:
        return inspection.inspected_on
    return date(inspection.year, inspection.quarter * 3 - 2, 1)


class RectificationNote(ProgressNote, Entity):
    __tablename__ = "rectification_note"
    __table_args__ = live_order("rectification_note", "note_date", "progress")
    __label__ = N_("整改进展")
    __task__ = "rectification"
    __task_label__ = "整改任务"
    __scope__ = Scope(
        # The inspecting side's supervision notes, and the responsible node's own reports.
        org=(lambda: _organizer_of_rectification(RectificationNote.rectification_id),
             lambda: _responsible_node(RectificationNote.rectification_id)),
        unit=(lambda: RectificationNote.unit_id,),
        shared=(lambda p: RectificationNote.rectification_id.in_(
            tasks_of_units(Rectification, rectification_co_unit, p.unit_ids))
            if p.unit_ids else None,),
    )
    __choices__ = {"rectification": lambda: Rectification.status != TaskStatus.DONE}
    __extra_labels__ = {"kind": N_("类型")}

    rectification_id = Column(Integer, ForeignKey("rectification.id"), nullable=False,
                              index=True, info=caption("整改任务"))

    rectification = relationship("Rectification", back_populates="notes",
                                 info=caption("整改任务"))
    unit = relationship("Unit", info=caption("报送单位"))
