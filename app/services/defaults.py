"""What every deployment starts with: the dictionary's default entries (categories are data,
configurable per district). Added idempotently by `flask gongjian init`."""
from sqlalchemy import select

from app.models.org import Dictionary

DEFAULT_DICTIONARY = {
    "unit_category": [
        ("government", "党政机关"), ("institution", "事业单位"), ("soe", "国有企业"),
        ("private", "非公企业"), ("school", "学校"), ("hospital", "医院"),
        ("social", "社会组织"), ("finance", "金融机构"), ("other", "其他")],
    "resource_category": [
        ("venue", "场地"), ("people", "人员"), ("funds", "资金"), ("goods", "物资"),
        ("equipment", "设备"), ("skill", "技术"), ("other", "其他")],
    "need_category": [
        ("elderly", "助老扶幼"), ("disabled", "助残帮困"), ("environment", "环境整治"),
        ("mediation", "矛盾调解"), ("employment", "就业帮扶"), ("culture", "文体活动"),
        ("health", "医疗健康"), ("safety", "平安建设"), ("facility", "设施维修"), ("other", "其他")],
    "post_category": [
        ("organization", "组织建设"), ("legal", "法律服务"), ("employment", "助困就业"),
        ("governance", "社区治理"), ("health", "健康"), ("culture", "文体"),
        ("patrol", "安全巡逻"), ("other", "其他")],
    "member_skill": [
        ("medical", "医疗护理"), ("legal", "法律咨询"), ("teaching", "教育辅导"),
        ("repair", "水电维修"), ("it", "信息技术"), ("art", "文艺特长"), ("counsel", "心理疏导")],
}


def ensure_dictionary(session) -> int:
    """Add the default entries that are missing; never change or remove existing ones."""
    existing = set(session.execute(select(Dictionary.kind, Dictionary.code)).all())
    added = 0
    for kind, entries in DEFAULT_DICTIONARY.items():
        for order, (code, label) in enumerate(entries, start=1):
            if (kind, code) not in existing:
                session.add(Dictionary(kind=kind, code=code, label=label, order=order))
                added += 1
    session.commit()
    return added
