"""年度考核 — the annual assessment of communities and units (DOMAIN.md §1: 月汇报、季督查、年考核).

- `AssessmentIndicator` (考核指标): the indicator set 组织部 edits — per level (communities,
  units) a name, a weight, how it is computed (a code naming a function of the indicator
  registry, app/services/assessment.py) and its target. A level's live weights sum to 100:
  a write leaving them otherwise is refused (several rows changed in one write are checked
  together, so weights are moved from one indicator to another in one save).
- `Assessment` (年度考核): one row per subject (a community, or a unit) and year — the score
  computed from the year's data, by indicator, a manual adjustment with its reason, the total,
  the rank among the year's subjects of its level, and its state: 已计算 → 已审核 → 已公示.
  Rows, not one header per year, so that each subject is in scope where it stands (a community
  sees its own scores, a unit its own, a street its communities') and a street reviews its own
  communities' rows.
"""
from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Integer, Numeric, String, Text, inspect, select
from sqlalchemy.orm import relationship

from app.errors import DomainError
from app.i18n import N_
from app.models.base import (
    GLOBAL,
    Entity,
    ReviewedResult,
    Scope,
    caption,
    live_order,
    state_choices,
    status_is_version,
)
from app.security.principal import unscoped


class AssessmentStatus(StrEnum):
    """The states of an assessment result; the values are what the database stores."""

    COMPUTED = "已计算"
    REVIEWED = "已审核"
    PUBLISHED = "已公示"


ASSESSMENT_STATUSES = state_choices(AssessmentStatus)
LEVELS = {"community": N_("社区"), "unit": N_("驻区单位")}
LEVEL_NAMES = {"community": "社区", "unit": "驻区单位"}

# The registry of how an indicator is computed: code -> (level, label). Each code has its
# function in app/services/assessment.py (`MEASURES`, checked equal at import); an indicator
# row names one of these, and 组织部 sets its name, weight and target.
INDICATOR_CODES = {
    "need_on_time": ("community", N_("需求按期办结率")),
    "need_match": ("community", N_("需求匹配率")),
    "list_provision": ("community", N_("驻区单位三单提供率")),
    "unit_registration": ("community", N_("单位报到率")),
    "member_registration": ("community", N_("在职党员报到率")),
    "monthly_service": ("community", N_("报到党员按月服务率")),
    "attendance": ("community", N_("联席会议出席率")),
    "leader_compliance": ("community", N_("季度、年度会议一把手出席达标率")),
    "resolution_on_time": ("community", N_("议定事项按期办结率")),
    "rectification_on_time": ("community", N_("整改任务按期办结率")),
    "work_plan_on_time": ("community", N_("工作要点按期办结率")),
    "three_ones": ("community", N_("协议“三个一”达标率")),
    "satisfaction": ("community", N_("群众满意度")),
    "unit_need_on_time": ("unit", N_("派单需求按期办结率")),
    "unit_list_provision": ("unit", N_("三单提供")),
    "unit_registered": ("unit", N_("单位报到")),
    "unit_member_registration": ("unit", N_("在职党员报到率")),
    "unit_monthly_service": ("unit", N_("报到党员按月服务率")),
    "unit_attendance": ("unit", N_("联席会议出席率")),
    "unit_leader_compliance": ("unit", N_("季度、年度会议一把手出席达标率")),
    "unit_resolution_on_time": ("unit", N_("牵头议定事项按期办结率")),
    "unit_rectification_on_time": ("unit", N_("整改任务按期办结率")),
    "unit_work_plan_on_time": ("unit", N_("牵头工作要点按期办结率")),
    "unit_three_ones": ("unit", N_("协议“三个一”")),
    "unit_satisfaction": ("unit", N_("群众满意度")),
}
INDICATOR_CHOICES = {code: label for code, (_level, label) in INDICATOR_CODES.items()}
WEIGHT_TOTAL = Decimal(100)


def points_text(value) -> str:
    """A number of points as people write it: 105, 2.5 (not 105.00)."""
    text = format(Decimal(str(value)).normalize(), "f")
    return text


def _decimal(value, label: str, field: str) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise DomainError(f"{label}应为数字", field) from None


class AssessmentIndicator(Entity):
    __tablename__ = "assessment_indicator"
    __table_args__ = live_order("assessment_indicator", "level", "order")
    __label__ = N_("考核指标")
    __scope__ = GLOBAL

    level = Column(String(12), nullable=False, index=True, info=caption("考核对象", choices=LEVELS))
    name = Column(String(60), nullable=False, info=caption("指标名称"))
    code = Column(String(40), nullable=False, info=caption("计算方法", choices=INDICATOR_CHOICES))
    weight = Column(Numeric(5, 2), nullable=False, default=0, info=caption("权重（分）"))
    # The rate (per cent) that earns the indicator's whole weight; below it, pro rata.
    target = Column(Numeric(5, 2), nullable=False, default=100, info=caption("目标值（%）"))
    order = Column(Integer, nullable=False, default=0, info=caption("排序"))
    description = Column(String(500), info=caption("说明"))
    # "<level>:<code>" while live: an indicator is computed once per level.
    active_key = Column(String(64), nullable=True, unique=True)

    def validate(self, session) -> None:
        if self.level not in LEVELS:
            raise DomainError("请选择考核对象（社区或驻区单位）", "level")
        if not (self.name or "").strip():
            raise DomainError("请填写指标名称", "name")
        found = INDICATOR_CODES.get(self.code)
        if found is None:
            raise DomainError("请选择计算方法", "code")
        if found[0] != self.level:
            raise DomainError(f"计算方法“{found[1]}”用于{LEVEL_NAMES[found[0]]}的考核，"
                              f"不能用于{LEVEL_NAMES[self.level]}", "code")
        state = inspect(self)
        if state.persistent and state.attrs.level.history.has_changes():
            raise DomainError("指标的考核对象不能修改，请新建指标", "level")
        weight = _decimal(self.weight if self.weight is not None else 0, "权重", "weight")
        if not Decimal(0) <= weight <= WEIGHT_TOTAL:
            raise DomainError("权重应在0到100分之间", "weight")
        target = _decimal(self.target if self.target is not None else 100, "目标值", "target")
        if not Decimal(0) < target <= Decimal(100):
            raise DomainError("目标值应大于0%且不超过100%", "target")
        self.weight, self.target = weight, target
        self.active_key = f"{self.level}:{self.code}"
        with unscoped(), session.no_autoflush:
            rows = set(session.execute(select(AssessmentIndicator).where(
                AssessmentIndicator.level == self.level,
                AssessmentIndicator.deleted_on.is_(None))).scalars())
        rows |= {row for row in session.new if isinstance(row, AssessmentIndicator)}
        rows.add(self)
        live = [row for row in rows if row.level == self.level and row.deleted_on is None]
        if sum(1 for row in live if row.code == self.code) > 1:
            raise DomainError(f"{LEVEL_NAMES[self.level]}考核已有按“{found[1]}”计算的指标", "code")
        total = sum((Decimal(str(row.weight or 0)) for row in live), Decimal(0))
        if total != WEIGHT_TOTAL:
            raise DomainError(f"{LEVEL_NAMES[self.level]}考核各项指标的权重之和应为100分，"
                              f"保存后为{points_text(total)}分：请同时调整其他指标的权重（“调整权重”）", "weight")

    def check_delete(self, session) -> None:
        if self.weight:
            raise DomainError("该指标的权重不为0：请先在“调整权重”中将它的权重分给其他指标，再删除")

    def soft_delete(self, user_id):
        super().soft_delete(user_id)
        self.active_key = None

    def restore(self):
        super().restore()
        self.active_key = f"{self.level}:{self.code}"


class Assessment(ReviewedResult, Entity):
    __tablename__ = "assessment"
    __table_args__ = live_order("assessment", "year", "total", "rank", "status")
    __label__ = N_("年度考核")
    # A community's row sits at the community; a unit's at its community and with the unit.
    __scope__ = Scope(org=(lambda: Assessment.community_id,), unit=(lambda: Assessment.unit_id,))
    __list_loads__ = ("community", "unit")
    __extra_labels__ = {"subject_name": N_("考核对象"), "scores_text": N_("分项得分")}

    year = Column(Integer, nullable=False, index=True, info=caption("考核年度"))
    level = Column(String(12), nullable=False, index=True, info=caption("考核对象类型", choices=LEVELS))
    community_id = Column(Integer, ForeignKey("organization.id"), nullable=False, index=True,
                          info=caption("社区"))
    unit_id = Column(Integer, ForeignKey("unit.id"), nullable=True, index=True,
                     info=caption("驻区单位"))
    computed_score = Column(Numeric(6, 2), nullable=False, default=0, info=caption("计算得分"))
    adjustment = Column(Numeric(5, 2), nullable=False, default=0, info=caption("调整分"))
    adjustment_reason = Column(String(500), info=caption("调整原因"))
    total = Column(Numeric(6, 2), nullable=False, default=0, info=caption("总分"))
    rank = Column(Integer, nullable=True, info=caption("排名"))
    # JSON: per indicator its code, name, weight, target, the year's value (0–1, null: no data)
    # and the points it earned — what the score is made of, as computed.
    scores = Column(Text, info=caption("分项得分"))
    status = Column(String(8), nullable=False, default=AssessmentStatus.COMPUTED, index=True,
                    info=caption("状态", choices=ASSESSMENT_STATUSES))
    __mapper_args__ = status_is_version(status)
    # One row per year, level and subject.
    assessment_key = Column(String(40), nullable=False, unique=True)

    community = relationship("Organization", info=caption("社区"))
    unit = relationship("Unit", info=caption("驻区单位"))

    @property
    def subject_name(self) -> str:
        subject = self.unit if self.level == "unit" else self.community
        return str(subject) if subject is not None else ""

    @property
    def indicator_scores(self) -> list[dict]:
        try:
            found = json.loads(self.scores or "[]")
        except ValueError:
            return []
        return found if isinstance(found, list) else []

    @property
    def scores_text(self) -> str:
        parts = []
        for item in self.indicator_scores:
            value = item.get("value")
            shown = "—" if value is None else f"{value * 100:.1f}%"
            parts.append(f"{item.get('name')} {shown} → {item.get('points', 0):g}/{item.get('weight', 0):g}分")
        return "；".join(parts)

    def __str__(self) -> str:
        return f"{self.year or ''}年度考核 {self.subject_name}".strip()

    @classmethod
    def __caption_sql__(cls, table):
        return None

    def validate(self, session) -> None:
        if self.level not in LEVELS:
            raise DomainError("考核对象类型应为社区或驻区单位", "level")
        if self.level == "unit" and self.unit_id is None:
            raise DomainError("驻区单位的考核须指明单位", "unit")
        subject = self.unit_id if self.level == "unit" else self.community_id
        self.assessment_key = f"{self.year}:{self.level}:{subject}"
