"""Command-line tools: `flask gongjian sync-roles`, `flask seed demo`."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from app.extensions import appbuilder, db
from app.security.roles import ROLE_RIGHTS, ROLE_SCOPES

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
