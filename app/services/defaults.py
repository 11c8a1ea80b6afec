"""What every deployment starts with: the dictionary's default entries (categories are data,
configurable per district) and the annual assessment's default indicators. Added idempotently
by `flask gongjian init`."""
from sqlalchemy import select

from app.models.assessment import AssessmentIndicator
from app.models.org import Dictionary

# kind -> (code, label, aliases): the aliases are the words offices write for the entry
# (an import resolves a value by code, label or alias; 组织部 edits them).
DEFAULT_DICTIONARY = {
    "unit_category": [
        ("government", "党政机关", "机关、政府机关、行政机关"), ("institution", "事业单位", "事业"),
        ("soe", "国有企业", "国企、央企"), ("private", "非公企业", "民企、私企、民营企业、非公有制企业"),
        ("school", "学校", "中学、小学、幼儿园"), ("hospital", "医院", "卫生院、社区卫生服务中心"),
        ("social", "社会组织", "社团、民办非企业"), ("finance", "金融机构", "银行"),
        ("other", "其他", "")],
    "resource_category": [
        ("venue", "场地", "场所、阵地、活动室"), ("people", "人员", "人力、志愿者"),
        ("funds", "资金", "经费"), ("goods", "物资", "物品"), ("equipment", "设备", "器材"),
        ("skill", "技术", "技能、专业技术"), ("other", "其他", "")],
    "need_category": [
        ("elderly", "助老扶幼", "助老、扶幼、养老、关爱老人"), ("disabled", "助残帮困", "助残、帮困、扶贫帮困"),
        ("environment", "环境整治", "环境、环境卫生、卫生整治"), ("mediation", "矛盾调解", "调解、纠纷调解"),
        ("employment", "就业帮扶", "就业、就业援助"), ("culture", "文体活动", "文体、文化、体育"),
        ("health", "医疗健康", "医疗、健康、义诊"), ("safety", "平安建设", "安全、平安、治安"),
        ("facility", "设施维修", "维修、设施"), ("legal", "法律服务", "法律、法律援助、普法"),
        ("education", "助学助教", "助学、助教、教育、辅导"), ("other", "其他", "")],
    "post_category": [
        ("organization", "组织建设", ""), ("legal", "法律服务", "法律"), ("employment", "助困就业", "助困、就业"),
        ("governance", "社区治理", "治理"), ("health", "健康", "医疗"), ("culture", "文体", "文化、体育"),
        ("patrol", "安全巡逻", "巡逻、安全"), ("other", "其他", "")],
    "member_skill": [
        ("medical", "医疗护理", "医疗、护理"), ("legal", "法律咨询", "法律"), ("teaching", "教育辅导", "教育、辅导"),
        ("repair", "水电维修", "维修、水电"), ("it", "信息技术", "电脑、计算机"), ("art", "文艺特长", "文艺"),
        ("counsel", "心理疏导", "心理咨询")],
}


# Which need categories each resource category answers (the dispatch's proposals rank a
# resource of the first kind as answering a need of the second; 组织部 edits them).
RESOURCE_MATCHES = {
    "venue": "culture,education,elderly", "people": "elderly,disabled,environment,mediation,safety",
    "funds": "disabled,employment,education", "goods": "disabled,elderly",
    "equipment": "facility,health,safety", "skill": "health,legal,facility,employment,education,mediation",
}


def ensure_dictionary(session) -> int:
    """Add the default entries that are missing, and their aliases (and a resource category's
    matching need categories) where an entry has none; never change or remove anything set (an
    alias 组织部 edited or cleared stays)."""
    existing = {(row.kind, row.code): row for row in session.execute(select(Dictionary)).scalars()}
    added = 0
    for kind, entries in DEFAULT_DICTIONARY.items():
        for order, (code, label, alias) in enumerate(entries, start=1):
            matches = RESOURCE_MATCHES.get(code) if kind == "resource_category" else None
            row = existing.get((kind, code))
            if row is None:
                session.add(Dictionary(kind=kind, code=code, label=label, order=order,
                                       alias=alias or None, need_categories=matches))
                added += 1
                continue
            if row.alias is None and alias:
                row.alias = alias
            if row.need_categories is None and matches:
                row.need_categories = matches
    session.commit()
    return added


# The default indicator set of the annual assessment (年度考核), per level: (code, name, weight,
# target %) — the practices of DOMAIN.md §1 the issue names. Weights of a level sum to 100;
# 组织部 edits names, weights and targets.
DEFAULT_INDICATORS = {
    "community": [
        ("need_on_time", "需求按期办结率", 15, 90), ("need_match", "三单需求匹配率", 10, 80),
        ("list_provision", "驻区单位三单提供率", 10, 90), ("unit_registration", "单位报到率", 10, 100),
        ("member_registration", "在职党员报到率", 10, 95), ("monthly_service", "报到党员按月服务率", 10, 80),
        ("attendance", "联席会议出席率", 5, 90), ("leader_compliance", "一把手出席达标率", 5, 100),
        ("resolution_on_time", "议定事项按期办结率", 4, 90),
        ("rectification_on_time", "整改任务按期办结率", 3, 90), ("work_plan_on_time", "工作要点按期办结率", 3, 90),
        ("three_ones", "协议“三个一”达标率", 5, 80),
        ("satisfaction", "群众满意度", 10, 90)],
    "unit": [
        ("unit_need_on_time", "派单需求按期办结率", 15, 90), ("unit_list_provision", "三单提供", 10, 100),
        ("unit_registered", "单位报到", 10, 100), ("unit_member_registration", "在职党员报到率", 10, 95),
        ("unit_monthly_service", "报到党员按月服务率", 10, 80), ("unit_attendance", "联席会议出席率", 10, 90),
        ("unit_leader_compliance", "一把手出席达标率", 5, 100),
        ("unit_resolution_on_time", "牵头议定事项按期办结率", 4, 90),
        ("unit_rectification_on_time", "整改任务按期办结率", 3, 90),
        ("unit_work_plan_on_time", "牵头工作要点按期办结率", 3, 90),
        ("unit_three_ones", "协议“三个一”", 10, 100), ("unit_satisfaction", "群众满意度", 10, 90)],
}


def ensure_indicators(session) -> int:
    """Add the default assessment indicators of a level that has none (a level 组织部 has set
    up, even partly, is left as it is: adding to it would break its weights' sum)."""
    levels = set(session.execute(select(AssessmentIndicator.level).where(
        AssessmentIndicator.deleted_on.is_(None))).scalars())
    added = 0
    for level, rows in DEFAULT_INDICATORS.items():
        if level in levels:
            continue
        for order, (code, name, weight, target) in enumerate(rows, start=1):
            session.add(AssessmentIndicator(level=level, code=code, name=name, weight=weight,
                                            target=target, order=order))
            added += 1
    session.commit()
    return added
