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

from app import clock, crypto
from app import import_values as values_of
from app.errors import DomainError
from app.imports import Column, Importer, Outcome, Problem, fold, header_words
from app.models.org import Member
from app.security.models import AccountBatch, UserAccount, link_problem
from app.security.principal import Principal, unscoped
from app.security.roles import ROLE_LABELS, ROLE_LINKS
from app.security.scope import owner_clause
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
    return clock.utcnow().replace(microsecond=0)


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


def new_account(session, principal: Principal, username: str, name: str, role, links: dict,
                place: str, phone: str | None = None) -> dict:
    """Add one account with a generated password; its slip (name, username, password, where)."""
    password = initial_password()
    now = _now()
    user = UserAccount(username=username, first_name=name[1:] or name, last_name=name[:1],
                       phone=phone or None,
                       email=f"{username}@gongjian.invalid", active=True, roles=[role],
                       password=generate_password_hash(password, method=INITIAL_HASH),
                       created_on=now, changed_on=now, created_by_fk=principal.user_id,
                       changed_by_fk=principal.user_id, **links)
    # Printed on a slip: changed at the first login, whatever the configuration says.
    user.opened_in_bulk, user.must_change_password = True, True
    session.add(user)
    return {"name": name, "username": username, "password": password, "link": place}


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
            slips.append(new_account(session, principal, username, member.name, role,
                                     {"member_id": member.id}, str(member.community or "")))
            opened.append(username)
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


# --- accounts from a file: the importable resource `account` ----------------------------------

class AccountImporter(Importer):
    """Accounts for liaisons, community and grid admins and members from a file: 用户名
    (optional: generated), 姓名, 角色, and the link its role needs — 所属单位 (name or 统一社会信用代码),
    所属组织 (name or 编码), 对应党员 (身份证号 or name) — each among the rows the importer owns;
    手机号 optional, read as every phone column (a number that lost digits is a row error).
    Every row checked first (a role not below one's own, a link missing or out of scope, a
    username taken, a member who has an account: row errors); then all opened at once, or
    none. The slips are the batch's, as for the member list's 开通账号."""

    LINK_COLUMNS = {"unit": "所属单位", "org": "所属组织", "member": "对应党员"}

    def __init__(self):  # not a view's import: accounts are no business rows
        from types import SimpleNamespace

        self.view = SimpleNamespace(import_examples={"name": "张三", "member": "11010519491231002X"})
        self.model, self.resource, self.key = UserAccount, "account", None
        roles = {str(label): code for code, label in ROLE_LABELS.items() if code != "Public"}
        self.columns = [Column("username", "用户名", "text", False),
                        Column("name", "姓名", "text", True),
                        Column("role", "角色", "choice", True, roles, str(ROLE_LABELS["Member"])),
                        *(Column(link, header, "relation", False)
                          for link, header in self.LINK_COLUMNS.items()),
                        Column("phone", "手机号", "text", False)]
        # The file's headers, as the importer reads them: each column by its own label, the
        # phone by the words offices write for it too (手机, 联系电话, …).
        for col in self.columns:
            col.words = tuple(dict.fromkeys(fold(w) for w in header_words(col.header)))
        self.headers = {word: col for col in self.columns
                        for word in (col.words if col.name == "phone" else col.words[:1])}

    def open(self, session, principal: Principal, filename: str, data: bytes,
             dry_run: bool = False) -> tuple[Outcome, AccountBatch | None]:
        reading = self.reading(filename, data)
        headers, rows = reading.headers, reading.rows
        width = len(headers)
        outcome = Outcome(rows=len(rows), headers=headers,
                          table=[(n, [str(c or "") for c in [*r, *[None] * (width - len(r))][:width]])
                                 for n, r in rows])
        position = reading.position  # field name -> the file's column
        owned = _Owned(session, principal)
        planned, usernames = [], set()
        for number, raw in rows:
            found = {c.name: raw[position[c.name]] for c in self.columns
                     if c.name in position and position[c.name] < len(raw)}
            cells = {c.name: str(found.get(c.name) or "").strip() for c in self.columns}
            try:  # a phone as every phone column reads it (a cell stored as a number, …)
                cells["phone"] = values_of.code_text("手机号", "phone", found["phone"]) \
                    if cells["phone"] else ""
                problem = self._check_row(session, principal, owned, cells, usernames)
            except ValueError as exc:
                problem = Problem(0, "手机号", str(exc))
            if isinstance(problem, Problem):
                problem.row = number
                outcome.problems.append(problem)
            else:
                planned.append(problem)
        if not outcome.ok or dry_run:
            outcome.created = 0 if not outcome.ok else len(planned)
            session.rollback()
            return outcome, None
        batch = AccountBatch(id=secrets.token_hex(16), created_by_id=principal.user_id,
                             created_on=_now(), role="", total=len(planned), pending="[]",
                             problems="[]")
        roles = {name: current_app.appbuilder.sm.find_role(name) for name in
                 {p["role"] for p in planned}}
        session.info[audit.SKIP_ROWS] = True
        try:
            slips = [new_account(session, principal, p["username"], p["name"], roles[p["role"]],
                                 {f"{p['link']}_id": p["linked"].id}, str(p["linked"]),
                                 phone=p["phone"])
                     for p in planned]
            batch.role = ",".join(sorted(roles))
            batch.slips = crypto.encrypt(json.dumps(slips, ensure_ascii=False))
            session.add(batch)
            session.flush()
            session.info.pop(audit.SKIP_ROWS, None)
            audit.record(session, "import", "account", record_id=batch.id, changes={
                "file": filename, "rows": len(rows), "opened": [p["username"] for p in planned]})
            session.commit()
        except Exception:
            session.rollback()
            raise
        finally:
            session.info.pop(audit.SKIP_ROWS, None)
        outcome.created, outcome.written = len(planned), True
        return outcome, batch

    def _check_row(self, session, principal, owned, cells, usernames):
        """The row's account as planned, or its first Problem (row number set by the caller)."""
        def wrong(column, message):
            return Problem(0, column, message)

        for col in self.columns:
            if col.required and not cells[col.name]:
                return wrong(col.header, f"“{col.header}”不能为空")
        role_col = self.columns[2]
        role = role_col.choices.get(cells["role"])
        if role is None:
            return wrong(role_col.header, "“角色”应为：" + "、".join(role_col.choices))
        if not grantable(principal, role):
            return wrong(role_col.header, f"您不能开通“{cells['role']}”账号（只能开通低于本人角色的账号）")
        link = ROLE_LINKS.get(role)
        if link is None:
            return wrong(role_col.header, f"不能批量开通“{cells['role']}”账号")
        header = self.LINK_COLUMNS[link]
        text = cells[link]
        linked = owned.find(link, text) if text else None
        if text and linked is None:
            return wrong(header, f"找不到“{text}”，或不在您的数据范围内")
        if linked is False:
            return wrong(header, f"“{text}”对应多条记录，请改填编码或证件号")
        reason = link_problem([role], lambda _: linked)
        if reason:
            return wrong(header, reason)
        if link == "member":
            holder = owned.account_of(linked)
            if holder:
                return wrong(header, f"{linked.name}已有账号“{holder}”，未重复开通")
        username = cells["username"] or owned.free_username(link, linked, usernames)
        if username.lower() in usernames or owned.taken(username):
            return wrong("用户名", f"用户名“{username}”已被使用")
        usernames.add(username.lower())
        return {"username": username, "name": cells["name"], "role": role, "link": link,
                "linked": linked, "phone": cells["phone"]}


class _Owned:
    """The units, nodes and members an importer owns (may link accounts to), found by name,
    code or 身份证号 — one query each, on first use; and the usernames taken."""

    PREFIX = {"member": "dy", "unit": "dw", "org": "zz"}

    def __init__(self, session, principal):
        self.session, self.principal, self.cache = session, principal, {}

    def find(self, link, text):
        """The owned row `text` names (None: none; False: several)."""
        from sqlalchemy import or_

        from app import validators
        from app.models.org import Organization, Unit

        if (link, text) not in self.cache:
            model = {"unit": Unit, "org": Organization, "member": Member}[link]
            keys = [model.name == text]
            if link == "member":
                try:
                    keys.append(Member.id_number_hash == crypto.keyed_hash(
                        validators.normalize_id_number(text)))
                except ValueError:
                    pass  # a name
            else:
                keys.append((Unit.credit_code if link == "unit" else Organization.code) == text)
            with self.session.no_autoflush:
                rows = self.session.execute(select(model).where(
                    or_(*keys), owner_clause(model, self.principal)).limit(2)).scalars().all()
            self.cache[(link, text)] = rows[0] if len(rows) == 1 else (False if rows else None)
        return self.cache[(link, text)]

    def account_of(self, member) -> str | None:
        with unscoped():
            return self.session.execute(select(UserAccount.username).where(
                UserAccount.member_id == member.id)).scalar()

    def taken(self, username: str) -> bool:
        with unscoped():
            return self.session.execute(select(UserAccount.id).where(
                func.lower(UserAccount.username) == username.lower())).first() is not None

    def free_username(self, link, linked, usernames) -> str:
        stem = f"{self.PREFIX[link]}{linked.id:06d}"
        name, n = stem, 1
        while name.lower() in usernames or self.taken(name):
            n += 1
            name = f"{stem}-{n}"
        return name
