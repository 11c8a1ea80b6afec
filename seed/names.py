"""Deterministic generators of Chinese names, places and national numbers for demo data.
Everything is made up from syllable pools: no real person is in the demo set."""
from __future__ import annotations

import random
from datetime import date, timedelta

from app.validators import credit_code_check_char, id_number_check_char

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
            "于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛")
GIVEN = ("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕斌宇浩凯"
         "鹏辉鑫帅俊峰建国建华志强志明海燕春梅晓东晓红文博雨欣子涵思远嘉怡梓萱浩然")
PLACE = "云溪青松翠柳丰泽福安和平兴华永宁长乐锦绣东湖南苑北辰西岭金桥银杏枫林梧桐春晖朝阳阳光滨江"
ROADS = ("人民路", "解放路", "建设路", "文化路", "中山路", "健康路", "学府路", "新华路", "光明街",
         "胜利街", "友谊路", "幸福路")
UNIT_KINDS = [
    # (dictionary code of unit_category, name pattern, party org type)
    ("government", "{district}{dept}", "党支部"),
    ("institution", "{district}{inst}", "党总支"),
    ("soe", "{place}{industry}集团有限公司", "党委"),
    ("private", "{place}{industry}科技有限公司", "党支部"),
    ("school", "{district}第{n}中学", "党总支"),
    ("hospital", "{district}{place}医院", "党委"),
    ("social", "{place}社会工作服务中心", "联合党支部"),
    ("finance", "{bank}{place}支行", "党支部"),
]
DEPTS = ("财政局", "税务局", "市场监督管理局", "住房和城乡建设局", "生态环境分局", "人力资源和社会保障局",
         "交通运输局", "民政局", "司法局", "应急管理局", "城市管理局", "统计局", "档案馆", "图书馆")
INSTS = ("疾病预防控制中心", "妇幼保健院", "文化馆", "少年宫", "公证处", "不动产登记中心", "供水服务中心")
INDUSTRIES = ("电力", "燃气", "建工", "交通", "信息", "物流", "环保", "食品", "医药", "智能")
BANKS = ("工商银行", "农业银行", "建设银行", "中国银行", "交通银行", "邮政储蓄银行")
TITLES = ("局长", "院长", "校长", "董事长", "总经理", "主任", "行长", "书记")
REGIONS = ("110105", "310104", "420106", "430102", "510104", "610527", "320102", "440106")


class Names:
    def __init__(self, seed: int = 2026):
        self.rng = random.Random(seed)
        self._used_places: set[str] = set()
        self._used_ids: set[str] = set()
        self._used_codes: set[str] = set()

    def person(self) -> str:
        given = self.rng.choice(GIVEN) + (self.rng.choice(GIVEN) if self.rng.random() < 0.7 else "")
        return self.rng.choice(SURNAMES) + given

    def place(self) -> str:
        """A two-character place name not used before (streets and communities)."""
        while True:
            i, j = self.rng.randrange(0, len(PLACE), 2), self.rng.randrange(0, len(PLACE), 2)
            name = PLACE[i:i + 2] if self.rng.random() < 0.5 else PLACE[i] + PLACE[j + 1]
            if name not in self._used_places:
                self._used_places.add(name)
                return name

    def address(self, district: str) -> str:
        return f"{district}{self.rng.choice(ROADS)}{self.rng.randint(1, 399)}号"

    def phone(self) -> str:
        return f"1{self.rng.choice('3456789')}{self.rng.randint(0, 999999999):09d}"

    def credit_code(self) -> str:
        while True:
            body = "91" + self.rng.choice(REGIONS) + "".join(
                self.rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
            code = body + credit_code_check_char(body)
            if code not in self._used_codes:
                self._used_codes.add(code)
                return code

    def id_number(self, born_from: int = 1945, born_to: int = 2002) -> str:
        while True:
            start = date(born_from, 1, 1)
            born = start + timedelta(days=self.rng.randrange((date(born_to, 12, 31) - start).days))
            body = f"{self.rng.choice(REGIONS)}{born:%Y%m%d}{self.rng.randint(0, 999):03d}"
            number = body + id_number_check_char(body)
            if number not in self._used_ids:
                self._used_ids.add(number)
                return number

    def unit(self, district: str, n: int) -> tuple[str, str, str]:
        """(category code, unit name, party organisation type)."""
        category, pattern, party_type = UNIT_KINDS[n % len(UNIT_KINDS)]
        name = pattern.format(
            district=district, dept=self.rng.choice(DEPTS), inst=self.rng.choice(INSTS),
            place=self.rng.choice(PLACE[::2]) + self.rng.choice(PLACE[1::2]),
            industry=self.rng.choice(INDUSTRIES), n=n + 1, bank=self.rng.choice(BANKS))
        return category, name, party_type

    def title(self) -> str:
        return self.rng.choice(TITLES)
