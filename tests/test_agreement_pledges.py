"""The agreement's rules (issue 24, DOMAIN.md §1–§2): its 有效状态 comes from its dates and
today — a lapsed agreement reads 已到期 without anybody's click — and its 三个一 (signed and in
force, a joint meeting attended each quarter its bodies met, needs closed against the yearly
target) equal counts made here with plain SQL."""
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import text

from app import clock
from tests.test_dashboard_figures import figure
from tests.test_data_io import csv_rows

pytestmark = pytest.mark.db


def unit_and_community(ctx, username="danwei01"):
    return ctx.execute(text("SELECT u.id, u.community_id FROM unit u JOIN ab_user a ON "
                            "a.unit_id = u.id WHERE a.username = :n"), {"n": username}).one()


@pytest.fixture
def agreement(app, ctx):
    """A signed agreement of danwei01's unit, in force for 40 more days; removed after."""
    from app.extensions import db
    from app.models.cobuild import Agreement
    from app.models.org import Organization, Unit

    unit_id, community_id = unit_and_community(ctx)
    today = clock.today()
    with app.app_context():
        row = Agreement(community=db.session.get(Organization, community_id),
                        unit=db.session.get(Unit, unit_id), title="有效状态测试协议",
                        signed_on=today - timedelta(days=400), valid_from=today - timedelta(days=395),
                        valid_to=today + timedelta(days=40), yearly_target=2, status="已签订")
        db.session.add(row)
        db.session.commit()
        pk = row.id
        db.session.remove()
    yield pk
    with ctx.session() as session:
        session.execute(text("DELETE FROM audit_log WHERE resource = 'agreement' AND record_id = :i"),
                        {"i": str(pk)})
        session.execute(text("DELETE FROM agreement WHERE id = :i"), {"i": pk})
        session.commit()


def validity_seen(api, as_user, pk):
    client, headers = api("shequ01")
    by_api = client.get(f"/api/v1/agreement/{pk}", headers=headers).json["result"]["validity"]
    listed = {}
    for word in ("未生效", "有效", "即将到期", "已到期"):
        page = as_user("shequ01").get(f"/agreement/list/?_flt_0_validity={word}"
                                      "&psize_AgreementView=100").get_data(as_text=True)
        listed[word] = f'href="/agreement/show/{pk}"' in page
    assert [w for w, shown in listed.items() if shown] == [by_api], (by_api, listed)
    return by_api


def test_an_agreement_lapses_by_its_dates_without_a_click(ctx, api, as_user, agreement):
    assert validity_seen(api, as_user, agreement) == "有效"
    with time_machine.travel(datetime.now(UTC) + timedelta(days=15), tick=True):
        assert validity_seen(api, as_user, agreement) == "即将到期"
        page = as_user("shequ01").get(f"/agreement/show/{agreement}").get_data(as_text=True)
        assert "25天后到期" in page
    with time_machine.travel(datetime.now(UTC) + timedelta(days=41), tick=True):
        assert validity_seen(api, as_user, agreement) == "已到期"
        page = as_user("shequ01").get(f"/agreement/show/{agreement}").get_data(as_text=True)
        assert "已到期" in page and "办理到期" not in page
    # the stored status stays what was signed; there is no move to make it lapse
    assert ctx.execute(text("SELECT status FROM agreement WHERE id = :i"),
                       {"i": agreement}).scalar() == "已签订"
    client, headers = api("shequ01")
    refused = client.post(f"/api/v1/agreement/{agreement}/transition/expire", headers=headers,
                          json={})
    assert refused.status_code in (400, 404), refused.status_code


def test_the_lists_validity_filter_equals_the_dates(ctx, as_user, agreement):
    import re

    today = clock.today()
    with ctx.session() as session:  # the fixture's agreement lapsed three days ago
        session.execute(text("UPDATE agreement SET valid_to = :d WHERE id = :i"),
                        {"d": today - timedelta(days=3), "i": agreement})
        session.commit()
    rows = ctx.execute(text("SELECT id, valid_from, valid_to FROM agreement WHERE status = '已签订' "
                            "AND deleted_on IS NULL")).all()

    def day(value):
        return value if isinstance(value, date) else date.fromisoformat(str(value))

    expected = defaultdict(set)
    for pk, start, end in rows:
        start, end = day(start), day(end)
        word = ("未生效" if start > today else "已到期" if end < today
                else "即将到期" if end <= today + timedelta(days=30) else "有效")
        expected[word].add(pk)
    assert agreement in expected["已到期"]
    for word in ("未生效", "有效", "即将到期", "已到期"):
        page = as_user("zuzhibu").get(f"/agreement/list/?_flt_0_validity={word}"
                                      "&psize_AgreementView=100").get_data(as_text=True)
        listed = {int(i) for i in re.findall(r'href="/agreement/show/(\d+)"', page)}
        assert listed == expected[word], word
        # exported like the list: the same rows, each saying its 有效状态
        rows = csv_rows(as_user("zuzhibu").get(f"/agreement/export/csv?_flt_0_validity={word}"))
        column = rows[0].index("有效状态")
        assert len(rows) - 1 == len(expected[word]), word
        assert {row[column] for row in rows[1:]} <= {word}


def test_three_ones_equal_plain_sql_counts(app, ctx, api, as_user):
    from app.extensions import db
    from app.models.cobuild import Agreement
    from app.services.cobuild import three_ones

    today = clock.today()
    year, start = today.year, date(today.year, 1, 1)
    community = ctx.execute(text("SELECT org_id FROM ab_user WHERE username = 'shequ01'")).scalar()
    agreements = ctx.execute(text(
        "SELECT id, unit_id, yearly_target FROM agreement WHERE status = '已签订' AND "
        "deleted_on IS NULL AND community_id = :c AND valid_from <= :e AND valid_to >= :s"),
        {"c": community, "s": start, "e": date(year, 12, 31)}).all()
    assert agreements

    def quarters(sql, unit):
        days = ctx.execute(text(sql), {"u": unit, "s": start, "t": today}).scalars().all()
        return {(date.fromisoformat(str(d)[:10]).month - 1) // 3 + 1 for d in days}

    expected = {}
    for pk, unit, target in agreements:
        held = quarters(
            "SELECT m.held_on FROM meeting m JOIN body_member b ON b.body_id = m.body_id "
            "WHERE b.unit_id = :u AND b.deleted_on IS NULL AND m.deleted_on IS NULL AND "
            "m.status = '已召开' AND m.held_on >= :s AND m.held_on <= :t", unit)
        attended = quarters(
            "SELECT m.held_on FROM attendance a JOIN meeting m ON m.id = a.meeting_id "
            "WHERE a.unit_id = :u AND a.deleted_on IS NULL AND m.deleted_on IS NULL AND "
            "a.status IN ('出席', '迟到') AND m.status = '已召开' AND m.held_on >= :s "
            "AND m.held_on <= :t", unit)
        closed = ctx.execute(text(
            "SELECT count(*) FROM need WHERE assigned_unit_id = :u AND deleted_on IS NULL AND "
            "status IN ('已办结', '已回访') AND completed_on >= :s AND completed_on < :e"),
            {"u": unit, "s": clock.day_begins(start), "e": clock.day_ends(today)}).scalar()
        expected[pk] = (len(held), len(attended & held), closed, target or 0)
    with app.app_context():
        rows = db.session.query(Agreement).filter(Agreement.id.in_(list(expected))).all()
        got = three_ones(db.session, rows, year)
        db.session.remove()
    assert {pk: (t.quarters_held, t.quarters_attended, t.needs_closed, t.target)
            for pk, t in got.items()} == expected
    assert all(t.in_force for t in got.values())
    # the dashboard's figure counts the same, per community
    met = sum(held > 0 and attended >= held and closed >= target
              for held, attended, closed, target in expected.values())
    [row] = figure(as_user, "shequ01", "agreement_three_ones", period=str(year))
    assert (int(row["agreements"]), int(row["all_met"])) == (len(expected), met)
    first = agreements[0]
    held, attended, closed, target = expected[first.id]
    said = (f"{attended} / {held} 个季度参会", f"办结需求 {closed} / 目标 {target}")
    # the agreement's page and its unit's page say the same counts
    for url in (f"/agreement/show/{first.id}", f"/unit/show/{first.unit_id}"):
        page = as_user("shequ01").get(url).get_data(as_text=True)
        assert all(words in page for words in said), url
    # ... and so does the REST API, for each agreement
    client, headers = api("shequ01")
    for pk, (held, attended, closed, target) in expected.items():
        response = client.get(f"/api/v1/agreement/{pk}/three_ones?year={year}", headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        got = response.json["result"]
        assert (got["year"], got["quarters_held"], got["quarters_attended"], got["needs_closed"],
                got["target"]) == (year, held, attended, closed, target)
        assert got["all_met"] is (held > 0 and attended >= held and closed >= target)


def test_three_ones_on_the_api_are_scoped_and_refuse_a_bad_year(ctx, api):
    far = ctx.execute(text("SELECT a.id FROM agreement a JOIN ab_user u ON u.unit_id = a.unit_id "
                           "WHERE u.username = 'danwei03' AND a.deleted_on IS NULL")).scalars().first()
    near = ctx.execute(text("SELECT a.id FROM agreement a JOIN ab_user u ON u.unit_id = a.unit_id "
                            "WHERE u.username = 'danwei01' AND a.deleted_on IS NULL")).scalars().first()
    assert far and near
    client, headers = api("shequ01")
    # another street's agreement does not exist for shequ01
    assert client.get(f"/api/v1/agreement/{far}/three_ones", headers=headers).status_code == 404
    # this year by default
    done = client.get(f"/api/v1/agreement/{near}/three_ones", headers=headers)
    assert done.status_code == 200 and done.json["result"]["year"] == clock.today().year
    for year, says in (("26", "年度应为四位年份"), ("二〇二六", "年度应为四位年份"),
                       ("²⁰²⁶", "年度应为四位年份"),
                       (str(clock.today().year + 1), "尚未开始")):
        refused = client.get(f"/api/v1/agreement/{near}/three_ones?year={year}", headers=headers)
        assert refused.status_code == 422 and says in refused.json["message"], year
