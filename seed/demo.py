"""`flask seed demo`: a deterministic, realistic demo district and the demo users.

Scales: ``test`` (a handful of rows the tests reason about) and ``demo`` (9 streets, 108
communities with grids and building groups, 500 units, 10,000 members); ``city`` (twelve
districts, millions of rows, for the performance work) is built by `seed.city` in bulk, into an
empty database only. The same seed always gives the same data.

The rows are generated valid (check digits computed, communities of the right type), so they
are bulk-inserted without the per-row form rules; the seed leaves one audit record of kind
import rather than one per row.
"""
from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update

from app import clock, crypto, rollups
from app.extensions import appbuilder, db
from app.models.org import Dictionary, Member, Organization, Unit
from app.security.roles import ROLE_LABELS
from app.services import audit
from app.services.defaults import ensure_dictionary, ensure_indicators
from config import INSTANCE_DIR
from seed.cobuild import seed_cobuild, seed_stars
from seed.lists import seed_lists
from seed.meetings import seed_meetings
from seed.names import Names
from seed.users import DEMO_USERS, DISTRICT_CODE, SeedRefused, build_demo_users

CREDENTIALS = INSTANCE_DIR / "demo-credentials.txt"


@dataclass(frozen=True)
class Scale:
    streets: int
    communities: int  # per street
    grids: int  # per community
    buildings: int  # per grid
    units: int
    members: int


SCALES = {
    "test": Scale(streets=2, communities=2, grids=1, buildings=2, units=8, members=60),
    "demo": Scale(streets=9, communities=12, grids=3, buildings=3, units=500, members=10_000),
}

def _progress(echo, label: str, done: int, total: int) -> None:
    if echo and (done == total or done % max(total // 10, 1) == 0):
        echo(f"  {label}: {done}/{total}")


def _state(session) -> str:
    """'empty', 'seeded' (by us) or 'other'."""
    has_orgs = session.execute(select(func.count()).select_from(Organization.__table__)).scalar()
    users = session.execute(select(func.count()).select_from(appbuilder.sm.user_model.__table__)).scalar()
    if not has_orgs and not users:
        return "empty"
    root = session.execute(select(Organization.id).where(Organization.code == DISTRICT_CODE)).first()
    demo_admin = appbuilder.sm.find_user(username="admin")
    return "seeded" if root and demo_admin else "other"


def seed_demo(scale: str = "demo", password: str | None = None, force: bool = False,
              echo=print) -> bool:
    """Load the data set; returns False when there was nothing to do."""
    if scale not in SCALES and scale != "city":
        raise SeedRefused(f"未知的数据规模：{scale}（可选 test、demo、city）")
    session = db.session
    state = _state(session)
    if state == "seeded" and not force:
        echo("演示数据已存在，跳过加载。")
        return False
    if state == "other" and not force:
        raise SeedRefused("数据库中已有非演示数据；如确需加载演示数据，请加 --force")
    if scale == "city":
        from seed.city import seed_city

        if state != "empty":
            raise SeedRefused("城市规模数据只能加载到空数据库：请新建数据库，运行 flask db upgrade "
                              "和 flask gongjian init 后再加载")
        seed_city(session, password or os.environ.get("DEMO_PASSWORD") or _generated_password(),
                  echo=echo)
        return True
    started = time.perf_counter()
    size = SCALES[scale]
    names = Names(seed=2026)
    ensure_dictionary(session)
    ensure_indicators(session)
    echo(f"正在生成演示数据（规模：{scale}）…")
    # Generated rows are recorded once, below, not one audit record each.
    session.info[audit.SKIP_ROWS] = True
    tree = _build_tree(session, names, size, echo)
    units = _build_units(session, names, size, tree, echo)
    members = _build_members(session, names, size, tree, units, echo)
    password = password or os.environ.get("DEMO_PASSWORD") or _generated_password()
    build_demo_users(tree["streets"][0].id, tree["communities"][0].id, [u.id for u in units[:3]],
                     members[0], tree["grids"][tree["communities"][0].code][0].id, password)
    seed_lists(session, names, scale, tree, units, members, echo)
    seed_meetings(session, names, scale, tree, units, members, echo)
    seed_cobuild(session, names, scale, tree, units, members, echo)
    seed_stars(session, echo)
    _draft_report(session, tree["communities"][0])
    _inspection_and_plan(session, tree["streets"][0], tree["communities"][0], units[:2])
    _published_assessment(session, echo)
    session.info[audit.SKIP_ROWS] = True  # the run ends its own recording
    audit.record(session, "import", "seed", changes={
        "scale": scale, "organizations": len(tree["all"]), "units": len(units),
        "members": len(members)})
    session.info.pop(audit.SKIP_ROWS, None)
    rollups.rebuild(session.connection())  # the rows above went in by bulk INSERTs, unmarked
    session.commit()
    echo(f"演示数据加载完成：{len(tree['all'])} 个党组织、{len(units)} 个驻区单位、"
         f"{len(members)} 名党员，用时 {time.perf_counter() - started:.1f} 秒。")
    return True


def _draft_report(session, community) -> None:
    """A 月汇报 being written by the demo community (shequ01's), four months back: the page
    and its moves have a row to show."""
    from app.models.reports import WorkReport

    today = clock.today()
    year, month = today.year, today.month - 4
    if month < 1:
        year, month = year - 1, month + 12
    session.add(WorkReport(org_id=community.id, month=f"{year}-{month:02d}",
                           summary="本月社区共驻共建工作有序推进。", problems="", plans=""))
    session.flush()


def _inspection_and_plan(session, street, community, units) -> None:
    """季度督查 and 工作要点 of the demo community (shequ01's), so their pages and moves have rows:
    the street's round two months back over the community and danwei01's unit, two failing
    findings with their rectification tasks (one overdue), and the community's two plan items
    (one overdue) led by danwei01's and danwei02's units."""
    from datetime import timedelta

    from app.models.inspections import Inspection, InspectionFinding, InspectionItem
    from app.models.workplan import WorkPlanItem

    today = clock.today()
    inspected = today - timedelta(days=60)
    checklist = session.execute(select(InspectionItem).order_by(InspectionItem.seq)).scalars().all()
    if len(checklist) < 5:  # 组织部 changed the checklist: nothing to show it with
        return
    round_ = Inspection(organizer=street, title="社区党建共驻共建季度督查", year=inspected.year,
                        quarter=(inspected.month + 2) // 3, inspected_on=inspected,
                        communities=[community], units=[units[0]],
                        summary="三单公开、联席会议召开情况总体较好，部分事项需整改。")
    # Saving a failing finding opens its rectification task (InspectionFinding._rectify).
    session.add_all([
        InspectionFinding(inspection=round_, item=checklist[0], org=community, result="符合"),
        InspectionFinding(inspection=round_, item=checklist[1], org=community,
                          result="不符合", note="本季度季研讨会未召开", responsible_org=community,
                          deadline=inspected + timedelta(days=30)),
        InspectionFinding(inspection=round_, item=checklist[4], unit=units[0],
                          result="部分符合", note="协议“三个一”中解决问题的承诺未落实",
                          responsible_unit=units[0], deadline=today + timedelta(days=20))])
    session.flush()
    session.add_all([
        WorkPlanItem(org=community, year=today.year, number="1", lead_unit=units[0],
                     co_units=[units[1]], content="健全“双报到”党员服务台账，每月通报服务情况",
                     deadline=today + timedelta(days=25)),
        WorkPlanItem(org=community, year=(today - timedelta(days=15)).year, number="2",
                     lead_unit=units[1], content="完成共建服务项目签约",
                     deadline=today - timedelta(days=15)),
    ])
    session.flush()


def _published_assessment(session, echo) -> None:
    """年度考核 of the last full year, both levels, computed from the seeded data and published
    (as the star ratings of that year are): the public board has a ranking to show."""
    from app.models.assessment import Assessment, AssessmentStatus
    from app.services.assessment import compute

    year = clock.today().year - 1
    started = time.perf_counter()
    for level in ("community", "unit"):
        compute(session, str(year), level, commit=False)
    now = clock.utcnow()
    session.execute(update(Assessment).where(Assessment.year == year).values(
        status=AssessmentStatus.PUBLISHED, reviewed_on=now, published_on=now))
    echo(f"年度考核：{year}年度社区和驻区单位考核已计算并公示"
         f"（用时 {time.perf_counter() - started:.1f} 秒）。")


def _generated_password() -> str:
    password = "Gj-" + secrets.token_urlsafe(9)
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(CREDENTIALS, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    os.chmod(CREDENTIALS, 0o600)
    print(f"已生成演示用户密码：{password}（保存在 {CREDENTIALS}，仅显示这一次）")
    return password


def _node(session, parent, type_, code, name, names, district_name, **extra):
    node = Organization(parent=parent, type=type_, code=code, name=name,
                        secretary=names.person(), phone=names.phone(),
                        address=names.address(district_name), **extra)
    session.add(node)
    return node


def _build_tree(session, names: Names, size: Scale, echo) -> dict:
    district_name = "云溪区"
    district = _node(session, None, "district", DISTRICT_CODE, "云溪区委", names, district_name)
    streets, communities, groups, grids, everything = [], [], {}, {}, [district]
    for s in range(size.streets):
        street = _node(session, district, "street", f"{DISTRICT_CODE}{s + 1:02d}",
                       f"{names.place()}街道党工委", names, district_name)
        streets.append(street)
        everything.append(street)
        for c in range(size.communities):
            code = f"{street.code}{c + 1:02d}"
            community = _node(session, street, "community", code, f"{names.place()}社区党委",
                              names, district_name)
            communities.append(community)
            everything.append(community)
            groups[code], grids[code] = [], []
            for gi in range(size.grids):
                grid = _node(session, community, "grid", f"{code}G{gi + 1}",
                             f"{community.name[:-2]}第{gi + 1}网格党支部", names, district_name,
                             grid_kind="城市")
                everything.append(grid)
                grids[code].append(grid)
                for b in range(size.buildings):
                    building = _node(session, grid, "building", f"{code}G{gi + 1}B{b + 1}",
                                     f"{grid.name[:-3]}{b + 1}号楼党小组", names, district_name)
                    groups[code].append(building)
                    everything.append(building)
        session.flush()
        _progress(echo, "党组织（街道）", s + 1, size.streets)
    return {"district": district, "streets": streets, "communities": communities,
            "groups": groups, "grids": grids, "all": everything}


def _build_units(session, names: Names, size: Scale, tree, echo) -> list[Unit]:
    categories = {d.code: d for d in session.execute(
        select(Dictionary).where(Dictionary.kind == "unit_category")).scalars()}
    communities = tree["communities"]
    # The first community gets the first units (danwei01 and danwei02 are two of them); the
    # third demo unit stands in the last street (danwei03).
    placement = [communities[0], communities[0], communities[-1]]
    units, used = [], set()
    for n in range(size.units):
        community = placement[n] if n < len(placement) else names.rng.choice(communities)
        category, name, party_type = names.unit("云溪区", n)
        if name in used:
            name = f"{community.name[:2]}{name}"
        used.add(name)
        unit = Unit(name=name, credit_code=names.credit_code(), category=categories[category],
                    community=community, address=names.address("云溪区"),
                    party_org_name=f"{name}{party_type}", party_org_type=party_type,
                    party_member_count=0, leader_name=names.person(), leader_title=names.title(),
                    liaison_name=names.person(), contact_phone=names.phone())
        unit.credit_code_key = unit.credit_code
        units.append(unit)
    session.add_all(units)
    session.flush()
    _progress(echo, "驻区单位", len(units), size.units)
    return units


def _build_members(session, names: Names, size: Scale, tree, units, echo) -> list[int]:
    communities = tree["communities"]
    rows, now = [], clock.utcnow()
    counts: dict[int, int] = {}
    chunk = 2000
    for n in range(size.members):
        # The first members live in the first community (dangyuan01 is the first of them).
        community = communities[0] if n < 10 else names.rng.choice(communities)
        groups = tree["groups"][community.code]
        unit = None
        if n < 20:
            unit = units[n % 3]
        elif names.rng.random() < 0.6:
            unit = names.rng.choice(units)
        number = names.id_number()
        digest = crypto.keyed_hash(number)
        category = "在职" if unit else names.rng.choice(("退休", "退休", "流动", "在籍"))
        rows.append({
            "name": names.person(), "gender": "男" if int(number[16]) % 2 else "女",
            "id_number_enc": crypto.encrypt(number), "id_number_hash": digest,
            "id_number_key": digest, "phone": names.phone(),
            "work_unit_id": unit.id if unit else None, "community_id": community.id,
            "group_id": names.rng.choice(groups).id if groups else None,
            "category": category, "status": "正常",
            "is_household_center": names.rng.random() < 0.03,
            "is_red_grid_worker": names.rng.random() < 0.05,
            "skills": None, "created_on": now, "changed_on": now,
        })
        if unit:
            counts[unit.id] = counts.get(unit.id, 0) + 1
        if len(rows) == chunk or n == size.members - 1:
            session.execute(insert(Member), rows)
            rows = []
            _progress(echo, "党员", n + 1, size.members)
    for unit in units:
        unit.party_member_count = counts.get(unit.id, 0)
    return list(session.execute(select(Member.id).order_by(Member.id)).scalars())


def print_logins(url: str) -> None:
    """What `make run` prints last: where to go and who to log in as."""
    password = os.environ.get("DEMO_PASSWORD")
    if not password and CREDENTIALS.exists():
        password = CREDENTIALS.read_text().strip()
    print(f"\n共驻共建管理平台：{url}")
    print("演示用户（密码：" + (password or "见 DEMO_PASSWORD") + "）：")
    for username, role, *_ in DEMO_USERS:
        print(f"  {username:<12}{ROLE_LABELS[role]}")
    print()
