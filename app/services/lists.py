"""The three lists and micro-wishes: their workflows as transition tables (DOMAIN.md §3) and
the matching of needs to what units offer."""
from __future__ import annotations

import json
from datetime import datetime, time, timedelta

from sqlalchemy import func, or_, select

from app import clock, storage
from app.errors import DomainError, committed
from app.models.lists import (
    MatchStatus,
    MicroWish,
    Need,
    NeedResource,
    NeedStatus,
    Resource,
    ResourceStatus,
    ServiceItem,
    ServiceStatus,
    WishStatus,
    need_step_limits,
    need_time_limit,
)
from app.models.org import Member, Organization, Unit
from app.models.records import AuditLog
from app.security.roles import ADMIN_GROUP, LIAISON_GROUP, MEMBER_GROUP
from app.security.scope import Principal, related_choices
from app.services import audit
from app.services.workflow import Field, Transition, Workflow

# DOMAIN.md §4: StreetAdmin and OrgAdmin act as CommunityAdmin within their scope.


def _now() -> datetime:
    return clock.utcnow().replace(microsecond=0)


def _is_admin(principal: Principal) -> bool:
    return principal.system or bool(principal.role_names & (ADMIN_GROUP | {"Admin"}))


def _loaded(session_obj, relation: str, ids: list[int]):
    """The rows for the ids a move names, through the same choices a form offers: an id the
    user may not pick is refused like one that does not exist."""
    from app.extensions import db

    stmt = related_choices(type(session_obj), relation)
    target = stmt.column_descriptions[0]["entity"]
    rows = db.session.execute(stmt.where(target.id.in_(ids))).scalars().all()
    if len(rows) != len(set(ids)):
        label = type(session_obj).__mapper__.relationships[relation].info.get("label", relation)
        raise DomainError(f"所选{label}不存在或超出您的数据范围", relation)
    return rows


def _set(**values):
    """An `apply` that copies the move's fields onto the row (None = keep)."""
    def apply(obj, data, principal):
        for attr, key in values.items():
            if data.get(key) is not None:
                setattr(obj, attr, data[key])
    return apply


# --- review of what units file: resources and service items ---------------------------------

def _reject(obj, data, principal):
    obj.reject_reason = data["reason"]


def _clear_reject(obj, data, principal):
    obj.reject_reason = None


REASON = Field("reason", "驳回原因", "textarea", required=True)


def _own_unit(item, principal: Principal) -> bool | str:
    """A unit moves only its own items: others may read published ones, not act on them."""
    unit_id = getattr(item, "unit_id", None) or getattr(item, "provider_unit_id", None)
    if _is_admin(principal) or unit_id in principal.unit_ids:
        return True
    return "只能操作本单位的清单"

RESOURCE_FLOW = Workflow(Resource, (
    Transition("submit", "提交审核", (ResourceStatus.DRAFT, ResourceStatus.REJECTED, ResourceStatus.WITHDRAWN), ResourceStatus.PENDING, LIAISON_GROUP | ADMIN_GROUP,
               apply=_clear_reject, rule=_own_unit),
    Transition("publish", "审核发布", (ResourceStatus.PENDING,), ResourceStatus.PUBLISHED, ADMIN_GROUP, style="success"),
    Transition("reject", "驳回", (ResourceStatus.PENDING,), ResourceStatus.REJECTED, ADMIN_GROUP, fields=(REASON,), apply=_reject,
               style="danger"),
    Transition("withdraw", "撤回", (ResourceStatus.PENDING, ResourceStatus.PUBLISHED), ResourceStatus.WITHDRAWN, LIAISON_GROUP | ADMIN_GROUP,
               rule=_own_unit, style="warning"),
))


def _finish_service(obj, data, principal):
    obj.fulfilment = data["fulfilment"]


SERVICE_ITEM_FLOW = Workflow(ServiceItem, (
    Transition("submit", "提交审核", (ServiceStatus.DRAFT, ServiceStatus.REJECTED), ServiceStatus.PENDING, LIAISON_GROUP | ADMIN_GROUP,
               apply=_clear_reject, rule=_own_unit),
    Transition("publish", "审核发布", (ServiceStatus.PENDING,), ServiceStatus.PUBLISHED, ADMIN_GROUP, style="success"),
    Transition("reject", "驳回", (ServiceStatus.PENDING,), ServiceStatus.REJECTED, ADMIN_GROUP, fields=(REASON,), apply=_reject,
               style="danger"),
    Transition("start", "开始实施", (ServiceStatus.PUBLISHED,), ServiceStatus.RUNNING, LIAISON_GROUP | ADMIN_GROUP, rule=_own_unit),
    Transition("finish", "完成（践诺）", (ServiceStatus.RUNNING,), ServiceStatus.COMPLETED, LIAISON_GROUP | ADMIN_GROUP, rule=_own_unit,
               fields=(Field("fulfilment", "践诺情况", "textarea", required=True),),
               apply=_finish_service, style="success"),
))


# --- the need's five-step loop ----------------------------------------------------------------

def _default_deadline(need) -> datetime:
    """办结 is due the urgency's whole limit after intake (复杂: its plan is due then)."""
    return (need.created_on or _now()).replace(microsecond=0) + need_time_limit(need.urgency)


PHOTO = Field("photo", "现场照片（JPG 或 PNG）", "photo")


def _keep_photo(need, upload) -> None:
    """A move's photo (taken on the spot, from the phone page): checked and cleaned as the
    resident's photo is (type, size, magic bytes; EXIF and trailing bytes dropped), kept in the
    shared storage in the move's own transaction, and named on the need as its 办理照片."""
    if upload is None:
        return
    from app.extensions import db
    from app.services.intake import check_photo

    name, content_type, content = check_photo(upload.filename, upload.stream)
    need.handling_photo_id = storage.save([content], name, content_type, session=db.session).id


def _accept(need, data, principal):
    need.accepted_on = _now()


def _reject_need(need, data, principal):
    need.reject_reason = data["reason"]


def _dispatch(need, data, principal):
    unit_id, member_ids = data.get("assigned_unit"), data.get("assigned_members") or []
    if not unit_id and not member_ids:
        raise DomainError("派单须至少选择一个承办单位或党员", "assigned_unit")
    deadline = data.get("deadline")
    if deadline is None:
        deadline = _default_deadline(need)
    elif deadline < _now():
        raise DomainError("办理时限不能早于当前时间", "deadline")
    need.assigned_unit = _loaded(need, "assigned_unit", [unit_id])[0] if unit_id else None
    need.assigned_members = _loaded(need, "assigned_members", member_ids) if member_ids else []
    need.dispatch_note = data.get("note")
    need.deadline = deadline
    need.dispatched_on = _now()
    need.decline_reason = None


def _is_assignee(need, principal: Principal) -> bool | str:
    if need.assigned_unit_id is not None and need.assigned_unit_id in principal.unit_ids:
        return True
    if any(m.id in principal.member_ids for m in need.assigned_members):
        return True
    return "该需求未派给您或您的单位"


def _is_assigned_unit(need, principal: Principal) -> bool | str:
    if need.assigned_unit_id is not None and need.assigned_unit_id in principal.unit_ids:
        return True
    return "只有承办单位的联络员可以退单"


def _take(need, data, principal):
    """单位接单; a 复杂 need is taken with its 办理方案 and the date the plan promises 办结 by,
    which becomes its deadline (the end of that day in the zone)."""
    if need.urgency == "复杂":
        if not data.get("plan"):
            raise DomainError("复杂需求须在接单时填写办理方案", "plan")
        if data.get("plan_due") is None:
            raise DomainError("复杂需求须在接单时填写方案完成日期", "plan_due")
        if data["plan_due"] < clock.today():
            raise DomainError("方案完成日期不能早于今天", "plan_due")
        need.plan, need.plan_due = data["plan"], data["plan_due"]
        need.deadline = clock.to_utc(datetime.combine(data["plan_due"] + timedelta(days=1),
                                                      time.min))
    need.taken_by_id = principal.user_id
    need.taken_on = _now()
    _keep_photo(need, data.get("photo"))


def _decline(need, data, principal):
    need.decline_reason = data["reason"]
    _keep_photo(need, data.get("photo"))
    need.assigned_unit = None
    need.assigned_members = []
    need.deadline = None


def _taker_or_admin(need, principal: Principal) -> bool | str:
    if _is_admin(principal) or need.taken_by_id == principal.user_id:
        return True
    return "只有接单人或社区管理员可以办结"


def _complete(need, data, principal):
    need.result = data["result"]
    need.completed_on = _now()
    _keep_photo(need, data.get("photo"))


def _review(need, data, principal):
    satisfaction = data["satisfaction"]
    if not 1 <= satisfaction <= 5:
        raise DomainError("满意度应为1到5之间的整数", "satisfaction")
    need.satisfaction = satisfaction
    need.visit_comment = data.get("comment")
    need.visitor = data.get("visitor") or principal.extra.get("username")
    need.visited_on = data.get("visited_on") or clock.today()


def _resident_rated(need, principal: Principal) -> bool | str:
    return True if need.resident_satisfaction is not None else "居民尚未在查询页面评价"


def _adopt_rating(need, data, principal):
    """回访评单 in one click: the resident's own rating (from the tracking page) as the score."""
    _review(need, {"satisfaction": need.resident_satisfaction,
                   "comment": need.resident_comment, "visitor": "居民自评"}, principal)


def _unsatisfied(need, principal: Principal) -> bool | str:
    return True if (need.satisfaction or 5) <= 2 else "只有满意度为2分及以下的需求可以重办"


def _reopen(need, data, principal):
    """重办 starts a new round of 办理 with the share of the limit 办理 has."""
    need.completed_on = None
    whole = need_time_limit(need.urgency)
    need.deadline = _now() + whole - max(need_step_limits(need.urgency).values(),
                                         default=timedelta(0))


NEED_FLOW = Workflow(Need, (
    Transition("accept", "平台接单", (NeedStatus.NEW,), NeedStatus.ACCEPTED, ADMIN_GROUP, apply=_accept, style="success"),
    Transition("reject", "驳回", (NeedStatus.NEW,), NeedStatus.REJECTED, ADMIN_GROUP,
               fields=(Field("reason", "驳回原因", "textarea", required=True),),
               apply=_reject_need, style="danger"),
    Transition("dispatch", "会商派单", (NeedStatus.ACCEPTED,), NeedStatus.DISPATCHED, ADMIN_GROUP, fields=(
        Field("assigned_unit", "承办单位", "relation", relation="assigned_unit"),
        Field("assigned_members", "承办党员", "relations", relation="assigned_members"),
        Field("note", "派单说明", "textarea"),
        Field("deadline", "办理时限（默认按紧急程度）", "datetime"),
    ), apply=_dispatch),
    Transition("take", "接单", (NeedStatus.DISPATCHED,), NeedStatus.IN_HAND, LIAISON_GROUP | MEMBER_GROUP, rule=_is_assignee,
               fields=(Field("plan", "办理方案（复杂需求必填）", "textarea"),
                       Field("plan_due", "方案完成日期（复杂需求必填）", "date"), PHOTO),
               apply=_take, style="success", lost="该需求已被他人接单，请刷新后查看"),
    Transition("decline", "退单", (NeedStatus.DISPATCHED,), NeedStatus.ACCEPTED, LIAISON_GROUP, rule=_is_assigned_unit,
               fields=(Field("reason", "退单原因", "textarea", required=True), PHOTO), apply=_decline,
               style="warning"),
    Transition("complete", "办结", (NeedStatus.IN_HAND,), NeedStatus.DONE, LIAISON_GROUP | MEMBER_GROUP | ADMIN_GROUP,
               rule=_taker_or_admin,
               fields=(Field("result", "办理结果", "textarea", required=True), PHOTO),
               apply=_complete, style="success"),
    Transition("review", "回访评单", (NeedStatus.DONE,), NeedStatus.VISITED, ADMIN_GROUP, fields=(
        Field("satisfaction", "满意度（1-5）", "int", required=True,
              choices=tuple((str(i), f"{i} 分") for i in range(5, 0, -1))),
        Field("comment", "回访意见", "textarea"),
        Field("visitor", "回访人"),
        Field("visited_on", "回访日期", "date"),
    ), apply=_review),
    Transition("adopt_rating", "采用居民评价", (NeedStatus.DONE,), NeedStatus.VISITED, ADMIN_GROUP,
               rule=_resident_rated, apply=_adopt_rating, style="success"),
    Transition("reopen", "重办", (NeedStatus.VISITED,), NeedStatus.IN_HAND, ADMIN_GROUP, rule=_unsatisfied, apply=_reopen,
               style="warning"),
))


def need_timeline(session, need) -> list[dict]:
    """A need's steps as the audit trail recorded them: its submission and each move, with its
    time, who made it and the status it reached. A 重办 opens a new round; nothing is
    overwritten (the trail is append-only), so earlier rounds stay as they were.

    The trail starts at the need's latest creation record: SQLite gives a purged row's id to the
    next row inserted, and the purged need's trail must not become the new one's."""
    mine = (AuditLog.resource == "need", AuditLog.record_id == str(need.id))
    created = select(func.max(AuditLog.id)).where(*mine, AuditLog.action == "create").scalar_subquery()
    logs = session.execute(
        select(AuditLog).where(*mine, AuditLog.action.in_(("create", "transition")),
                               AuditLog.id >= func.coalesce(created, 0))
        .order_by(AuditLog.time, AuditLog.id)).scalars().all()
    steps, round_no = [], 1
    for log in logs:
        try:
            changes = json.loads(log.changes or "{}")
        except ValueError:
            changes = {}
        name = changes.get("_operation") if log.action == "transition" else "submit"
        if name == "reopen":
            round_no += 1
        move = NEED_FLOW.by_name.get(name)
        status = changes.get("status")
        steps.append({"round": round_no, "time": log.time, "user": log.username or "",
                      "step": move.label if move else "提交（群众接单）",
                      "status": status[-1] if isinstance(status, list) else ""})
    return steps


# --- micro-wishes -----------------------------------------------------------------------------

def _in_wish_community(wish, principal: Principal) -> bool | str:
    from app.extensions import db

    communities = set()
    if principal.unit_ids:
        communities |= set(db.session.scalars(
            select(Unit.community_id).where(Unit.id.in_(principal.unit_ids))))
    if principal.member_ids:
        communities |= set(db.session.scalars(
            select(Member.community_id).where(Member.id.in_(principal.member_ids))))
    return True if wish.community_id in communities else "只能认领本社区的微心愿"


def _claim(wish, data, principal):
    # A member claims for itself; a liaison for its unit.
    if principal.member_ids and "Member" in principal.role_names:
        wish.claimant_member_id, wish.claimant_unit_id = principal.member_ids[0], None
    else:
        wish.claimant_unit_id, wish.claimant_member_id = principal.unit_ids[0], None
    wish.claimed_on = _now()


def _is_claimant(wish, principal: Principal) -> bool | str:
    if _is_admin(principal):
        return True
    if wish.claimant_member_id is not None and wish.claimant_member_id in principal.member_ids:
        return True
    if wish.claimant_unit_id is not None and wish.claimant_unit_id in principal.unit_ids:
        return True
    return "只有认领人可以操作"


def _cancel_claim(wish, data, principal):
    wish.claimant_member_id = wish.claimant_unit_id = None
    wish.claimed_on = None


def _fulfil(wish, data, principal):
    wish.proof = data["proof"]
    wish.fulfilled_on = _now()


def _confirm(wish, data, principal):
    wish.feedback = data["feedback"]
    wish.confirmed_on = _now()


MICRO_WISH_FLOW = Workflow(MicroWish, (
    Transition("publish", "审核发布", (WishStatus.PENDING,), WishStatus.OPEN, ADMIN_GROUP, style="success"),
    Transition("reject", "驳回", (WishStatus.PENDING,), WishStatus.REJECTED, ADMIN_GROUP, fields=(REASON,), apply=_reject,
               style="danger"),
    Transition("claim", "认领", (WishStatus.OPEN,), WishStatus.CLAIMED, LIAISON_GROUP | MEMBER_GROUP, rule=_in_wish_community,
               apply=_claim, style="success", lost="该心愿已被他人认领，请刷新后查看"),
    Transition("cancel", "取消认领", (WishStatus.CLAIMED,), WishStatus.OPEN, LIAISON_GROUP | MEMBER_GROUP | ADMIN_GROUP,
               rule=_is_claimant, apply=_cancel_claim, style="warning"),
    Transition("fulfil", "完成心愿", (WishStatus.CLAIMED,), WishStatus.FULFILLED, LIAISON_GROUP | MEMBER_GROUP | ADMIN_GROUP,
               rule=_is_claimant,
               fields=(Field("proof", "实现凭证（情况说明）", "textarea", required=True),),
               apply=_fulfil, style="success"),
    Transition("confirm", "居民确认", (WishStatus.FULFILLED,), WishStatus.CONFIRMED, ADMIN_GROUP,
               fields=(Field("feedback", "居民反馈（代录）", "textarea", required=True),),
               apply=_confirm),
))


# --- resources proposed for needs (联合会提议、驻区单位认领) ------------------------------------

def _providing_unit(match, principal: Principal) -> bool | str:
    if match.resource is not None and match.resource.unit_id in principal.unit_ids:
        return True
    return "只有提供该资源的单位联络员可以认领或婉拒"


def _answer(match, data, principal):
    match.answer = data.get("answer")
    match.answered_on = _now()


NEED_RESOURCE_FLOW = Workflow(NeedResource, (
    Transition("confirm", "认领", (MatchStatus.PROPOSED,), MatchStatus.CONFIRMED, LIAISON_GROUP,
               rule=_providing_unit, fields=(Field("answer", "认领说明", "textarea"),),
               apply=_answer, style="success", lost="该提议已被处理，请刷新后查看"),
    Transition("decline", "婉拒", (MatchStatus.PROPOSED,), MatchStatus.DECLINED, LIAISON_GROUP,
               rule=_providing_unit,
               fields=(Field("answer", "婉拒原因", "textarea", required=True),),
               apply=_answer, style="warning", lost="该提议已被处理，请刷新后查看"),
))


def propose_resource(session, need: Need, resource_id: int, note: str | None = None) -> NeedResource:
    """The joint body proposes a unit's published resource for a need; the unit's liaison then
    takes it on (认领) or declines (NEED_RESOURCE_FLOW). The resource is looked up through the
    proposal's own choices (published, in the proposer's scope)."""
    resource = _loaded(NeedResource(), "resource", [resource_id])[0]
    match = NeedResource(need=need, resource=resource, note=note)
    with committed(session, "该资源已提议给这项需求"):
        session.add(match)
    return match


# --- matching ---------------------------------------------------------------------------------

OFFERED = (ServiceStatus.PUBLISHED, ServiceStatus.RUNNING)


def _bigrams(text: str) -> set[str]:
    text = "".join(ch for ch in (text or "") if not ch.isspace())
    return {text[i:i + 2] for i in range(len(text) - 1)}


def suggest(session, need: Need, limit: int = 10) -> list[dict]:
    """Published service items and resources that could answer `need`, best first: the same
    category (service items share the needs' categories; a resource's category is mapped to
    need categories in the dictionary), then units of the same community
    before the rest of the street, then words in common. Candidates come through the scoped
    session, so a viewer only ever sees what it may read."""
    community = need.community
    street_path = community.path.rsplit("/", 2)[0] + "/" if community is not None else "/"
    in_street = select(Organization.id).where(Organization.path.like(street_path + "%"))
    words = _bigrams(f"{need.title} {need.content}")
    found = []
    items = session.execute(
        select(ServiceItem, Unit.community_id).join(Unit, Unit.id == ServiceItem.provider_unit_id)
        .where(ServiceItem.status.in_(OFFERED), Unit.community_id.in_(in_street))
        .limit(300)).all()
    for item, community_id in items:
        found.append({
            "kind": "service_item", "row": item, "same_category": item.category_id == need.category_id,
            "same_community": community_id == need.community_id,
            "overlap": len(words & _bigrams(f"{item.title} {item.content}")),
            "linked": item in need.service_items,
        })
    resources = session.execute(
        select(Resource, Unit.community_id).join(Unit, Unit.id == Resource.unit_id)
        .where(Resource.status == ResourceStatus.PUBLISHED, Unit.community_id.in_(in_street),
               or_(Resource.available_to.is_(None), Resource.available_to >= clock.today()))
        .limit(300)).all()
    need_code = need.category.code if need.category is not None else None
    proposed = {m.resource_id: m.status for m in need.resource_matches
                if m.status != MatchStatus.DECLINED}
    for resource, community_id in resources:
        found.append({
            "kind": "resource", "row": resource,
            # A resource's category answers the need categories the dictionary maps it to.
            "same_category": resource.category is not None
            and need_code in resource.category.need_category_codes,
            "same_community": community_id == need.community_id,
            "overlap": len(words & _bigrams(f"{resource.title} {resource.content}")),
            "linked": resource.id in proposed, "match_status": proposed.get(resource.id),
        })
    found.sort(key=lambda s: (s["same_category"], s["same_community"], s["overlap"],
                              s["row"].id), reverse=True)
    return found[:limit]


def link(session, need: Need, item_id: int, linked: bool) -> None:
    """Put a service item against a need (or take it off): this feeds the match rate. A link
    lives in an association table, so it is recorded as one update of the need's links."""
    item = _loaded(need, "service_items", [item_id])[0]
    # Only what `suggest` offers may be linked (a draft or rejected item is no answer to a
    # need, and must not count in the match rate); an old link can always be taken off.
    if linked and item not in need.service_items and item.status not in OFFERED:
        raise DomainError("只能关联已发布或进行中的服务项目", "service_items")
    with committed(session, "该需求的关联已被他人修改，请刷新后查看"):
        before = sorted(i.id for i in need.service_items)
        if linked and item not in need.service_items:
            need.service_items.append(item)
        elif not linked and item in need.service_items:
            need.service_items.remove(item)
        after = sorted(i.id for i in need.service_items)
        if after != before:
            audit.record(session, "update", "need", need.id, {"service_items": [before, after]})
