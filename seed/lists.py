"""Demo data of the three lists and micro-wishes: resources and service items of the units,
needs in every status of the five-step loop (some overdue), and wishes in every status.
Rows are generated consistent with their status and bulk-inserted."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import insert, select

from app import clock
from app.models.lists import (
    MicroWish,
    Need,
    Resource,
    ServiceItem,
    ensure_step_due,
    need_member,
    service_item_need,
)
from app.models.org import Dictionary

RESOURCES = [("场地", "党群活动室", "可容纳50人，周末开放"), ("人员", "志愿服务队", "每月可派10名志愿者"),
             ("资金", "共建专项资金", "用于社区公益项目"), ("物资", "防汛物资", "沙袋、雨具若干"),
             ("设备", "会议投影设备", "可借用于社区活动"), ("技术", "义诊医生", "每季度一次健康义诊"),
             ("场地", "职工食堂", "可为社区老人提供助餐"), ("人员", "法律顾问", "提供法律咨询服务")]
NEEDS = [("助老扶幼", "独居老人助餐", "小区有12位独居老人需要每日助餐"),
         ("环境整治", "楼道杂物清理", "3号楼楼道堆放杂物存在消防隐患"),
         ("设施维修", "路灯维修", "小区东门路灯损坏，夜间出行不便"),
         ("医疗健康", "健康义诊", "希望组织医生为老人测血压血糖"),
         ("就业帮扶", "失业人员技能培训", "辖区有失业人员希望参加技能培训"),
         ("文体活动", "青少年暑期活动", "希望暑期为青少年组织读书和体育活动"),
         ("矛盾调解", "邻里噪音纠纷调解", "楼上楼下因装修噪音发生纠纷"),
         ("平安建设", "夜间巡逻", "小区周边夜间治安需要加强巡逻")]
WISHES = ["想要一副老花镜", "希望有人陪我去医院复查", "孩子需要一套初中辅导书", "想学会用智能手机视频通话",
          "家里的水龙头漏水需要维修", "希望有人帮忙理发", "想要一台收音机", "孙子需要一个新书包"]
# Every status of the loop, in the order a need moves through them.
NEED_PATH = ["待受理", "已受理", "已派单", "办理中", "已办结", "已回访", "已驳回"]
WISH_PATH = ["待审核", "待认领", "已认领", "已实现", "已确认", "已驳回"]


def _category_ids(session, kind) -> dict[str, int]:
    rows = session.execute(select(Dictionary.label, Dictionary.id).where(Dictionary.kind == kind))
    return dict(rows.all())


def seed_lists(session, names, scale_name, tree, units, members, echo) -> None:
    rng = names.rng
    now = clock.utcnow().replace(microsecond=0)
    year = now.year
    resource_cats = _category_ids(session, "resource_category")
    need_cats = _category_ids(session, "need_category")
    stamp = {"created_on": now, "changed_on": now}

    resource_rows, item_rows = [], []
    for n, unit in enumerate(units):
        for k in range(1 + n % 2):
            cat, title, content = RESOURCES[(n + k) % len(RESOURCES)]
            status = ("已发布", "已发布", "已发布", "待审核", "草稿", "已驳回")[(n + k) % 6]
            resource_rows.append({
                "unit_id": unit.id, "year": year, "category_id": resource_cats[cat],
                "title": f"{title}", "content": content, "quantity": rng.randint(1, 50),
                "measure": "项", "contact": unit.liaison_name, "phone": unit.contact_phone,
                "status": status, "reject_reason": "信息不完整，请补充可用时间" if status == "已驳回" else None,
                **stamp})
        if n % 3 != 2:
            cat, title, content = NEEDS[n % len(NEEDS)]
            status = ("已发布", "进行中", "已完成", "待审核", "草稿")[n % 5]
            item_rows.append({
                "provider_unit_id": unit.id, "year": year, "category_id": need_cats[cat],
                "title": f"{unit.name[:6]}{title}项目", "content": content,
                "capacity": rng.randint(5, 30), "points": rng.choice((5, 10, 20)),
                "start_date": date(year, 1, 1) + timedelta(days=rng.randint(0, 120)),
                "end_date": date(year, 12, 31), "place": unit.address,
                "commitment": f"全年开展{title}不少于4次",
                "fulfilment": "已按承诺完成" if status == "已完成" else None,
                "status": status, **stamp})
    session.execute(insert(Resource), resource_rows)
    session.execute(insert(ServiceItem), item_rows)

    communities = tree["communities"]
    per_community = len(NEED_PATH) + (1 if scale_name == "test" else 5)
    units_by_community: dict[int, list] = {}
    for unit in units:
        units_by_community.setdefault(unit.community_id, []).append(unit)
    need_rows, dispatch_to_members = [], []
    for c, community in enumerate(communities):
        local_units = units_by_community.get(community.id) or units[:1]
        for k in range(per_community):
            status = NEED_PATH[k % len(NEED_PATH)]
            cat, title, content = NEEDS[(c + k) % len(NEEDS)]
            urgency = ("一般", "重大", "复杂")[k % 3]
            created = now - timedelta(days=rng.randint(3, 60))
            row = {"source": ("居民", "网格员", "社区")[k % 3], "requester_name": names.person(),
                   "requester_phone": names.phone(), "community_id": community.id,
                   "category_id": need_cats[cat], "title": title, "content": content,
                   "urgency": urgency, "status": status, "created_on": created, "changed_on": now}
            # Every other need lies in one of the community's grids (its 网格员 may file it).
            grids = tree["grids"].get(community.code)
            if grids and k % 2 == 0:
                row["grid_id"] = grids[(k // 2) % len(grids)].id
            reached = NEED_PATH.index(status) if status != "已驳回" else -1
            if status == "已驳回":
                row["reject_reason"] = "不属于社区受理范围，已引导至相关部门"
            if reached >= 1:
                row["accepted_on"] = created + timedelta(hours=1)
            if reached >= 2:
                unit = local_units[k % len(local_units)]
                row.update(assigned_unit_id=unit.id, dispatch_note="请于时限内办结并反馈",
                           dispatched_on=created + timedelta(hours=2))
                # The first need of each dispatched step is overdue: its deadline has passed.
                overdue = k < len(NEED_PATH)
                row["deadline"] = (now - timedelta(days=1)) if overdue else now + timedelta(days=7)
            if reached >= 3:
                row.update(taken_on=created + timedelta(hours=3))
            if reached >= 4:
                row.update(result="已协调解决，居民表示认可", completed_on=created + timedelta(days=2),
                           deadline=created + timedelta(days=3))
            if reached >= 5:
                row.update(satisfaction=rng.choice((1, 3, 4, 5, 5)), visitor=names.person(),
                           visited_on=(created + timedelta(days=3)).date(), visit_comment="回访满意")
            need_rows.append(row)
    # A need the first liaison filed, and one dispatched to the first member, for the demo users.
    first = communities[0]
    need_rows.append({"source": "驻区单位", "community_id": first.id, "category_id": need_cats["其他"],
                      "title": "单位周边停车难", "content": "希望协调周边停车位", "urgency": "一般",
                      "status": "待受理", "submitted_by_unit_id": units[0].id, **stamp})
    need_rows.append({"source": "居民", "community_id": first.id, "category_id": need_cats["助老扶幼"],
                      "title": "陪同老人就医", "content": "行动不便老人需陪同就医", "urgency": "重大",
                      "status": "已派单", "accepted_on": now, "dispatched_on": now,
                      "deadline": now + timedelta(days=1), **stamp})
    session.execute(insert(Need), need_rows)
    ensure_step_due(session.connection(), always=True)  # bulk-inserted: the list's order
    last = session.execute(select(Need.id).order_by(Need.id.desc()).limit(1)).scalar()
    dispatch_to_members.append({"need_id": last, "member_id": members[0]})
    session.execute(insert(need_member), dispatch_to_members)
    # Some needs matched to service items of their community (the match rate).
    items = session.execute(select(ServiceItem.id, ServiceItem.provider_unit_id)
                            .where(ServiceItem.status.in_(("已发布", "进行中", "已完成")))).all()
    unit_community = {u.id: u.community_id for u in units}
    item_by_community: dict[int, int] = {}
    for item_id, unit_id in items:
        item_by_community.setdefault(unit_community[unit_id], item_id)
    links = []
    for need_id, community_id, status in session.execute(
            select(Need.id, Need.community_id, Need.status)).all():
        if status in ("办理中", "已办结", "已回访") and community_id in item_by_community:
            links.append({"service_item_id": item_by_community[community_id], "need_id": need_id})
    if links:
        session.execute(insert(service_item_need), links)

    wish_rows = []
    for c, community in enumerate(communities):
        for k in range(len(WISH_PATH) + (0 if scale_name == "test" else 2)):
            status = WISH_PATH[k % len(WISH_PATH)]
            row = {"resident_name": names.person(), "resident_phone": names.phone(),
                   "community_id": community.id, "content": WISHES[(c + k) % len(WISHES)],
                   "status": status, **stamp}
            grids = tree["grids"].get(community.code)
            if grids and k % 2 == 0:
                row["grid_id"] = grids[(k // 2) % len(grids)].id
            if status in ("已认领", "已实现", "已确认"):
                local = units_by_community.get(community.id)
                if local and k % 2:
                    row["claimant_unit_id"] = local[0].id
                else:
                    row["claimant_member_id"] = members[(c * 7 + k) % len(members)]
                row["claimed_on"] = now - timedelta(days=10)
            if status in ("已实现", "已确认"):
                row.update(fulfilled_on=now - timedelta(days=5), proof="已送达，居民签收")
            if status == "已确认":
                row.update(feedback="非常感谢！", confirmed_on=now - timedelta(days=4))
            if status == "已驳回":
                row["reject_reason"] = "心愿内容不符合微心愿范围"
            wish_rows.append(row)
    session.execute(insert(MicroWish), wish_rows)
    echo(f"  三单与微心愿：资源 {len(resource_rows)}、服务项目 {len(item_rows)}、需求 {len(need_rows)}、"
         f"微心愿 {len(wish_rows)}")
