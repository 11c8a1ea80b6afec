"""Data in and out, the other two ways (issue 6): `flask import <resource> FILE --as USER` runs the
web import's validation with that user's scope and rights, audited as that user; the REST API's
`/api/v1/<resource>/export/csv|xlsx` writes every row its list gives for the same `q`."""
import csv
import io
import json

import pandas as pd
import prison
import pytest
from openpyxl import load_workbook
from sqlalchemy import text


def unit_name(ctx, username):
    return ctx.execute(text("SELECT n.name FROM ab_user u JOIN unit n ON n.id = u.unit_id "
                            "WHERE u.username = :u"), {"u": username}).scalar()


def user_row(ctx, username):
    return ctx.execute(text("SELECT id, unit_id FROM ab_user WHERE username = :u"),
                       {"u": username}).one()


def write_csv(path, table, encoding="utf-8-sig"):
    buffer = io.StringIO()
    csv.writer(buffer).writerows(table)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def flask_import(app, *args):
    return app.test_cli_runner().invoke(args=["import", *map(str, args)])


def count(ctx, sql, **params):
    return ctx.execute(text(sql), params).scalar()


def resource_rows(unit, *titles):
    return [["提供单位", "年度", "资源类别", "资源名称", "数量"],
            *[[unit, "2026", "场地", title, "-3"] for title in titles]]


# --- the command line ---------------------------------------------------------------------

@pytest.mark.db
def test_cli_import_as_a_liaison_writes_its_units_rows_audited_as_it(app, ctx, tmp_path):
    liaison = user_row(ctx, "danwei01")
    titles = ["命令行导入甲会议室", "命令行导入乙活动室"]
    path = write_csv(tmp_path / "资源.csv", resource_rows(unit_name(ctx, "danwei01"), *titles))
    imports_before = count(ctx, "SELECT count(*) FROM audit_log WHERE action = 'import'")
    result = flask_import(app, "resource", path, "--as", "danwei01")
    assert result.exit_code == 0, result.output
    assert "导入成功：资源清单新增 2 条，更新 0 条" in result.output
    rows = ctx.execute(text("SELECT title, unit_id, created_by_id, status, quantity FROM resource "
                            "WHERE title LIKE '命令行导入%' ORDER BY title")).all()
    assert [r.title for r in rows] == sorted(titles)
    assert {(r.unit_id, r.created_by_id, r.status) for r in rows} == {
        (liaison.unit_id, liaison.id, "草稿")}
    assert all(float(r.quantity) == -3 for r in rows)
    assert count(ctx, "SELECT count(*) FROM audit_log WHERE action = 'import'") == imports_before + 1
    entry = ctx.execute(text("SELECT user_id, username, resource, changes FROM audit_log "
                             "WHERE action = 'import' ORDER BY id DESC")).first()
    assert (entry.user_id, entry.username, entry.resource) == (liaison.id, "danwei01", "resource")
    assert json.loads(entry.changes) == {"file": "资源.csv", "rows": 2, "created": 2, "updated": 0,
                                         "unchanged": 0}


@pytest.mark.db
def test_cli_refuses_a_liaisons_file_with_another_units_row_and_writes_nothing(app, ctx, tmp_path):
    table = resource_rows(unit_name(ctx, "danwei01"), "命令行本单位会议室")
    table.append([unit_name(ctx, "danwei02"), "2026", "场地", "命令行别的单位会议室", "1"])
    path = write_csv(tmp_path / "混合.csv", table)
    resources = count(ctx, "SELECT count(*) FROM resource")
    audits = count(ctx, "SELECT count(*) FROM audit_log")
    result = flask_import(app, "resource", path, "--as", "danwei01")
    assert result.exit_code == 1
    assert "第 3 行“提供单位”：找不到" in result.output
    assert "发现 1 处错误（1 行），未导入任何数据" in result.output
    assert count(ctx, "SELECT count(*) FROM resource") == resources
    assert count(ctx, "SELECT count(*) FROM audit_log") == audits, "nothing, not even a record"
    # The report sits next to the file: its rows in error, with an error column.
    report = list(csv.reader(io.StringIO((tmp_path / "混合.errors.csv").read_text("utf-8-sig"))))
    assert report[0] == ["提供单位", "年度", "资源类别", "资源名称", "数量", "错误"]
    assert len(report) == 2 and report[1][-1].startswith("第 3 行：提供单位：找不到")
    # The same rows are fine for an administrator of the community both units are in.
    result = flask_import(app, "resource", path, "--as", "shequ01", "--dry-run")
    assert result.exit_code == 0 and "将新增 2 条" in result.output, result.output


@pytest.mark.db
def test_cli_dry_run_writes_nothing_and_says_what_it_would_do(app, ctx, tmp_path):
    path = write_csv(tmp_path / "预览.csv", resource_rows(unit_name(ctx, "danwei01"), "预览会议室",
                                                          "预览活动室", "预览阅览室"), "gb18030")
    resources = count(ctx, "SELECT count(*) FROM resource")
    audits = count(ctx, "SELECT count(*) FROM audit_log")
    result = flask_import(app, "resource", path, "--as", "danwei01", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "预览（未写入）：资源清单将新增 3 条，更新 0 条" in result.output
    assert count(ctx, "SELECT count(*) FROM resource") == resources
    assert count(ctx, "SELECT count(*) FROM audit_log") == audits


@pytest.mark.db
def test_cli_import_updates_by_the_natural_key_within_scope(app, ctx, tmp_path):
    """A unit's record imported again by its credit code is updated, not duplicated; a liaison
    may not import units at all."""
    unit = ctx.execute(text("SELECT id, name, credit_code, address FROM unit WHERE id = :u"),
                       {"u": user_row(ctx, "danwei01").unit_id}).one()
    community = ctx.execute(text("SELECT o.name FROM unit u JOIN organization o "
                                 "ON o.id = u.community_id WHERE u.id = :u"), {"u": unit.id}).scalar()
    category = ctx.execute(text("SELECT d.label FROM unit u JOIN dictionary d ON d.id = u.category_id "
                                "WHERE u.id = :u"), {"u": unit.id}).scalar()
    path = write_csv(tmp_path / "单位.csv", [["单位名称", "统一社会信用代码", "单位类别", "所在社区", "单位地址"],
                                             [unit.name, unit.credit_code, category, community,
                                              "命令行更新的地址"]])
    refused = flask_import(app, "unit", path, "--as", "danwei01")
    assert refused.exit_code == 1 and "没有导入驻区单位的权限" in refused.output
    units = count(ctx, "SELECT count(*) FROM unit")
    result = flask_import(app, "unit", path, "--as", "shequ01")
    assert result.exit_code == 0, result.output
    assert "新增 0 条，更新 1 条" in result.output
    assert count(ctx, "SELECT count(*) FROM unit") == units
    assert count(ctx, "SELECT address FROM unit WHERE id = :u", u=unit.id) == "命令行更新的地址"


def test_cli_refuses_what_it_cannot_do_clearly(app, ctx, tmp_path):
    good = write_csv(tmp_path / "ok.csv", resource_rows(unit_name(ctx, "danwei01"), "不会写入"))
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "empty.csv").write_bytes(b"")
    for args, message in [
        (("nothing", good, "--as", "danwei01"), "“nothing”不能导入；可导入的有："),
        (("dictionary", good, "--as", "admin"), "“dictionary”不能导入"),
        (("resource", good, "--as", "nobody"), "找不到用户“nobody”"),
        (("resource", good), "请用 --as 用户名 指定"),
        (("resource", tmp_path / "missing.csv", "--as", "danwei01"), "文件不存在"),
        (("resource", tmp_path, "--as", "danwei01"), "是目录"),
        (("resource", tmp_path / "a.pdf", "--as", "danwei01"), "只能导入 .xlsx、.xls、.csv 或 .txt 文件"),
        (("resource", tmp_path / "empty.csv", "--as", "danwei01"), "文件是空的"),
        (("member", good, "--as", "shenji"), "没有导入党员的权限"),
    ]:
        result = flask_import(app, *args)
        assert result.exit_code == 1, (args, result.output)
        assert f"错误：{message}" in result.output or message in result.output, (args, result.output)
    assert count(ctx, "SELECT count(*) FROM resource WHERE title = '不会写入'") == 0


# --- the REST API's export ------------------------------------------------------------------

def api_get(client, auth, url, q=None, **params):
    if q is not None:
        params["q"] = prison.dumps(q)
    return client.get(url, headers=auth, query_string=params)


def api_csv(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_data()
    response.close()
    assert body.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM, so Excel opens Chinese intact"
    return body


@pytest.mark.db
def test_api_export_is_what_the_api_lists_for_the_same_q(ctx, api):
    client, headers = api("zuzhibu")
    q = {"filters": [{"col": "status", "opr": "eq", "value": "已派单"}],
         "order_column": "title", "order_direction": "desc"}
    expected = count(ctx, "SELECT count(*) FROM need WHERE deleted_on IS NULL AND status = '已派单'")
    listed = api_get(client, headers, "/api/v1/need/", {**q, "page_size": 1000}).json
    frame = pd.read_csv(io.BytesIO(api_csv(api_get(client, headers, "/api/v1/need/export/csv", q))),
                        encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert len(frame) == listed["count"] == expected > 0
    assert set(frame["状态"]) == {"已派单"}, "enums as their Chinese labels"
    assert list(frame["需求标题"]) == [row["title"] for row in listed["result"]], "the list's order"
    # Every row, not a page of them.
    everything = count(ctx, "SELECT count(*) FROM need WHERE deleted_on IS NULL")
    whole = api_csv(api_get(client, headers, "/api/v1/need/export/csv", {"page_size": 5}))
    assert len(pd.read_csv(io.BytesIO(whole), encoding="utf-8-sig")) == everything > 20


@pytest.mark.db
def test_api_export_holds_scope_and_masking(ctx, api):
    unit = user_row(ctx, "danwei01").unit_id
    own = count(ctx, "SELECT count(*) FROM member WHERE deleted_on IS NULL AND work_unit_id = :u", u=unit)
    everyone = count(ctx, "SELECT count(*) FROM member WHERE deleted_on IS NULL")
    frames = {}
    for username in ("danwei01", "zuzhibu", "shenji"):
        client, headers = api(username)
        body = api_csv(api_get(client, headers, "/api/v1/member/export/csv"))
        frames[username] = pd.read_csv(io.BytesIO(body), encoding="utf-8-sig", dtype=str)
    assert len(frames["danwei01"]) == own > 0
    assert len(frames["zuzhibu"]) == len(frames["shenji"]) == everyone > own
    assert not frames["zuzhibu"]["身份证号"].str.contains(r"\*").any(), "OrgAdmin sees them in full"
    assert frames["shenji"]["身份证号"].str.contains(r"\*{8}").all(), "the auditor's stay masked"


def test_api_export_round_trips_through_pandas_and_excel(ctx, api):
    client, headers = api("zuzhibu")
    listed = api_get(client, headers, "/api/v1/unit/", {"page_size": 1000}).json["result"]
    body = api_csv(api_get(client, headers, "/api/v1/unit/export/csv", headers="keys"))
    frame = pd.read_csv(io.BytesIO(body), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert sorted(frame["credit_code"]) == sorted(row["credit_code"] for row in listed)
    assert sorted(frame["name"]) == sorted(row["name"] for row in listed)
    response = api_get(client, headers, "/api/v1/unit/export/xlsx",
                       {"filters": [{"col": "name", "opr": "ct", "value": listed[0]["name"]}]})
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:2] == ("单位名称", "统一社会信用代码")
    assert listed[0]["credit_code"] in {row[1] for row in rows[1:]}
    gb = api_get(client, headers, "/api/v1/unit/export/csv", encoding="gb18030").get_data()
    assert pd.read_csv(io.BytesIO(gb), encoding="gb18030").shape == (len(listed), frame.shape[1])


def test_api_export_is_audited_as_its_user(ctx, api):
    client, headers = api("shenji")
    q = {"filters": [{"col": "status", "opr": "eq", "value": "草稿"}]}
    body = api_csv(api_get(client, headers, "/api/v1/resource/export/csv", q))
    entry = ctx.execute(text("SELECT username, resource, changes FROM audit_log "
                             "WHERE action = 'export' ORDER BY id DESC")).first()
    changes = json.loads(entry.changes)
    assert (entry.username, entry.resource, changes["format"]) == ("shenji", "resource", "csv")
    assert changes["rows"] == len(pd.read_csv(io.BytesIO(body), encoding="utf-8-sig"))
    assert changes["filters"]["api"] is True and "草稿" in changes["filters"]["q"]


def test_api_export_needs_the_export_right_and_sane_arguments(api, app, monkeypatch):
    for username, resource in (("dangyuan01", "member"), ("danwei01", "organization"),
                               ("danwei01", "micro_wish")):
        client, headers = api(username)
        response = client.get(f"/api/v1/{resource}/export/csv", headers=headers)
        assert response.status_code == 403, (username, resource)
    assert app.test_client().get("/api/v1/member/export/csv").status_code == 401
    client, headers = api("zuzhibu")
    bad_column = api_get(client, headers, "/api/v1/need/export/csv",
                         {"filters": [{"col": "requester_phone", "opr": "eq", "value": "1"}]})
    assert bad_column.status_code == 400 and "筛选条件无效" in bad_column.json["message"]
    bad_order = api_get(client, headers, "/api/v1/member/export/csv", {"order_column": "id_number"})
    assert bad_order.status_code == 400 and "不能按" in bad_order.json["message"]
    assert client.get("/api/v1/need/export/pdf", headers=headers).status_code == 404
    monkeypatch.setitem(app.config, "EXPORT_XLSX_MAX_ROWS", 3)
    capped = client.get("/api/v1/need/export/xlsx", headers=headers)
    assert capped.status_code == 422 and "Excel 导出最多 3 行" in capped.json["message"]


def test_the_auditor_exports_the_audit_log_through_the_api_and_others_may_not(ctx, api):
    client, headers = api("shenji")
    api_csv(api_get(client, headers, "/api/v1/resource/export/csv"))  # at least one to list
    q = {"filters": [{"col": "action", "opr": "eq", "value": "export"}]}
    frame = pd.read_csv(io.BytesIO(api_csv(api_get(client, headers, "/api/v1/audit_log/export/csv", q))),
                        encoding="utf-8-sig", dtype=str, keep_default_na=False)
    exports = count(ctx, "SELECT count(*) FROM audit_log WHERE action = 'export'")
    # The export itself is audited when it starts, so it may already count itself.
    assert len(frame) in (exports - 1, exports) and len(frame) > 0
    client, headers = api("danwei01")
    assert client.get("/api/v1/audit_log/export/csv", headers=headers).status_code == 403


@pytest.mark.db
def test_an_export_longer_than_one_chunk_is_complete(ctx, api, monkeypatch):
    """Rows stream in chunks, each chunk's related rows loaded by the next statement on the same
    connection — which on MariaDB discarded the rest of a server-side cursor (an export stopped
    at the first chunk)."""
    from app import exports

    monkeypatch.setattr(exports, "CHUNK", 7)
    client, headers = api("zuzhibu")
    body = api_csv(api_get(client, headers, "/api/v1/member/export/csv"))
    everyone = count(ctx, "SELECT count(*) FROM member WHERE deleted_on IS NULL")
    assert len(pd.read_csv(io.BytesIO(body), encoding="utf-8-sig")) == everyone > 3 * 7
