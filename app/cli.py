"""Command-line tools: `flask gongjian sync-roles`, `flask seed demo`."""
from __future__ import annotations

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


def sync_roles() -> None:
    """Create every view's permissions, then give each role exactly what roles.py says."""
    from app.views import MENU

    sm = appbuilder.sm
    roles = {name: sm.find_role(name) or sm.add_role(name) for name in ROLE_SCOPES}
    appbuilder.add_permissions(update_perms=True)
    for permission, view_menu in EXTRA_PERMISSIONS:
        sm.add_permission_view_menu(permission, view_menu)
    menus: dict[str, set] = {}
    for _view, name, _label, _icon, category in MENU:
        menus.setdefault(category, set()).add(name)
    everything = db.session.query(sm.permissionview_model).all()
    for role_name, role in roles.items():
        if role_name == current_app.config["AUTH_ROLE_ADMIN"]:
            wanted = everything
        else:
            wanted = [pv for pv in everything
                      if _granted(role_name, pv.permission.name, pv.view_menu.name, menus)]
        role.permissions = wanted
    db.session.commit()


@gongjian.command("init")
def init_command():
    """初始化（可重复执行）：创建权限、按 roles.py 同步角色，补齐数据字典默认项。"""
    from app.services.defaults import ensure_dictionary

    sync_roles()
    added = ensure_dictionary(db.session)
    click.echo(f"角色与权限已同步；数据字典新增 {added} 项默认值。")


@gongjian.command("rate-stars")
@click.argument("period")
def rate_stars_command(period):
    """计算星级评定：PERIOD 为季度（如 2026Q1，一季一评星）或年度（如 2026，由各季度得出）。"""
    from app.errors import DomainError
    from app.services.cobuild import compute_ratings

    try:
        done = compute_ratings(db.session, period)
    except DomainError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{done['period'].label}星级评定已计算：驻区单位 {done['unit']} 个、党员 "
               f"{done['member']} 名，其中不予评星 {done['not_rated']} 个（状态：已计算，待审核）。")


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


@seed.command("demo")
@click.option("--scale", type=click.Choice(["test", "demo", "city"]), default="demo",
              help="数据规模：test（测试用小数据）、demo（演示区）、city（全市，性能测试）")
@click.option("--password", default=None, help="演示用户的密码（默认取 DEMO_PASSWORD 或随机生成）")
@click.option("--force", is_flag=True, help="数据库非空且不是演示数据时仍然加载")
def seed_demo(scale, password, force):
    """在空数据库中加载演示数据和演示用户。"""
    from seed.demo import SeedRefused, seed_demo as run

    try:
        run(scale=scale, password=password, force=force, echo=click.echo)
    except SeedRefused as exc:
        raise click.ClickException(str(exc)) from None


def register_cli(app) -> None:
    app.cli.add_command(gongjian)
    app.cli.add_command(seed)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
