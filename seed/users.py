"""The demo users and the district they are linked into, shared by every scale of the seed.

`seed.demo` (test and demo scales) and `seed.city` (bulk) build different trees, then link the
same users to the first street, community, units and member of theirs through
`build_demo_users`.
"""
from __future__ import annotations

from app.extensions import appbuilder, db

DISTRICT_CODE = "YX"

# (username, role, given name, family name, what it is linked to): FAB's first_name is the
# given name and last_name the family name, as accounts opened in bulk store them
# (app/services/accounts.py); a name reads family name first (UserAccount.get_full_name).
DEMO_USERS = [
    ("admin", "Admin", "管理员", "系统", None),
    ("zuzhibu", "OrgAdmin", "管理员", "组织部", None),
    ("jiedao01", "StreetAdmin", "管理员", "街道", "street"),
    ("shequ01", "CommunityAdmin", "管理员", "社区", "community"),
    ("danwei01", "UnitLiaison", "联络员", "单位一", "unit1"),
    ("danwei02", "UnitLiaison", "联络员", "单位二", "unit2"),
    ("danwei03", "UnitLiaison", "联络员", "单位三", "unit3"),
    ("shenji", "Auditor", "员", "审计", None),
    ("dangyuan01", "Member", "一", "党员", "member"),
    ("wangge01", "GridAdmin", "管理员", "网格", "grid"),
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
