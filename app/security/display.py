"""How the security pages name roles and rights (issue 27): a role by its Chinese label
(系统管理员, not Admin), a right as 操作：资源 (导出：星级评定, not "can export on star_rating").
Display only — role and permission names stay as FAB and `flask gongjian init` store them."""
from __future__ import annotations

from flask import current_app

from app.i18n import N_, gettext
from app.security.roles import ROLE_LABELS

# FAB's permission names and ours (roles.RIGHTS, the transition tables grant the rest).
PERMISSION_LABELS = {
    "can_read": N_("查看"), "can_add": N_("新增"), "can_edit": N_("编辑"), "can_delete": N_("删除"),
    "can_export": N_("导出"), "can_import": N_("导入"), "menu_access": N_("菜单"),
    "can_list": N_("列表"), "can_show": N_("查看详情"), "can_get": N_("读取"), "can_put": N_("修改"),
    "can_post": N_("提交"), "can_info": N_("接口说明"), "can_compute": N_("计算"),
    "can_restore": N_("恢复"), "can_reveal": N_("查看完整身份证号与电话"),
    "can_open_accounts": N_("开通账号"), "can_userinfo": N_("我的资料"),
    "can_resetmypassword": N_("修改本人密码"), "can_resetpasswords": N_("重置密码"),
    "can_userinfoedit": N_("编辑本人资料"), "can_this_form_get": N_("打开表单"),
    "can_this_form_post": N_("提交表单"), "can_download": N_("下载"), "can_delete_all": N_("批量删除"),
    "can_copyrole": N_("复制角色"),
    # FAB 5.3's role API's own rights.
    "can_add_role_permissions": N_("添加角色权限"), "can_list_role_permissions": N_("查看角色权限"),
    "can_update_role_groups": N_("设置角色的用户组"), "can_update_role_users": N_("设置角色的用户"),
}


def _permission_label(name: str) -> str | None:
    # Some of FAB's rights are stored without "can_" (copyrole, userinfoedit…).
    return PERMISSION_LABELS.get(name) or PERMISSION_LABELS.get(f"can_{name}")

# FAB's own pages and APIs by their view-menu names (they are in no menu, or under one whose
# label is not theirs): the roles page would show class names ("列表：UserView").
FAB_RESOURCE_LABELS = {
    "UserView": N_("用户管理"), "RoleModelView": N_("角色管理"), "UserGroupModelView": N_("用户组"),
    "PermissionModelView": N_("权限"), "ViewMenuModelView": N_("视图/菜单"),
    "PermissionViewModelView": N_("视图/菜单权限"), "ResetMyPasswordView": N_("修改本人密码"),
    "ResetPasswordView": N_("重置密码"), "UserInfoEditView": N_("编辑本人资料"),
    "MenuApi": N_("菜单接口"), "User": N_("用户接口"), "Role": N_("角色接口"),
    "Group": N_("用户组接口"), "Permission": N_("权限接口"), "ViewMenu": N_("视图/菜单接口"),
    "PermissionViewMenu": N_("视图/菜单权限接口"),
}


def role_label(name: str) -> str:
    """A role's name as users read it; a role the panel does not define keeps its own name."""
    return gettext(ROLE_LABELS[name]) if name in ROLE_LABELS else name


def roles_text(roles) -> str:
    return "、".join(role_label(getattr(role, "name", role)) for role in roles or ())


def resource_label(name) -> str:
    """A view-menu's label: the menu's item (a resource, a group, FAB's own pages), else the
    name as stored."""
    name = getattr(name, "name", name)
    if name in FAB_RESOURCE_LABELS:
        return gettext(FAB_RESOURCE_LABELS[name])
    menu = current_app.appbuilder.menu
    item = menu.find(name) if menu is not None else None
    return str(gettext(item.label)) if item is not None and item.label else gettext(name)


def _move_label(resource: str, permission: str) -> str | None:
    """A workflow move's right (can_accept on need) by the move's label (受理)."""
    from app.views.entity import VIEWS_KEY

    view = current_app.extensions.get(VIEWS_KEY, {}).get(resource)
    workflow = getattr(view, "workflow", None)
    move = workflow.by_name.get(permission.removeprefix("can_")) if workflow else None
    return move.label if move else None


def permission_text(permission_view) -> str:
    permission = permission_view.permission.name
    resource = permission_view.view_menu.name
    label = _permission_label(permission) or _move_label(resource, permission)
    operation = gettext(label) if label else permission.removeprefix("can_")
    return f"{operation}：{resource_label(resource)}"


def permissions_text(permission_views) -> str:
    return "；".join(sorted(permission_text(pv) for pv in permission_views or ()))


def operation_label(permission) -> str:
    name = getattr(permission, "name", permission)
    label = _permission_label(name)
    return gettext(label) if label else name
