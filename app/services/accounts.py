"""People in bulk: accounts opened together for members (the member list's 开通账号), with
generated usernames and initial passwords, shown once on a printable 账号通知单.

Rules (issue 20): an opener grants only roles below its own (`GRANTS`) and links only rows it
may write (its scope); a member who already has an account is a row problem naming it, as is a
username taken; every account opened so must change its password at the first login, whatever
PASSWORD_CHANGE_AT_FIRST_LOGIN says. More than `BATCH` at once are opened a batch at a time
(`open_next`), the page showing the progress; the passwords wait, encrypted, in the batch's row
until its slips are first shown, and are then dropped.
"""
from __future__ import annotations

import json
import secrets
from datetime import datetime

from flask import current_app
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from app.errors import DomainError
from app.models.org import Member
from app.security import login_guard
from app.security.models import AccountBatch, UserAccount
from app.security.principal import Principal, unscoped
from app.security.scope import owner_clause
from app import crypto
from app.services import audit

BATCH = 100

# Which roles an opener may grant: strictly below its own, never Admin, OrgAdmin or Auditor.
GRANTS = {
    "Admin": {"StreetAdmin", "CommunityAdmin", "GridAdmin", "UnitLiaison", "Member"},
    "OrgAdmin": {"StreetAdmin", "CommunityAdmin", "GridAdmin", "UnitLiaison", "Member"},
    "StreetAdmin": {"CommunityAdmin", "GridAdmin", "UnitLiaison", "Member"},
    "CommunityAdmin": {"GridAdmin", "UnitLiaison", "Member"},
    "UnitLiaison": {"Member"},
}

# Characters of a generated password, without the look-alikes a printed slip confuses (0O, 1lI).
_UPPER, _LOWER, _DIGITS = "ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnpqrstuvwxyz", "23456789"
# A generated password has about 70 bits of entropy and is replaced at the first login: a fast
# salted hash suffices, where FAB's scrypt takes a tenth of a second or more per account.
INITIAL_HASH = "pbkdf2:sha256:5000"


def _now() -> datetime:
    # The accounts' clock (login_guard.now), which tests move.
    return login_guard.now().replace(microsecond=0)


def grantable(principal: Principal, role: str) -> bool:
    return principal.system or any(role in GRANTS.get(own, ()) for own in principal.role_names)


def initial_password() -> str:
    """12 characters: upper, lower, digits and a dash — the password policy's three classes."""
    pick = secrets.choice
    chars = [pick(_UPPER), pick(_UPPER), pick(_LOWER), pick(_LOWER), pick(_LOWER), pick(_LOWER),
             pick(_DIGITS), pick(_DIGITS), pick(_DIGITS), pick(_LOWER), pick(_UPPER), "-"]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def member_username(member: Member) -> str:
    """dy + the member's id: stable, short, and readable off a slip."""
    return f"dy{member.id:06d}"


def start(session, principal: Principal, members: list[Member], role: str = "Member") -> AccountBatch:
    """A batch opening accounts of `role` for `members` (already read within scope)."""
    if not grantable(principal, role):
        raise DomainError("您不能开通该角色的账号（只能开通低于本人角色的账号）")
    batch = AccountBatch(id=secrets.token_hex(16), created_by_id=principal.user_id,
                         created_on=_now(), role=role, total=len(members),
                         pending=json.dumps([m.id for m in members]), problems="[]",
                         slips=crypto.encrypt("[]"))
    session.add(batch)
    session.commit()
    return batch


def open_next(session, principal: Principal, batch: AccountBatch) -> int:
    """Open the next `BATCH` accounts of `batch` (one transaction); how many remain."""
    pending = json.loads(batch.pending)
    now_ids, rest = pending[:BATCH], pending[BATCH:]
    slips = json.loads(crypto.decrypt(batch.slips) or "[]")
    problems = json.loads(batch.problems)
    role = current_app.appbuilder.sm.find_role(batch.role)
    members = {m.id: m for m in session.execute(
        select(Member).where(Member.id.in_(now_ids))).scalars()}
    with unscoped(), session.no_autoflush:
        owned = set(session.execute(select(Member.id).where(
            Member.id.in_(now_ids), owner_clause(Member, principal))).scalars())
        holders = dict(session.execute(select(UserAccount.member_id, UserAccount.username)
                                       .where(UserAccount.member_id.in_(now_ids))).all())
        wanted = {i: member_username(members[i]) for i in now_ids if i in members}
        taken = set(session.execute(select(UserAccount.username).where(
            func.lower(UserAccount.username).in_([u.lower() for u in wanted.values()])))
            .scalars())
    opened = []
    session.info[audit.SKIP_ROWS] = True  # one record for the batch, not one per account
    try:
        for member_id in now_ids:
            member = members.get(member_id)
            if member is None or member_id not in owned:
                problems.append(["#" + str(member_id), "不存在或超出您的数据范围"])
                continue
            if member_id in holders:
                problems.append([member.name, f"已有账号“{holders[member_id]}”，未重复开通"])
                continue
            username = wanted[member_id]
            if username in taken:
                problems.append([member.name, f"用户名“{username}”已被使用"])
                continue
            password = initial_password()
            user = UserAccount(username=username, first_name=member.name[1:] or member.name,
                               last_name=member.name[:1], email=f"{username}@gongjian.invalid",
                               active=True, roles=[role], member_id=member.id,
                               password=generate_password_hash(password, method=INITIAL_HASH),
                               created_on=_now(), changed_on=_now(),
                               created_by_fk=principal.user_id, changed_by_fk=principal.user_id)
            # Printed on a slip: changed at the first login, whatever the configuration says.
            user.opened_in_bulk, user.must_change_password = True, True
            session.add(user)
            opened.append(username)
            slips.append({"name": member.name, "username": username, "password": password,
                          "link": str(member.community or "")})
        session.flush()
        session.info.pop(audit.SKIP_ROWS, None)
        if opened:
            audit.record(session, "create", "account", record_id=batch.id,
                         changes={"role": batch.role, "opened": opened})
        batch.pending = json.dumps(rest)
        batch.problems = json.dumps(problems, ensure_ascii=False)
        batch.slips = crypto.encrypt(json.dumps(slips, ensure_ascii=False))
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.info.pop(audit.SKIP_ROWS, None)
    return len(rest)


def take_slips(session, batch: AccountBatch) -> tuple[list[dict], bool]:
    """The slips to print, and whether they carry the passwords (the first showing only: the
    passwords are dropped from the batch as they are shown). Each showing is recorded."""
    slips = json.loads(crypto.decrypt(batch.slips) or "[]")
    first = batch.shown_on is None
    if first:
        batch.shown_on = _now()
        batch.slips = crypto.encrypt(json.dumps(
            [{k: v for k, v in slip.items() if k != "password"} for slip in slips],
            ensure_ascii=False))
    batch.printed += 1
    audit.record(session, "export", "account", record_id=batch.id, changes={
        "slips": len(slips), "printing": batch.printed, "passwords_shown": first})
    session.commit()
    return slips, first


def pending(batch: AccountBatch) -> list[int]:
    return json.loads(batch.pending or "[]")


def problems(batch: AccountBatch) -> list[list[str]]:
    return json.loads(batch.problems or "[]")


def open_for_members(session, principal: Principal, members: list[Member]) -> AccountBatch:
    """The member list's 开通账号: a batch of member accounts, the first `BATCH` opened at once
    (the rest by the batch page, with progress)."""
    batch = start(session, principal, members)
    open_next(session, principal, batch)
    return batch
