"""The audit trail read by an auditor (issue 28): object types by their Chinese names, changes as
字段：旧值 → 新值 by the fields' labels and the values as the pages show them, an export's
filters as the words its list's search form shows, and the home page's recent activity by who
did it — in the list, the record's page, the trail's own export and the home page alike."""
import csv
import io
import json
import re
import uuid
from urllib.parse import quote

import pytest
from sqlalchemy import text

from tests.test_audit import as_form, new_id_number, new_phone
from tests.test_dashboard_todo import record_count

pytestmark = pytest.mark.db

MASK = "******"


@pytest.fixture(scope="module", autouse=True)
def tables_kept(app):
    """The rows written here go when the module ends."""
    from tests.conftest import tables_kept_by

    with tables_kept_by(app):
        yield


def scalar(ctx, sql, **params):
    return ctx.execute(text(sql), params).scalar()


def cells(html: str) -> list[list[str]]:
    """The audit list's rows as the auditor reads them: each cell's text."""
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", html, re.DOTALL):
        rows.append([re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cell)).strip()
                     for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)])
    return [r for r in rows if r]


def listed(browser, query: str) -> list[list[str]]:
    page = browser.get(f"/audit_log/list/?{query}")
    assert page.status_code == 200
    return cells(page.get_data(as_text=True))


def newest(ctx, action, resource) -> int:
    return scalar(ctx, "SELECT max(id) FROM audit_log WHERE action = :a AND resource = :r",
                  a=action, r=resource)


def search_filter_name(browser, url: str, column: str, index: int) -> str:
    """The name the list's search form gives filter `index` of `column` (FAB's AdminFilters
    reads them from the page's JSON)."""
    page = browser.get(url).get_data(as_text=True)
    rest = page[page.index("'#filter_form',", page.index("new AdminFilters(")) + 15:]
    found = []
    for _ in range(3):  # labels, form fields, search filters
        value, end = json.JSONDecoder().raw_decode(rest.lstrip().removeprefix(",").lstrip())
        found.append(value)
        rest = rest.lstrip().removeprefix(",").lstrip()[end:]
    return found[2][column][index]


def home_group(browser, title: str, following: str) -> str:
    page = browser.get("/").get_data(as_text=True)
    part = page.split(title, 1)[1].split(following, 1)[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", part))


def test_a_filtered_export_reads_its_filter_as_the_list_shows_it(app, ctx, as_user):
    """`_flt_7_status=已办结` on the resolutions is 状态 不等于 已办结: the trail says so — its
    list, the record's page, its export and the auditor's home page — by the filter's name
    on the list's own search form, never as the bare value, which reads as its opposite."""
    shequ = as_user("shequ01")
    url = f"/resolution/list/?_flt_7_status={quote('已办结')}"
    negated = search_filter_name(shequ, url, "status", 7)
    assert negated == "不等于"
    shown = record_count(shequ, url)
    export = shequ.get(url.replace("/list/", "/export/csv"))
    assert export.status_code == 200
    export.get_data()
    export.close()
    pk = newest(ctx, "export", "resolution")
    words = f"状态 {negated} 已办结"

    auditor = as_user("shenji")
    (row,) = [r for r in listed(auditor, "_flt_3_action=export&_flt_3_resource=resolution")
              if words in r[-2]]
    assert row[4] == "议定事项" and "shequ01" in row
    assert "_flt_" not in row[-2] and "resolution" not in " ".join(row)
    page = auditor.get(f"/audit_log/show/{pk}").get_data(as_text=True)
    assert "筛选条件" in page and words in page and "_flt_7_status" not in page

    trail = auditor.get("/audit_log/export/csv?_flt_3_action=export&_flt_3_resource=resolution")
    lines = list(csv.reader(io.StringIO(trail.get_data(as_text=True).lstrip("\ufeff"))))
    trail.close()
    header, body = lines[0], lines[1:]
    content = [line[header.index("变更内容")] for line in body]
    assert any(words in c for c in content), content
    assert {line[header.index("对象类型")] for line in body} == {"议定事项"}

    activity = home_group(auditor, "最近的导出", "最近的导入")
    assert f"社区管理员 导出 议定事项（{shown} 条）：{words}" in activity


def test_an_in_filter_keeps_all_its_values_and_an_api_export_its_conditions(ctx, as_user, api):
    liaison = as_user("danwei01")
    unit = scalar(ctx, "SELECT unit_id FROM ab_user WHERE username = 'danwei01'")
    unit_name = scalar(ctx, "SELECT name FROM unit WHERE id = :u", u=unit)
    url = (f"/resource/export/csv?_flt_0_unit={unit}&_flt_8_status={quote('草稿')}"
           f"&_flt_8_status={quote('已驳回')}")
    liaison.get(url).get_data()
    in_name = search_filter_name(liaison, "/resource/list/", "status", 8)
    relation = search_filter_name(liaison, "/resource/list/", "unit", 0)
    assert in_name == "属于"  # FAB's "In", in Chinese as every other filter name
    auditor = as_user("shenji")
    page = auditor.get(f"/audit_log/show/{newest(ctx, 'export', 'resource')}").get_data(
        as_text=True)
    label = "提供单位"
    assert f"{label} {relation} {unit_name}" in page
    assert f"状态 {in_name} 草稿、已驳回" in page

    client, headers = api("shequ01")
    q = "(filters:!((col:status,opr:eq,value:已派单)),order_column:deadline,order_direction:asc)"
    client.get(f"/api/v1/need/export/csv?q={quote(q)}", headers=headers).get_data()
    page = auditor.get(f"/audit_log/show/{newest(ctx, 'export', 'need')}").get_data(as_text=True)
    assert "状态 等于 已派单" in page and "按" in page and "升序" in page


def test_changes_read_as_labels_with_old_and_new_values(app, ctx, as_user, api):
    """字段：旧值 → 新值 — the fields by their labels, a code by its label, a related row by its
    name; a transition by its move's name; personal data stays masked."""
    client, headers = api("zuzhibu")
    community, community_name = ctx.execute(text(
        "SELECT o.id, o.name FROM organization o JOIN ab_user u ON u.org_id = o.id "
        "WHERE u.username = 'shequ01'")).one()
    name = f"网格{uuid.uuid4().hex[:6]}"
    response = client.post("/api/v1/organization/", headers=headers, json={
        "parent": community, "type": "grid", "code": f"W{uuid.uuid4().hex[:8]}", "name": name,
        "grid_kind": "城市", "active": True})
    assert response.status_code == 201, response.json
    pk = response.json["id"]
    assert client.put(f"/api/v1/organization/{pk}", headers=headers,
                      json={"name": name + "改", "active": False}).status_code == 200

    auditor = as_user("shenji")
    rows = listed(auditor, f"_flt_3_resource=organization&_flt_3_record_id={pk}")
    assert [r[3] for r in rows] == ["修改", "新增"] and {r[4] for r in rows} == {"党组织"}
    updated, created = rows[0][6], rows[1][6]
    assert f"组织名称：{name} → {name}改" in updated and "启用：是 → 否" in updated, updated
    assert f"上级组织：{community_name}" in created and "组织类型：网格党支部" in created, created
    assert "parent_id" not in created and "grid" not in created.replace("网格", "")

    # A workflow move: its name, and the status it changed.
    need = scalar(ctx, "SELECT min(n.id) FROM need n WHERE n.status = '待受理' AND n.deleted_on "
                  "IS NULL AND n.community_id = :c", c=community)
    shequ, shequ_headers = api("shequ01")
    assert shequ.post(f"/api/v1/need/{need}/transition/accept", headers=shequ_headers,
                      json={}).status_code == 200
    (move,) = listed(auditor, f"_flt_3_resource=need&_flt_3_record_id={need}&_flt_3_action=transition")
    assert "流转操作：平台接单" in move[6] and "状态：待受理 → 已受理" in move[6], move

    # Personal data: masked in the words too.
    browser = as_user("shequ01")
    number, phone = new_id_number(), new_phone()
    member_name = f"审{uuid.uuid4().hex[:4]}"
    assert browser.post("/member/add", as_form({
        "name": member_name, "id_number": number, "phone": phone, "community": community,
        "category": "在职", "status": "正常"}), follow_redirects=True).status_code == 200
    member = scalar(ctx, "SELECT id FROM member WHERE name = :n", n=member_name)
    trail = auditor.get(f"/audit_log/export/csv?_flt_3_resource=member&_flt_3_record_id={member}")
    body = trail.get_data(as_text=True)
    trail.close()
    assert f"姓名：{member_name}" in body and f"手机号：{MASK}" in body
    assert number not in body and phone not in body


def test_object_types_read_by_their_names(ctx, as_user):
    auditor = as_user("shenji")
    auditor.get("/audit_log/export/csv").get_data()  # the trail's own export is recorded too
    rows = listed(auditor, "_flt_3_resource=audit_log")
    assert rows and {r[4] for r in rows} == {"操作日志"}
    rows = listed(auditor, "_flt_3_resource=dictionary")
    assert rows and {r[4] for r in rows} == {"数据字典"}
    # Every resource the trail holds reads as a name, not as its table.
    resources = [r[0] for r in ctx.execute(text("SELECT DISTINCT resource FROM audit_log "
                                                "WHERE resource IS NOT NULL"))]
    page = auditor.get("/audit_log/list/?psize_AuditLogView=100").get_data(as_text=True)
    for row in cells(page):
        assert row[4] not in resources, row


def test_recent_activity_names_who_did_what_and_imports_apart_from_exports(ctx, as_user, api):
    client, headers = api("zuzhibu")
    community = scalar(ctx, "SELECT org_id FROM ab_user WHERE username = 'shequ01'")
    response = client.post("/api/v1/organization/", headers=headers, json={
        "parent": community, "type": "grid", "code": f"V{uuid.uuid4().hex[:8]}",
        "name": f"网格{uuid.uuid4().hex[:6]}", "grid_kind": "城市", "active": True})
    assert response.status_code == 201
    auditor = as_user("shenji")
    assert auditor.get("/dashboard/figure/need_funnel.csv").status_code == 200
    changes = home_group(auditor, "最近的数据变更", "</html>")
    assert f"组织部管理员 新增 党组织 #{response.json['id']}" in changes
    assert "zuzhibu" not in changes and "organization" not in changes
    exports = home_group(auditor, "最近的导出", "最近的导入")
    assert "审计员 导出 数据看板" in exports
    assert "导入" not in exports  # the seed's import is not an export
    imports = home_group(auditor, "最近的导入", "最近的数据变更")
    assert "系统 导入 演示数据" in imports
