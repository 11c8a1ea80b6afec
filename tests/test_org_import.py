"""The organisation tree by import (issue 20): a community's 13 nodes (the community, 4 grids,
8 building groups) in shuffled order, parents named by 编码 or 名称, 编码 generated where
missing; re-imported, the same nodes are updated; a cycle, a parent of a lower type, a 编码
twice, a node under another street are each refused with nothing written."""
import csv
import io
import random

import pytest
from sqlalchemy import text

from tests.conftest import tables_kept_by

pytestmark = pytest.mark.db

HEADERS = ["组织名称", "上级组织", "组织类型", "组织编码", "书记", "联系电话", "地址"]


@pytest.fixture(scope="module", autouse=True)
def _kept(app):
    from app.extensions import db

    with app.app_context():
        before = db.session.execute(text("SELECT max(id) FROM organization")).scalar()
        db.session.remove()
    with tables_kept_by(app):
        yield
        # The imported nodes first, deepest first: MariaDB checks the tree's foreign key row
        # by row, and the put-back's one DELETE of them all would remove a parent first.
        with app.app_context():
            for depth in sorted(set(db.session.execute(text(
                    "SELECT depth FROM organization WHERE id > :b"), {"b": before}).scalars()),
                    reverse=True):
                db.session.execute(text("DELETE FROM organization WHERE id > :b AND depth = :d"),
                                   {"b": before, "d": depth})
            db.session.commit()
            db.session.remove()


def street_of(ctx, username="jiedao01"):
    return ctx.execute(text("SELECT o.id, o.code, o.name, o.path FROM ab_user u JOIN organization o "
                            "ON o.id = u.org_id WHERE u.username = :u"), {"u": username}).one()


def tree_rows(street_code, tag):
    """The community, 4 grids with codes, 8 building groups without (named by parent name
    or code), in shuffled order."""
    community = f"{tag}社区党委"
    rows = [[community, street_code, "社区党组织", f"{tag}C", "王书记", "13800000001", "云溪路1号"]]
    for g in range(1, 5):
        grid = f"{tag}第{g}网格党支部"
        rows.append([grid, community if g % 2 else f"{tag}C", "网格党支部", f"{tag}G{g}", "", "", ""])
        for b in range(1, 3):
            parent = grid if b == 1 else f"{tag}G{g}"
            rows.append([f"{tag}第{g}网格{b}号楼党小组", parent, "楼栋党小组", "", "", "", ""])
    random.Random(tag).shuffle(rows)
    return rows


def csv_bytes(rows, headers=HEADERS):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


def upload(browser, data, dry_run=False):
    form = {"file": (io.BytesIO(data), "党组织.csv")}
    if dry_run:
        form["dry_run"] = "1"
    return browser.post("/organization/import/", form, form_url="/organization/import/",
                        content_type="multipart/form-data").get_data(as_text=True)


def nodes_named(ctx, tag):
    return ctx.execute(text(
        "SELECT n.id, n.name, n.type, n.code, n.path, n.depth, p.name AS parent FROM organization n "
        "JOIN organization p ON p.id = n.parent_id WHERE n.name LIKE :t AND n.deleted_on IS NULL"),
        {"t": tag + "%"}).all()


def test_a_communitys_tree_in_shuffled_order(ctx, as_user):
    street = street_of(ctx)
    tag = "甲"
    browser = as_user("jiedao01")
    html = upload(browser, csv_bytes(tree_rows(street.code, tag)))
    assert "导入成功：新增 13 条，更新 0 条" in html, html[html.find("alert"):][:400]
    nodes = {n.name: n for n in nodes_named(ctx, tag)}
    assert len(nodes) == 13
    community = nodes[f"{tag}社区党委"]
    assert community.parent == street.name and community.type == "community"
    assert community.path == f"{street.path}{community.id}/"
    for g in range(1, 5):
        grid = nodes[f"{tag}第{g}网格党支部"]
        assert (grid.parent, grid.type, grid.code) == (community.name, "grid", f"{tag}G{g}")
        assert grid.path == f"{community.path}{grid.id}/"
        for b in range(1, 3):
            group = nodes[f"{tag}第{g}网格{b}号楼党小组"]
            assert (group.parent, group.type, group.depth) == (grid.name, "building", grid.depth + 1)
            assert group.path == f"{grid.path}{group.id}/"
    codes = [n.code for n in nodes.values()]
    assert len(set(codes)) == 13 and all(codes)
    # one record of the import, not thirteen
    assert ctx.execute(text("SELECT count(*) FROM audit_log WHERE action='import' AND "
                            "resource='organization' AND changes LIKE '%\"created\": 13%'")).scalar() == 1
    # re-imported (the building groups without 编码: by parent and name): the same nodes, updated
    rows = tree_rows(street.code, tag)
    for row in rows:
        row[4] = "李书记"
    html = upload(browser, csv_bytes(rows))
    assert "导入成功：新增 0 条，更新 13 条" in html
    again = {n.name: n for n in nodes_named(ctx, tag)}
    assert {n.id for n in again.values()} == {n.id for n in nodes.values()}
    assert ctx.execute(text("SELECT count(*) FROM organization WHERE name LIKE :t AND "
                            "secretary = '李书记'"), {"t": tag + "%"}).scalar() == 13


def refused(ctx, browser, rows, tag, *messages):
    before = ctx.execute(text("SELECT count(*) FROM organization")).scalar()
    html = upload(browser, csv_bytes(rows))
    assert "未导入任何数据" in html
    for message in messages:
        assert message in html, message
    assert ctx.execute(text("SELECT count(*) FROM organization")).scalar() == before
    assert not nodes_named(ctx, tag)


def test_bad_trees_write_nothing(ctx, as_user):
    street = street_of(ctx)
    browser = as_user("jiedao01")
    tag = "乙"
    good = [[f"{tag}社区党委", street.code, "社区党组织", f"{tag}C", "", "", ""]]
    # a cycle: two grids each the other's parent
    refused(ctx, browser, good + [
        [f"{tag}网格A", f"{tag}网格B", "网格党支部", "", "", "", ""],
        [f"{tag}网格B", f"{tag}网格A", "网格党支部", "", "", "", ""]], tag, "上级关系成环")
    # a parent of a lower type: a grid under a building group
    refused(ctx, browser, good + [
        [f"{tag}1号楼党小组", f"{tag}社区党委", "楼栋党小组", "", "", "", ""],
        [f"{tag}网格C", f"{tag}1号楼党小组", "网格党支部", "", "", "", ""]], tag,
        "网格党支部不能设在楼栋党小组之下")
    # the same 编码 twice
    refused(ctx, browser, good + [
        [f"{tag}网格D", f"{tag}C", "网格党支部", f"{tag}D", "", "", ""],
        [f"{tag}网格E", f"{tag}C", "网格党支部", f"{tag}D", "", "", ""]], tag,
        f"编码“{tag}D”与第 3 行重复")
    # under another street: that street's community is not a parent one may name
    other = ctx.execute(text("SELECT code FROM organization WHERE type = 'community' AND path NOT "
                             "LIKE :p ORDER BY id"), {"p": street.path + "%"}).scalar()
    refused(ctx, browser, good + [[f"{tag}网格F", other, "网格党支部", "", "", "", ""]], tag,
            f"找不到上级“{other}”")


def test_a_community_admin_imports_grids_under_its_community_only(ctx, as_user):
    community = street_of(ctx, "shequ01")
    street = street_of(ctx)
    browser = as_user("shequ01")
    tag = "丙"
    refused(ctx, browser, [[f"{tag}社区党委", street.code, "社区党组织", "", "", "", ""]], tag,
            f"找不到上级“{street.code}”")
    html = upload(browser, csv_bytes([
        [f"{tag}第1网格党支部", community.name, "网格党支部", "", "", "", ""],
        [f"{tag}第1网格1号楼党小组", f"{tag}第1网格党支部", "楼栋党小组", "", "", "", ""]]))
    assert "导入成功：新增 2 条" in html
    codes = {n.code for n in nodes_named(ctx, tag)}
    assert codes == {f"{community.code}01", f"{community.code}0101"} or len(codes) == 2


def test_the_command_line_imports_the_tree_as_its_user(app, ctx, tmp_path):
    community = street_of(ctx, "shequ01")
    tag = "丁"
    path = tmp_path / "党组织.csv"
    path.write_bytes(csv_bytes([
        [f"{tag}第1网格1号楼党小组", f"{tag}第1网格党支部", "楼栋党小组", "", "", "", ""],
        [f"{tag}第1网格党支部", community.code, "网格党支部", "", "", "", ""]]))
    result = app.test_cli_runner().invoke(args=["import", "organization", str(path),
                                                "--as", "shequ01"])
    assert result.exit_code == 0, result.output
    assert "新增 2 条" in result.output
    assert {n.name for n in nodes_named(ctx, tag)} == {f"{tag}第1网格党支部",
                                                     f"{tag}第1网格1号楼党小组"}


def test_parents_named_by_their_short_names(ctx, as_user):
    """Offices write 上级 as they say it: “云溪社区” for 云溪社区党委 — a row of the file or an
    existing node, by its 简称."""
    street = street_of(ctx)
    with ctx.session() as session:
        session.execute(text("UPDATE organization SET short_name = '戊街道' WHERE id = :i"),
                        {"i": street.id})
        session.commit()
    tag = "戊"
    headers = ["组织名称", "上级组织", "组织类型", "简称"]
    browser = as_user("jiedao01")
    html = upload(browser, csv_bytes([
        [f"{tag}第1网格党支部", f"{tag}社区", "网格党支部", ""],
        [f"{tag}社区党委", "戊街道", "社区党组织", f"{tag}社区"]], headers))
    assert "导入成功：新增 2 条" in html, html[html.find("alert"):][:400]
    nodes = {n.name: n for n in nodes_named(ctx, tag)}
    assert nodes[f"{tag}社区党委"].parent == street.name
    assert nodes[f"{tag}第1网格党支部"].parent == f"{tag}社区党委"
    assert ctx.execute(text("SELECT short_name FROM organization WHERE name = :n"),
                       {"n": f"{tag}社区党委"}).scalar() == f"{tag}社区"


def test_a_tree_past_the_inline_limit_is_a_job_whole_or_nothing(app, ctx, as_user):
    """Past IMPORT_INLINE_MAX_ROWS the tree is imported by a job (app/jobs.py) — still in one
    transaction: a bad row leaves nothing, a good file all 13 nodes."""
    saved = app.config["IMPORT_INLINE_MAX_ROWS"]
    app.config["IMPORT_INLINE_MAX_ROWS"] = 5
    try:
        street = street_of(ctx)
        tag = "己"
        browser = as_user("jiedao01")
        rows = tree_rows(street.code, tag)
        bad = rows + [[f"{tag}网格X", f"{tag}无此上级", "网格党支部", "", "", "", ""]]
        form = {"file": (io.BytesIO(csv_bytes(bad)), "党组织.csv")}
        response = browser.post("/organization/import/", form, form_url="/organization/import/",
                                content_type="multipart/form-data")
        assert response.status_code == 302 and "/jobs/" in response.headers["Location"]
        page = browser.get(response.headers["Location"]).get_data(as_text=True)
        assert "失败" in page and "未导入任何数据" in page
        assert not nodes_named(ctx, tag)
        form = {"file": (io.BytesIO(csv_bytes(rows)), "党组织.csv")}
        response = browser.post("/organization/import/", form, form_url="/organization/import/",
                                content_type="multipart/form-data")
        page = browser.get(response.headers["Location"]).get_data(as_text=True)
        assert "导入成功：新增 13 条" in page
        assert len(nodes_named(ctx, tag)) == 13
    finally:
        app.config["IMPORT_INLINE_MAX_ROWS"] = saved
