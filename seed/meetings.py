"""Demo data of joint meetings: a joint body for the communities (and, at the demo scale, each
street and the district) with its member units, a year of meetings on its cadence up to today
and the plan for the coming months, attendance (a few 季研讨会 attended below 一把手 level),
agendas, minutes, resolutions in every state (on time, late, open, overdue) and their
supervision notes. Rows are generated consistent with their status and bulk-inserted."""
from __future__ import annotations

from calendar import monthrange
from datetime import date, timedelta

from sqlalchemy import func, insert, select

from app import clock
from app.models.meetings import (
    AgendaItem,
    Attendance,
    BodyMember,
    JointBody,
    Meeting,
    Resolution,
    SupervisionNote,
    plan_key,
    resolution_co_unit,
)
from app.services.meetings import cadence_dates

AGENDA = ["通报上阶段共建项目推进情况", "研究老旧小区加装电梯协调事宜", "商议“我为群众办实事”项目清单",
          "部署汛期安全隐患排查", "研究辖区停车难问题解决方案", "讨论暑期青少年托管服务安排",
          "通报需求清单办理及回访情况", "研究重阳节敬老活动方案", "部署文明城市创建工作",
          "商议社区长者食堂共建事宜", "研究垃圾分类督导志愿服务排班", "通报党员双报到及服务情况",
          "研究困难群众冬季帮扶计划", "交流共驻共建协议年度目标完成情况", "部署消防安全专项检查",
          "研究背街小巷环境整治", "商议“红色物业”联建机制", "听取成员单位资源清单更新情况"]
DECISIONS = ["完成小区加装电梯意见征询并形成报告", "组织志愿者开展垃圾分类督导，每周不少于两次",
             "协调开放单位停车场夜间共享车位", "为辖区独居老人提供上门义诊服务",
             "完成背街小巷路灯排查和维修", "组织开展消防安全培训和应急演练",
             "落实暑期托管班场地和师资", "制定长者食堂运营方案并试运行",
             "开展法律咨询进社区活动", "更新资源清单并在公示栏公示", "走访慰问困难党员和困难群众",
             "清理楼道堆放杂物，消除消防隐患", "组织党员志愿者参与文明交通劝导"]
PROGRESS = ["已召开专题会研究，明确责任人", "已完成前期摸排，正在制定方案", "方案已报社区审核",
            "已落实场地和人员，正在推进", "已完成大部分工作，剩余部分本周内完成"]
SUPERVISION = ["请牵头单位加快进度，按期办结", "已电话督办，要求下周报送进展",
               "现场查看推进情况，进度符合要求", "提醒配合单位做好衔接"]
# How many agenda items and resolutions each type of meeting produces (min, max).
AGENDA_SIZE = {"旬例会": (1, 2), "月推进会": (2, 3), "季研讨会": (3, 4), "年总结会": (3, 5)}
RESOLUTIONS = {"旬例会": (0, 1), "月推进会": (1, 2), "季研讨会": (2, 3), "年总结会": (2, 4)}
DEADLINE_DAYS = {"旬例会": (7, 20), "月推进会": (14, 45), "季研讨会": (30, 75), "年总结会": (45, 120)}


def seed_meetings(session, names, scale_name, tree, units, members, echo) -> None:
    rng = names.rng
    today = clock.today()
    now = clock.utcnow().replace(microsecond=0)
    stamp = {"created_on": now, "changed_on": now}
    # A year back from this month, and the plan up to the end of next quarter.
    start = date(today.year - 1, today.month, 1)
    next_quarter_end = ((today.month - 1) // 3 + 2) * 3
    end_year = today.year + (next_quarter_end - 1) // 12
    end_month = (next_quarter_end - 1) % 12 + 1
    end = date(end_year, end_month, monthrange(end_year, end_month)[1])

    by_community: dict[int, list] = {}
    for unit in units:
        by_community.setdefault(unit.community_id, []).append(unit)
    communities = tree["communities"]
    # (host, level, name, member units, cadence switches)
    plans = []
    chosen = [communities[0], communities[-1]] if scale_name == "test" else communities
    for community in chosen:
        local = by_community.get(community.id, [])
        if local:
            plans.append((community, f"{community.name.removesuffix('党委')}党建联席会", local,
                          {"xun_enabled": community is not communities[-1]}))
    if scale_name != "test":
        for street in tree["streets"]:
            local = [u for u in units if u.community.path.startswith(street.path)]
            local = sorted(local, key=lambda u: -u.party_member_count)[:10]
            if local:
                plans.append((street, f"{street.name.removesuffix('党工委')}共建联合会", local,
                              {"xun_enabled": False}))
        plans.append((tree["district"], "云溪区区域化党建联席会",
                      sorted(units, key=lambda u: -u.party_member_count)[:12],
                      {"xun_enabled": False, "monthly_enabled": False}))

    bodies = []
    for host, name, _local, switches in plans:
        body = JointBody(name=name, host=host, level={"district": "区", "street": "街道"}.get(
            host.type, "社区"), description=f"由{host.name}牵头，辖区驻区单位参加的共驻共建议事协调机制",
            **{"xun_enabled": True, "monthly_enabled": True, "quarterly_enabled": True,
               "yearly_enabled": True, **switches})
        bodies.append(body)
    session.add_all(bodies)
    session.flush()

    member_rows = []
    for body, (host, _name, local, _s) in zip(bodies, plans):
        for k, unit in enumerate(local):
            role = "副召集人" if k == 0 else ("兼职委员" if rng.random() < 0.3 else "成员单位")
            member_rows.append({
                "body_id": body.id, "unit_id": unit.id, "role": role,
                "representative": unit.leader_name, "representative_title": unit.leader_title,
                "member_key": f"{body.id}:{unit.id}", **stamp})
    session.execute(insert(BodyMember), member_rows)

    meeting_rows, attendance_rows, agenda_rows, resolutions = [], [], [], []
    for body, (host, _name, local, _s) in zip(bodies, plans):
        place = f"{host.name.removesuffix('党委').removesuffix('党工委')}党群服务中心会议室"
        for type_, planned in cadence_dates(body, start, end):
            key = plan_key(body.id, type_, planned)
            row = {"body_id": body.id, "type": type_, "planned_date": planned,
                   "cadence_date": planned, "plan_key": key,
                   "place": place, "chair": host.secretary, "recorder": None, "held_on": None,
                   "minutes": None, "cancel_reason": None, "status": "计划中", **stamp}
            meeting_rows.append(row)
            if planned >= today:
                continue
            if rng.random() < 0.04:
                row.update(status="已取消", cancel_reason="与上级部署的重点工作冲突，顺延至下次会议")
                continue
            held = min(planned + timedelta(days=rng.choice((0, 0, 0, 0, 1, 2))), today)
            row.update(status="已召开", held_on=held, recorder=names.person())
            attendance_rows += _attendance(rng, names, key, type_, local, stamp)
            present = [u for u, a in zip(local, attendance_rows[-len(local):])
                       if a["status"] in ("出席", "迟到")]
            topics = rng.sample(AGENDA, rng.randint(*AGENDA_SIZE[type_]))
            for seq, topic in enumerate(topics, start=1):
                proposer = rng.choice(local) if rng.random() < 0.5 else None
                agenda_rows.append({
                    "meeting_id": key, "seq": seq, "title": topic,
                    "proposing_unit_id": proposer.id if proposer else None,
                    "description": f"{proposer.name if proposer else host.name}提出：{topic}。",
                    **stamp})
            decided = []
            for _ in range(rng.randint(*RESOLUTIONS[type_])):
                lead = rng.choice(local)
                others = [u for u in local if u is not lead]
                co = rng.sample(others, min(len(others), rng.choice((0, 1, 1, 2))))
                deadline = held + timedelta(days=rng.randint(*DEADLINE_DAYS[type_]))
                text = rng.choice(DECISIONS)
                status, closed_on = _resolution_state(rng, held, deadline, today)
                resolutions.append(({
                    "meeting_id": key, "content": f"由{lead.name}牵头{text}",
                    "lead_unit_id": lead.id, "deadline": deadline, "status": status,
                    "closed_on": closed_on,
                    "result": "已按要求完成，经回访群众满意" if closed_on else None, **stamp},
                    [u.id for u in co], held))
                decided.append((lead, co, text, deadline))
            row["minutes"] = _minutes(row, host, present,
                                      [u for u in local if u not in present], topics, decided)
    session.execute(insert(Meeting), meeting_rows)
    ids = dict(session.execute(select(Meeting.plan_key, Meeting.id)
                               .where(Meeting.body_id.in_([b.id for b in bodies]))).all())
    for row in attendance_rows + agenda_rows + [r for r, _co, _held in resolutions]:
        row["meeting_id"] = ids[row["meeting_id"]]
    for row in attendance_rows:
        row["attendance_key"] = f"{row['meeting_id']}:{row['unit_id']}"
    if attendance_rows:
        session.execute(insert(Attendance), attendance_rows)
    if agenda_rows:
        session.execute(insert(AgendaItem), agenda_rows)

    # Ids come back in insertion order (one writer, an empty table before the seed).
    before = session.execute(select(func.coalesce(func.max(Resolution.id), 0))).scalar()
    if resolutions:
        session.execute(insert(Resolution), [r for r, _co, _held in resolutions])
    resolution_ids = list(session.execute(select(Resolution.id).where(Resolution.id > before)
                                          .order_by(Resolution.id)).scalars())
    assert len(resolution_ids) == len(resolutions)
    link_rows, note_rows = [], []
    for rid, (row, co, held) in zip(resolution_ids, resolutions):
        link_rows += [{"resolution_id": rid, "unit_id": unit_id} for unit_id in co]
        if row["status"] == "待办":
            continue
        first = min(held + timedelta(days=1), today)
        last = max(first, min(row["closed_on"] or today, today))
        days = sorted(first + timedelta(days=rng.randint(0, (last - first).days))
                      for _ in range(rng.randint(1, 3)))
        for k, day in enumerate(days):
            if rng.random() < 0.6:
                note_rows.append({"resolution_id": rid, "note_date": day,
                                  "unit_id": row["lead_unit_id"], "author": names.person(),
                                  "content": rng.choice(PROGRESS),
                                  "progress": min(100, 30 * (k + 1)), **stamp})
            else:
                note_rows.append({"resolution_id": rid, "note_date": day, "unit_id": None,
                                  "author": names.person(), "content": rng.choice(SUPERVISION),
                                  "progress": None, **stamp})
    if link_rows:
        session.execute(insert(resolution_co_unit), link_rows)
    if note_rows:
        session.execute(insert(SupervisionNote), note_rows)
    session.flush()
    echo(f"  联席会议：{len(bodies)} 个联席会、{len(meeting_rows)} 次会议、"
         f"{len(attendance_rows)} 条参会记录、{len(resolutions)} 项议定事项")


def _attendance(rng, names, key, type_, local, stamp) -> list[dict]:
    """Each member unit's attendance at a held meeting: mostly present, at the level the
    meeting type asks for; now and then a deputy at a 季研讨会 or 年总结会 (non-compliant)."""
    rows = []
    for unit in local:
        status = rng.choices(("出席", "迟到", "请假", "缺席"), (85, 3, 8, 4))[0]
        level = {"旬例会": "党务干部", "月推进会": "分管领导"}.get(type_, "一把手")
        if type_ in ("季研讨会", "年总结会") and rng.random() < 0.12:
            level = "分管领导"
        elif type_ in ("旬例会", "月推进会") and rng.random() < 0.15:
            level = rng.choice(("一把手", "分管领导", "党务干部", "其他"))
        attending = status in ("出席", "迟到")
        rows.append({
            "meeting_id": key, "unit_id": unit.id, "status": status,
            "attendee": (unit.leader_name if level == "一把手" else names.person())
            if attending else None,
            "attendee_level": level if attending else None,
            "note": "因公出差" if status == "请假" else None, "attendance_key": None, **stamp})
    return rows


def _resolution_state(rng, held: date, deadline: date, today: date):
    """(status, closed_on): most are done, on time or late; some stay open, overdue or not."""
    if deadline < today:
        roll = rng.random()
        if roll < 0.68:  # closed on time
            return "已办结", held + timedelta(days=rng.randint(1, max((deadline - held).days, 1)))
        if roll < 0.85:  # closed late
            late = min(deadline + timedelta(days=rng.randint(1, 20)), today)
            return ("已办结", late) if late > deadline else ("已办结", deadline)
        return rng.choice(("待办", "办理中", "办理中")), None  # overdue
    roll = rng.random()
    if roll < 0.35 and held < today:
        return "已办结", held + timedelta(days=rng.randint(1, (today - held).days))
    return ("待办", None) if roll < 0.5 else ("办理中", None)


def _minutes(row, host, present, leave, topics, decided) -> str:
    """A 纪要 as a recorder types it: header lines, numbered sections and items."""
    held = row["held_on"]
    lines = [f"会议时间：{held.year}年{held.month}月{held.day}日",
             f"会议地点：{row['place']}",
             f"主持人：{row['chair'] or ''}　记录人：{row['recorder'] or ''}",
             f"出席单位：{'、'.join(u.name for u in present) or '无'}",
             ]
    if leave:
        lines.append(f"请假或缺席：{'、'.join(u.name for u in leave)}")
    lines += ["", "一、会议议题"]
    lines += [f"{k}. {topic}" for k, topic in enumerate(topics, start=1)]
    lines += ["", (f"会议由{row['chair'] or host.name}主持。与会单位围绕上述议题逐项讨论，"
                   "结合辖区群众需求和各单位资源，形成如下意见。")]
    if decided:
        lines += ["", "二、议定事项"]
        numerals = "一二三四五六七八九十"
        for k, (lead, co, text, deadline) in enumerate(decided):
            helpers = f"，{'、'.join(u.name for u in co)}配合" if co else ""
            lines.append(f"（{numerals[k]}）由{lead.name}牵头{helpers}，{text}，"
                         f"{deadline.month}月{deadline.day}日前完成。")
    lines += ["", "三、工作要求", "- 各成员单位按分工抓好落实，及时报送办理进展；",
              "- 社区党组织对议定事项跟踪督办，下次会议通报办理情况。"]
    return "\n".join(lines)
