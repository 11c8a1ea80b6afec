"""Notices to whoever must act (issue 23): one table of events, one outbox, one delivery.

- **Events** (`EVENTS`): each names who receives it and its text (Chinese, the msgid of the
  English catalog, with `{title}`-style values from its payload). A workflow move that causes
  one is named in `MOVES` (table, transition) → event; `Workflow.run` calls `on_move` inside
  the move's transaction, so a move rolled back writes no notice. Scheduled events (a step's
  deadline at 80 % and passed, resolutions nearing and past their deadline, agreements
  expiring, the 25th's reminder) come from `scan`, a job beat runs.
- **The outbox** (`Notice`): one row per event, recipient and channel; the key (event,
  recipient, channel) is unique, so a scan run twice writes once. A notice goes only to a
  recipient who may read its row (asked as that recipient, through the data scope), and the
  message centre asks again when it shows it (`readable`): a message never reveals a row.
- **Delivery** (`deliver`): the panel's row is the message itself; e-mail (SMTP) and the
  webhook (JSON signed with HMAC-SHA256) are sent by a worker in batches, tried again with
  exponential backoff, at least once — the receiver knows a repeat by the key it carries. A
  recipient deactivated (or no longer allowed to read the row) before delivery is dropped, and
  the row says why. Nothing here can fail a move: sending happens after its commit, elsewhere.
"""
from __future__ import annotations

import hashlib
import hmac
import html
import json
import secrets
import smtplib
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage

from flask import current_app
from flask_appbuilder.security.sqla.models import Role
from sqlalchemy import and_, event, func, or_, select, true, update
from sqlalchemy.orm import Session

from app import clock
from app.errors import committed
from app.i18n import N_, gettext
from app.models.cobuild import (
    Agreement,
    MemberRegistration,
    MemberRegistrationStatus,
    served_between,
)
from app.models.lists import NEED_CLOSED, NEED_STEPS, Need, NeedStatus, need_step_limits
from app.models.meetings import Resolution
from app.models.notices import CHANNEL_COLUMNS, Channel, Notice, NoticeStatus
from app.models.org import Member, Organization
from app.models.supervision import SUPERVISED, Supervised, TaskStatus
from app.security.models import UserAccount
from app.security.principal import acting_as, current_principal, principal_for, unscoped
from app.security.scope import may_read, scoped_models

# --- who receives ----------------------------------------------------------------------------

def _users(session, *where) -> list[UserAccount]:
    """Active accounts matching `where` (internal look-ups: unscoped)."""
    with unscoped():
        return list(session.scalars(select(UserAccount).where(
            UserAccount.active == true(), *where).order_by(UserAccount.id)).unique())


def _with_role(role: str):
    return UserAccount.roles.any(Role.name == role)


def liaisons(session, *unit_ids) -> list[UserAccount]:
    """The liaison(s) of these units."""
    ids = [i for i in unit_ids if i]
    return _users(session, UserAccount.unit_id.in_(ids), _with_role("UnitLiaison")) if ids else []


def members_users(session, *member_ids) -> list[UserAccount]:
    """The accounts of these members."""
    ids = [i for i in member_ids if i]
    return _users(session, UserAccount.member_id.in_(ids)) if ids else []


def community_admins(session, community_id) -> list[UserAccount]:
    """The admins of a community node (those who run its needs, registrations, meetings)."""
    if not community_id:
        return []
    return _users(session, UserAccount.org_id == community_id, _with_role("CommunityAdmin"))


def admins_above(session, org_id) -> list[UserAccount]:
    """The street admins of the node above `org_id` (a community's street)."""
    with unscoped():
        parent = session.scalar(select(Organization.parent_id).where(Organization.id == org_id))
    if not parent:
        return []
    return _users(session, UserAccount.org_id == parent, _with_role("StreetAdmin"))


def node_admins(session, org_id) -> list[UserAccount]:
    """The admins attached to a node (a community's, a street's; 组织部 for the district)."""
    with unscoped():
        node = session.get(Organization, org_id) if org_id else None
    if node is None:
        return []
    if node.type == "district":
        return _users(session, _with_role("OrgAdmin"))
    return _users(session, UserAccount.org_id == node.id,
                  or_(_with_role("CommunityAdmin"), _with_role("StreetAdmin")))


def report_reviewers(session, report) -> list[UserAccount]:
    """Who reviews a monthly report: the admins of the node above its node."""
    with unscoped():
        node = session.get(Organization, report.org_id)
    return node_admins(session, node.parent_id) if node is not None and node.parent_id else []


def _users_by_id(session, *user_ids) -> list[UserAccount]:
    ids = [i for i in user_ids if i]
    return _users(session, UserAccount.id.in_(ids)) if ids else []


def need_submitters(session, need: Need) -> list[UserAccount]:
    """Who filed a need: its creator, its unit's liaison(s), its member."""
    return (_users_by_id(session, need.created_by_id) + liaisons(session, need.submitted_by_unit_id)
            + members_users(session, need.submitted_by_member_id))


def need_assignees(session, need: Need) -> list[UserAccount]:
    """The liaison(s) of the unit a need is dispatched to, or the members it is dispatched to."""
    return liaisons(session, need.assigned_unit_id) + members_users(
        session, *[m.id for m in need.assigned_members])


def need_actors(session, need: Need) -> list[UserAccount]:
    """Who must act on a need's current step: the community's admins to accept and dispatch
    it, its assignees to take it, whoever took it to complete it."""
    if need.status in (NeedStatus.NEW, NeedStatus.ACCEPTED):
        return community_admins(session, need.community_id)
    if need.status == NeedStatus.IN_HAND and need.taken_by_id:
        return _users_by_id(session, need.taken_by_id)
    return need_assignees(session, need)


def need_late_recipients(session, need: Need) -> list[UserAccount]:
    """A step past its time: whoever must act, and the admins of the node above them (the
    street's for the community's own steps, the community's for a unit's or a member's)."""
    above = (admins_above(session, need.community_id)
             if need.status in (NeedStatus.NEW, NeedStatus.ACCEPTED)
             else community_admins(session, need.community_id))
    return need_actors(session, need) + above


def task_units(session, task) -> list[UserAccount]:
    """Who answers for a supervised task: the liaisons of its lead and co-units, and the
    admins of the node answering for it instead of a unit (a rectification's)."""
    return (liaisons(session, task.lead_unit_id, *[u.id for u in task.co_units])
            + node_admins(session, task.responsible_org_id()))


def task_late(session, task) -> list[UserAccount]:
    """A task past its deadline: who answers for it, and the supervising node's admins."""
    if isinstance(task, Resolution):  # its host's community admins, as since issue 23
        return task_units(session, task) + community_admins(session, task.supervisor_org_id())
    return task_units(session, task) + node_admins(session, task.supervisor_org_id())


# --- the events --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Event:
    code: str
    resource: str  # the table of the row it is about (the message links to it)
    # The message (a msgid: Chinese; its English in app/translations), with the payload's values.
    text: str
    # (session, row) -> the accounts to tell (the actor is left out).
    recipients: Callable
    # row -> the template's values (everything a message shows comes from here).
    payload: Callable


def _need_payload(need: Need) -> dict:
    return {"title": need.title, "deadline": clock.local_text(need.deadline, seconds=False),
            "reason": need.decline_reason or ""}


def _titled(attr: str) -> Callable:
    return lambda row: {"title": str(getattr(row, attr) or "")[:100]}


def _titled_str(row) -> dict:
    return {"title": str(row)[:100]}


def _task_payload(task) -> dict:
    return {"title": (task.content or "")[:60], "deadline": clock.local_text(task.deadline)}


def _supervised(resource: str, assigned: str, near: str, overdue: str) -> tuple[Event, ...]:
    """The three events of a supervised task (app/models/supervision.py): assigned when
    created, its deadline near, its deadline passed."""
    return (Event(f"{resource}_assigned", resource, assigned, task_units, _task_payload),
            Event(f"{resource}_near", resource, near, task_units, _task_payload),
            Event(f"{resource}_overdue", resource, overdue, task_late, _task_payload))


EVENTS: dict[str, Event] = {e.code: e for e in (
    Event("need_accepted", "need", N_("您提交的需求“{title}”已受理"), need_submitters, _need_payload),
    Event("need_dispatched", "need", N_("需求“{title}”已派给您，请在 {deadline} 前接单办理"),
          need_assignees, _need_payload),
    Event("need_taken", "need", N_("需求“{title}”已接单办理"),
          lambda s, n: community_admins(s, n.community_id), _need_payload),
    Event("need_declined", "need", N_("需求“{title}”被退单：{reason}"),
          lambda s, n: community_admins(s, n.community_id), _need_payload),
    Event("need_completed", "need", N_("需求“{title}”已办结，请安排回访"),
          lambda s, n: community_admins(s, n.community_id) + need_submitters(s, n), _need_payload),
    Event("need_reopened", "need", N_("需求“{title}”回访不满意，已重办，请继续办理"),
          need_actors, _need_payload),
    Event("need_deadline_near", "need", N_("需求“{title}”的办理时限 {deadline} 将至"),
          need_actors, _need_payload),
    Event("need_overdue", "need", N_("需求“{title}”已超过办理时限 {deadline}"),
          need_late_recipients, _need_payload),
    Event("wish_claimed", "micro_wish", N_("微心愿“{title}”已被认领"),
          lambda s, w: community_admins(s, w.community_id), _titled("content")),
    Event("wish_fulfilled", "micro_wish", N_("微心愿“{title}”已实现，请代居民确认"),
          lambda s, w: community_admins(s, w.community_id), _titled("content")),
    Event("unit_registration_confirmed", "unit_registration", N_("单位报到已确认（回执编号 {title}）"),
          lambda s, r: liaisons(s, r.unit_id), _titled("receipt_no")),
    Event("member_registration_confirmed", "member_registration", N_("党员报到已确认（报到证编号 {title}）"),
          lambda s, r: members_users(s, r.member_id), _titled("certificate_no")),
    *_supervised("resolution", N_("议定事项“{title}”由您的单位承办，办结时限 {deadline}"),
                 N_("议定事项“{title}”的办结时限 {deadline} 将至"),
                 N_("议定事项“{title}”已超过办结时限 {deadline}")),
    *_supervised("work_plan_item", N_("工作要点“{title}”由您负责，办结时限 {deadline}"),
                 N_("工作要点“{title}”的办结时限 {deadline} 将至"),
                 N_("工作要点“{title}”已超过办结时限 {deadline}")),
    *_supervised("rectification", N_("督查整改任务“{title}”由您负责，整改时限 {deadline}"),
                 N_("整改任务“{title}”的整改时限 {deadline} 将至"),
                 N_("整改任务“{title}”已超过整改时限 {deadline}")),
    Event("agreement_expiring", "agreement", N_("共驻共建协议“{title}”将于 {deadline} 到期"),
          lambda s, a: liaisons(s, a.unit_id) + community_admins(s, a.community_id),
          lambda a: {"title": a.title, "deadline": clock.local_text(a.valid_to)}),
    Event("work_report_submitted", "work_report", N_("{title}已提交，请审核"),
          report_reviewers, _titled_str),
    Event("work_report_returned", "work_report", N_("{title}被退回：{reason}"),
          lambda s, r: node_admins(s, r.org_id),
          lambda r: {"title": str(r), "reason": r.return_reason or ""}),
    Event("work_report_approved", "work_report", N_("{title}已审核通过"),
          lambda s, r: node_admins(s, r.org_id), _titled_str),
    Event("member_unserved", "member", N_("党员{title}本月尚无服务记录，请于月底前参加服务"),
          lambda s, m: members_users(s, m.id) + liaisons(s, m.work_unit_id), _titled("name")),
)}

# The moves that cause an event: (table, transition) → event.
MOVES = {
    ("need", "accept"): "need_accepted",
    ("need", "dispatch"): "need_dispatched",
    ("need", "take"): "need_taken",
    ("need", "decline"): "need_declined",
    ("need", "complete"): "need_completed",
    ("need", "reopen"): "need_reopened",
    ("micro_wish", "claim"): "wish_claimed",
    ("micro_wish", "fulfil"): "wish_fulfilled",
    ("unit_registration", "confirm"): "unit_registration_confirmed",
    ("member_registration", "confirm"): "member_registration_confirmed",
    ("work_report", "submit"): "work_report_submitted",
    ("work_report", "return"): "work_report_returned",
    ("work_report", "approve"): "work_report_approved",
}


# --- writing notices (in the caller's transaction) ---------------------------------------------

def on_move(session, obj, transition_name: str, actor_id: int | None) -> int:
    """The notices of a workflow move, in its transaction (flushed, not committed)."""
    code = MOVES.get((obj.__tablename__, transition_name))
    if code is None:
        return 0
    return notify(session, code, obj, occurrence=uuid.uuid4().hex, actor_id=actor_id)


def may_read_as(session, user: UserAccount, obj, principals: dict | None = None) -> bool:
    """Whether `user` may read `obj`, asked as that user through the data scope (`principals`:
    those already built in this run, by user id)."""
    principal = (principals or {}).get(user.id)
    if principal is None:
        with unscoped():
            principal = principal_for(user)
        if principals is not None:
            principals[user.id] = principal
    with acting_as(principal), session.no_autoflush:
        return may_read(session, type(obj), obj.id)


def notify(session, code: str, obj, occurrence: str, actor_id: int | None = None,
           **values) -> int:
    """Write event `code` about `obj` for each of its recipients who may read `obj`: the
    panel's message, and the e-mail and webhook rows of those who chose them. `occurrence`
    makes the event's key (a move's own id; a deadline; a month): written again, it is not
    written twice. `values` override the payload's (a step's own due time). Returns how many
    recipients it told."""
    event = EVENTS[code]
    key = f"{code}:{obj.__tablename__}:{obj.id}:{occurrence}"[:160]
    session.flush()
    if session.scalar(select(Notice.id).where(Notice.event_key == key).limit(1)) is not None:
        return 0  # told already (a scan run again)
    seen, users = set(), []
    for user in event.recipients(session, obj):
        if user.id not in seen and user.id != actor_id:
            seen.add(user.id)
            users.append(user)
    users = [u for u in users if may_read_as(session, u, obj)]
    if not users:
        return 0
    payload = json.dumps({**event.payload(obj), **{
        k: clock.local_text(v, seconds=False) if isinstance(v, datetime) else v
        for k, v in values.items()}}, ensure_ascii=False, default=str)
    now = clock.utcnow()
    channels = configured_channels()
    for user in users:
        session.add(Notice(event_key=key, event=code, recipient_id=user.id, channel=Channel.PANEL,
                           resource=obj.__tablename__, record_id=obj.id, payload=payload,
                           status=NoticeStatus.SENT, attempts=0, created_on=now, sent_on=now))
        for channel in channels:
            if not getattr(user, CHANNEL_COLUMNS[channel]):
                continue
            if channel == Channel.EMAIL and not user.email:
                continue
            session.add(Notice(event_key=key, event=code, recipient_id=user.id, channel=channel,
                               resource=obj.__tablename__, record_id=obj.id, payload=payload,
                               status=NoticeStatus.PENDING, attempts=0, next_try_on=now,
                               created_on=now))
    session.flush()
    return len(users)


def configured_channels() -> list[Channel]:
    """The channels the deployment has set up besides the panel."""
    config = current_app.config
    channels = []
    if config.get("MAIL_SERVER"):
        channels.append(Channel.EMAIL)
    if config.get("NOTIFY_WEBHOOK_URL"):
        channels.append(Channel.WEBHOOK)
    return channels


# --- the message centre ------------------------------------------------------------------------

def _models() -> dict:
    return {model.__tablename__: model for model in scoped_models()}


def readable():
    """The notices whose row the acting user may read now: each model's ids through the scoped
    session (the data scope's read filter adds itself to these subqueries), or no row at all."""
    parts = [Notice.resource.is_(None)]
    models = _models()
    for resource in sorted({e.resource for e in EVENTS.values()}):
        model = models.get(resource)
        if model is not None:
            parts.append(and_(Notice.resource == resource, Notice.record_id.in_(select(model.id))))
    return or_(*parts)


def inbox(user_id: int):
    """A user's messages in the centre (newest first), those it may read."""
    return (select(Notice).where(Notice.recipient_id == user_id, Notice.channel == Channel.PANEL,
                                 readable()).order_by(Notice.id.desc()))


def unread_count(session, user_id: int) -> int:
    """The bell's figure: the same messages as the list, unread. A user with no unread
    message at all (most pages of most users) is told so by the inbox's index alone: the
    readable() subqueries, one per resource with its data scope, were a tenth of a list
    page's time (issue 30)."""
    unread = (Notice.recipient_id == user_id, Notice.channel == Channel.PANEL,
              Notice.read_on.is_(None))
    if session.scalar(select(Notice.id).where(*unread).limit(1)) is None:
        return 0
    return session.scalar(select(func.count(Notice.id)).where(*unread, readable())) or 0


def mark_read(session, user_id: int, notice_id: int | None = None) -> int:
    """Mark one message (or all of the user's) read; how many were unread."""
    where = [Notice.recipient_id == user_id, Notice.channel == Channel.PANEL,
             Notice.read_on.is_(None)]
    if notice_id is not None:
        where.append(Notice.id == notice_id)
    with committed(session):
        done = session.execute(update(Notice).where(*where).values(read_on=clock.utcnow())
                               .execution_options(synchronize_session=False))
    return done.rowcount


def text_of(notice: Notice, translate: bool = True) -> str:
    """The message as its recipient reads it (plain text: the page escapes it)."""
    event = EVENTS.get(notice.event)
    values = json.loads(notice.payload or "{}")
    if event is None:
        return values.get("title", notice.event)
    pattern = gettext(event.text) if translate else event.text
    try:
        return pattern.format(**values)
    except (KeyError, IndexError, ValueError):
        return event.text


def link_of(notice: Notice) -> str | None:
    """The address of the row a notice is about (its record's page)."""
    if not notice.resource or not notice.record_id:
        return None
    return f"/{notice.resource}/show/{notice.record_id}"


# --- delivery ------------------------------------------------------------------------------------

class DeliveryFailed(Exception):
    """A channel refused or could not be reached: tried again later."""


def _due(now: datetime):
    stale = now - timedelta(seconds=current_app.config["NOTIFY_STALE_SECONDS"])
    return and_(Notice.channel != Channel.PANEL, or_(
        and_(Notice.status == NoticeStatus.PENDING,
             or_(Notice.next_try_on.is_(None), Notice.next_try_on <= now)),
        # Taken by a run that never finished it (its worker was killed): taken again.
        and_(Notice.status == NoticeStatus.SENDING, Notice.claimed_on < stale)))


def deliver(session, budget_seconds: float = 45.0, batches: int | None = None) -> Counter:
    """Send what is due, a batch at a time, until nothing is due or the budget is spent (the
    next run goes on). Each batch is taken by one UPDATE (two runs never take the same row),
    and each row's result is committed as soon as it is known."""
    counts: Counter = Counter()
    started = time.monotonic()
    size = current_app.config["NOTIFY_BATCH"]
    done_batches = 0
    principals: dict = {}  # each recipient's, built once per run
    while time.monotonic() - started < budget_seconds and (batches is None or done_batches < batches):
        now = clock.utcnow()
        ids = list(session.scalars(select(Notice.id).where(_due(now)).order_by(Notice.id)
                                   .limit(size)))
        if not ids:
            break
        claim = secrets.token_hex(16)
        session.execute(update(Notice).where(Notice.id.in_(ids), _due(now)).values(
            status=NoticeStatus.SENDING, claim=claim, claimed_on=now,
            attempts=Notice.attempts + 1).execution_options(synchronize_session=False))
        session.commit()
        for notice in session.scalars(select(Notice).where(Notice.claim == claim)
                                      .order_by(Notice.id)).all():
            counts[_deliver_one(session, notice, claim, principals)] += 1
        done_batches += 1
    return counts


def _deliver_one(session, notice: Notice, claim: str, principals: dict) -> str:
    config = current_app.config
    values = {}
    user = session.get(UserAccount, notice.recipient_id)
    row = _row_of(session, notice)
    if user is None or not user.active:
        values = {"status": NoticeStatus.DROPPED, "error": "收件人已停用，未发送"}
    elif notice.resource and (row is None or not may_read_as(session, user, row, principals)):
        values = {"status": NoticeStatus.DROPPED, "error": "收件人已无权查看该记录，未发送"}
    else:
        try:
            (send_email if notice.channel == Channel.EMAIL else send_webhook)(notice, user)
            values = {"status": NoticeStatus.SENT, "sent_on": clock.utcnow(), "error": None}
        except DeliveryFailed as exc:
            wait = min(config["NOTIFY_RETRY_SECONDS"] * 2 ** max(notice.attempts - 1, 0),
                       config["NOTIFY_RETRY_MAX_SECONDS"])
            last = notice.attempts >= config["NOTIFY_MAX_ATTEMPTS"]
            values = {"status": NoticeStatus.FAILED if last else NoticeStatus.PENDING,
                      "next_try_on": clock.utcnow() + timedelta(seconds=wait),
                      "error": str(exc)[:500]}
    # Only if still this run's (a run taking it over meanwhile decides instead).
    session.execute(update(Notice).where(Notice.id == notice.id, Notice.claim == claim,
                                         Notice.status == NoticeStatus.SENDING)
                    .values(**values).execution_options(synchronize_session=False))
    session.commit()
    return values["status"]


def _row_of(session, notice: Notice):
    model = _models().get(notice.resource or "")
    if model is None:
        return None
    # Not unscoped: a row deleted meanwhile is gone (delivery runs as the system).
    return session.scalar(select(model).where(model.id == notice.record_id))


def absolute_link(notice: Notice) -> str:
    link = link_of(notice)
    return current_app.config["NOTIFY_BASE_URL"].rstrip("/") + link if link else ""


def webhook_body(notice: Notice, user: UserAccount) -> bytes:
    """What the webhook receives: JSON (values encoded, never spliced), with the key that
    tells a repeated delivery."""
    return json.dumps({
        "key": f"{notice.event_key}:{notice.recipient_id}:{notice.channel}",
        "event": notice.event,
        "text": text_of(notice, translate=False),
        "link": absolute_link(notice),
        "resource": notice.resource,
        "record_id": notice.record_id,
        "recipient": {"id": user.id, "username": user.username, "email": user.email},
        "created_on": clock.local_iso(notice.created_on),
    }, ensure_ascii=False).encode("utf-8")


def signature(body: bytes) -> str:
    secret = current_app.config["NOTIFY_WEBHOOK_SECRET"].encode("utf-8")
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def send_webhook(notice: Notice, user: UserAccount) -> None:
    config = current_app.config
    body = webhook_body(notice, user)
    request = urllib.request.Request(config["NOTIFY_WEBHOOK_URL"], data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8",
                                              "X-GongJian-Signature": signature(body),
                                              "X-GongJian-Key": json.loads(body)["key"]})
    try:
        with urllib.request.urlopen(request, timeout=config["NOTIFY_TIMEOUT_SECONDS"]) as answer:
            if not 200 <= answer.status < 300:
                raise DeliveryFailed(f"webhook 返回 HTTP {answer.status}")
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"webhook 返回 HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryFailed(f"webhook 无法连接：{exc}") from None


def email_of(notice: Notice, user: UserAccount) -> EmailMessage:
    """The e-mail: plain text, and HTML with every value escaped."""
    config = current_app.config
    text, link = text_of(notice, translate=False), absolute_link(notice)
    message = EmailMessage()
    message["Subject"] = f"【{config['APP_NAME']}】{text[:60]}"
    message["From"] = config["MAIL_DEFAULT_SENDER"]
    message["To"] = user.email
    message["X-GongJian-Key"] = f"{notice.event_key}:{notice.recipient_id}:{notice.channel}"
    message.set_content(f"{text}\n\n{link}\n" if link else f"{text}\n")
    anchor = f'<p><a href="{html.escape(link)}">{html.escape(link)}</a></p>' if link else ""
    message.add_alternative(f"<p>{html.escape(text)}</p>{anchor}", subtype="html")
    return message


def send_email(notice: Notice, user: UserAccount) -> None:
    config = current_app.config
    try:
        with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"],
                          timeout=config["NOTIFY_TIMEOUT_SECONDS"]) as smtp:
            if config["MAIL_USE_TLS"]:
                smtp.starttls()
            if config["MAIL_USERNAME"]:
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"] or "")
            smtp.send_message(email_of(notice, user))
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"邮件发送失败：{exc}") from None


# --- scheduled notices (each safe to run twice: the key) ----------------------------------------

def step_deadline(need: Need) -> tuple[datetime | None, datetime | None]:
    """When a need's current step began and when it is due — the one place that knows where a
    step's time limit comes from: 受理, 派单 and 接单 each due their share of the urgency's limit
    after intake (`need_step_limits`, the same as `Need.overdue`), 办理 by the deadline; a
    deadline earlier than a step's share makes that step due then too."""
    steps = [status for status, _ in NEED_STEPS]
    if need.status not in steps or need.created_on is None:
        return None, None
    if need.status == NeedStatus.IN_HAND:
        return need.taken_on or need.dispatched_on, need.deadline
    limits = need_step_limits(need.urgency)
    index = steps.index(need.status)
    start = need.created_on + (limits[steps[index - 1]] if index else timedelta(0))
    due = need.created_on + limits[need.status]
    if need.deadline is not None and need.deadline < due:
        due = need.deadline
    return start, due


def _open_needs(session) -> list[Need]:
    return session.scalars(select(Need).where(
        Need.status.in_([status for status, _ in NEED_STEPS]), Need.status.not_in(NEED_CLOSED))
        .order_by(Need.id)).all()


def scan(session, now: datetime | None = None) -> Counter:
    """Write the scheduled notices due now (keyed: a second run writes nothing more), in the
    caller's transaction (the job's: its end commits them)."""
    now = now or clock.utcnow()
    today = clock.to_local(now).date()
    counts: Counter = Counter()
    for need in _open_needs(session):
        start, deadline = step_deadline(need)
        if deadline is None:
            continue
        # One notice per step and due time: a step done and the next one late is told again.
        occurrence = f"{need.status}:{deadline.isoformat()}"
        if deadline < now:
            counts["need_overdue"] += notify(session, "need_overdue", need, occurrence,
                                             deadline=deadline)
        elif start is not None and now >= start + (deadline - start) * 0.8:
            counts["need_deadline_near"] += notify(session, "need_deadline_near", need,
                                                   occurrence, deadline=deadline)
    near = today + timedelta(days=current_app.config["NOTIFY_RESOLUTION_NEAR_DAYS"])
    for model in SUPERVISED:  # resolutions, work-plan items, rectifications alike
        for task in session.scalars(select(model).where(
                model.status != TaskStatus.DONE, model.deadline <= near)
                .order_by(model.id)).all():
            code = model.__tablename__ + ("_overdue" if task.deadline < today else "_near")
            counts[code] += notify(session, code, task, task.deadline.isoformat())
    for agreement in session.scalars(select(Agreement).where(Agreement.expiring)
                                     .order_by(Agreement.id)).all():
        counts["agreement_expiring"] += notify(session, "agreement_expiring", agreement,
                                               agreement.valid_to.isoformat())
    if today.day >= 25:
        counts["member_unserved"] += _remind_unserved(session, today)
    return counts


def _remind_unserved(session, today: date) -> int:
    """On the 25th (or the first run after it), each registered member without a service
    record this month, and its unit's liaison."""
    # the same rule as the 党员报到 list's 本月已服务 and the dashboard's monthly service
    registered = select(MemberRegistration.member_id).where(
        MemberRegistration.status == MemberRegistrationStatus.REGISTERED)
    told = 0
    for member in session.scalars(select(Member).where(
            Member.id.in_(registered), ~served_between(Member.id, today.replace(day=1), today))
                                  .order_by(Member.id)).all():
        told += notify(session, "member_unserved", member, f"{today:%Y-%m}")
    return told


# --- rows whose creation is an event (a resolution assigned to its units) -----------------------

# table → event, for rows a person creates (a form, the API, an import); rows the system makes
# (the seed, a migration) tell nobody.
# Every supervised task (app/models/supervision.py) is assigned to its units when created.
def _created_event(obj) -> str | None:
    return f"{obj.__tablename__}_assigned" if isinstance(obj, Supervised) else None
_CREATED = "notices_created"


@event.listens_for(Session, "after_flush")
def _note_created(session, flush_context) -> None:
    for obj in session.new:
        if _created_event(obj):
            session.info.setdefault(_CREATED, []).append(obj)


@event.listens_for(Session, "before_commit")
def _notify_created(session) -> None:
    created = session.info.pop(_CREATED, None)
    if not created:
        return
    principal = current_principal()
    if principal.system:
        return
    for obj in created:
        if obj.id is not None and not obj.is_deleted:
            notify(session, _created_event(obj), obj, "created", actor_id=principal.user_id)


@event.listens_for(Session, "after_rollback")
def _forget_created(session) -> None:
    session.info.pop(_CREATED, None)


