"""CSV exports rendered by the database (issue 9): the same file, byte for byte, as the
Python path writes — labels, captions, dates, numbers, formula neutralising, quoting — on every
database, within the user's scope."""
import csv
import io
from datetime import datetime

import pytest
from sqlalchemy import select, text

from app import exports
from app.extensions import db
from app.models.base import Entity
from app.views.base import EntityView

pytestmark = pytest.mark.db

HOSTILE = '=HYPERLINK("http://x","点我"), 第二行\n\t@SUM(1)'


def export_views(app):
    return [v for v in app.appbuilder.baseviews if isinstance(v, EntityView) and v.export_columns]


def body(response) -> bytes:
    assert response.status_code == 200, response.status_code
    data = response.get_data()
    response.close()
    return data


@pytest.fixture
def hostile_rows(ctx):
    """Rows whose text a spreadsheet would run, with quotes, commas and line breaks; a service
    record pointing at a deleted post, a long micro-wish; put back afterwards."""
    record = ctx.execute(text("SELECT id, member_id, description, post_id, certified_on, "
                              "reject_reason, revoke_reason FROM service_record "
                              "WHERE post_id IS NOT NULL AND deleted_on IS NULL ORDER BY id")).first()
    member = ctx.execute(text("SELECT name FROM member WHERE id=:m"), {"m": record.member_id}).scalar()
    wish = ctx.execute(text("SELECT id, content FROM micro_wish ORDER BY id")).first()
    nearby = ctx.execute(text("SELECT reject_reason FROM service_record WHERE id=:i"),
                         {"i": record.id + 1}).scalar()
    with ctx.session() as session:
        # A fraction of a second (cut, not rounded: the next local day would be another
        # date) and texts starting with digits or a plus (marked; a short number is not).
        session.execute(text("UPDATE service_record SET description=:d, certified_on=:c, "
                             "reject_reason=:j, revoke_reason=:r WHERE id=:i"),
                        {"d": HOSTILE, "c": datetime(2024, 5, 6, 15, 59, 59, 999999),
                         "j": "0123", "r": "+1", "i": record.id})
        session.execute(text("UPDATE service_record SET reject_reason=:j WHERE id=:i"),
                        {"j": "12", "i": record.id + 1})
        session.execute(text("UPDATE member SET name=:n WHERE id=:m"),
                        {"n": '-"引号",逗号', "m": record.member_id})
        session.execute(text("UPDATE service_post SET deleted_on=created_on WHERE id=:p"),
                        {"p": record.post_id})
        session.execute(text("UPDATE micro_wish SET content=:c WHERE id=:w"),
                        {"c": "一二三四五六七八九十" * 2 + "多", "w": wish.id})
        session.commit()
    yield record
    with ctx.session() as session:
        session.execute(text("UPDATE service_record SET description=:d, certified_on=:c, "
                             "reject_reason=:j, revoke_reason=:r WHERE id=:i"),
                        {"d": record.description, "c": record.certified_on,
                         "j": record.reject_reason, "r": record.revoke_reason, "i": record.id})
        session.execute(text("UPDATE service_record SET reject_reason=:j WHERE id=:i"),
                        {"j": nearby, "i": record.id + 1})
        session.execute(text("UPDATE member SET name=:n WHERE id=:m"),
                        {"n": member, "m": record.member_id})
        session.execute(text("UPDATE service_post SET deleted_on=NULL WHERE id=:p"),
                        {"p": record.post_id})
        session.execute(text("UPDATE micro_wish SET content=:c WHERE id=:w"),
                        {"c": wish.content, "w": wish.id})
        session.commit()


def test_the_database_writes_what_python_writes(app, as_user, hostile_rows, monkeypatch):
    browser = as_user("zuzhibu")
    rendered = []
    with app.test_request_context():
        dialect = db.engine.dialect.name
        in_sql = {v.class_permission_name for v in export_views(app)
                  if exports._cells_sql(v, v.export_columns, dialect, exports.Related(v.datamodel.obj))
                  is not None}
    # The lists whose exports are large are among them (or this test would prove little).
    assert {"service_record", "unit", "organization", "member_registration"} <= in_sql
    cells_sql = exports._cells_sql
    for resource in sorted(in_sql):
        url = f"/{resource}/export/csv"
        monkeypatch.setattr(exports, "_cells_sql", cells_sql)
        by_database = body(browser.get(url))
        monkeypatch.setattr(exports, "_cells_sql", lambda *args: None)
        by_python = body(browser.get(url))
        assert by_database == by_python, resource
        rendered.append(by_database.decode("utf-8-sig"))
    records = rendered[sorted(in_sql).index("service_record")]
    # Neutralised and quoted: the cells as a spreadsheet must read them (the deleted post not
    # shown: test_served_what_in_sql_is_the_property).
    # (a line break: the apostrophe; else a text constant, quotes doubled twice — CSV's and the
    # formula's own: app/spreadsheet.py)
    assert '"\'=HYPERLINK(""http://x"",""点我""), 第二行\n\t@SUM(1)"' in records
    assert '"=""-""""引号"""",逗号"""' in records
    assert '"2024-05-06 23:59:59","=""0123""","=""+1"""' in records


def test_captions_in_sql_are_the_captions(app, ctx):
    """Every model's `__caption_sql__` gives `str(row)` for every row of the test data."""
    with app.app_context(), ctx.session() as session:
        checked = 0
        for mapper in Entity.registry.mappers:
            model = mapper.class_
            if not issubclass(model, Entity):
                continue
            caption = model.__caption_sql__(model.__table__)
            if caption is None:
                continue
            in_sql = dict(session.execute(select(model.__table__.c.id, caption)).all())
            rows = session.execute(select(model).execution_options(include_deleted=True)).scalars()
            assert {row.id: str(row) for row in rows} == in_sql, model.__name__
            checked += 1
        assert checked >= 10


def test_served_what_in_sql_is_the_property(app, ctx, hostile_rows):
    from app.models.cobuild import ServiceRecord

    with app.app_context(), ctx.session() as session:
        related = exports.Related(ServiceRecord)
        served_what = ServiceRecord._served_what_sql(related.caption)
        in_sql = dict(related.joined(session.query(ServiceRecord)).with_entities(
            ServiceRecord.id, served_what).all())
        shown = {r.id: r.served_what for r in session.execute(select(ServiceRecord)).scalars()}
        assert shown == {k: v for k, v in in_sql.items() if k in shown}
        assert not in_sql[hostile_rows.id].startswith("岗位"), "its post is deleted"
        assert {v.split("：")[0] for v in shown.values()} >= {"岗位", "其他服务"}


def test_a_community_exports_only_its_records(as_user, api):
    def listed(username):
        client, headers = api(username)
        return client.get("/api/v1/service_record/?q=(page_size:1)", headers=headers).json["count"]

    exported = body(as_user("shequ01").get("/service_record/export/csv")).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(exported)))[1:]
    assert 0 < len(rows) == listed("shequ01") < listed("zuzhibu")
