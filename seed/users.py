"""The demo users and the district they are linked into, shared by every scale of the seed.

`seed.demo` (test and demo scales) and `seed.city` (bulk) build different trees, then link the
same users to the first street, community, units and member of theirs through
`build_demo_users`.
"""
from __future__ import annotations

from app.extensions import appbuilder, db

DISTRICT_CODE = "YX"

# (username, role, first name, last name, what it is linked to)
DEMO_USERS = [
    ("admin", "Admin", "系统", "管理员", None),
    ("zuzhibu", "OrgAdmin", "组织部", "管理员", None),
    ("jiedao01", "StreetAdmin", "街道", "管理员", "street"),
    ("shequ01", "CommunityAdmin", "社区", "管理员", "community"),
    ("danwei01", "UnitLiaison", "单位一", "联络员", "unit1"),
    ("danwei02", "UnitLiaison", "单位二", "联络员", "unit2"),
    ("danwei03", "UnitLiaison", "单位三", "联络员", "unit3"),
    ("shenji", "Auditor", "审计", "员", None),
    ("dangyuan01", "Member", "党员", "一", "member"),
    ("wangge01", "GridAdmin", "网格", "管理员", "grid"),
]


class SeedRefused(Exception):
    pass


def build_demo_users(street_id: int, community_id: int, unit_ids: list[int], member_id: int,
                     grid_id: int, password: str) -> None:
    """Create the demo users, linked to the given street, community, first three units,
    member and grid of the community (FAB's add_user commits each)."""
    sm = appbuilder.sm
    links = {
        "street": {"org_id": street_id},
        "community": {"org_id": community_id},
        "unit1": {"unit_id": unit_ids[0]},
        "unit2": {"unit_id": unit_ids[1]},
        "unit3": {"unit_id": unit_ids[2]},
        "member": {"member_id": member_id},
        "grid": {"org_id": grid_id},
    }
    for username, role, first, last, link in DEMO_USERS:
        user = sm.add_user(username, first, last, f"{username}@gongjian.invalid",
                           sm.find_role(role), password=password)
        if user is None:
            raise SeedRefused(f"无法创建演示用户 {username}（角色 {role} 是否已同步？请先运行 flask gongjian init）")
        for key, value in (links.get(link) or {}).items():
            setattr(user, key, value)
    db.session.flush()
