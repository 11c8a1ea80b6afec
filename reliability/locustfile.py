"""The simulated users of the load run (`reliability.load` starts locust headless on this file).

50 users spread over the demo roles: readers browse list and show pages, filter and export CSV
through the HTML panel (one form login each); the community admin and the two liaisons of its
community move needs through the five-step loop through the REST API (one JWT login each):
shequ01 files needs, accepts and dispatches them to danwei01's or danwei02's unit, the liaison
takes and completes them, shequ01 reviews them. Several users share an account, so they race
for the same needs: a 409 there is legitimate and is journalled, not counted as an error — and
checked afterwards against the winners' journal.

Every successful write is journalled (need, move, status before and after) for
`reliability.load` to find in the database and the audit log.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import re
import time
from datetime import date, timedelta

from locust import HttpUser, between, events, task

PLAN = json.loads(os.environ.get("RELIABILITY_PLAN", "{}"))
JOURNAL = {"created": [], "moves": [], "conflicts": [], "logins": []}
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@events.test_stop.add_listener
def _write_journal(**kwargs):
    if PLAN.get("journal"):
        with open(PLAN["journal"], "w") as f:
            json.dump(JOURNAL, f, ensure_ascii=False)


def rison(value) -> str:
    """The few rison shapes FAB's `q` argument needs here (lists, dicts, strings, numbers)."""
    if isinstance(value, dict):
        return "(" + ",".join(f"{k}:{rison(v)}" for k, v in value.items()) + ")"
    if isinstance(value, list):
        return "!(" + ",".join(rison(v) for v in value) + ")"
    if isinstance(value, (int, float)):
        return str(value)
    return "'" + str(value).replace("!", "!!").replace("'", "!'") + "'"


class Panel(HttpUser):
    """A browser user of the HTML panel: logs in once, then reads, filters and exports."""

    abstract = True
    wait_time = between(0.5, 2.0)
    usernames: list[str] = []

    def on_start(self):
        self.username = next(self._turns)
        place(self)
        page = self.client.get("/login/", name="/login/ (form)")
        token = CSRF.search(page.text)
        with self.client.post("/login/", data={
                "username": self.username, "password": PLAN["password"],
                "csrf_token": token.group(1) if token else ""},
                name="/login/ (post)", allow_redirects=False, catch_response=True) as r:
            if r.status_code != 302 or "/login" in r.headers.get("Location", ""):
                r.failure(f"{self.username} could not log in: {r.status_code}")
            JOURNAL["logins"].append(self.username)
        self.readable = PLAN["readable"][self.username]
        self.exportable = PLAN["exportable"][self.username]

    def page(self, url: str, name: str):
        """A page that must come back as itself — not the login page of a lost session."""
        with self.client.get(url, name=name, catch_response=True) as r:
            if r.ok and "/login/" in r.url:
                r.failure("session lost: redirected to the login page")
            return r

    @task(6)
    def list_page(self):
        resource = random.choice(self.readable)
        page = self.page(f"/{resource}/list/", f"/{resource}/list/")
        ids = re.findall(rf'/{resource}/show/(\d+)', page.text or "")
        if ids:
            pk = random.choice(ids)
            self.page(f"/{resource}/show/{pk}", f"/{resource}/show/[pk]")

    @task(3)
    def filter_needs(self):
        if "need" not in self.readable:
            return self.list_page()
        status = random.choice(["待受理", "已受理", "已派单", "办理中", "已办结", "已回访"])
        urgency = random.choice(["一般", "重大", "复杂"])
        self.page(f"/need/list/?_flt_0_status={status}&_flt_0_urgency={urgency}"
                  "&_oc_NeedView=created_on&_od_NeedView=desc", "/need/list/ (filtered)")

    @task(1)
    def export_csv(self):
        if not self.exportable:
            return self.list_page()
        resource = random.choice(self.exportable)
        with self.client.get(f"/{resource}/export/csv", name=f"/{resource}/export/csv",
                             catch_response=True) as r:
            if r.ok and not r.headers.get("Content-Type", "").startswith("text/csv"):
                r.failure(f"not a CSV: {r.headers.get('Content-Type')}")


def accounts(names: list[str]):
    return itertools.cycle(names)


# Several hosts (reliability/two_hosts.py): each user keeps to one, in turn — a load balancer's
# sticky sessions.
HOSTS = itertools.cycle(PLAN.get("hosts") or [None])


def place(user) -> None:
    host = next(HOSTS)
    if host:
        user.client.base_url = host


class OrgAdmin(Panel):
    fixed_count = 6
    _turns = accounts(["zuzhibu"])


class StreetAdmin(Panel):
    fixed_count = 6
    _turns = accounts(["jiedao01"])


class OtherLiaison(Panel):
    fixed_count = 6
    _turns = accounts(["danwei03"])


class Auditor(Panel):
    fixed_count = 7
    _turns = accounts(["shenji"])


class Member(Panel):
    fixed_count = 5
    _turns = accounts(["dangyuan01"])


class LoopUser(HttpUser):
    """A user of the REST API moving needs through their loop."""

    abstract = True
    wait_time = between(0.5, 2.0)

    def on_start(self):
        place(self)
        self.username = next(self._turns)
        with self.client.post("/api/v1/security/login", json={
                "username": self.username, "password": PLAN["password"], "provider": "db"},
                name="/api/v1/security/login", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"{self.username} could not log in: {r.status_code}")
                self.headers = {}
            else:
                self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
            JOURNAL["logins"].append(self.username)

    def needs(self, status: str) -> list[dict]:
        """This run's needs in a status, newest first (the seeded ones are left alone)."""
        q = rison({"filters": [{"col": "status", "opr": "eq", "value": status}],
                   "order_column": "id", "order_direction": "desc", "page_size": 50})
        r = self.client.get("/api/v1/need/", params={"q": q}, headers=self.headers,
                            name="/api/v1/need/ (status)")
        if not r.ok:
            return []
        return [n for n in r.json().get("result", []) if n["id"] > PLAN["need_baseline"]]

    def move(self, need: dict, name: str, body: dict | None = None) -> None:
        seen = need["status"]
        with self.client.post(f"/api/v1/need/{need['id']}/transition/{name}", json=body or {},
                              headers=self.headers, name=f"/api/v1/need/[pk]/transition/{name}",
                              catch_response=True) as r:
            if r.status_code == 200:
                JOURNAL["moves"].append({"need": need["id"], "name": name, "from": seen,
                                         "to": r.json()["result"]["status"],
                                         "user": self.username, "t": time.time()})
            elif r.status_code == 409:
                # Another user sharing this account moved it first: legitimate, checked later.
                JOURNAL["conflicts"].append({"need": need["id"], "name": name, "from": seen,
                                             "user": self.username,
                                             "message": r.json().get("message")})
                r.success()
            else:
                r.failure(f"{name} on need {need['id']}: {r.status_code} {r.text[:200]}")

    def show(self, pk: int) -> None:
        self.client.get(f"/api/v1/need/{pk}", headers=self.headers, name="/api/v1/need/[pk]")


class CommunityAdmin(LoopUser):
    fixed_count = 8
    _turns = accounts(["shequ01"])

    @task(2)
    def file_need(self):
        with self.client.post("/api/v1/need/", headers=self.headers, json={
                "community": PLAN["community"], "category": PLAN["category"],
                "title": f"负载测试需求 {random.randint(1, 10**6)}", "content": "楼道照明损坏，需要维修",
                "urgency": random.choice(["一般", "重大", "复杂"]), "source": "社区"},
                name="/api/v1/need/ (post)", catch_response=True) as r:
            if r.status_code == 201:
                JOURNAL["created"].append(r.json()["id"])
            else:
                r.failure(f"file need: {r.status_code} {r.text[:200]}")

    @task(2)
    def accept(self):
        waiting = self.needs("待受理")
        if waiting:
            self.move(random.choice(waiting[:10]), "accept")

    @task(2)
    def dispatch(self):
        accepted = self.needs("已受理")
        if accepted:
            self.move(random.choice(accepted[:10]), "dispatch", {
                "assigned_unit": random.choice(list(PLAN["units"].values())),
                "note": "请于时限内办理"})

    @task(2)
    def review(self):
        done = self.needs("已办结")
        if done:
            need = random.choice(done[:10])
            self.show(need["id"])
            self.move(need, "review", {"satisfaction": random.randint(3, 5), "comment": "满意"})


class Liaison(LoopUser):
    fixed_count = 12
    _turns = accounts(["danwei01", "danwei02"])

    def mine(self, status: str) -> list[dict]:
        unit = PLAN["units"][self.username]
        return [n for n in self.needs(status) if n["assigned_unit_id"] == unit]

    @task(3)
    def take(self):
        dispatched = self.mine("已派单")
        if dispatched:
            # A 复杂 need is taken with its 办理方案 and the date it promises (ignored otherwise).
            self.move(random.choice(dispatched[:5]), "take", {
                "plan": "上门查看后维修", "plan_due": (date.today() + timedelta(days=14)).isoformat()})

    @task(3)
    def complete(self):
        doing = self.mine("办理中")
        if doing:
            need = random.choice(doing[:5])
            self.show(need["id"])
            self.move(need, "complete", {"result": "已上门维修完毕"})


def scale(crowd: list, users: int | None) -> None:
    """Fewer users than the 50 the counts above are for (PLAN["users"]): the same mix, scaled
    (largest remainders). In a function: a user class left in a module-level name would be
    taken by locust for one more class."""
    if not users or users == sum(c.fixed_count for c in crowd):
        return
    shares = [c.fixed_count * users / sum(c.fixed_count for c in crowd) for c in crowd]
    counts = [int(share) for share in shares]
    for i in sorted(range(len(crowd)), key=lambda i: counts[i] - shares[i])[:users - sum(counts)]:
        counts[i] += 1
    for cls, count in zip(crowd, counts, strict=True):
        cls.fixed_count = count


scale([OrgAdmin, StreetAdmin, OtherLiaison, Auditor, Member, CommunityAdmin, Liaison],
      PLAN.get("users"))
