"""Resources matched to needs (issue 22): resource categories map to need categories in the
dictionary; the need's proposals rank a resource of a mapped category first; the joint body
(the community's admins) proposes a unit's resource for a need, the providing unit's liaison
takes it on or declines through the transition table; the match rate counts either match."""
import pytest
from sqlalchemy import text

pytestmark = pytest.mark.db


def scalar(ctx, sql, **params):
    return ctx.execute(text(sql), params).scalar()


@pytest.fixture
def setting(ctx, api):
    """A need of shequ01's community in the category 助老扶幼 (elderly), and a published 场地
    (venue) resource of danwei01's unit: the default mapping says a venue answers elderly."""
    community = scalar(ctx, "SELECT org_id FROM ab_user WHERE username='shequ01'")
    unit = scalar(ctx, "SELECT unit_id FROM ab_user WHERE username='danwei01'")
    elderly = scalar(ctx, "SELECT id FROM dictionary WHERE kind='need_category' AND code='elderly'")
    venue = scalar(ctx, "SELECT id FROM dictionary WHERE kind='resource_category' AND code='venue'")
    admin, admin_headers = api("shequ01")
    need = admin.post("/api/v1/need/", headers=admin_headers, json={
        "community": community, "category": elderly, "title": "老年活动室不够用",
        "source": "社区"}).json["id"]
    liaison, liaison_headers = api("danwei01")
    response = liaison.post("/api/v1/resource/", headers=liaison_headers, json={
        "unit": unit, "year": 2026, "category": venue, "title": "单位会议室周末开放"})
    assert response.status_code == 201, response.json
    resource = response.json["id"]
    assert liaison.post(f"/api/v1/resource/{resource}/transition/submit", headers=liaison_headers,
                        json={}).status_code == 200
    assert admin.post(f"/api/v1/resource/{resource}/transition/publish", headers=admin_headers,
                      json={}).status_code == 200
    return {"need": need, "resource": resource}


def propose(as_user, need, resource, username="shequ01"):
    browser = as_user(username)
    return browser.post(f"/need/propose/{need}/{resource}", {}, form_url=f"/need/show/{need}",
                        follow_redirects=True)


def test_the_dictionary_maps_resource_categories_to_need_categories(ctx, api):
    assert "elderly" in scalar(ctx, "SELECT need_categories FROM dictionary "
                                    "WHERE kind='resource_category' AND code='venue'")
    client, headers = api("zuzhibu")
    venue = scalar(ctx, "SELECT id FROM dictionary WHERE kind='resource_category' AND code='venue'")
    response = client.put(f"/api/v1/dictionary/{venue}", headers=headers,
                          json={"need_categories": "elderly,nosuchcode"})
    assert response.status_code == 422 and "nosuchcode" in response.json["message"]
    unit_kind = scalar(ctx, "SELECT id FROM dictionary WHERE kind='unit_category' ORDER BY id")
    response = client.put(f"/api/v1/dictionary/{unit_kind}", headers=headers,
                          json={"need_categories": "elderly"})
    assert response.status_code == 422 and "资源类别" in response.json["message"]


def test_a_resource_of_a_mapped_category_is_proposed_first(as_user, setting):
    page = as_user("shequ01").get(f"/need/show/{setting['need']}").get_data(as_text=True)
    body = page[page.index("匹配推荐"):]
    body = body[body.index("<tbody>"):]
    first_row = body[:body.index("</tr>")]
    assert f"/resource/show/{setting['resource']}" in first_row and "同类别" in first_row
    assert f"/need/propose/{setting['need']}/{setting['resource']}" in first_row


def test_the_joint_body_proposes_and_the_unit_takes_it_on(ctx, api, as_user, setting):
    need, resource = setting["need"], setting["resource"]
    assert scalar(ctx, "SELECT count(*) FROM need_resource WHERE need_id=:n", n=need) == 0
    page = propose(as_user, need, resource).get_data(as_text=True)
    assert "已向提供单位提议该资源" in page
    match = scalar(ctx, "SELECT id FROM need_resource WHERE need_id=:n", n=need)
    assert scalar(ctx, "SELECT status FROM need_resource WHERE id=:i", i=match) == "待认领"
    # proposed twice: refused, one row
    assert "已提议给这项需求" in propose(as_user, need, resource).get_data(as_text=True)
    assert scalar(ctx, "SELECT count(*) FROM need_resource WHERE need_id=:n", n=need) == 1
    # not matched yet: a proposal is not a match
    client, headers = api("shequ01")
    flagged = client.get("/api/v1/need/?q=(filters:!((col:matched,opr:flag,value:1),"
                         "(col:title,opr:eq,value:'老年活动室不够用')))", headers=headers)
    assert need not in flagged.json["ids"]
    # the liaison of another unit neither sees nor answers it; the community admin cannot answer
    other, other_headers = api("danwei02")
    assert other.get(f"/api/v1/need_resource/{match}", headers=other_headers).status_code == 404
    assert other.post(f"/api/v1/need_resource/{match}/transition/confirm", headers=other_headers,
                      json={}).status_code == 404
    assert client.post(f"/api/v1/need_resource/{match}/transition/confirm", headers=headers,
                       json={}).status_code == 403
    # declining needs a reason
    liaison, liaison_headers = api("danwei01")
    response = liaison.post(f"/api/v1/need_resource/{match}/transition/decline",
                            headers=liaison_headers, json={})
    assert response.status_code == 422 and "婉拒原因" in response.json["message"]
    response = liaison.post(f"/api/v1/need_resource/{match}/transition/confirm",
                            headers=liaison_headers, json={"answer": "周六上午可用"})
    assert response.status_code == 200, response.json
    row = ctx.execute(text("SELECT status, answer, answered_on FROM need_resource WHERE id=:i"),
                      {"i": match}).one()
    assert row.status == "已认领" and row.answer == "周六上午可用" and row.answered_on is not None
    flagged = client.get("/api/v1/need/?q=(filters:!((col:matched,opr:flag,value:1),"
                         "(col:title,opr:eq,value:'老年活动室不够用')))", headers=headers)
    assert need in flagged.json["ids"]
    # a second answer finds it answered
    response = liaison.post(f"/api/v1/need_resource/{match}/transition/decline",
                            headers=liaison_headers, json={"answer": "改主意"})
    assert response.status_code == 409


def test_a_declined_proposal_leaves_the_need_unmatched_and_may_be_made_again(ctx, api, as_user, setting):
    need, resource = setting["need"], setting["resource"]
    propose(as_user, need, resource)
    match = scalar(ctx, "SELECT id FROM need_resource WHERE need_id=:n", n=need)
    liaison, headers = api("danwei01")
    assert liaison.post(f"/api/v1/need_resource/{match}/transition/decline", headers=headers,
                        json={"answer": "会议室装修中"}).status_code == 200
    assert scalar(ctx, "SELECT status FROM need_resource WHERE id=:i", i=match) == "已婉拒"
    assert "已向提供单位提议该资源" in propose(as_user, need, resource).get_data(as_text=True)
    assert scalar(ctx, "SELECT count(*) FROM need_resource WHERE need_id=:n", n=need) == 2


def test_only_a_published_resource_in_scope_may_be_proposed(ctx, as_user, setting):
    need = setting["need"]
    draft = scalar(ctx, "SELECT id FROM resource WHERE status='草稿' AND deleted_on IS NULL ORDER BY id")
    far = scalar(ctx, "SELECT r.id FROM resource r JOIN ab_user u ON u.unit_id = r.unit_id "
                      "WHERE u.username='danwei03' AND r.status='已发布' ORDER BY r.id")
    for resource in (draft, far, 999999):
        if resource is None:
            continue
        page = propose(as_user, need, resource).get_data(as_text=True)
        assert "不存在或超出您的数据范围" in page
    assert scalar(ctx, "SELECT count(*) FROM need_resource WHERE need_id=:n", n=need) == 0
    # a liaison may not propose (the joint body does)
    assert as_user("danwei01").post(f"/need/propose/{need}/{setting['resource']}", {},
                                    form_url="/need/list/").status_code == 403
