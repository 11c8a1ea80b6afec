"""The recycle bin (issue 8, DOMAIN.md §6): a deleted row vanishes from lists, the API, exports
and figures, waits in the bin for the administrators who may delete it (within their scope), and
returns on restore — with what was deleted with it (a unit's lists). After the retention period
`flask gongjian purge` erases it, each erased row recorded. Checked with plain SQL."""
import csv
import io
import json
import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text

from app import clock

pytestmark = pytest.mark.db


def uid() -> str:
    return uuid.uuid4().hex[:8]


def scalar(ctx, sql, **params):
    return ctx.execute(text(sql), params).scalar()


def marker(ctx) -> int:
    return scalar(ctx, "SELECT coalesce(max(id), 0) FROM audit_log")


def records(ctx, mark):
    return [(r.action, r.resource, r.record_id) for r in ctx.execute(text(
        "SELECT action, resource, record_id FROM audit_log WHERE id > :m ORDER BY id"),
        {"m": mark})]


def deleted_on(ctx, table, pk):
    return scalar(ctx, f"SELECT deleted_on FROM {table} WHERE id = :i", i=pk)


def body_of(response) -> str:
    body = response.get_data()
    response.close()
    return body.decode("utf-8-sig")


# --- a need, everywhere -------------------------------------------------------------------------

def new_need(ctx, api, title):
    community = scalar(ctx, "SELECT org_id FROM ab_user WHERE username = 'shequ01'")
    category = scalar(ctx, "SELECT min(id) FROM dictionary WHERE kind = 'need_category'")
    client, headers = api("shequ01")
    response = client.post("/api/v1/need/", headers=headers, json={
        "community": community, "category": category, "title": title, "content": "内容",
        "urgency": "一般", "source": "社区"})
    assert response.status_code == 201, response.json
    return response.json["id"]


def funnel_total(browser) -> int:
    body = browser.get("/dashboard/figure/need_funnel.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    return int(rows[1][2])  # 期间, 环节 (群众接单), 需求数


def seen(ctx, browser, client, headers, pk, title) -> dict:
    page = browser.get(f"/need/list/?_flt_3_title={title}").get_data(as_text=True)
    api_rows = client.get(f"/api/v1/need/?q=(filters:!((col:title,opr:eq,value:'{title}')))",
                          headers=headers).json["result"]
    return {
        "list": f"/need/show/{pk}" in page,
        "show": browser.get(f"/need/show/{pk}").status_code == 200,
        "api": [row["id"] for row in api_rows] == [pk],
        "api_show": client.get(f"/api/v1/need/{pk}", headers=headers).status_code == 200,
        "export": title in body_of(browser.get(f"/need/export/csv?_flt_3_title={title}")),
    }


def test_a_deleted_need_vanishes_everywhere_and_returns_on_restore(ctx, as_user, api):
    title = f"回收测试需求{uid()}"
    pk = new_need(ctx, api, title)
    browser = as_user("shequ01")
    client, headers = api("shequ01")
    figures = as_user("zuzhibu")
    before = funnel_total(figures)
    assert all(seen(ctx, browser, client, headers, pk, title).values())

    mark = marker(ctx)
    response = browser.post(f"/need/delete/{pk}", form_url="/need/list/", follow_redirects=True)
    assert response.status_code == 200
    assert deleted_on(ctx, "need", pk) is not None
    assert not any(seen(ctx, browser, client, headers, pk, title).values())
    assert funnel_total(figures) == before - 1
    # In the bin, for the community admin who deleted it.
    page = browser.get("/recycle/need/").get_data(as_text=True)
    assert title in page

    response = browser.post("/recycle/need/restore", {"rowid": str(pk)},
                            form_url="/recycle/need/", follow_redirects=True)
    assert "已恢复 1 条记录" in response.get_data(as_text=True)
    assert deleted_on(ctx, "need", pk) is None
    assert all(seen(ctx, browser, client, headers, pk, title).values())
    assert funnel_total(figures) == before
    assert [r for r in records(ctx, mark) if r[0] in ("delete", "restore")] == [
        ("delete", "need", str(pk)), ("restore", "need", str(pk))]
    assert title not in browser.get("/recycle/need/").get_data(as_text=True)


# --- a unit and its lists ------------------------------------------------------------------------

def new_unit_with_lists(ctx, api):
    """A unit of shequ01's community with two resources and a service item (one resource
    deleted on its own beforehand)."""
    from tests.test_audit import new_credit_code

    client, headers = api("zuzhibu")
    community = scalar(ctx, "SELECT org_id FROM ab_user WHERE username = 'shequ01'")
    category = scalar(ctx, "SELECT min(id) FROM dictionary WHERE kind = 'unit_category'")
    response = client.post("/api/v1/unit/", headers=headers, json={
        "name": f"回收单位{uid()}", "credit_code": new_credit_code(), "category": category,
        "community": community, "party_member_count": 0, "status": "在册"})
    assert response.status_code == 201, response.json
    unit = response.json["id"]
    resource_category = scalar(ctx, "SELECT min(id) FROM dictionary "
                                    "WHERE kind = 'resource_category'")
    need_category = scalar(ctx, "SELECT min(id) FROM dictionary WHERE kind = 'need_category'")
    resources = []
    for n in range(3):
        response = client.post("/api/v1/resource/", headers=headers, json={
            "unit": unit, "year": clock.today().year, "category": resource_category,
            "title": f"回收资源{n}{uid()}"})
        assert response.status_code == 201, response.json
        resources.append(response.json["id"])
    response = client.post("/api/v1/service_item/", headers=headers, json={
        "provider_unit": unit, "year": clock.today().year, "category": need_category,
        "title": f"回收服务{uid()}", "capacity": 1, "points": 1})
    assert response.status_code == 201, response.json
    item = response.json["id"]
    assert client.delete(f"/api/v1/resource/{resources[2]}", headers=headers).status_code == 200
    return unit, resources, item


def test_a_units_lists_go_with_it_and_come_back_with_it(ctx, as_user, api):
    unit, resources, item = new_unit_with_lists(ctx, api)
    on_its_own = deleted_on(ctx, "resource", resources[2])
    browser = as_user("shequ01")
    mark = marker(ctx)
    browser.post(f"/unit/delete/{unit}", form_url="/unit/list/")
    when = deleted_on(ctx, "unit", unit)
    assert when is not None
    assert [deleted_on(ctx, "resource", r) for r in resources[:2]] == [when, when]
    assert deleted_on(ctx, "service_item", item) == when
    assert deleted_on(ctx, "resource", resources[2]) == on_its_own
    assert sorted(records(ctx, mark)) == sorted(
        [("delete", "unit", str(unit)), ("delete", "service_item", str(item))]
        + [("delete", "resource", str(r)) for r in resources[:2]])
    _client, _headers = api("danwei01")  # not the unit's liaison: nothing to see anyway
    admin, admin_headers = api("zuzhibu")
    assert admin.get(f"/api/v1/resource/{resources[0]}", headers=admin_headers).status_code == 404
    assert admin.get(f"/api/v1/service_item/{item}", headers=admin_headers).status_code == 404

    # A list cannot come back while its unit is in the bin.
    response = browser.post("/recycle/resource/restore", {"rowid": str(resources[0])},
                            form_url="/recycle/resource/", follow_redirects=True)
    assert "仍在回收站中" in response.get_data(as_text=True)
    assert deleted_on(ctx, "resource", resources[0]) == when

    mark = marker(ctx)
    response = browser.post("/recycle/unit/restore", {"rowid": str(unit)},
                            form_url="/recycle/unit/", follow_redirects=True)
    assert "已恢复 1 条记录" in response.get_data(as_text=True)
    assert deleted_on(ctx, "unit", unit) is None
    assert [deleted_on(ctx, "resource", r) for r in resources[:2]] == [None, None]
    assert deleted_on(ctx, "service_item", item) is None
    # The resource deleted on its own before stays in the bin.
    assert deleted_on(ctx, "resource", resources[2]) == on_its_own
    assert sorted(records(ctx, mark)) == sorted(
        [("restore", "unit", str(unit)), ("restore", "service_item", str(item))]
        + [("restore", "resource", str(r)) for r in resources[:2]])
    assert admin.get(f"/api/v1/resource/{resources[0]}", headers=admin_headers).status_code == 200
    # Its credit code is taken again: a second unit with it is refused.
    code = scalar(ctx, "SELECT credit_code_key FROM unit WHERE id = :i", i=unit)
    assert code is not None


# --- who sees the bin ----------------------------------------------------------------------------

def test_the_bin_follows_scope_and_rights(ctx, as_user, api):
    title = f"越权恢复{uid()}"
    pk = new_need(ctx, api, title)
    as_user("shequ01").post(f"/need/delete/{pk}", form_url="/need/list/")
    # The street admin above sees it; an admin of another street does not; neither do
    # liaisons, members and the auditor (who may not delete needs).
    assert title in as_user("jiedao01").get("/recycle/need/").get_data(as_text=True)
    assert title in as_user("zuzhibu").get("/recycle/need/").get_data(as_text=True)
    for username in ("danwei01", "dangyuan01", "shenji"):
        browser = as_user(username)
        assert browser.get("/recycle/").status_code == 403
        assert browser.post("/recycle/need/restore", {"rowid": str(pk)},
                            form_url="/resetmypassword/form").status_code == 403
    assert deleted_on(ctx, "need", pk) is not None
    # A restore naming a row out of one's scope (or not in the bin) restores nothing.
    other = scalar(ctx, "SELECT id FROM need WHERE deleted_on IS NULL ORDER BY id")
    response = as_user("shequ01").post("/recycle/need/restore",
                                       {"rowid": [str(pk), str(other)]}, form_url="/recycle/need/")
    assert response.status_code == 404
    assert deleted_on(ctx, "need", pk) is not None
    index = as_user("shequ01").get("/recycle/").get_data(as_text=True)
    assert re.search(r'href="/recycle/need/">需求清单</a>', index)


# --- purge ---------------------------------------------------------------------------------------

def age(ctx, table, pk, days):
    with ctx.session() as session:
        session.execute(text(f"UPDATE {table} SET deleted_on = :d WHERE id = :i"),
                        {"d": clock.utcnow().replace(microsecond=0) - timedelta(days=days),
                         "i": pk})
        session.commit()


def purge(app, *args):
    result = app.test_cli_runner().invoke(args=["gongjian", "purge", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_purge_erases_what_outlived_the_retention_and_keeps_the_rest(app, ctx, as_user, api):
    unit, resources, item = new_unit_with_lists(ctx, api)
    old_need, recent_need = new_need(ctx, api, f"过期需求{uid()}"), new_need(ctx, api, f"近期需求{uid()}")
    browser = as_user("shequ01")
    for pk in (old_need, recent_need):
        browser.post(f"/need/delete/{pk}", form_url="/need/list/")
    browser.post(f"/unit/delete/{unit}", form_url="/unit/list/")
    retention = 5000  # far beyond anything the other tests delete
    for table, pk in [("need", old_need), ("unit", unit), ("resource", resources[0]),
                      ("resource", resources[1]), ("service_item", item)]:
        age(ctx, table, pk, retention + 1)
    # A dictionary entry deleted long ago but still named by a live unit stays.
    category = scalar(ctx, "SELECT category_id FROM unit WHERE deleted_on IS NULL ORDER BY id")
    with ctx.session() as session:
        session.execute(text("UPDATE dictionary SET deleted_on = :d WHERE id = :i"),
                        {"d": clock.utcnow() - timedelta(days=retention + 1), "i": category})
        session.commit()
    try:
        output = purge(app, "--days", str(retention), "--dry-run")
        assert "将清除" in output
        assert scalar(ctx, "SELECT count(*) FROM need WHERE id = :i", i=old_need) == 1

        mark = marker(ctx)
        output = purge(app, "--days", str(retention))
        assert "已清除" in output and "仍被其他记录引用而保留" in output
        gone = [("need", old_need), ("resource", resources[0]), ("resource", resources[1]),
                ("service_item", item)]
        for table, pk in gone:
            assert scalar(ctx, f"SELECT count(*) FROM {table} WHERE id = :i", i=pk) == 0, table
        # Kept: what is younger than the retention, and what other rows still name — the unit
        # (by the resource deleted on its own, recently) and the dictionary entry.
        assert scalar(ctx, "SELECT count(*) FROM need WHERE id = :i", i=recent_need) == 1
        assert scalar(ctx, "SELECT count(*) FROM resource WHERE id = :i", i=resources[2]) == 1
        assert scalar(ctx, "SELECT count(*) FROM unit WHERE id = :i", i=unit) == 1
        assert scalar(ctx, "SELECT count(*) FROM dictionary WHERE id = :i", i=category) == 1
        assert sorted(records(ctx, mark)) == sorted(("purge", t, str(pk)) for t, pk in gone)
        details = json.loads(scalar(ctx, "SELECT changes FROM audit_log WHERE action = 'purge' "
                                         "AND resource = 'need' AND record_id = :i",
                                    i=str(old_need)))
        assert details["retention_days"] == retention and details["label"].startswith("过期需求")

        # Once nothing names it any more, the unit goes too.
        age(ctx, "resource", resources[2], retention + 1)
        mark = marker(ctx)
        purge(app, "--days", str(retention))
        assert scalar(ctx, "SELECT count(*) FROM unit WHERE id = :i", i=unit) == 0
        assert sorted(records(ctx, mark)) == [("purge", "resource", str(resources[2])),
                                              ("purge", "unit", str(unit))]
    finally:
        with ctx.session() as session:
            session.execute(text("UPDATE dictionary SET deleted_on = NULL WHERE id = :i"),
                            {"i": category})
            session.commit()
