"""The three lists (三单) and micro-wishes beyond the need's loop (DOMAIN.md §2–§4): what each demo
user sees of resources, needs, service items and wishes — in the list page and through the API,
each compared with a set computed here in plain SQL —, out-of-scope rows that behave as if they
did not exist, the review of what units file, the wish's life, matching needs to service items,
and needs filed by a liaison or a member."""
import json
import re
import uuid

import pytest
from sqlalchemy import text

from app import clock
from tests.conftest import DEMO_USERS, tables_kept_by
from tests.need_limits import refill_step_due

pytestmark = pytest.mark.db


@pytest.fixture(scope="module", autouse=True)
def tables_kept(app):
    """Needs and wishes written here in SQL (a bulk load, which no rollup hears of) go when the
    module ends: left behind, the board's wish cells of the modules after it were two short of
    the raw rows."""
    with tables_kept_by(app):
        yield


RESOURCES = ("resource", "service_item", "need", "micro_wish")
VIEWS = {"resource": "ResourceView", "service_item": "ServiceItemView", "need": "NeedView",
         "micro_wish": "MicroWishView"}
PUBLISHED_WISH = "('待认领','已认领','已实现','已确认')"


def uid() -> str:
    return uuid.uuid4().hex[:8].upper()


# --- plain SQL --------------------------------------------------------------------------------

def ids(ctx, sql, **params):
    return {row[0] for row in ctx.execute(text(sql), params)}


def scalar(ctx, sql, **params):
    return ctx.execute(text(sql), params).scalar()


def write(ctx, sql, params):
    """Plain SQL as the system, committed (test set-up, not what the app does)."""
    with ctx.session() as session:
        session.execute(text(sql), params)
        session.commit()


def user_link(ctx, username):
    return ctx.execute(text(
        "SELECT u.org_id, u.unit_id, u.member_id, o.path FROM ab_user u "
        "LEFT JOIN organization o ON o.id = u.org_id WHERE u.username = :u"), {"u": username}).one()


def row_of(ctx, table, pk):
    """The row as stored, minus its bookkeeping timestamp."""
    row = dict(ctx.execute(text(f"SELECT * FROM {table} WHERE id = :i"), {"i": pk}).mappings().one())
    row.pop("changed_on", None)
    return row


def id_by_title(ctx, table, title):
    return scalar(ctx, f"SELECT id FROM {table} WHERE title = :t", t=title)


def audit_count(ctx, resource, pk):
    return scalar(ctx, "SELECT count(*) FROM audit_log WHERE resource = :r AND record_id = :i",
                  r=resource, i=str(pk))


def expected(ctx, username, resource):
    """The rows `username` may read, written out by hand from DOMAIN.md §2/§4 (not app code);
    None where the role has no right to read the resource at all."""
    alive = f"SELECT id FROM {resource} WHERE deleted_on IS NULL"
    if username in ("admin", "zuzhibu", "shenji"):
        return ids(ctx, alive)
    _org_id, unit_id, member_id, path = user_link(ctx, username)
    unit_column = {"resource": "unit_id", "service_item": "provider_unit_id"}.get(resource)
    if username in ("jiedao01", "shequ01"):
        communities = "SELECT id FROM organization WHERE path LIKE :p"
        if unit_column:
            return ids(ctx, alive + f" AND {unit_column} IN (SELECT id FROM unit WHERE community_id "
                       f"IN ({communities}))", p=path + "%")
        return ids(ctx, alive + f" AND community_id IN ({communities})", p=path + "%")
    if username == "wangge01":
        if unit_column:
            return None  # roles.py grants GridAdmin nothing on the units' lists
        # the grid's rows: those whose grid lies in the grid secretary's subtree
        return ids(ctx, alive + " AND grid_id IN (SELECT id FROM organization WHERE path LIKE :p)",
                   p=path + "%")
    offered_nearby = ("status IN ('已发布','进行中','已完成') AND provider_unit_id IN (SELECT id FROM "
                      "unit WHERE community_id = {community})")
    if username.startswith("danwei"):
        if unit_column:
            return ids(ctx, alive + f" AND {unit_column} = :u", u=unit_id)
        if resource == "need":
            return ids(ctx, alive + " AND (assigned_unit_id = :u OR submitted_by_unit_id = :u)",
                       u=unit_id)
        return ids(ctx, alive + f" AND ((status IN {PUBLISHED_WISH} AND community_id = "
                   "(SELECT community_id FROM unit WHERE id = :u)) OR claimant_unit_id = :u)",
                   u=unit_id)
    assert username == "dangyuan01"
    if resource == "resource":
        return None  # roles.py grants Member nothing on resources
    if resource == "service_item":
        # the published commitments of the units in its home community
        return ids(ctx, alive + " AND " + offered_nearby.format(
            community="(SELECT community_id FROM member WHERE id = :m)"), m=member_id)
    if resource == "need":
        return ids(ctx, alive + " AND (id IN (SELECT need_id FROM need_member WHERE member_id = :m)"
                   " OR submitted_by_member_id = :m)", m=member_id)
    return ids(ctx, alive + f" AND ((status IN {PUBLISHED_WISH} AND community_id = "
               "(SELECT community_id FROM member WHERE id = :m)) OR claimant_member_id = :m)",
               m=member_id)


def listed_ids(browser, resource):
    from tests.security.support import listed_on_pages

    page = browser.get(f"/{resource}/list/?psize_{VIEWS[resource]}=1")
    if page.status_code != 200:
        return page.status_code
    return listed_on_pages(browser, f"/{resource}/list/", resource, VIEWS[resource])


def api_ids(api, username, resource):
    client, headers = api(username)
    response = client.get(f"/api/v1/{resource}/?q=(page_size:100,page:0)", headers=headers)
    if response.status_code != 200:
        return response.status_code, None
    found = {row["id"] for row in response.json["result"]}
    page = 1
    while len(found) < response.json["count"] and page < 50:
        more = client.get(f"/api/v1/{resource}/?q=(page_size:100,page:{page})", headers=headers)
        found |= {row["id"] for row in more.json["result"]}
        page += 1
    return found, response.json["count"]


def api_move(api, username, resource, pk, name, **body):
    client, headers = api(username)
    return client.post(f"/api/v1/{resource}/{pk}/transition/{name}", headers=headers, json=body)


def ui_move(as_user, username, resource, pk, name, **form):
    return as_user(username).post(f"/{resource}/transition/{pk}/{name}", form,
                                  form_url=f"/{resource}/list/", follow_redirects=True)


def api_get(api, username, resource, pk):
    client, headers = api(username)
    return client.get(f"/api/v1/{resource}/{pk}", headers=headers)


# --- fixtures -----------------------------------------------------------------------------------

@pytest.fixture
def unit1(ctx):
    return user_link(ctx, "danwei01").unit_id


@pytest.fixture
def unit2(ctx):
    return user_link(ctx, "danwei02").unit_id


@pytest.fixture
def community(ctx):
    return user_link(ctx, "shequ01").org_id


def category(ctx, kind, label=None):
    sql = "SELECT id FROM dictionary WHERE kind = :k" + (" AND label = :l" if label else "") + \
        " ORDER BY id"
    return scalar(ctx, sql, k=kind, l=label)


def insert_resource(ctx, unit_id, status="草稿", title=None):
    title = title or f"测试资源{uid()}"
    now = clock.utcnow().replace(microsecond=0)
    write(ctx, (
        "INSERT INTO resource (unit_id, year, category_id, title, content, status, created_on, "
        "changed_on) VALUES (:u, :y, :c, :t, '内容', :s, :n, :n)"),
        {"u": unit_id, "y": now.year, "c": category(ctx, "resource_category"), "t": title,
         "s": status, "n": now})
    return id_by_title(ctx, "resource", title)


def insert_service_item(ctx, unit_id, category_id, status="已发布", title=None, content="内容"):
    title = title or f"测试服务{uid()}"
    now = clock.utcnow().replace(microsecond=0)
    write(ctx, (
        "INSERT INTO service_item (provider_unit_id, year, category_id, title, content, capacity, "
        "points, status, created_on, changed_on) VALUES (:u, :y, :c, :t, :x, 10, 5, :s, :n, :n)"),
        {"u": unit_id, "y": now.year, "c": category_id, "t": title, "x": content, "s": status,
         "n": now})
    return id_by_title(ctx, "service_item", title)


def insert_need(ctx, community_id, status="待受理", assigned_unit=None, title=None,
                category_id=None, content="内容"):
    title = title or f"测试需求{uid()}"
    now = clock.utcnow().replace(microsecond=0)
    write(ctx, (
        "INSERT INTO need (source, community_id, category_id, title, content, urgency, status, "
        "assigned_unit_id, created_on, changed_on) "
        "VALUES ('居民', :c, :k, :t, :x, '一般', :s, :a, :n, :n)"),
        {"c": community_id, "k": category_id or category(ctx, "need_category"), "t": title,
         "x": content, "s": status, "a": assigned_unit, "n": now})
    refill_step_due(ctx)  # written in SQL, as a bulk load: the list's stored order follows
    return id_by_title(ctx, "need", title)


def insert_wish(ctx, community_id, status="待认领"):
    content = f"测试心愿{uid()}"
    now = clock.utcnow().replace(microsecond=0)
    write(ctx, (
        "INSERT INTO micro_wish (resident_name, community_id, content, status, created_on, "
        "changed_on) VALUES ('李大爷', :c, :x, :s, :n, :n)"),
        {"c": community_id, "x": content, "s": status, "n": now})
    return scalar(ctx, "SELECT id FROM micro_wish WHERE content = :x", x=content)


# --- 1. scope of the lists ---------------------------------------------------------------------

@pytest.mark.parametrize("username", DEMO_USERS)
@pytest.mark.parametrize("resource", RESOURCES)
def test_each_user_sees_exactly_its_rows(ctx, as_user, api, username, resource):
    want = expected(ctx, username, resource)
    listed = listed_ids(as_user(username), resource)
    found, count = api_ids(api, username, resource)
    if want is None:
        assert listed == 403 and found == 403
        return
    assert listed == want
    assert found == want and count == len(want)


def test_the_expected_sets_are_not_trivial(ctx):
    """The seed gives the comparisons above something to tell apart."""
    for resource in RESOURCES:
        everything = expected(ctx, "zuzhibu", resource)
        street = expected(ctx, "jiedao01", resource)
        assert expected(ctx, "shequ01", resource) < street < everything, resource
    for resource in RESOURCES:
        assert expected(ctx, "danwei01", resource), resource
        assert expected(ctx, "danwei01", resource).isdisjoint(expected(ctx, "danwei03", resource))
    assert expected(ctx, "dangyuan01", "need") and expected(ctx, "dangyuan01", "micro_wish")
    # a liaison does not see the unpublished wishes of its own community
    unpublished = ids(ctx, "SELECT id FROM micro_wish WHERE status IN ('待审核','已驳回') "
                      "AND community_id = :c AND deleted_on IS NULL",
                      c=user_link(ctx, "shequ01").org_id)
    assert unpublished and unpublished.isdisjoint(expected(ctx, "danwei01", "micro_wish"))


@pytest.fixture
def out_of_scope(ctx, unit2, community):
    """For danwei01: one row of each resource it has no reason to see."""
    # the last community: in the other street, where danwei03's unit stands
    elsewhere = scalar(ctx, "SELECT id FROM organization WHERE type = 'community' "
                       "AND id <> :c ORDER BY id DESC", c=community)
    return {
        "resource": insert_resource(ctx, unit2),
        "service_item": insert_service_item(ctx, unit2, category(ctx, "need_category")),
        "need": insert_need(ctx, community, status="已派单", assigned_unit=unit2),
        # unpublished, in danwei01's own community
        "micro_wish": insert_wish(ctx, community, status="待审核"),
        "micro_wish_elsewhere": insert_wish(ctx, elsewhere, status="待认领"),
    }


def test_out_of_scope_rows_are_not_found(ctx, as_user, api, out_of_scope):
    browser = as_user("danwei01")
    for key, pk in out_of_scope.items():
        resource = key.replace("_elsewhere", "")
        assert browser.get(f"/{resource}/show/{pk}").status_code == 404, key
        assert api_get(api, "danwei01", resource, pk).status_code == 404, key
    # and yet they exist: the community admin sees those of its community
    assert as_user("shequ01").get(f"/need/show/{out_of_scope['need']}").status_code == 200
    assert api_get(api, "shequ01", "micro_wish", out_of_scope["micro_wish"]).status_code == 200


def test_bulk_actions_with_an_out_of_scope_id_change_nothing(ctx, as_user, unit1, community,
                                                             out_of_scope):
    browser = as_user("danwei01")
    need_cat = category(ctx, "need_category")
    # (resource, action, own row, out-of-scope row, what the action does to the own row alone)
    cases = [
        ("resource", "bulk_submit", insert_resource(ctx, unit1), out_of_scope["resource"],
         ("status", "待审核")),
        ("resource", "muldelete", insert_resource(ctx, unit1), out_of_scope["resource"],
         ("deleted", True)),
        ("service_item", "muldelete", insert_service_item(ctx, unit1, need_cat, status="草稿"),
         out_of_scope["service_item"], ("deleted", True)),
        ("need", "bulk_take", insert_need(ctx, community, status="已派单", assigned_unit=unit1),
         out_of_scope["need"], ("status", "办理中")),
        ("micro_wish", "bulk_claim", insert_wish(ctx, community, status="待认领"),
         out_of_scope["micro_wish_elsewhere"], ("status", "已认领")),
    ]
    for resource, action, own, other, (column, value) in cases:
        before = {pk: row_of(ctx, resource, pk) for pk in (own, other)}
        response = browser.post(f"/{resource}/action_post", {
            "action": action, "rowid": [str(own), str(other)]}, form_url=f"/{resource}/list/")
        assert response.status_code == 404, (resource, action)
        assert {pk: row_of(ctx, resource, pk) for pk in (own, other)} == before, (resource, action)
        # the same action on the own row alone goes through: the 404 above was the scope
        response = browser.post(f"/{resource}/action_post", {"action": action, "rowid": [str(own)]},
                                form_url=f"/{resource}/list/")
        assert response.status_code == 302, (resource, action)
        row = row_of(ctx, resource, own)
        if column == "deleted":
            assert row["deleted_on"] is not None, (resource, action)
        else:
            assert row[column] == value, (resource, action)
        assert row_of(ctx, resource, other) == before[other]


# --- 2. review of what units file ------------------------------------------------------------

def test_a_resource_goes_through_review(ctx, as_user, api, unit1):
    title = f"党群活动室{uid()}"
    cat = category(ctx, "resource_category", "场地")
    response = as_user("danwei01").post("/resource/add", {
        "unit": str(unit1), "year": str(clock.today().year), "category": str(cat), "title": title,
        "content": "可容纳50人", "quantity": "1", "measure": "间", "available_from": "2026-01-01",
        "available_to": "2026-12-31", "contact": "王老师", "phone": "13800000000"},
        form_url="/resource/add")
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    pk = id_by_title(ctx, "resource", title)
    row = row_of(ctx, "resource", pk)
    assert (row["status"], row["unit_id"], row["category_id"]) == ("草稿", unit1, cat)

    assert api_move(api, "danwei01", "resource", pk, "submit").status_code == 200
    assert row_of(ctx, "resource", pk)["status"] == "待审核"
    # a reject without a reason is refused, in Chinese, through the API and the UI
    before = row_of(ctx, "resource", pk)
    response = api_move(api, "shequ01", "resource", pk, "reject")
    assert response.status_code == 422 and "请填写驳回原因" in response.json["message"]
    response = api_move(api, "shequ01", "resource", pk, "reject", reason="   ")
    assert response.status_code == 422
    page = ui_move(as_user, "shequ01", "resource", pk, "reject", reason="")
    assert "请填写驳回原因" in page.get_data(as_text=True)
    assert row_of(ctx, "resource", pk) == before
    # with a reason: back to the unit, which reads the reason on its page
    page = ui_move(as_user, "shequ01", "resource", pk, "reject", reason="请补充开放时间段")
    assert "已驳回" in page.get_data(as_text=True)
    row = row_of(ctx, "resource", pk)
    assert (row["status"], row["reject_reason"]) == ("已驳回", "请补充开放时间段")
    show = as_user("danwei01").get(f"/resource/show/{pk}").get_data(as_text=True)
    assert "请补充开放时间段" in show and "提交审核" in show
    # resubmitted: the old reason goes
    ui_move(as_user, "danwei01", "resource", pk, "submit")
    row = row_of(ctx, "resource", pk)
    assert (row["status"], row["reject_reason"]) == ("待审核", None)
    # a liaison cannot publish its own filing
    before = row_of(ctx, "resource", pk)
    response = api_move(api, "danwei01", "resource", pk, "publish")
    assert response.status_code == 403 and "不能执行" in response.json["message"]
    assert "不能执行" in ui_move(as_user, "danwei01", "resource", pk, "publish").get_data(as_text=True)
    assert row_of(ctx, "resource", pk) == before
    assert api_move(api, "shequ01", "resource", pk, "publish").status_code == 200
    assert row_of(ctx, "resource", pk)["status"] == "已发布"
    # another unit's liaison neither sees it nor moves it
    before = row_of(ctx, "resource", pk)
    assert as_user("danwei02").get(f"/resource/show/{pk}").status_code == 404
    assert api_get(api, "danwei02", "resource", pk).status_code == 404
    for name in ("withdraw", "submit"):
        assert api_move(api, "danwei02", "resource", pk, name).status_code == 404
        assert ui_move(as_user, "danwei02", "resource", pk, name).status_code == 404
    assert row_of(ctx, "resource", pk) == before
    # its own unit may take it off the list
    assert api_move(api, "danwei01", "resource", pk, "withdraw").status_code == 200
    assert row_of(ctx, "resource", pk)["status"] == "已撤回"


def test_a_liaison_files_only_drafts_of_its_own_unit(ctx, api, unit1, unit2):
    client, headers = api("danwei01")
    body = {"year": clock.today().year, "category": category(ctx, "resource_category"),
            "title": f"投影仪{uid()}"}
    response = client.post("/api/v1/resource/", headers=headers, json={**body, "unit": unit2})
    assert response.status_code == 422 and "超出您的数据范围" in response.json["message"]
    response = client.post("/api/v1/resource/", headers=headers,
                           json={**body, "unit": unit1, "status": "已发布"})
    assert response.status_code == 422
    assert id_by_title(ctx, "resource", body["title"]) is None
    response = client.post("/api/v1/resource/", headers=headers, json={**body, "unit": unit1})
    assert response.status_code == 201, response.json
    assert row_of(ctx, "resource", response.json["id"])["status"] == "草稿"


def transition_records(ctx, resource, pk):
    return [json.loads(changes or "{}") for changes, in ctx.execute(text(
        "SELECT changes FROM audit_log WHERE resource = :r AND record_id = :i "
        "AND action = 'transition' ORDER BY id"), {"r": resource, "i": str(pk)})]


def test_each_review_move_is_one_transition_record_with_its_status(ctx, api, unit1):
    """With the status it changed: the status is the row's version column, which SQLAlchemy
    commits during the flush (so a diff taken after it would miss the move)."""
    pk = insert_resource(ctx, unit1)
    assert api_move(api, "danwei01", "resource", pk, "submit").status_code == 200
    assert api_move(api, "shequ01", "resource", pk, "reject", reason="缺少照片").status_code == 200
    assert api_move(api, "danwei01", "resource", pk, "submit").status_code == 200
    assert api_move(api, "shequ01", "resource", pk, "publish").status_code == 200
    records = transition_records(ctx, "resource", pk)
    assert [(r.get("_operation"), r.get("status")) for r in records] == [
        ("submit", ["草稿", "待审核"]), ("reject", ["待审核", "已驳回"]),
        ("submit", ["已驳回", "待审核"]), ("publish", ["待审核", "已发布"])]


def test_a_service_item_goes_through_review_and_is_carried_out(ctx, as_user, api, unit1):
    title = f"助老服务项目{uid()}"
    client, headers = api("danwei01")
    response = client.post("/api/v1/service_item/", headers=headers, json={
        "provider_unit": unit1, "year": clock.today().year,
        "category": category(ctx, "need_category", "助老扶幼"), "title": title,
        "content": "每周为独居老人送餐", "capacity": 10, "points": 5,
        "commitment": "全年送餐不少于40次"})
    assert response.status_code == 201, response.json
    pk = response.json["id"]
    assert row_of(ctx, "service_item", pk)["status"] == "草稿"
    assert api_move(api, "danwei01", "service_item", pk, "submit").status_code == 200
    assert api_move(api, "shequ01", "service_item", pk, "reject", reason="承诺不够具体").status_code == 200
    row = row_of(ctx, "service_item", pk)
    assert (row["status"], row["reject_reason"]) == ("已驳回", "承诺不够具体")
    assert "承诺不够具体" in as_user("danwei01").get(f"/service_item/show/{pk}").get_data(as_text=True)
    assert api_move(api, "danwei01", "service_item", pk, "submit").status_code == 200
    assert api_move(api, "danwei01", "service_item", pk, "publish").status_code == 403
    assert api_move(api, "shequ01", "service_item", pk, "publish").status_code == 200
    # carried out by the unit: start, then finish with its fulfilment (践诺)
    assert api_move(api, "danwei02", "service_item", pk, "start").status_code == 404
    ui_move(as_user, "danwei01", "service_item", pk, "start")
    assert row_of(ctx, "service_item", pk)["status"] == "进行中"
    before = row_of(ctx, "service_item", pk)
    response = api_move(api, "danwei01", "service_item", pk, "finish")
    assert response.status_code == 422 and "践诺情况" in response.json["message"]
    assert row_of(ctx, "service_item", pk) == before
    response = api_move(api, "danwei01", "service_item", pk, "finish", fulfilment="全年送餐46次")
    assert response.status_code == 200, response.json
    row = row_of(ctx, "service_item", pk)
    assert (row["status"], row["fulfilment"]) == ("已完成", "全年送餐46次")
    # nothing leaves 已完成
    before = row_of(ctx, "service_item", pk)
    for name in ("start", "submit", "publish"):
        assert api_move(api, "shequ01", "service_item", pk, name).status_code == 409
    assert row_of(ctx, "service_item", pk) == before


# --- 3. micro-wishes ------------------------------------------------------------------------

def wish_row(ctx, pk):
    return row_of(ctx, "micro_wish", pk)


def test_a_wish_from_posting_to_confirmation(ctx, as_user, api, unit1, community):
    member = user_link(ctx, "dangyuan01").member_id
    assert scalar(ctx, "SELECT community_id FROM member WHERE id = :m", m=member) == community
    assert scalar(ctx, "SELECT community_id FROM unit WHERE id = :u",
                  u=user_link(ctx, "danwei02").unit_id) == community
    content = f"想要一副老花镜{uid()}"
    client, headers = api("shequ01")
    response = client.post("/api/v1/micro_wish/", headers=headers, json={
        "resident_name": "王秀英", "resident_phone": "13912345678", "community": community,
        "content": content})
    assert response.status_code == 201, response.json
    pk = response.json["id"]
    assert wish_row(ctx, pk)["status"] == "待审核"
    # not published yet: the member does not see it, nor can claim it
    assert api_get(api, "dangyuan01", "micro_wish", pk).status_code == 404
    assert api_move(api, "dangyuan01", "micro_wish", pk, "claim").status_code == 404
    assert api_move(api, "shequ01", "micro_wish", pk, "publish").status_code == 200
    assert wish_row(ctx, pk)["status"] == "待认领"
    # published: the member sees it, its resident's name masked
    shown = api_get(api, "dangyuan01", "micro_wish", pk)
    assert shown.status_code == 200 and shown.json["result"]["resident_name_masked"] == "王**"
    # a liaison of another street neither sees nor claims it
    before = wish_row(ctx, pk)
    assert as_user("danwei03").get(f"/micro_wish/show/{pk}").status_code == 404
    assert api_get(api, "danwei03", "micro_wish", pk).status_code == 404
    assert api_move(api, "danwei03", "micro_wish", pk, "claim").status_code == 404
    assert ui_move(as_user, "danwei03", "micro_wish", pk, "claim").status_code == 404
    assert wish_row(ctx, pk) == before
    # the member claims it, then cancels: back to 待认领 with the claimant cleared
    assert api_move(api, "dangyuan01", "micro_wish", pk, "claim").status_code == 200
    row = wish_row(ctx, pk)
    assert (row["status"], row["claimant_member_id"], row["claimant_unit_id"]) == ("已认领", member, None)
    assert row["claimed_on"] is not None
    ui_move(as_user, "dangyuan01", "micro_wish", pk, "cancel")
    row = wish_row(ctx, pk)
    assert (row["status"], row["claimant_member_id"], row["claimant_unit_id"], row["claimed_on"]) == \
        ("待认领", None, None, None)
    # danwei01 claims it for its unit
    assert api_move(api, "danwei01", "micro_wish", pk, "claim").status_code == 200
    row = wish_row(ctx, pk)
    assert (row["status"], row["claimant_member_id"], row["claimant_unit_id"]) == ("已认领", None, unit1)
    # danwei02 stands in the same community and sees it, but cannot cancel another's claim;
    # nor can the member who gave it up
    before = wish_row(ctx, pk)
    assert api_get(api, "danwei02", "micro_wish", pk).status_code == 200
    for username in ("danwei02", "dangyuan01"):
        response = api_move(api, username, "micro_wish", pk, "cancel")
        assert response.status_code == 403 and "认领人" in response.json["message"], username
        response = api_move(api, username, "micro_wish", pk, "fulfil", proof="冒名")
        assert response.status_code == 403, username
    assert wish_row(ctx, pk) == before
    # fulfilled with proof (required)
    response = api_move(api, "danwei01", "micro_wish", pk, "fulfil")
    assert response.status_code == 422 and "实现凭证" in response.json["message"]
    assert "实现凭证" in ui_move(as_user, "danwei01", "micro_wish", pk, "fulfil").get_data(as_text=True)
    assert wish_row(ctx, pk) == before
    ui_move(as_user, "danwei01", "micro_wish", pk, "fulfil", proof="已配镜送达，居民签收")
    row = wish_row(ctx, pk)
    assert (row["status"], row["proof"]) == ("已实现", "已配镜送达，居民签收")
    assert row["fulfilled_on"] is not None
    # the resident's feedback, recorded by the community admin (a liaison may not)
    assert api_move(api, "danwei01", "micro_wish", pk, "confirm", feedback="谢谢").status_code == 403
    before = wish_row(ctx, pk)
    response = api_move(api, "shequ01", "micro_wish", pk, "confirm")
    assert response.status_code == 422 and "居民反馈" in response.json["message"]
    assert wish_row(ctx, pk) == before
    assert api_move(api, "shequ01", "micro_wish", pk, "confirm", feedback="眼镜很合适").status_code == 200
    row = wish_row(ctx, pk)
    assert (row["status"], row["feedback"]) == ("已确认", "眼镜很合适")
    assert row["confirmed_on"] is not None
    # confirmed, it stays in sight of the community's members (and of nobody elsewhere)
    assert api_get(api, "dangyuan01", "micro_wish", pk).status_code == 200
    assert api_get(api, "danwei03", "micro_wish", pk).status_code == 404


# --- 4. matching ------------------------------------------------------------------------------

def suggested(page_html):
    """The suggestions panel's rows, in order: (kind, id)."""
    panel = page_html.split("匹配推荐", 1)[1]
    return [(kind, int(pk)) for kind, pk in
            re.findall(r'href="/(service_item|resource)/show/(\d+)"', panel)]


def test_matching_suggests_and_links(ctx, as_user, unit1, community):
    other_community = scalar(ctx, "SELECT o.id FROM organization o JOIN unit u ON u.community_id = o.id "
                             "WHERE o.type = 'community' AND o.parent_id = "
                             "(SELECT parent_id FROM organization WHERE id = :c) AND o.id <> :c "
                             "AND u.deleted_on IS NULL ORDER BY o.id", c=community)
    assert other_community, "the seed places a unit in another community of shequ01's street"
    neighbour = scalar(ctx, "SELECT id FROM unit WHERE community_id = :c AND deleted_on IS NULL "
                       "ORDER BY id", c=other_community)
    cat = category(ctx, "need_category", "医疗健康")
    other_cat = category(ctx, "need_category", "文体活动")
    tag = uid()
    need = insert_need(ctx, community, status="已受理", category_id=cat,
                       title=f"老人健康义诊{tag}", content="希望医生为老人测血压")
    # the same category in the same community, the same category next door, another category
    # at home (with many words in common), and one not published
    best = insert_service_item(ctx, unit1, cat, title=f"社区义诊服务{tag}A")
    street = insert_service_item(ctx, neighbour, cat, title=f"健康义诊进社区{tag}B")
    other = insert_service_item(ctx, unit1, other_cat, title=f"老人健康义诊讲座{tag}C",
                                content="为老人测血压")
    draft = insert_service_item(ctx, unit1, cat, status="草稿", title=f"义诊草稿{tag}D")
    facts = {row[0]: (row[1] == cat, row[2] == community) for row in ctx.execute(text(
        "SELECT s.id, s.category_id, u.community_id FROM service_item s "
        "JOIN unit u ON u.id = s.provider_unit_id"))}

    def items_suggested_to(username):
        page = as_user(username).get(f"/need/show/{need}")
        assert page.status_code == 200
        items = [pk for kind, pk in suggested(page.get_data(as_text=True)) if kind == "service_item"]
        # same category and community first, then same category, then the rest
        keys = [facts[pk] for pk in items]
        assert keys == sorted(keys, reverse=True), (username, keys)
        assert draft not in items
        return items

    # the community admin: its own community only (the next one is outside its scope)
    items = items_suggested_to("shequ01")
    assert best in items and other in items and street not in items
    assert items.index(best) < items.index(other)
    # the street admin sees the street: the neighbour's item comes after, but before `other`
    items = items_suggested_to("jiedao01")
    assert items.index(best) < items.index(street) < items.index(other)

    # linking puts a row in service_item_need and one audit record; unlinking takes it away
    def links():
        return ids(ctx, "SELECT service_item_id FROM service_item_need WHERE need_id = :n", n=need)
    audits = audit_count(ctx, "need", need)
    browser = as_user("shequ01")
    response = browser.post(f"/need/link/{need}/{best}", {"linked": "1"}, form_url=f"/need/show/{need}")
    assert response.status_code == 302
    assert links() == {best}
    assert audit_count(ctx, "need", need) == audits + 1
    record = scalar(ctx, "SELECT changes FROM audit_log WHERE resource = 'need' AND record_id = :i "
                    "ORDER BY id DESC", i=str(need))
    assert "service_items" in record
    page = browser.get(f"/need/show/{need}").get_data(as_text=True)
    assert "取消关联" in page
    # a liaison may not link, nor unlink
    liaison = as_user("danwei01")
    response = liaison.post(f"/need/link/{need}/{street}", {"linked": "1"}, form_url="/need/list/")
    assert response.status_code == 403
    response = liaison.post(f"/need/link/{need}/{best}", {"linked": "0"}, form_url="/need/list/")
    assert response.status_code == 403
    assert links() == {best}
    # a draft (never offered) cannot be linked either
    page = browser.post(f"/need/link/{need}/{draft}", {"linked": "1"}, form_url=f"/need/show/{need}",
                        follow_redirects=True)
    assert "只能关联已发布或进行中的服务项目" in page.get_data(as_text=True)
    assert links() == {best}
    assert audit_count(ctx, "need", need) == audits + 1
    response = browser.post(f"/need/link/{need}/{best}", {"linked": "0"}, form_url=f"/need/show/{need}")
    assert response.status_code == 302
    assert links() == set()
    assert audit_count(ctx, "need", need) == audits + 2


# --- 5. needs filed by a liaison or a member ---------------------------------------------------

def test_a_liaison_files_a_need(ctx, as_user, api, unit1, unit2, community):
    title = f"单位门前道路破损{uid()}"
    cat = category(ctx, "need_category", "设施维修")
    client, headers = api("danwei01")
    response = client.post("/api/v1/need/", headers=headers, json={
        "source": "居民", "requester_name": "赵师傅", "requester_phone": "13700001111",
        "community": community, "category": cat, "title": title,
        "content": "单位门前人行道砖块破损", "urgency": "一般"})
    assert response.status_code == 201, response.json
    pk = response.json["id"]
    row = row_of(ctx, "need", pk)
    assert (row["status"], row["submitted_by_unit_id"], row["source"], row["community_id"]) == \
        ("待受理", unit1, "驻区单位", community)
    # it sees what it filed, in its list and through the API
    browser = as_user("danwei01")
    assert browser.get(f"/need/show/{pk}").status_code == 200
    assert pk in listed_ids(browser, "need")
    assert api_get(api, "danwei01", "need", pk).json["result"]["submitted_by_unit_id"] == unit1
    # but may not change it afterwards (liaisons have no edit right on needs) …
    before = row_of(ctx, "need", pk)
    assert browser.get(f"/need/edit/{pk}").status_code == 403
    assert browser.post(f"/need/edit/{pk}", {"title": "改掉"}, form_url="/need/list/").status_code == 403
    assert client.put(f"/api/v1/need/{pk}", headers=headers, json={"title": "改掉"}).status_code == 403
    assert client.delete(f"/api/v1/need/{pk}", headers=headers).status_code == 403
    assert api_move(api, "danwei01", "need", pk, "accept").status_code == 403
    assert row_of(ctx, "need", pk) == before
    # … and another unit's liaison does not see it, while the community admin does
    assert as_user("danwei02").get(f"/need/show/{pk}").status_code == 404
    assert api_get(api, "danwei02", "need", pk).status_code == 404
    assert api_move(api, "shequ01", "need", pk, "accept").status_code == 200
    # what danwei02 files stays out of danwei01's sight
    client2, headers2 = api("danwei02")
    response = client2.post("/api/v1/need/", headers=headers2, json={
        "community": community, "category": cat, "title": f"停车位紧张{uid()}", "urgency": "重大"})
    assert response.status_code == 201, response.json
    other = response.json["id"]
    row = row_of(ctx, "need", other)
    assert (row["status"], row["submitted_by_unit_id"]) == ("待受理", unit2)
    assert api_get(api, "danwei02", "need", other).status_code == 200
    assert api_get(api, "danwei01", "need", other).status_code == 404
    assert browser.get(f"/need/show/{other}").status_code == 404
    assert other not in listed_ids(browser, "need")


def test_a_liaison_files_a_need_through_the_form(ctx, as_user, api, unit1, community):
    title = f"单位门前路灯不亮{uid()}"
    cat = category(ctx, "need_category", "设施维修")
    # the community is offered, by the form and by the API's _info
    browser = as_user("danwei01")
    assert community in {row["id"] for row in browser.get(
        "/need/choices/community?q=").json["results"]}
    client, headers = api("danwei01")
    info = client.get("/api/v1/need/_info?q=(keys:!(add_columns),add_columns:"
                      "(community:(page_size:100)))", headers=headers)
    fields = {f["name"]: f for f in info.json["add_columns"]}
    assert community in {v["id"] for v in fields["community"]["values"]}
    response = browser.post("/need/add", {
        "source": "居民", "requester_name": "赵师傅", "community": str(community),
        "category": str(cat), "title": title, "content": "单位门前路灯不亮", "urgency": "一般"},
        form_url="/need/add")
    assert response.status_code == 302, re.findall(r'alert-danger">\s*([^<]+)',
                                                    response.get_data(as_text=True))
    row = row_of(ctx, "need", id_by_title(ctx, "need", title))
    assert (row["status"], row["submitted_by_unit_id"]) == ("待受理", unit1)


def test_a_member_files_a_need(ctx, as_user, api, community):
    member = user_link(ctx, "dangyuan01").member_id
    title = f"楼道灯不亮{uid()}"
    client, headers = api("dangyuan01")
    response = client.post("/api/v1/need/", headers=headers, json={
        "community": community, "category": category(ctx, "need_category", "设施维修"),
        "title": title, "urgency": "一般"})
    assert response.status_code == 201, response.json
    pk = response.json["id"]
    row = row_of(ctx, "need", pk)
    assert (row["status"], row["submitted_by_member_id"], row["submitted_by_unit_id"]) == \
        ("待受理", member, None)
    assert api_get(api, "dangyuan01", "need", pk).status_code == 200
    assert pk in listed_ids(as_user("dangyuan01"), "need")
    assert api_get(api, "danwei01", "need", pk).status_code == 404
    before = row_of(ctx, "need", pk)
    assert client.put(f"/api/v1/need/{pk}", headers=headers, json={"title": "改掉"}).status_code == 403
    assert row_of(ctx, "need", pk) == before
