"""A registered member serves once a month (双报到's 三个一, issue 24): the registered members
without a service record this month are listed, counted on the to-do pages and the dashboard
per community and unit — each equal to a count made here with plain SQL, in each viewer's scope."""
import html
import re
from collections import Counter
from urllib.parse import quote

import pytest
from sqlalchemy import bindparam, text

from app import clock
from tests.test_dashboard_figures import figure
from tests.test_data_io import csv_rows

pytestmark = pytest.mark.db


def expected_unserved(ctx, where, params):
    today = clock.today()
    return set(ctx.execute(text(
        "SELECT r.id FROM member_registration r JOIN member m ON m.id = r.member_id "
        "WHERE r.status = '已报到' AND r.deleted_on IS NULL AND " + where + " AND NOT EXISTS ("
        "SELECT 1 FROM service_record s WHERE s.member_id = r.member_id AND s.deleted_on IS NULL "
        "AND s.status <> '已驳回' AND s.served_on >= :first AND s.served_on <= :today)"),
        {**params, "first": today.replace(day=1), "today": today}).scalars())


UNSERVED_Q = ("(filters:!((col:status,opr:eq,value:'已报到'),(col:served_this_month,opr:flag,"
              "value:0)))")


def listed_by_api(api, username):
    client, headers = api(username)
    ids, page = set(), 0
    while True:
        query = UNSERVED_Q[:-1] + f",page:{page},page_size:100)"
        response = client.get(f"/api/v1/member_registration/?q={quote(query)}", headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        ids |= set(response.json["ids"])
        if len(response.json["ids"]) < 100:
            return ids
        page += 1


def test_unserved_members_are_listed_and_counted_in_each_scope(app, ctx, api, as_user):
    community = ctx.execute(text("SELECT org_id FROM ab_user WHERE username = 'shequ01'")).scalar()
    unit = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username = 'danwei01'")).scalar()
    mine = {"shequ01": expected_unserved(ctx, "r.community_id = :c", {"c": community}),
            "danwei01": expected_unserved(ctx, "m.work_unit_id = :u", {"u": unit})}
    assert mine["shequ01"], "the demo's community has registered members yet to serve"
    for username, expected in mine.items():
        assert listed_by_api(api, username) == expected, username
        home = as_user(username).get("/").get_data(as_text=True)
        assert "本月尚未服务的已报到党员" in home
    # the community's to-do list exports exactly its members, on the page and on the REST API
    # (a liaison reads the list but exports none: no list is exported by liaisons)
    certificates = sorted(ctx.execute(text(
        "SELECT certificate_no FROM member_registration WHERE id IN :ids").bindparams(
        bindparam("ids", expanding=True)), {"ids": list(mine["shequ01"])}).scalars())
    home = as_user("shequ01").get("/").get_data(as_text=True)
    link = html.unescape(re.search(
        r'href="(/member_registration/list/\?[^"]*served_this_month[^"]*)"', home).group(1))
    exported = csv_rows(as_user("shequ01").get(link.replace("/list/", "/export/csv")))
    column = exported[0].index("报到证编号")
    assert sorted(row[column] for row in exported[1:]) == certificates
    client, headers = api("shequ01")
    exported = csv_rows(client.get(f"/api/v1/member_registration/export/csv?q={quote(UNSERVED_Q)}",
                                   headers=headers))
    assert sorted(row[column] for row in exported[1:]) == certificates
    rows = figure(as_user, "shequ01", "monthly_service")
    assert sum(int(r["unserved"]) for r in rows) == len(mine["shequ01"])
    assert {r["month"] for r in rows} == {f"{clock.today():%Y-%m}"}
    by_unit = {r["unit"]: int(r["unserved"]) for r in rows}
    unit_name = ctx.execute(text("SELECT name FROM unit WHERE id = :u"), {"u": unit}).scalar()
    in_community = expected_unserved(ctx, "r.community_id = :c AND m.work_unit_id = :u",
                                     {"c": community, "u": unit})
    assert by_unit.get(unit_name, 0) == len(in_community)
    # Who they are (the 月汇报's list), by name: the same members, up to the list's limit (other
    # modules on the same database may have registered many more).
    from app.dashboards.figures import UNSERVED_LIST_LIMIT

    names = Counter(r["name"] for r in figure(as_user, "shequ01", "members_not_served"))
    expected = Counter(ctx.execute(text(
        "SELECT m.name FROM member_registration r JOIN member m ON m.id = r.member_id "
        "WHERE r.id IN :ids").bindparams(bindparam("ids", expanding=True)),
        {"ids": list(mine["shequ01"])}).scalars())
    assert names.total() == min(UNSERVED_LIST_LIMIT, expected.total())
    assert not names - expected


def test_a_service_record_this_month_takes_a_member_off_the_list(app, ctx, api):
    from app.extensions import db
    from app.models.cobuild import ServiceRecord
    from app.models.org import Member

    community = ctx.execute(text("SELECT org_id FROM ab_user WHERE username = 'shequ01'")).scalar()
    before = expected_unserved(ctx, "r.community_id = :c", {"c": community})
    registration = min(before)
    member = ctx.execute(text("SELECT member_id FROM member_registration WHERE id = :i"),
                         {"i": registration}).scalar()
    with app.app_context():
        record = ServiceRecord(member=db.session.get(Member, member), served_on=clock.today(),
                               hours=2, description="本月服务测试", status="待认证")
        db.session.add(record)
        db.session.commit()
        pk = record.id
        db.session.remove()
    try:
        assert listed_by_api(api, "shequ01") == before - {registration}
        with ctx.session() as session:  # refused: not a service
            session.execute(text("UPDATE service_record SET status = '已驳回' WHERE id = :i"),
                            {"i": pk})
            session.commit()
        assert registration in listed_by_api(api, "shequ01")
    finally:
        with ctx.session() as session:
            session.execute(text("DELETE FROM audit_log WHERE resource = 'service_record' AND "
                                 "record_id = :i"), {"i": str(pk)})
            session.execute(text("DELETE FROM service_record WHERE id = :i"), {"i": pk})
            session.commit()
