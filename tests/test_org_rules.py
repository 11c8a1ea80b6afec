"""Business rules and bad input of the organisation tree, units and members (DOMAIN.md §2, §4):
each refusal is shown as a Chinese message — in the page through the form, in the 422 `message`
through the API — never as a 500, and writes nothing (checked with plain SQL)."""
import random
import re
import uuid

import pytest
from sqlalchemy import bindparam, text

from app import validators

pytestmark = pytest.mark.db

_rng = random.SystemRandom()
_issued_ids: set[str] = set()


# --- data that passes or fails the national-number checks on purpose -----------------------

def new_credit_code() -> str:
    """A valid 统一社会信用代码 (市场监管, 企业), random enough to be unique in a run."""
    body = "91110105" + "".join(_rng.choice(validators.CREDIT_CODE_CHARSET) for _ in range(9))
    return body + validators.credit_code_check_char(body)


def new_id_number() -> str:
    """A valid 身份证号 never issued before in this run (seeded members are random too)."""
    while True:
        born = f"{_rng.randint(1950, 2000)}{_rng.randint(1, 12):02d}{_rng.randint(1, 28):02d}"
        body = f"110105{born}{_rng.randint(0, 999):03d}"
        number = body + validators.id_number_check_char(body)
        if number not in _issued_ids:
            _issued_ids.add(number)
            return number


def with_wrong_check(number: str, charset: str) -> str:
    wrong = next(c for c in charset if c != number[-1])
    return number[:-1] + wrong


def uid() -> str:
    return uuid.uuid4().hex[:10].upper()


# --- plain SQL --------------------------------------------------------------------------------

def count(ctx, table: str) -> int:
    return ctx.execute(text(f"SELECT count(*) FROM {table}")).scalar()


def node(ctx, code: str):
    return ctx.execute(text(
        "SELECT id, parent_id, path, depth, type, name, deleted_on FROM organization "
        "WHERE code = :c"), {"c": code}).one()


def node_by_id(ctx, pk: int):
    return ctx.execute(text(
        "SELECT id, parent_id, path, depth, type, name, deleted_on FROM organization "
        "WHERE id = :i"), {"i": pk}).one()


def subtree(ctx, path: str) -> list:
    return ctx.execute(text(
        "SELECT id, parent_id, path, depth, code FROM organization WHERE path LIKE :p "
        "ORDER BY path"), {"p": path + "%"}).all()


def unit_category(ctx) -> int:
    return ctx.execute(text("SELECT min(id) FROM dictionary WHERE kind = 'unit_category'")).scalar()


def user_org(ctx, username: str) -> int:
    return ctx.execute(text("SELECT org_id FROM ab_user WHERE username = :u"),
                       {"u": username}).scalar()


# --- what a refusal looks like ---------------------------------------------------------------

def shown_in_page(response, message: str) -> None:
    """The form's answer, redirects followed: a page (not a 500) that tells why in Chinese."""
    assert response.status_code == 200, response.status_code
    page = response.get_data(as_text=True)
    said = re.findall(r'class="alert[^"]*">(.*?)</div>|class="help-block">([^<]+)<', page, re.DOTALL)
    said = [" ".join("".join(parts).split()) for parts in said]
    assert message in page, f"“{message}” not shown in the page, which says {said}"


def refused_by_api(response, message: str) -> None:
    assert response.status_code == 422, (response.status_code, response.get_data(as_text=True))
    assert isinstance(response.json["message"], str), response.json
    assert message in response.json["message"], response.json["message"]


# --- writes through the API as a given user ------------------------------------------------

def api_create_org(api, username, parent_id, type_, code=None, name=None, **extra) -> int:
    client, headers = api(username)
    code = code or f"T{uid()}"
    body = {"parent": parent_id, "type": type_, "code": code, "name": name or f"测试{code}",
            "active": True, **extra}
    if type_ == "grid":
        body.setdefault("grid_kind", "城市")
    response = client.post("/api/v1/organization/", json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.json["id"]


def org_form(ctx, pk: int, **changes) -> dict:
    """The edit form of a node as it stands, with `changes` applied."""
    row = ctx.execute(text("SELECT parent_id, type, code, name, grid_kind FROM organization "
                           "WHERE id = :i"), {"i": pk}).one()
    data = {"parent": str(row.parent_id or ""), "type": row.type, "code": row.code,
            "name": row.name, "secretary": "", "phone": "", "address": "",
            "grid_kind": row.grid_kind or "", "active": "y"}
    data.update({k: str(v) for k, v in changes.items()})
    return data


def unit_body(ctx, community_id: int, credit_code: str, name: str) -> dict:
    return {"name": name, "credit_code": credit_code, "category": unit_category(ctx),
            "community": community_id, "party_member_count": 3, "status": "在册"}


def as_form(body: dict) -> dict:
    return {k: str(v) for k, v in body.items()}


def member_body(community_id: int, id_number: str, name: str) -> dict:
    return {"name": name, "id_number": id_number, "community": community_id,
            "phone": "13800138000", "category": "在职", "status": "正常"}


# --- the two national numbers ----------------------------------------------------------------

def test_unit_with_a_wrong_credit_code_check_character_is_refused(ctx, as_user, api):
    community = node(ctx, "YX0101").id
    bad = with_wrong_check(new_credit_code(), validators.CREDIT_CODE_CHARSET)
    body = unit_body(ctx, community, bad, f"校验位错误单位{uid()}")
    before = count(ctx, "unit")

    response = as_user("zuzhibu").post("/unit/add", as_form(body), follow_redirects=True)
    shown_in_page(response, "统一社会信用代码校验位错误")

    client, headers = api("zuzhibu")
    refused_by_api(client.post("/api/v1/unit/", json=body, headers=headers),
                   "统一社会信用代码校验位错误")

    assert count(ctx, "unit") == before
    assert ctx.execute(text("SELECT count(*) FROM unit WHERE name = :n"),
                       {"n": body["name"]}).scalar() == 0


def test_member_with_a_wrong_id_number_check_digit_is_refused(ctx, as_user, api):
    community = node(ctx, "YX0101").id
    bad = with_wrong_check(new_id_number(), "0123456789X")
    body = member_body(community, bad, f"校验错{uid()[:4]}")
    before = count(ctx, "member")

    response = as_user("zuzhibu").post("/member/add", as_form(body), follow_redirects=True)
    shown_in_page(response, "身份证号校验位错误")

    client, headers = api("zuzhibu")
    refused_by_api(client.post("/api/v1/member/", json=body, headers=headers), "身份证号校验位错误")

    assert count(ctx, "member") == before


def test_a_duplicate_id_number_is_refused(ctx, as_user, api):
    community = node(ctx, "YX0101").id
    number = new_id_number()
    client, headers = api("zuzhibu")
    first = client.post("/api/v1/member/", headers=headers,
                        json=member_body(community, number, f"原有{uid()[:4]}"))
    assert first.status_code == 201, first.get_data(as_text=True)
    before = count(ctx, "member")
    message = "该身份证号已登记为党员"

    again = member_body(community, number, f"重复{uid()[:4]}")
    response = as_user("zuzhibu").post("/member/add", as_form(again), follow_redirects=True)
    shown_in_page(response, message)
    refused_by_api(client.post("/api/v1/member/", json=again, headers=headers), message)
    # Typed differently (spaced, as read aloud), it is still the same number.
    spaced = member_body(community, f"{number[:6]} {number[6:14]} {number[14:]}", again["name"])
    refused_by_api(client.post("/api/v1/member/", json=spaced, headers=headers), message)
    # Nor can an existing member be changed to carry it.
    other = ctx.execute(text("SELECT id, id_number_hash FROM member WHERE deleted_on IS NULL "
                             "AND id <> :i ORDER BY id"), {"i": first.json["id"]}).first()
    refused_by_api(client.put(f"/api/v1/member/{other.id}", json={"id_number": number},
                              headers=headers), message)

    assert count(ctx, "member") == before
    assert ctx.execute(text("SELECT count(*) FROM member WHERE name = :n"),
                       {"n": again["name"]}).scalar() == 0
    assert ctx.execute(text("SELECT id_number_hash FROM member WHERE id = :i"),
                       {"i": other.id}).scalar() == other.id_number_hash


# --- the organisation tree ------------------------------------------------------------------

@pytest.fixture
def branch(ctx, api):
    """A fresh community under the first street, with a grid and two buildings below it, and
    a household below the first building — made by zuzhibu through the API."""
    street = node(ctx, "YX01").id
    community = api_create_org(api, "zuzhibu", street, "community")
    grid = api_create_org(api, "zuzhibu", community, "grid")
    building1 = api_create_org(api, "zuzhibu", grid, "building")
    building2 = api_create_org(api, "zuzhibu", grid, "building")
    household = api_create_org(api, "zuzhibu", building1, "household")
    return {"community": community, "grid": grid, "building1": building1,
            "building2": building2, "household": household}


def tree_state(ctx):
    return ctx.execute(text("SELECT id, parent_id, path, depth, type, code, name FROM organization "
                            "ORDER BY id")).all()


def test_a_node_cannot_move_under_its_own_descendant(ctx, as_user, api, branch):
    before = tree_state(ctx)
    grid, building = branch["grid"], branch["building1"]
    client, headers = api("zuzhibu")
    browser = as_user("zuzhibu")
    # Made a household so that the types would fit: the descendant rule alone refuses it.
    message = "不能把组织移动到它自身或它的下级组织之下"
    response = browser.post(f"/organization/edit/{grid}",
                            org_form(ctx, grid, parent=building, type="household"),
                            form_url=f"/organization/edit/{grid}", follow_redirects=True)
    shown_in_page(response, message)
    refused_by_api(client.put(f"/api/v1/organization/{grid}", headers=headers,
                              json={"parent": building, "type": "household"}), message)
    # Unchanged in type, it is refused as well (a community cannot stand under a grid).
    community = branch["community"]
    refused_by_api(client.put(f"/api/v1/organization/{community}", headers=headers,
                              json={"parent": grid}), "社区党组织不能设在网格党支部之下")
    # Nor under itself.
    refused_by_api(client.put(f"/api/v1/organization/{grid}", headers=headers,
                              json={"parent": grid}), "网格党支部不能设在网格党支部之下")
    assert tree_state(ctx) == before


def test_a_type_under_a_lower_or_equal_type_is_refused(ctx, as_user, api, branch):
    community, grid = branch["community"], branch["grid"]
    client, headers = api("zuzhibu")
    browser = as_user("zuzhibu")
    before_count, before = count(ctx, "organization"), tree_state(ctx)

    code = f"T{uid()}"
    street_under_community = {"parent": community, "type": "street", "code": code,
                              "name": f"错位街道{code}", "active": True}
    response = browser.post("/organization/add", as_form({**street_under_community,
                                                           "active": "y"}),
                            follow_redirects=True)
    shown_in_page(response, "街道党工委不能设在社区党组织之下")
    refused_by_api(client.post("/api/v1/organization/", json=street_under_community,
                               headers=headers), "街道党工委不能设在社区党组织之下")
    # Equal types: a community under a community.
    refused_by_api(client.post("/api/v1/organization/", headers=headers, json={
        **street_under_community, "type": "community"}), "社区党组织不能设在社区党组织之下")
    # Only a district stands at the top.
    refused_by_api(client.post("/api/v1/organization/", headers=headers, json={
        **street_under_community, "parent": None}), "只有区委可以作为顶级组织")
    # An existing node moved under a lower type: a grid under a household.
    refused_by_api(client.put(f"/api/v1/organization/{grid}", headers=headers,
                              json={"parent": branch["household"]}),
                   "网格党支部不能设在党员中心户之下")
    # Or retyped below its own children: a community with a grid below it made a building.
    message = "下级组织的类型须低于上级"
    response = browser.post(f"/organization/edit/{community}",
                            org_form(ctx, community, type="building"),
                            form_url=f"/organization/edit/{community}", follow_redirects=True)
    shown_in_page(response, message)
    refused_by_api(client.put(f"/api/v1/organization/{community}", headers=headers,
                              json={"type": "building"}), message)

    assert count(ctx, "organization") == before_count
    assert tree_state(ctx) == before


def assert_consistent_subtree(ctx, root_id: int, new_parent_id: int, size: int) -> None:
    """The node hangs under its new parent and every descendant's path and depth follow."""
    parent, root = node_by_id(ctx, new_parent_id), node_by_id(ctx, root_id)
    assert root.parent_id == new_parent_id
    assert root.path == f"{parent.path}{root_id}/"
    assert root.depth == parent.depth + 1
    rows = subtree(ctx, root.path)
    assert len(rows) == size
    by_id = {r.id: r for r in rows}
    for row in rows:
        assert row.path.startswith(root.path)
        assert row.depth == root.depth + row.path[len(root.path):].count("/")
        if row.id != root_id:
            assert row.path == f"{by_id[row.parent_id].path}{row.id}/"
            assert row.depth == by_id[row.parent_id].depth + 1


def test_moving_a_grid_carries_its_subtree(ctx, as_user, api, branch):
    grid = branch["grid"]
    old = node_by_id(ctx, grid)
    descendants = {r.id for r in subtree(ctx, old.path)}
    assert descendants == {grid, branch["building1"], branch["building2"], branch["household"]}
    other_communities = {r.code: r.id for r in ctx.execute(text(
        "SELECT code, id FROM organization WHERE code IN ('YX0102', 'YX0202')"))}
    untouched = ctx.execute(text("SELECT id, path, depth FROM organization WHERE path NOT LIKE :p "
                                 "ORDER BY id"), {"p": old.path + "%"}).all()

    # Through the form: to a community of the other street.
    target = other_communities["YX0202"]
    response = as_user("zuzhibu").post(f"/organization/edit/{grid}",
                                       org_form(ctx, grid, parent=target),
                                       form_url=f"/organization/edit/{grid}",
                                       follow_redirects=True)
    assert response.status_code == 200
    assert_consistent_subtree(ctx, grid, target, len(descendants))
    assert {r.id for r in subtree(ctx, node_by_id(ctx, grid).path)} == descendants
    assert subtree(ctx, old.path) == []

    # Through the API: on to a community of the first street.
    target = other_communities["YX0102"]
    client, headers = api("zuzhibu")
    response = client.put(f"/api/v1/organization/{grid}", json={"parent": target}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["result"]["parent"] == target
    assert_consistent_subtree(ctx, grid, target, len(descendants))
    # The rest of the tree has not moved.
    again = text("SELECT id, path, depth FROM organization WHERE id IN :ids ORDER BY id")
    again = again.bindparams(bindparam("ids", expanding=True))
    assert ctx.execute(again, {"ids": [r.id for r in untouched]}).all() == untouched


@pytest.mark.parametrize("attached", ["child", "unit", "member", "group_member"])
def test_a_node_with_something_attached_cannot_be_deleted(ctx, as_user, api, attached):
    community = api_create_org(api, "zuzhibu", node(ctx, "YX01").id, "community")
    client, headers = api("zuzhibu")
    target, what = community, "下级组织"
    if attached == "child":
        api_create_org(api, "zuzhibu", community, "grid")
    elif attached == "unit":
        response = client.post("/api/v1/unit/", headers=headers, json=unit_body(
            ctx, community, new_credit_code(), f"挂靠单位{uid()}"))
        assert response.status_code == 201, response.get_data(as_text=True)
        what = "驻区单位"
    else:
        body = member_body(community, new_id_number(), f"挂靠{uid()[:4]}")
        if attached == "group_member":  # held by its grid, not (only) its community
            target = body["group"] = api_create_org(api, "zuzhibu", community, "grid")
        response = client.post("/api/v1/member/", headers=headers, json=body)
        assert response.status_code == 201, response.get_data(as_text=True)
        what = "党员"
    message = f"“{node_by_id(ctx, target).name}”下还有{what}，不能删除"
    browser = as_user("zuzhibu")
    audit_before = count(ctx, "audit_log")

    response = browser.post(f"/organization/delete/{target}", form_url="/organization/list/",
                            follow_redirects=True)
    shown_in_page(response, message)
    refused_by_api(client.delete(f"/api/v1/organization/{target}", headers=headers), message)
    response = browser.post("/organization/action_post", {"action": "muldelete",
                                                          "rowid": [str(target)]},
                            form_url="/organization/list/", follow_redirects=True)
    shown_in_page(response, message)

    assert node_by_id(ctx, target).deleted_on is None
    assert count(ctx, "audit_log") == audit_before


def test_an_empty_node_can_be_deleted(ctx, as_user, api):
    """The control for the test above: with nothing attached, the same delete goes through."""
    community = api_create_org(api, "zuzhibu", node(ctx, "YX01").id, "community")
    response = as_user("zuzhibu").post(f"/organization/delete/{community}",
                                       form_url="/organization/list/", follow_redirects=True)
    assert response.status_code == 200
    assert node_by_id(ctx, community).deleted_on is not None


# --- CSRF and data scope ------------------------------------------------------------------

def test_a_form_post_without_its_csrf_token_is_refused(ctx, as_user):
    browser = as_user("zuzhibu")
    community = node(ctx, "YX0101")
    body = as_form(unit_body(ctx, community.id, new_credit_code(), f"无令牌单位{uid()}"))
    units, orgs = count(ctx, "unit"), count(ctx, "organization")
    audit = count(ctx, "audit_log")

    assert browser.client.post("/unit/add", data=body).status_code == 400
    assert browser.client.post(f"/organization/edit/{community.id}",
                               data=org_form(ctx, community.id, name="改名无令牌")).status_code == 400
    assert browser.client.post(f"/organization/delete/{community.id}").status_code == 400
    # A token of some other value does not pass either.
    forged = {**body, "csrf_token": "forged"}
    assert browser.client.post("/unit/add", data=forged).status_code == 400

    assert count(ctx, "unit") == units and count(ctx, "organization") == orgs
    assert node_by_id(ctx, community.id) == community
    assert count(ctx, "audit_log") == audit
    # The same form with its token goes through: the refusal above was the token's.
    response = browser.post("/unit/add", body, follow_redirects=True)
    assert response.status_code == 200
    assert count(ctx, "unit") == units + 1


def test_a_community_admin_cannot_create_a_unit_outside_its_subtree(ctx, as_user, api):
    own = user_org(ctx, "shequ01")
    own_path = node_by_id(ctx, own).path
    elsewhere = ctx.execute(text(
        "SELECT id FROM organization WHERE type = 'community' AND deleted_on IS NULL "
        "AND path NOT LIKE :p ORDER BY id"), {"p": own_path + "%"}).first().id
    body = unit_body(ctx, elsewhere, new_credit_code(), f"越界单位{uid()}")
    before = count(ctx, "unit")
    message = "超出您的数据范围"

    response = as_user("shequ01").post("/unit/add", as_form(body), follow_redirects=True)
    shown_in_page(response, message)
    client, headers = api("shequ01")
    refused_by_api(client.post("/api/v1/unit/", json=body, headers=headers), message)
    assert count(ctx, "unit") == before
    assert ctx.execute(text("SELECT count(*) FROM unit WHERE credit_code = :c"),
                       {"c": body["credit_code"]}).scalar() == 0

    # Nor move one of its own units there.
    own_unit = ctx.execute(text("SELECT id, community_id FROM unit WHERE community_id = :c "
                                "AND deleted_on IS NULL ORDER BY id"), {"c": own}).first()
    refused_by_api(client.put(f"/api/v1/unit/{own_unit.id}", json={"community": elsewhere},
                              headers=headers), message)
    assert ctx.execute(text("SELECT community_id FROM unit WHERE id = :i"),
                       {"i": own_unit.id}).scalar() == own

    # In its own community the same unit is accepted.
    response = client.post("/api/v1/unit/", json={**body, "community": own}, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert count(ctx, "unit") == before + 1


def test_a_street_admin_cannot_move_a_node_out_of_its_street(ctx, as_user, api):
    street = user_org(ctx, "jiedao01")
    street_path = node_by_id(ctx, street).path
    communities = ctx.execute(text(
        "SELECT id, path FROM organization WHERE type = 'community' AND deleted_on IS NULL "
        "ORDER BY id")).all()
    inside = [c.id for c in communities if c.path.startswith(street_path)]
    outside = [c.id for c in communities if not c.path.startswith(street_path)]
    grid = api_create_org(api, "jiedao01", inside[0], "grid")
    api_create_org(api, "jiedao01", grid, "building")
    before = tree_state(ctx)
    message = "超出您的数据范围"

    response = as_user("jiedao01").post(f"/organization/edit/{grid}",
                                        org_form(ctx, grid, parent=outside[0]),
                                        form_url=f"/organization/edit/{grid}",
                                        follow_redirects=True)
    shown_in_page(response, message)
    client, headers = api("jiedao01")
    refused_by_api(client.put(f"/api/v1/organization/{grid}", json={"parent": outside[0]},
                              headers=headers), message)
    assert tree_state(ctx) == before

    # Within its street the move is its to make.
    response = client.put(f"/api/v1/organization/{grid}", json={"parent": inside[1]},
                          headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_consistent_subtree(ctx, grid, inside[1], 2)


def test_a_community_with_units_keeps_its_type(app, ctx, api):
    street = ctx.execute(text("SELECT id FROM organization WHERE type='street' ORDER BY id")).scalar()
    category = ctx.execute(text("SELECT id FROM dictionary WHERE kind='unit_category' ORDER BY id")).scalar()
    client, headers = api("zuzhibu")
    community = client.post("/api/v1/organization/", headers=headers, json={
        "parent": street, "type": "community", "code": "RETYPE-C1", "name": "改型测试社区"})
    assert community.status_code == 201, community.json
    pk = community.json["id"]
    unit = client.post("/api/v1/unit/", headers=headers, json={
        "name": "改型测试单位", "credit_code": "91350100M000100Y43", "category": category,
        "community": pk})
    assert unit.status_code == 201, unit.json
    response = client.put(f"/api/v1/organization/{pk}", headers=headers, json={"type": "grid"})
    assert response.status_code == 422
    assert "不能改为其他类型" in response.json["message"]
    assert ctx.execute(text("SELECT type FROM organization WHERE id=:i"), {"i": pk}).scalar() == "community"
