"""季度督查 and 工作要点 (issue 26): the moves of a round (publish, withdraw), of rectification
tasks and work-plan items (the shared supervision workflow), a finding's photos, and a round's
summary — what its page shows and, once published, the public board."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import case, func, select
from sqlalchemy.orm import selectinload

from app import clock, storage
from app.errors import DomainError, committed
from app.models.inspections import (
    RESULTS,
    FindingPhoto,
    Inspection,
    InspectionFinding,
    InspectionItem,
    InspectionStatus,
    Rectification,
)
from app.models.org import Organization
from app.models.supervision import TaskStatus
from app.models.workplan import WorkPlanItem
from app.security.roles import ADMIN_GROUP
from app.security.scope import Principal, unscoped
from app.services import photos
from app.services.supervision import supervision_flow
from app.services.workflow import Transition, Workflow

PHOTO_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png"}


def inspects(inspection: Inspection, principal: Principal) -> bool | str:
    """Whether `principal` is on the inspecting side of a round: 组织部 (every scope), or an
    admin of the inspecting node or a node above it — never the community inspected."""
    if principal.system or principal.sees_all and principal.role_names & {"OrgAdmin", "Admin"}:
        return True
    with unscoped():
        path = inspection.organizer.path if inspection.organizer is not None else None
    if path and any(path.startswith(own) for own in principal.org_paths):
        return True
    return "只有督查方可以执行此操作；责任单位请通过“整改进展”报送整改情况"


def _inspecting_side(rectification: Rectification, principal: Principal) -> bool | str:
    return inspects(rectification.finding.inspection, principal)


RECTIFICATION_FLOW = supervision_flow(Rectification, supervises=_inspecting_side)
WORK_PLAN_FLOW = supervision_flow(WorkPlanItem)


def _publish(inspection, data, principal):
    inspection.published_on = clock.utcnow()


def _withdraw(inspection, data, principal):
    inspection.published_on = None


INSPECTION_FLOW = Workflow(Inspection, (
    Transition("publish", "公示督查结果", (InspectionStatus.OPEN,), InspectionStatus.PUBLISHED,
               ADMIN_GROUP, rule=inspects, apply=_publish, style="success",
               confirm="公示后，本轮督查的汇总结果将在公示栏向公众展示（不含个人信息），确定公示吗？"),
    Transition("withdraw", "撤回公示", (InspectionStatus.PUBLISHED,), InspectionStatus.OPEN,
               ADMIN_GROUP, rule=inspects, apply=_withdraw, style="warning"),
))


# --- photos ----------------------------------------------------------------------------------

def add_photo(session, finding: InspectionFinding, filename: str, stream) -> FindingPhoto:
    """Store a finding's photo (a JPEG or PNG within the upload limit, cleaned of its
    metadata) and record it — both or neither."""
    from app.services.meetings import check_upload

    name, ext, data = check_upload(filename, stream, allowed=PHOTO_TYPES,
                                   allowed_text="JPG 或 PNG 图片")
    data = photos.cleaned(ext, data)
    if finding.inspection.status == InspectionStatus.PUBLISHED:
        raise DomainError("该轮督查已公示，不能再添加照片", "file")
    with committed(session, "该督查发现已被他人修改，照片未保存；请刷新后重试"):
        stored = storage.save([data], name, PHOTO_TYPES[ext], session=session)
        photo = FindingPhoto(finding=finding, filename=name, file_id=stored.id,
                             content_type=PHOTO_TYPES[ext], size=len(data))
        session.add(photo)
    return photo


def delete_photo(session, photo: FindingPhoto, user_id: int | None) -> None:
    """Remove a finding's photo (to the recycle bin, its file kept for a restore): refused
    while the round is published; the flush's scope check leaves it to the inspecting side
    (the subject reads the photo, never writes it). One audit record (a delete)."""
    photo.check_delete(session)
    with committed(session, "该照片已被他人删除或修改，请刷新后查看"):
        session.add(photo)
        photo.soft_delete(user_id)


# --- a round's summary -----------------------------------------------------------------------

@dataclass
class SubjectLine:
    name: str
    kind: str  # 社区 or 单位
    results: dict = field(default_factory=dict)  # result -> count


@dataclass
class Summary:
    subjects: list
    results: dict  # result -> count over the round
    items: list  # (item name, {result: count})
    rectifications: dict  # total, done, on_time, late, open, overdue


def summary(session, inspection: Inspection) -> Summary:
    """Counts of the round's findings by subject, item and result, and of its rectification
    tasks by state — names of communities, units and checklist items only, no personal data
    (what the public board shows once published)."""
    findings = session.execute(
        select(InspectionFinding.org_id, InspectionFinding.unit_id, InspectionFinding.item_id,
               InspectionFinding.result, func.count(InspectionFinding.id))
        .where(InspectionFinding.inspection_id == inspection.id,
               InspectionFinding.deleted_on.is_(None))  # also when read unscoped (the board)
        .group_by(InspectionFinding.org_id, InspectionFinding.unit_id,
                  InspectionFinding.item_id, InspectionFinding.result)).all()
    lines = {("o", c.id): SubjectLine(c.name, "社区") for c in inspection.communities
             if c.deleted_on is None}
    lines.update({("u", u.id): SubjectLine(u.name, "单位") for u in inspection.units
                  if u.deleted_on is None})
    items: dict = {}
    totals = dict.fromkeys(RESULTS, 0)
    names = _item_names(session, {item for _, _, item, _, _ in findings})
    for org_id, unit_id, item_id, result, n in findings:
        line = lines.get(("o", org_id) if org_id else ("u", unit_id))
        if line is not None:
            line.results[result] = line.results.get(result, 0) + int(n)
        items.setdefault(names.get(item_id, ""), dict.fromkeys(RESULTS, 0))[result] += int(n)
        totals[result] += int(n)
    done = Rectification.status == TaskStatus.DONE
    row = session.execute(
        select(func.count(Rectification.id),
               func.coalesce(func.sum(_when(done)), 0),
               func.coalesce(func.sum(_when(Rectification.closed_on_time)), 0),
               func.coalesce(func.sum(_when(Rectification.overdue)), 0))
        .join(InspectionFinding, InspectionFinding.id == Rectification.finding_id)
        .where(InspectionFinding.inspection_id == inspection.id,
               InspectionFinding.deleted_on.is_(None), Rectification.deleted_on.is_(None))).one()
    total, closed, on_time, overdue = (int(v or 0) for v in row)
    return Summary(
        subjects=sorted(lines.values(), key=lambda s: (s.kind, s.name)),
        results=totals, items=sorted(items.items()),
        rectifications={"total": total, "done": closed, "on_time": on_time,
                        "late": closed - on_time, "open": total - closed, "overdue": overdue})


def _when(condition):
    return case((condition, 1), else_=0)


def _item_names(session, ids) -> dict:
    if not ids:
        return {}
    return dict(session.execute(select(InspectionItem.id, InspectionItem.name)
                                .where(InspectionItem.id.in_(ids))).all())


def published_rounds(session, community: Organization | None = None, limit: int = 20):
    """Published rounds (the public board's), latest first; with a community, those that
    inspected it. Read unscoped: the public board has no user."""
    # Loaded here, unscoped: the page reads the names later, outside this block.
    stmt = select(Inspection).options(selectinload(Inspection.organizer),
                                      selectinload(Inspection.communities),
                                      selectinload(Inspection.units)).where(
        Inspection.status == InspectionStatus.PUBLISHED, Inspection.deleted_on.is_(None))
    if community is not None:
        stmt = stmt.where(Inspection.communities.any(Organization.id == community.id))
    with unscoped():
        return session.execute(stmt.order_by(Inspection.published_on.desc(), Inspection.id.desc())
                               .limit(limit)).scalars().all()
