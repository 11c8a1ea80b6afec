"""Demo co-building data: agreements, dual registration, service posts and their claims, a
year of service records and the points they earned (DOMAIN.md §1, §2).

Generated valid and bulk-inserted (no per-row form rules, no per-row audit records), so the
numbers a form would write (receipt and certificate numbers, the ledger's keys, the posts'
claimed counts) are written here the way the models write them. Deterministic for a given day:
every random choice comes from `names.rng`, and dates count back from today.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import bindparam, insert, select, update

from app import clock
from app.models.cobuild import (
    DEFAULT_COMMITMENTS,
    Agreement,
    MemberRegistration,
    PointEntry,
    PointRule,
    PostClaim,
    RatingStatus,
    ServicePost,
    ServiceRecord,
    StarRating,
    UnitRegistration,
)
from app.models.org import Dictionary, Member
from app.services.cobuild import compute_ratings, quarter_of

# (code, name, subject, per event, per hour)
POINT_RULES = [
    ("SVC_EVENT", "参加志愿服务（每次）", "member", 1, 0),
    ("SVC_HOUR", "志愿服务时长（每小时）", "member", 0, 2),
    ("UNIT_SVC", "在职党员服务回馈单位（每小时）", "unit", 0, 1),
]
# (post_category code, post name, skill)
POSTS = [
    ("patrol", "楼栋安全巡逻岗", ""), ("legal", "法律咨询岗", "法律咨询"),
    ("employment", "就业帮扶岗", ""), ("governance", "环境卫生监督岗", ""),
    ("health", "健康义诊岗", "医疗护理"), ("culture", "文体活动组织岗", "文艺特长"),
    ("organization", "政策宣讲岗", ""), ("governance", "矛盾纠纷调解岗", "心理疏导"),
    ("other", "助老陪伴岗", ""), ("other", "四点半课堂辅导岗", "教育辅导"),
]
PER_COMMUNITY = {"test": 2, "demo": 5}
HEADCOUNT = {"test": (4, 6), "demo": (4, 12)}
DONE = ["巡查楼道消防通道，清理堆放杂物", "为独居老人上门送餐并陪伴聊天", "协助社区开展政策宣传",
        "组织居民开展文体活动", "参与小区环境卫生整治", "为居民提供法律咨询", "辅导社区儿童作业",
        "协助调解邻里纠纷", "参加社区义诊服务", "协助开展垃圾分类宣传"]
CHUNK = 5000


def seed_cobuild(session, names, scale_name, tree, units, members, echo) -> dict:
    rng = names.rng
    today = clock.today()
    now = clock.utcnow().replace(microsecond=0)
    stamp = {"created_on": now, "changed_on": now}
    rules = _point_rules(session, stamp)
    people = {row.id: row for row in session.execute(select(
        Member.id, Member.community_id, Member.work_unit_id, Member.group_id, Member.category))}
    communities = {c.id: c for c in tree["communities"]}

    # Agreements: most signed for three years, a few ending within 30 days (the first demo
    # unit's among them), a few lapsed or still being drafted.
    agreements = []
    for n, unit in enumerate(units):
        roll = rng.random()
        start = today - timedelta(days=rng.randint(200, 900))
        end = start + timedelta(days=3 * 365)
        status = "已签订"
        if n == 0 or 0.80 <= roll < 0.88:
            end = today + timedelta(days=20 if n == 0 else rng.randint(1, 29))
        elif roll >= 0.95:
            status, start = "草拟", today + timedelta(days=rng.randint(1, 30))
            end = start + timedelta(days=3 * 365)
        elif roll >= 0.88:
            end = today - timedelta(days=rng.randint(1, 120))  # lapsed: 已到期 by its dates
            start = end - timedelta(days=3 * 365)
        agreements.append({
            **stamp, "community_id": unit.community_id, "unit_id": unit.id,
            "title": f"{communities[unit.community_id].name}与{unit.name}共驻共建协议",
            "signed_on": None if status == "草拟" else start - timedelta(days=rng.randint(0, 10)),
            "valid_from": start, "valid_to": end, "commitments": DEFAULT_COMMITMENTS,
            "yearly_target": rng.randint(3, 12), "status": status})
    _insert(session, Agreement, agreements)

    # 单位报到: nearly every unit to its community.
    unit_rows = []
    for n, unit in enumerate(units):
        roll = rng.random()
        if n >= 3 and roll >= 0.96:
            continue
        status = "待确认" if n >= 3 and roll >= 0.90 else "已报到"
        day = today - timedelta(days=rng.randint(120, 700))
        unit_rows.append({
            **stamp, "unit_id": unit.id, "community_id": unit.community_id, "registered_on": day,
            "status": status, "active_key": str(unit.id),
            "confirmed_on": at_morning(min(day + timedelta(days=rng.randint(1, 7)), today))
            if status == "已报到" else None})
    _insert(session, UnitRegistration, unit_rows)
    _number(session, UnitRegistration, "receipt_no", "DW")

    # 党员报到: in-service members to their home communities, with the group they join. Most
    # units have all their members registered; the others fall short of the rating's floor.
    diligent = {unit.id: n < 3 or rng.random() < 0.75 for n, unit in enumerate(units)}
    registered, member_rows = {}, []
    for member_id in members:
        person = people[member_id]
        if person.category != "在职" or not person.work_unit_id:
            continue
        roll = 0.0 if diligent[person.work_unit_id] or member_id == members[0] else rng.random()
        if roll >= 0.85:
            continue
        status = "待确认" if roll >= 0.75 else "已报到"
        day = today - timedelta(days=rng.randint(120, 700))
        member_rows.append({
            **stamp, "member_id": member_id, "community_id": person.community_id,
            "group_id": person.group_id, "registered_on": day, "status": status,
            "active_key": str(member_id),
            "confirmed_on": at_morning(min(day + timedelta(days=rng.randint(1, 7)), today))
            if status == "已报到" else None})
        if status == "已报到":
            registered[member_id] = day
    _insert(session, MemberRegistration, member_rows)
    _number(session, MemberRegistration, "certificate_no", "DY")

    # Service posts in every community, and the claims of registered members.
    categories = {d.code: d.id for d in session.execute(
        select(Dictionary).where(Dictionary.kind == "post_category")).scalars()}
    low, high = HEADCOUNT.get(scale_name, HEADCOUNT["demo"])
    post_rows = []
    for community in tree["communities"]:
        for category, name, skill in rng.sample(POSTS, PER_COMMUNITY.get(scale_name, 5)):
            post_rows.append({
                **stamp, "community_id": community.id, "name": name,
                "category_id": categories[category], "skill": skill or None,
                "headcount": rng.randint(low, high), "claimed": 0, "active": True,
                "description": f"{name}：{DONE[rng.randrange(len(DONE))]}等"})
    _insert(session, ServicePost, post_rows)
    posts = defaultdict(list)
    for post in session.execute(select(ServicePost.id, ServicePost.community_id,
                                       ServicePost.headcount).order_by(ServicePost.id)):
        posts[post.community_id].append([post.id, post.headcount, 0])
    claims, held = [], {}
    for member_id, day in registered.items():
        if member_id != members[0] and rng.random() >= 0.75:
            continue
        open_posts = [p for p in posts[people[member_id].community_id] if p[2] < p[1]]
        if not open_posts:
            continue
        post = rng.choice(open_posts)
        post[2] += 1
        claimed_on = min(day + timedelta(days=rng.randint(0, 20)), today)
        withdrawn = member_id != members[0] and rng.random() < 0.05
        if withdrawn:
            post[2] -= 1
        else:
            held[member_id] = (post[0], claimed_on)
        claims.append({
            **stamp, "member_id": member_id, "post_id": post[0], "claimed_on": claimed_on,
            "status": "已退出" if withdrawn else "已认领",
            "withdrawn_on": min(claimed_on + timedelta(days=60), today) if withdrawn else None,
            "active_key": None if withdrawn else f"{post[0]}:{member_id}"})
    _insert(session, PostClaim, claims)
    table = ServicePost.__table__
    counts = [{"pid": p[0], "taken": p[2]} for rows in posts.values() for p in rows if p[2]]
    if counts:
        session.execute(table.update().where(table.c.id == bindparam("pid"))
                        .values(claimed=bindparam("taken")), counts)

    # A year of service at the claimed posts: monthly for most, certified once past.
    records = []
    for member_id, (post_id, claimed_on) in held.items():
        start = max(claimed_on, today - timedelta(days=365))
        for month_start in _months(start, today):
            if rng.random() >= 0.6:
                continue
            last = min(_month_end(month_start), today)
            day = month_start + timedelta(days=rng.randint(0, (last - month_start).days))
            age, roll = (today - day).days, rng.random()
            if age > 20:
                status = "已认证" if roll < 0.92 else ("已驳回" if roll < 0.95 else "待认证")
            else:
                status = "已认证" if roll < 0.3 else "待认证"
            certified = at_morning(min(day + timedelta(days=rng.randint(1, 10)), today)) \
                if status == "已认证" else None
            records.append({
                **stamp, "member_id": member_id, "served_on": day,
                "hours": Decimal(rng.choice(("1", "1.5", "2", "2", "2.5", "3", "4"))),
                "post_id": post_id, "description": rng.choice(DONE), "status": status,
                "certified_on": certified, "pay_cycle": 1 if certified else 0,
                "reject_reason": "服务内容与岗位不符，请补充说明后重新提交"
                if status == "已驳回" else None})
    _insert(session, ServiceRecord, records)

    # The points those certifications paid, as `pay_service_record` writes them.
    entries = []
    for record in session.execute(select(
            ServiceRecord.id, ServiceRecord.member_id, ServiceRecord.served_on,
            ServiceRecord.hours, ServiceRecord.certified_on)
            .where(ServiceRecord.status == "已认证").order_by(ServiceRecord.id)):
        person = people[record.member_id]
        for rule in rules:
            if rule.subject == "member":
                kind, subject_id = "member", record.member_id
            elif person.work_unit_id:
                kind, subject_id = "unit", person.work_unit_id
            else:
                continue
            entries.append({
                "created_on": record.certified_on, "changed_on": record.certified_on,
                "subject_type": kind, "member_id": subject_id if kind == "member" else None,
                "unit_id": subject_id if kind == "unit" else None, "rule_id": rule.id,
                "kind": "pay", "delta": rule.points_for(record.hours),
                "reason": f"服务记录认证：{record.served_on} 服务{record.hours}小时（{rule.name}）",
                "source_type": "service_record", "source_id": record.id, "cycle": 1,
                "period": quarter_of(record.served_on), "community_id": person.community_id,
                "entry_key": PointEntry.key("service_record", record.id, kind, subject_id,
                                            rule.id, 1, "pay")})
    _insert(session, PointEntry, entries)
    session.flush()
    summary = {"agreements": len(agreements), "unit_registrations": len(unit_rows),
               "member_registrations": len(member_rows), "service_posts": len(post_rows),
               "post_claims": len(claims), "service_records": len(records),
               "point_entries": len(entries)}
    if echo:
        echo("  共驻共建：协议 {agreements} 份、单位报到 {unit_registrations} 个、党员报到 "
             "{member_registrations} 名、服务岗位 {service_posts} 个、岗位认领 {post_claims} 个、"
             "服务记录 {service_records} 条、积分流水 {point_entries} 条".format(**summary))
    return summary


def _point_rules(session, stamp) -> list[PointRule]:
    rules = [PointRule(code=code, name=name, subject=subject, event="service_record",
                       points_per_event=Decimal(per_event), points_per_hour=Decimal(per_hour),
                       active=True, **stamp)
             for code, name, subject, per_event, per_hour in POINT_RULES]
    session.add_all(rules)
    session.flush()
    return rules


def _insert(session, model, rows) -> None:
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(model), rows[start:start + CHUNK])


def _number(session, model, column: str, prefix: str) -> None:
    """Receipt and certificate numbers, as the model's `after_insert` makes them."""
    table = model.__table__
    rows = [{"rid": row.id, "number": f"{prefix}{row.registered_on.year}{row.id:06d}"}
            for row in session.execute(select(table.c.id, table.c.registered_on)
                                       .where(table.c[column].is_(None)))]
    if rows:
        session.execute(table.update().where(table.c.id == bindparam("rid"))
                        .values({column: bindparam("number")}), rows)


def at_morning(day: date) -> datetime:
    """The hour a seeded confirmation or certificate is dated (shared with seed.city): 09:30 on
    the zone's clock, stored in UTC."""
    return clock.to_utc(datetime.combine(day, time(9, 30)))


def _months(start: date, end: date):
    month = start.replace(day=1)
    while month <= end:
        yield max(month, start)
        month = (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def _month_end(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def seed_stars(session, echo) -> None:
    """The last full year rated — its four quarters (一季一评星) and the year (一年一授星) — and
    published, as a district that has used the panel a year would have them (the public board
    and the dashboard show them)."""
    year = clock.today().year - 1
    for period in (*(f"{year}Q{q}" for q in range(1, 5)), str(year)):
        compute_ratings(session, period, commit=False)
    now = clock.utcnow()
    session.execute(update(StarRating).where(StarRating.period.like(f"{year}%")).values(
        status=RatingStatus.PUBLISHED, reviewed_on=now, published_on=now))
    echo(f"星级评定：{year}年各季度及全年已计算并公示。")

