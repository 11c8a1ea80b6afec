"""No 身份证号 oracle (issue 17 finding 4): a liaison who registers a member with the 身份证号
of a member it cannot see — another unit's, another street's — is refused with the answer any
other refusal of that number gives, "该身份证号无法由您登记，请联系所在社区", never "已登记为
党员"; in the form, the API and the import (dry run and real), and never with a 500."""
from __future__ import annotations

import io

import pytest
from sqlalchemy import text

ID_NOT_REGISTRABLE = "该身份证号无法由您登记，请联系所在社区"  # the wording
from tests.security.support import Clients

pytestmark = pytest.mark.db

LIAISON = "danwei01"


@pytest.fixture(scope="module")
def clients(app):
    return Clients(app)


@pytest.fixture(scope="module")
def numbers(app):
    """The 身份证号 of a member outside danwei01's scope (danwei03's unit, another street), one
    of a member of danwei01's own unit, and danwei01's unit's community."""
    from app import crypto
    from tests.conftest import Db

    ctx = Db(app)
    own, other = (ctx.execute(text("SELECT unit_id FROM ab_user WHERE username = :u"),
                              {"u": u}).scalar() for u in (LIAISON, "danwei03"))

    def member_of(unit):
        enc = ctx.execute(text("SELECT id_number_enc FROM member WHERE work_unit_id = :u "
                               "AND deleted_on IS NULL ORDER BY id"), {"u": unit}).scalar()
        return crypto.decrypt(enc)

    community = ctx.execute(text("SELECT community_id FROM unit WHERE id = :i"), {"i": own}).scalar()
    with app.app_context():
        return {"hidden": member_of(other), "visible": member_of(own), "community": community,
                "unit": own}


def body(numbers, id_number):
    return {"name": "试登记", "id_number": id_number, "community": numbers["community"],
            "work_unit": numbers["unit"], "category": "在职", "status": "正常"}


def test_the_api_gives_the_same_refusal_for_a_hidden_member(clients, numbers, ctx):
    client, headers = clients.api(LIAISON)
    count = ctx.execute(text("SELECT COUNT(*) FROM member")).scalar()
    response = client.post("/api/v1/member/", json=body(numbers, numbers["hidden"]), headers=headers)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.json["message"] == ID_NOT_REGISTRABLE
    assert "已登记" not in response.get_data(as_text=True)
    assert ctx.execute(text("SELECT COUNT(*) FROM member")).scalar() == count
    # A member the liaison sees is a plain duplicate: it may be told so.
    response = client.post("/api/v1/member/", json=body(numbers, numbers["visible"]),
                           headers=headers)
    assert response.status_code == 422 and "已登记为党员" in response.json["message"]


def test_the_form_gives_the_same_refusal(clients, numbers, ctx):
    count = ctx.execute(text("SELECT COUNT(*) FROM member")).scalar()
    data = {k: str(v) for k, v in body(numbers, numbers["hidden"]).items()}
    response = clients.browser(LIAISON).client.post(
        "/member/add", data={"csrf_token": clients.csrf(LIAISON), **data}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert ctx.execute(text("SELECT COUNT(*) FROM member")).scalar() == count
    assert ID_NOT_REGISTRABLE in page and "已登记为党员" not in page


def import_file(app, rows) -> bytes:
    view = next(v for v in app.appbuilder.baseviews
                if getattr(v, "class_permission_name", None) == "member"
                and getattr(v, "import_columns", None))
    from app.imports import Importer

    with app.app_context():
        headers = [c.header for c in Importer(view).columns]
    lines = [",".join(headers)]
    for values in rows:
        lines.append(",".join(values.get(h, "") for h in headers))
    return ("\ufeff" + "\n".join(lines) + "\n").encode("utf-8")


@pytest.mark.parametrize("dry_run", [True, False])
def test_the_import_gives_the_same_refusal_and_no_500(app, clients, numbers, ctx, dry_run):
    community = ctx.execute(text("SELECT name FROM organization WHERE id = :i"),
                            {"i": numbers["community"]}).scalar()
    unit = ctx.execute(text("SELECT name FROM unit WHERE id = :i"), {"i": numbers["unit"]}).scalar()
    fresh = "11010519491231002X"
    row = {"姓名": "试导入", "居住社区": community, "工作单位": unit}
    data = import_file(app, [{**row, "身份证号": numbers["hidden"]},
                             {**row, "姓名": "新党员", "身份证号": fresh},
                             {**row, "身份证号": "123"}])
    browser = clients.browser(LIAISON)
    form = {"csrf_token": clients.csrf(LIAISON), "file": (io.BytesIO(data), "members.csv")}
    if dry_run:
        form["dry_run"] = "y"
    count = ctx.execute(text("SELECT COUNT(*) FROM member")).scalar()
    response = browser.client.post("/member/import/", data=form, content_type="multipart/form-data")
    assert response.status_code == 200, response.status_code
    page = response.get_data(as_text=True)
    assert ID_NOT_REGISTRABLE in page, page[-3000:]
    assert "已登记为党员" not in page and "超出数据范围" not in page
    assert "身份证号应为18位" in page  # the other rows are still checked
    assert ctx.execute(text("SELECT COUNT(*) FROM member")).scalar() == count
    report = browser.get("/member/import/report")
    assert report.status_code == 200
