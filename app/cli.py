"""Command-line tools: `flask gongjian …`, `flask seed demo`, `flask import`, backup and restore."""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from app.extensions import appbuilder, db
from app.security.roles import EXTRA_PERMISSIONS, ROLE_RIGHTS, ROLE_SCOPES

gongjian = AppGroup("gongjian", help="共驻共建管理平台的维护命令")
seed = AppGroup("seed", help="加载演示数据")

# What every logged-in user may do for itself, whatever its role (FAB's own views).
SELF_SERVICE = {
    ("can_userinfo", "UserView"), ("resetmypassword", "UserView"), ("userinfoedit", "UserView"),
    ("can_this_form_get", "ResetMyPasswordView"), ("can_this_form_post", "ResetMyPasswordView"),
    ("can_this_form_get", "UserInfoEditView"), ("can_this_form_post", "UserInfoEditView"),
    ("can_get", "MenuApi"),
}


def _granted(role: str, permission: str, view_menu: str, menus: dict) -> bool:
    rights = ROLE_RIGHTS.get(role, {})
    if role != "Public" and (permission, view_menu) in SELF_SERVICE:
        return True
    if permission == "menu_access":
        readable = {resource for resource, ops in rights.items() if "read" in ops}
        return view_menu in readable or bool(menus.get(view_menu, set()) & readable)
    ops = rights.get(view_menu, set())
    return permission.removeprefix("can_") in ops


def wanted_permissions() -> dict[str, set[str]]:
    """Every (resource → permissions) the registered views and menus declare, plus
    EXTRA_PERMISSIONS. A model view and its REST API share one resource name (roles.py) but
    declare different permissions (the API has no `can_import`), so each resource gets the
    union of its views' permissions."""
    wanted: dict[str, set[str]] = {}
    for view in appbuilder.baseviews:
        wanted.setdefault(view.class_permission_name, set()).update(view.base_permissions or ())
    menu = appbuilder.menu.get_list() if appbuilder.menu is not None else []
    for category in menu:
        for item in [category, *category.childs]:
            if item.name != "-":  # a menu separator has no permission
                wanted.setdefault(item.name, set()).add("menu_access")
    for permission, view_menu in EXTRA_PERMISSIONS:
        wanted.setdefault(view_menu, set()).add(permission)
    return wanted


def sync_roles() -> None:
    """Create every view's permissions, then give each role exactly what roles.py says.

    In one transaction, with a handful of queries. FAB's `add_permissions` is not used: it
    commits once per permission and re-reads the Admin role after each (thousands of statements,
    15–30 s on SQLite), and, taking a view and its API one at a time, it tried to delete the
    view's `can_import` while syncing the API — "Refused to delete permission view … can_import"
    once per importable resource on every fresh set-up, which read like an error."""
    from app.resources import RESOURCES
    from app.security.models import raise_access_stamp

    sm = appbuilder.sm
    session = db.session
    roles = {name: sm.find_role(name) or sm.add_role(name) for name in ROLE_SCOPES}
    wanted = wanted_permissions()
    views = {vm.name: vm for vm in session.query(sm.viewmenu_model)}
    perms = {p.name: p for p in session.query(sm.permission_model)}
    existing = {(pv.permission.name, pv.view_menu.name): pv
                for pv in session.query(sm.permissionview_model)}
    for name in sorted(wanted.keys() - views.keys()):
        views[name] = sm.viewmenu_model(name=name)
        session.add(views[name])
    for name in sorted(set().union(*wanted.values()) - perms.keys()):
        perms[name] = sm.permission_model(name=name)
        session.add(perms[name])
    for view_menu, permissions in sorted(wanted.items()):
        for permission in sorted(permissions):
            if (permission, view_menu) not in existing:
                pv = sm.permissionview_model(permission=perms[permission],
                                             view_menu=views[view_menu])
                session.add(pv)
                existing[(permission, view_menu)] = pv
    # A permission a view no longer declares goes (as FAB's sync did): roles lose it below.
    stale = [pv for (permission, view_menu), pv in existing.items()
             if view_menu in wanted and permission not in wanted[view_menu]]
    everything = [pv for pv in existing.values() if pv not in stale]
    menus: dict[str, set] = {}
    for resource in RESOURCES:
        menus.setdefault(resource.group, set()).add(resource.name)
    for role_name, role in roles.items():
        if role_name == current_app.config["AUTH_ROLE_ADMIN"]:
            role.permissions = everything
        else:
            role.permissions = [pv for pv in everything
                                if _granted(role_name, pv.permission.name, pv.view_menu.name,
                                            menus)]
    if stale:  # out of every role (roles.py's and any other), then gone, as FAB's sync did
        from flask_appbuilder.security.sqla.models import assoc_permissionview_role as held
        from sqlalchemy import delete

        session.flush()
        session.execute(delete(held).where(held.c.permission_view_id.in_([pv.id for pv in stale])))
        for pv in stale:
            session.delete(pv)
        session.flush()
        for permission in {pv.permission for pv in stale}:  # a name no view uses any more
            if not session.query(sm.permissionview_model).filter_by(permission=permission).first():
                session.delete(permission)
    # Every process's kept rights (app/security/manager.py) are stale once this commits: the
    # rights deleted above in SQL pass no flush.
    raise_access_stamp(session)
    session.commit()


@gongjian.command("init")
def init_command():
    """初始化（可重复执行）：创建权限、按 roles.py 同步角色，补齐数据字典默认项和年度考核默认指标，将本机上传文件移入共享存储。"""
    from app.locks import deploy_lock
    from app.services.defaults import ensure_dictionary, ensure_indicators
    from app.services.uploads import move_local_uploads

    with deploy_lock(db.engine):  # two hosts at once: one after the other
        sync_roles()
        added = ensure_dictionary(db.session)
        indicators = ensure_indicators(db.session)
    click.echo(f"角色与权限已同步；数据字典新增 {added} 项默认值；年度考核指标新增 {indicators} 项。")
    _recompute_due_if_limits_changed()
    # Files uploads left on this host's disk before the shared storage (issue 21).
    moved = move_local_uploads(db.session)
    if moved:
        click.echo(f"已将 {moved} 个本机上传文件移入共享文件存储。")


@gongjian.command("rate-stars")
@click.argument("period")
def rate_stars_command(period):
    """计算星级评定：PERIOD 为季度（如 2026Q1，一季一评星）或年度（如 2026，由各季度得出）。"""
    from app.errors import DomainError
    from app.services.cobuild import compute_ratings, rated_message

    try:
        done = compute_ratings(db.session, period)
    except DomainError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{rated_message(done)}（状态：已计算，待审核）。")


@gongjian.command("generate-meetings")
@click.option("--body", "body_ids", type=int, multiple=True,
              help="联席会编号（可重复；不填则为全部联席会）")
@click.option("--period", default=None, help="期间：2026（年）、2026Q3（季度）或 2026-07（月）")
@click.option("--from", "start", default=None, help="开始日期，如 2026-07-01（与 --to 同用）")
@click.option("--to", "end", default=None, help="结束日期，如 2026-09-30")
def generate_meetings_command(body_ids, period, start, end):
    """按联席会设置的会议周期生成一段期间的计划会议（已有的不重复生成）。"""
    from datetime import date

    from sqlalchemy import select

    from app.errors import DomainError
    from app.models.meetings import JointBody
    from app.services.meetings import generate_meetings, parse_period

    try:
        if period:
            first, last = parse_period(period)
        else:
            try:
                first, last = date.fromisoformat(start or ""), date.fromisoformat(end or "")
            except ValueError:
                raise DomainError("请用 --period 指定期间，或用 --from 和 --to 指定起止日期") from None
        stmt = select(JointBody).order_by(JointBody.id)
        if body_ids:
            stmt = stmt.where(JointBody.id.in_(body_ids))
        bodies = db.session.execute(stmt).scalars().all()
        if body_ids and len(bodies) != len(set(body_ids)):
            raise DomainError("所选联席会不存在")
        for body in bodies:
            done = generate_meetings(db.session, body, first, last)
            click.echo(f"{body.name}：已生成 {len(done.created)} 次会议计划，"
                       f"{done.skipped} 次已存在（{first} 至 {last}）")
    except DomainError as exc:
        raise click.ClickException(str(exc)) from None


@gongjian.command("purge")
@click.option("--days", type=int, default=None,
              help="保留天数（默认取 RECYCLE_RETENTION_DAYS）：删除早于此的记录将被彻底清除")
@click.option("--dry-run", is_flag=True, help="只统计将被清除的记录，不清除")
def purge_command(days, dry_run):
    """彻底清除回收站中超过保留期的记录（每条留一条操作日志；仍被引用的记录保留）。"""
    from app.errors import DomainError
    from app.services.recycle import purge_expired

    days = current_app.config["RECYCLE_RETENTION_DAYS"] if days is None else days
    try:
        report = purge_expired(db.session, days, dry_run=dry_run)
    except DomainError as exc:
        raise click.ClickException(str(exc)) from None
    verb = "将清除" if dry_run else "已清除"
    for item in report:
        kept = f"，{item.kept} 条仍被其他记录引用而保留" if item.kept else ""
        click.echo(f"{item.label}：{verb} {item.purged} 条{kept}")
    total = sum(item.purged for item in report)
    click.echo(f"回收站中删除超过 {days} 天的记录：{verb} {total} 条。")


@gongjian.command("notices")
@click.option("--no-scan", is_flag=True, help="不生成定时提醒，只投递待发送的邮件与 webhook")
def notices_command(no_scan):
    """生成到期的定时提醒（办理时限、协议到期、月度服务），并投递一轮待发送的邮件与 webhook 通知
    （与 beat 的定时任务相同；重复运行不会重复提醒）。"""
    from app.services import notices

    if not no_scan:
        counts = notices.scan(db.session)
        db.session.commit()
        click.echo(f"定时提醒：写入 {sum(counts.values())} 条")
    sent = notices.deliver(db.session)
    click.echo("投递：" + "，".join(f"{status} {n} 条" for status, n in sorted(sent.items()))
               if sent else "投递：没有待发送的通知")


needs_group = AppGroup("needs", help="需求清单的维护")
gongjian.add_command(needs_group)


def _recompute_due_if_limits_changed(always: bool = False) -> None:
    """The list's stored due instants follow NEED_TIME_LIMIT_HOURS and NEED_STEP_SHARES."""
    from app.models.lists import ensure_step_due

    with db.engine.begin() as connection:
        rows = ensure_step_due(connection, always)
    if rows is not None:
        click.echo(f"已按当前时限配置重算 {rows} 条未办结需求的本环节时限。")


@needs_group.command("recompute-due")
def recompute_due_command():
    """按当前时限配置（NEED_TIME_LIMIT_HOURS、NEED_STEP_SHARES）重算全部未办结需求的本环节时限
    （需求列表的默认排序）；修改时限配置后执行。"""
    _recompute_due_if_limits_changed(always=True)


rollups_group = AppGroup("rollups", help="看板汇总表（按社区、单位、月份的合计）的维护")
gongjian.add_command(rollups_group)


@rollups_group.command("rebuild")
def rollups_rebuild_command():
    """由原始数据重算全部汇总（迁移、批量导入后或修复时）。"""
    import time

    from app import rollups

    started = time.perf_counter()
    rollups.rebuild(db.session.connection())
    db.session.commit()
    with db.engine.begin() as connection:
        rollups.analyze(connection)
    click.echo(f"汇总已重算，用时 {time.perf_counter() - started:.1f} 秒。")


@rollups_group.command("check")
@click.option("--show", default=20, help="最多列出多少处不一致")
def rollups_check_command(show):
    """将汇总与原始数据逐格比对（先在本事务中应用待处理的变更，比对后撤回）；有不一致时列出并以
    状态 1 退出。"""
    from app import rollups

    connection = db.session.connection()
    pending = rollups.apply(connection)
    found = 0
    for name, key, stored, computed in rollups.differences(connection):
        found += 1
        if found <= show:
            click.echo(f"{name} {key}：汇总 {stored}，原始数据 {computed}")
    db.session.rollback()
    if found:
        click.echo(f"汇总与原始数据不一致：{found} 处（已计入待应用的变更 {pending} 条）。", err=True)
        sys.exit(1)
    click.echo(f"汇总与原始数据一致（已计入待应用的变更 {pending} 条）。")


@gongjian.command("check-accounts")
def check_accounts_command():
    """列出缺少所属组织/所属单位/对应党员的账号（其角色需要它才能看到数据）；有则退出码为 1。"""
    from sqlalchemy import select

    from app.security.models import UserAccount

    lacking = [(user.username, reason) for user in db.session.execute(
        select(UserAccount).order_by(UserAccount.username)).scalars()
        if (reason := user.missing_link())]
    for username, reason in lacking:
        click.echo(f"{username}：{reason}")
    click.echo(f"缺少关联的账号：{len(lacking)} 个。" if lacking else "所有账号都已关联所需的组织、单位或党员。")
    if lacking:
        sys.exit(1)


@click.command("backup")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@with_appcontext
def backup_command(path):
    """备份 SQLite 数据库（在线备份，运行中亦可）；PATH 默认为 instance/backups/ 下的新文件。"""
    from pathlib import Path

    from app.errors import DomainError
    from app.services import backup

    url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    target = Path(path) if path else backup.default_name(current_app.config["BACKUP_FOLDER"])
    try:
        snapshot = backup.backup(url, target)
    except DomainError as exc:
        raise click.ClickException(str(exc)) from None
    backup.record(url, "export", {"file": str(target), "rows": snapshot.total,
                                  "revision": snapshot.revision})
    click.echo(f"已备份到 {target}：{len(snapshot.rows)} 张表，共 {snapshot.total} 行"
               f"（数据库版本 {snapshot.revision}）。")


@click.command("restore")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--to", "to_url", default=None,
              help="恢复到的数据库 URL（默认为当前配置的数据库），如 sqlite:////tmp/check.db")
@click.option("--yes", is_flag=True, help="不再确认，直接覆盖")
@with_appcontext
def restore_command(path, to_url, yes):
    """用备份文件恢复 SQLite 数据库；被覆盖的数据库先另存一份。恢复前请停止服务。"""
    from pathlib import Path

    from alembic.script import ScriptDirectory

    from app.errors import DomainError
    from app.services import backup

    url = to_url or current_app.config["SQLALCHEMY_DATABASE_URI"]
    try:
        target = backup.sqlite_file(url)
        snapshot = backup.inspect_backup(Path(path))
    except DomainError as exc:
        raise click.ClickException(str(exc)) from None
    if not yes:
        click.confirm(f"将用 {path}（{snapshot.total} 行，数据库版本 {snapshot.revision}）覆盖 "
                      f"{target}，确定吗？", abort=True)
    keep = None
    if target.is_file() and target.stat().st_size:
        keep = backup.default_name(current_app.config["BACKUP_FOLDER"])
        keep = keep.with_name(keep.stem + "-before-restore.db")
        keep.parent.mkdir(parents=True, exist_ok=True)
    try:
        backup.restore(Path(path), url, keep)
    except DomainError as exc:
        raise click.ClickException(str(exc)) from None
    backup.record(url, "import", {"file": str(path), "rows": snapshot.total,
                                  "revision": snapshot.revision})
    click.echo(f"已从 {path} 恢复到 {target}：{len(snapshot.rows)} 张表，共 {snapshot.total} 行。")
    if keep is not None:
        click.echo(f"恢复前的数据库已另存为 {keep}。")
    heads = set(ScriptDirectory.from_config(current_app.extensions["migrate"].migrate
                                            .get_config()).get_heads())
    if set((snapshot.revision or "").split(",")) != heads:
        click.echo("备份的数据库版本与当前程序不同，请运行 flask db upgrade。")


class Refused(click.ClickException):
    """A command refused with a Chinese message (click's own prefix is English)."""

    def show(self, file=None):
        click.echo(f"错误：{self.format_message()}", err=True)


SHOWN_PROBLEMS = 20  # on the terminal; the report file has them all


@click.command("import")
@click.argument("resource")
@click.argument("file")
@click.option("--as", "username", default=None,
              help="以该用户的身份导入（其数据范围、权限，操作日志记在其名下）")
@click.option("--dry-run", is_flag=True, help="只校验并预览将新增、更新多少条，不写入")
@click.option("--report", "report_path", default=None,
              help="有错误时写出错误报告（CSV，含“错误”列）的路径；默认写在 FILE 旁")
@with_appcontext
def import_command(resource, file, username, dry_run, report_path):
    """导入 .xlsx、.xls、.csv 或 .txt 文件：与网页导入相同的校验，全部正确才在一个事务中写入，否则不写入任何数据。"""
    from pathlib import Path

    from sqlalchemy.exc import IntegrityError, OperationalError

    from app.errors import DomainError, refused_by_database
    from app.imports import REGISTRY, Importer
    from app.resources import RESOURCES
    from app.security.scope import acting_as, principal_for
    from app.views.entity import view_of

    if not username:
        raise Refused("请用 --as 用户名 指定以哪个用户的身份导入")
    sm = appbuilder.sm
    user = sm.find_user(username=username)
    if user is None:
        raise Refused(f"找不到用户“{username}”")
    if not user.active:
        raise Refused(f"用户“{username}”已停用")
    # The web import's own right, held by one of the user's roles.
    allowed = sm.exist_permission_on_roles(resource, "can_import", [r.id for r in user.roles])
    if resource == "account":  # no business rows: accounts opened, and their slips
        if not allowed:
            raise Refused(f"用户“{username}”没有导入账号的权限")
        return _open_accounts(user, Path(file), dry_run, report_path)
    view = view_of(resource)
    if view is None or not view.import_columns:
        importable = sorted(r.name for r in RESOURCES if getattr(r.view, "import_columns", None))
        raise Refused(f"“{resource}”不能导入；可导入的有：{'、'.join(importable + ['account'])}")
    label = view.model.__label__
    if not allowed:
        raise Refused(f"用户“{username}”没有导入{label}的权限")
    path = Path(file)
    data = _file_bytes(path)
    importer = REGISTRY.get(resource) or Importer(view)
    with acting_as(principal_for(user)):
        try:
            # Read once first: an unreadable file is refused before anything starts, and
            # the progress bar knows its length.
            _headers, rows = importer.read(path.name, data)
            doing = "校验" if dry_run else "导入"
            with click.progressbar(length=len(rows), label=f"{doing}{label}（{len(rows)} 行）",
                                   file=sys.stderr) as bar:
                outcome = importer.run(path.name, data, dry_run=dry_run,
                                       progress=lambda done: bar.update(done - bar.pos))
        except DomainError as exc:  # the file refused: size, type, encoding, headers, row cap
            raise Refused(str(exc)) from None
        except (IntegrityError, OperationalError) as exc:
            told = refused_by_database(exc)
            if told is None:
                raise
            raise Refused(f"{told}（未导入任何数据）") from None
    if outcome.ignored:
        click.echo("未导入的列：" + "、".join(outcome.ignored), err=True)
    if outcome.ok:
        counts = (f"新增 {outcome.created} 条，更新 {outcome.updated} 条，"
                  f"无变化 {outcome.unchanged} 条")
        if outcome.written:
            click.echo(f"导入成功：{label}{counts}（操作人 {username}）。")
        else:
            click.echo(f"预览（未写入）：{label}将{counts}。")
        return
    _refuse_with_report(outcome, importer, path, report_path, "未导入任何数据")


def _file_bytes(path) -> bytes:
    limit = current_app.config["IMPORT_MAX_BYTES"]
    try:
        with path.open("rb") as handle:
            return handle.read(limit + 1)  # one byte more is enough for the size message
    except FileNotFoundError:
        raise Refused(f"文件不存在：{path}") from None
    except IsADirectoryError:
        raise Refused(f"{path} 是目录，请指定要导入的文件") from None
    except OSError as exc:
        raise Refused(f"无法读取文件 {path}：{exc.strerror or exc}") from None


def _refuse_with_report(outcome, importer, path, report_path, nothing_done):
    """The first problems on the terminal, all of them in the error report beside the file."""
    from pathlib import Path

    from app.imports import error_report

    for problem in outcome.problems[:SHOWN_PROBLEMS]:
        where = f"第 {problem.row} 行" + (f"“{problem.column}”" if problem.column else "")
        click.echo(f"{where}：{problem.message}", err=True)
    more = len(outcome.problems) - SHOWN_PROBLEMS
    if more > 0:
        click.echo(f"……另有 {more} 处错误，见错误报告", err=True)
    report = Path(report_path) if report_path else path.with_name(f"{path.stem}.errors.csv")
    try:
        report.write_bytes(error_report(outcome, importer))
        where = f"错误报告已写入 {report}"
    except OSError as exc:
        where = f"错误报告未能写入 {report}：{exc.strerror or exc}"
    rows_wrong = len({p.row for p in outcome.problems})
    raise Refused(f"发现 {len(outcome.problems)} 处错误（{rows_wrong} 行），{nothing_done}；{where}")


def _open_accounts(user, path, dry_run, report_path):
    """`flask import account`: the account import of the web page (app/services/accounts.py),
    as `user`. Its 账号通知单 — the initial passwords, shown once — go to a file beside FILE
    that only its owner may read, as the web page prints them once."""
    import csv
    import io
    import os

    from app.errors import DomainError
    from app.security.scope import acting_as, principal_for
    from app.services import accounts

    data = _file_bytes(path)
    importer = accounts.AccountImporter()
    principal = principal_for(user)
    with acting_as(principal):
        try:
            outcome, batch = importer.open(db.session, principal, path.name, data, dry_run=dry_run)
        except DomainError as exc:
            raise Refused(str(exc)) from None
        if not outcome.ok:
            _refuse_with_report(outcome, importer, path, report_path, "未开通任何账号")
        if batch is None:
            click.echo(f"预览（未写入）：将开通 {outcome.created} 个账号。")
            return
        slips, _ = accounts.take_slips(db.session, batch)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["姓名", "用户名", "初始密码", "所属"])
    writer.writerows([s["name"], s["username"], s["password"], s["link"]] for s in slips)
    target = path.with_name(f"{path.stem}.slips.csv")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as handle:
        handle.write(out.getvalue())
    click.echo(f"已开通 {outcome.created} 个账号（操作人 {user.username}）。账号通知单（含初始密码，"
               f"仅此一次）已写入 {target}，请打印后删除该文件；首次登录须修改密码。")


@seed.command("demo")
@click.option("--scale", type=click.Choice(["test", "demo", "city"]), default="demo",
              help="数据规模：test（测试用小数据）、demo（演示区）、city（全市，性能测试）")
@click.option("--password", default=None, help="演示用户的密码（默认取 DEMO_PASSWORD 或随机生成）")
@click.option("--force", is_flag=True, help="数据库非空且不是演示数据时仍然加载")
def seed_demo(scale, password, force):
    """在空数据库中加载演示数据和演示用户。"""
    from seed.demo import SeedRefused
    from seed.demo import seed_demo as run

    try:
        run(scale=scale, password=password, force=force, echo=click.echo)
    except SeedRefused as exc:
        raise click.ClickException(str(exc)) from None


def register_cli(app) -> None:
    app.cli.add_command(gongjian)
    app.cli.add_command(seed)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    app.cli.add_command(import_command)
