"""The words offices use: header synonyms for importable columns and synonyms of coded choices.

Data, not code: a column is found by its label or any of the label's synonyms here; a coded
value (党员类别, 紧急程度, …) by its stored code, its label or a synonym here. Dictionary
entries (单位类别, 需求类别, …) carry their own aliases (the 别名 field, edited by 组织部).
Words are compared folded (`fold`): without spaces, case, or full-/half-width differences.
"""
from __future__ import annotations

import re
import unicodedata

# label -> the other headers offices write for it. A file's header that is the exact label of
# one of the importer's columns always means that column (the resource's 单位 is its measure).
HEADER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "联络员": ("联系人", "联络人", "单位联络员"),
    "联系人": ("联络员", "联络人"),
    "提供单位": ("单位名称", "单位", "驻区单位", "服务单位", "提供方"),
    "单位名称": ("单位", "驻区单位", "驻区单位名称", "提供单位"),
    "工作单位": ("单位", "所在单位", "单位名称", "工作单位名称"),
    "一把手姓名": ("一把手", "主要负责人", "负责人", "单位负责人"),
    "一把手职务": ("职务", "负责人职务"),
    "所在网格/楼栋党小组": ("所在网格", "网格", "楼栋党小组", "党小组", "所在党小组", "网格/党小组"),
    "所在网格": ("网格", "网格名称", "所属网格"),
    "所在社区": ("社区", "社区名称", "所属社区", "社区党组织"),
    "居住社区": ("社区", "所在社区", "所属社区", "居住地社区", "报到社区"),
    "来源渠道": ("来源", "渠道", "需求来源"),
    "联系电话": ("电话", "手机", "手机号", "手机号码", "联系方式", "电话号码", "联系电话号码"),
    "手机号": ("手机", "手机号码", "联系电话", "电话", "联系方式", "电话号码"),
    "统一社会信用代码": ("信用代码", "社会信用代码", "统一信用代码", "统一代码", "组织机构代码"),
    "身份证号": ("身份证号码", "公民身份号码", "身份证", "证件号码", "身份证件号码"),
    "单位类别": ("单位类型", "单位性质", "类别", "类型"),
    "单位地址": ("地址", "办公地址"),
    "党组织类型": ("党组织形式", "党组织类别"),
    "党员人数": ("党员数", "党员数量", "党员总数"),
    "姓名": ("党员姓名", "名字"),
    "性别": (),
    "党员类别": ("类别", "党员类型", "人员类别"),
    "技能特长": ("特长", "技能", "专长"),
    "党员中心户": ("是否党员中心户",),
    "红色网格员": ("是否红色网格员",),
    "资源类别": ("资源类型", "类别", "类型", "分类"),
    "资源名称": ("名称", "资源", "资源项目"),
    "资源内容": ("内容", "资源描述", "具体内容"),
    "可用开始日期": ("开始日期", "起始日期", "开始时间"),
    "可用结束日期": ("结束日期", "截止日期", "结束时间"),
    "年度": ("年份", "年"),
    "需求类别": ("需求类型", "类别", "类型", "分类"),
    "需求标题": ("需求名称", "需求", "标题", "需求事项", "事项"),
    "需求内容": ("内容", "需求描述", "具体需求", "具体内容", "情况说明"),
    "紧急程度": ("紧急度", "缓急程度", "急缓"),
    "提出人": ("需求人", "反映人", "群众姓名", "居民姓名", "申请人"),
    "创建时间": ("提出时间", "提出日期", "反映时间", "登记时间", "登记日期"),
    "受理时间": ("受理日期",),
    "派单时间": ("派单日期",),
    "办结时间": ("办结日期", "完成时间", "完成日期"),
    "办理结果": ("结果", "处理结果", "办理情况"),
    "满意度": ("满意程度", "群众满意度", "评价"),
    "服务类别": ("类别", "服务类型", "项目类别", "分类"),
    "项目名称": ("服务项目", "服务项目名称", "名称"),
    "服务内容": ("内容", "项目内容", "具体内容"),
    "拟认领数": ("名额", "认领名额", "人数"),
    "积分分值": ("积分", "分值"),
    "服务地点": ("地点", "活动地点"),
    "公开承诺": ("承诺", "承诺事项", "承诺内容"),
}

# A coded choice's label -> the other words offices write for it (the code and label always work).
CHOICE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "男": ("男性", "M"),
    "女": ("女性", "F"),
    "在职": ("在职党员", "在岗"),
    "退休": ("退休党员", "离退休", "离休"),
    "流动": ("流动党员",),
    "在籍": ("在籍党员",),
    "一般": ("普通", "一般问题", "低"),
    "重大": ("重大问题", "紧急", "急", "高"),
    "复杂": ("复杂问题", "疑难", "疑难复杂"),
    "居民": ("群众", "居民群众", "居民来电", "来电", "来访", "群众来访"),
    "网格员": ("网格", "网格上报", "网格员上报"),
    "社区": ("社区居委会", "居委会", "社区上报"),
    "驻区单位": ("单位", "单位上报"),
    "平台": ("网上平台", "线上平台", "小程序"),
    "已办结": ("办结", "已完成", "完成"),
    "已回访": ("回访", "已评价"),
    "已受理": ("受理",),
    "已派单": ("派单",),
    "办理中": ("处理中", "正在办理"),
    "待受理": ("未受理", "新提交"),
    "党委": ("党委会",),
    "党总支": ("总支", "党总支部"),
    "党支部": ("支部",),
    "联合党支部": ("联合支部",),
}

# The template's example row carries this in its last column: the row is skipped on import.
EXAMPLE_MARK = "示例行（导入时跳过）"

_SPACES = re.compile(r"\s+")
_MARKS = re.compile(r"^[*＊]+|[*＊:：]+$|\((必填|选填)\)$")


def fold(text: str) -> str:
    """A word as compared: NFKC (full-width letters, digits, brackets and colons to their
    half-width forms), no spaces, no case, no required-marks or trailing colon."""
    text = _SPACES.sub("", unicodedata.normalize("NFKC", str(text))).casefold()
    return _MARKS.sub("", text)


def header_words(label: str) -> tuple[str, ...]:
    return (label, *HEADER_SYNONYMS.get(label, ()))


def choice_words(code: str, label: str) -> tuple[str, ...]:
    return (code, label, *CHOICE_SYNONYMS.get(label, ()))
