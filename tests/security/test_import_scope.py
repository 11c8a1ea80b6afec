"""An import updates only rows its user may write (issue 17, found while fixing finding 1): a
file naming another street's unit by its credit code — and the user's own community, which the
user may choose — was written: looking up the next row's key flushed the first row's changes
inside an unscoped read, where the write check stands aside. The row is refused instead."""
from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import text

from tests.security.support import Clients

pytestmark = pytest.mark.db


def test_an_import_cannot_move_another_street_s_unit_into_one_s_community(app, ctx):
    from app.imports import Importer

    clients = Clients(app)
    other = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username = 'danwei03'")).scalar()
    own = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username = 'danwei01'")).scalar()
    q = ("SELECT u.name, u.credit_code, d.label, o.name AS community FROM unit u "
         "JOIN dictionary d ON d.id = u.category_id JOIN organization o ON o.id = u.community_id "
         "WHERE u.id = :i")
    theirs, ours = (ctx.execute(text(q), {"i": pk}).one() for pk in (other, own))
    view = next(v for v in app.appbuilder.baseviews
                if getattr(v, "class_permission_name", None) == "unit"
                and getattr(v, "import_columns", None))
    with app.app_context():
        headers = [c.header for c in Importer(view).columns]
    lines = [",".join(headers)]
    for row in (theirs, ours):
        values = {"单位名称": row.name, "统一社会信用代码": row.credit_code, "单位类别": row.label,
                  "所在社区": ours.community, "单位地址": "导入改写的地址"}
        lines.append(",".join(values.get(h, "") for h in headers))
    data = ("\ufeff" + "\n".join(lines) + "\n").encode("utf-8")
    before = ctx.execute(text("SELECT address, community_id FROM unit WHERE id = :i"),
                         {"i": other}).one()
    response = clients.browser("shequ01").client.post("/unit/import/", data={
        "csrf_token": clients.csrf("shequ01"), "file": (io.BytesIO(data), "units.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "未导入任何数据" in page and "导入成功" not in page
    assert re.search(r"超出|无权", page)
    assert ctx.execute(text("SELECT address, community_id FROM unit WHERE id = :i"),
                       {"i": other}).one() == before
