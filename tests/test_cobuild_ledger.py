"""The points ledger (DOMAIN.md §2 point_entry): certification pays through the point rules
exactly once — certifying twice, or twenty admins certifying at once, never pays twice; a
reversal writes a compensating entry and deletes nothing, so the record nets to zero; certifying
again after a reversal pays again. The ledger is append-only in the UI, the API, the model and
the database. Expectations are computed here with plain SQL and arithmetic."""
import threading
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.test_cobuild_rules import home_community, link, new_members, new_record, new_unit

pytestmark = pytest.mark.db


def entries(ctx, record):
    return ctx.execute(text(
        "SELECT subject_type, member_id, unit_id, rule_id, kind, delta, cycle FROM point_entry "
        "WHERE source_type = 'service_record' AND source_id = :r ORDER BY id"),
        {"r": record}).all()


def net(ctx, record):
    """Net points per (subject, rule) of a record."""
    return {(row[0], row[1], row[2]): row[3] for row in ctx.execute(text(
        "SELECT subject_type, coalesce(member_id, unit_id), rule_id, sum(delta) FROM point_entry "
        "WHERE source_type = 'service_record' AND source_id = :r "
        "GROUP BY subject_type, coalesce(member_id, unit_id), rule_id"), {"r": record})}


def one_payment(ctx, member, unit, hours):
    """What one certification of `hours` pays, from the active rules, worked out here."""
    expected = {}
    for rule in ctx.execute(text("SELECT id, subject, points_per_event, points_per_hour "
                                 "FROM point_rule WHERE active = :t AND event = 'service_record' "
                                 "AND deleted_on IS NULL"), {"t": True}):
        points = Decimal(rule.points_per_event) + Decimal(rule.points_per_hour) * Decimal(hours)
        subject = ("member", member) if rule.subject == "member" else ("unit", unit)
        if points and subject[1] is not None:
            expected[(*subject, rule.id)] = points.quantize(Decimal("0.01"))
    assert expected, "the demo point rules pay members and their units"
    return expected


@pytest.fixture
def serving(ctx):
    """A member of a fresh unit living in shequ01's community, with a pending record of 2.5
    hours."""
    community = home_community(ctx, "shequ01")
    unit = new_unit(ctx, community, "积分测试单位")
    member = new_members(ctx, community, 1, unit_id=unit)[0]
    return {"unit": unit, "member": member, "record": new_record(ctx, member, hours="2.5")}


def move(api, username, record, name, **body):
    client, headers = api(username)
    return client.post(f"/api/v1/service_record/{record}/transition/{name}", json=body,
                       headers=headers)


def test_certifying_pays_each_rule_once_and_twice_is_refused(ctx, api, serving):
    record = serving["record"]
    expected = one_payment(ctx, serving["member"], serving["unit"], "2.5")
    assert move(api, "shequ01", record, "certify").status_code == 200
    assert net(ctx, record) == expected
    assert all(row.kind == "pay" and row.cycle == 1 for row in entries(ctx, record))

    again = move(api, "shequ01", record, "certify")
    assert again.status_code == 409 and "已认证" in again.json["message"]
    assert move(api, "jiedao01", record, "certify").status_code == 409
    assert len(entries(ctx, record)) == len(expected)
    assert net(ctx, record) == expected


def test_a_reversal_nets_to_zero_and_a_new_certification_pays_again(ctx, api, serving):
    record = serving["record"]
    expected = one_payment(ctx, serving["member"], serving["unit"], "2.5")
    assert move(api, "shequ01", record, "certify").status_code == 200
    refused = move(api, "shequ01", record, "revoke")
    assert refused.status_code == 422 and "请填写撤销原因" in refused.json["message"]

    revoked = move(api, "shequ01", record, "revoke", reason="服务时长登记有误")
    assert revoked.status_code == 200, revoked.get_data(as_text=True)
    rows = entries(ctx, record)
    assert sorted(row.kind for row in rows) == ["pay"] * len(expected) + ["reverse"] * len(expected)
    assert net(ctx, record) == {key: Decimal("0.00") for key in expected}
    assert ctx.execute(text("SELECT status FROM service_record WHERE id = :r"),
                       {"r": record}).scalar() == "待认证"
    # Revoking twice is refused: a reversal is written once.
    assert move(api, "shequ01", record, "revoke", reason="再次撤销").status_code == 409

    assert move(api, "shequ01", record, "certify").status_code == 200
    assert net(ctx, record) == expected
    rows = entries(ctx, record)
    assert len(rows) == 3 * len(expected)
    assert sorted((row.kind, row.cycle) for row in rows) == sorted(
        [("pay", 1), ("reverse", 1), ("pay", 2)] * len(expected))


def test_concurrent_certifications_pay_exactly_once(app, ctx, api, serving, database_url):
    """Twenty admins press 认证 at once (five on SQLite, which serialises its writers): one
    succeeds, the others are told it was done, and one payment per rule is written."""
    record = serving["record"]
    expected = one_payment(ctx, serving["member"], serving["unit"], "2.5")
    threads = 5 if database_url.startswith("sqlite") else 20
    _, headers = api("shequ01")
    start = threading.Barrier(threads)
    results = []

    def certify():
        client = app.test_client()
        start.wait()
        response = client.post(f"/api/v1/service_record/{record}/transition/certify",
                               headers=headers)
        results.append((response.status_code, response.get_json(silent=True)))

    workers = [threading.Thread(target=certify) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    codes = sorted(code for code, _ in results)
    assert len(codes) == threads
    assert codes.count(200) == 1, results
    assert set(codes) <= {200, 409}, results
    assert all(body and "message" in body for code, body in results if code == 409)
    assert net(ctx, record) == expected
    assert len(entries(ctx, record)) == len(expected)


def test_the_ledger_cannot_be_edited_or_deleted(app, ctx, api, as_user, serving):
    record = serving["record"]
    assert move(api, "shequ01", record, "certify").status_code == 200
    entry = ctx.execute(text("SELECT id, delta, entry_key FROM point_entry WHERE source_id = :r "
                             "AND source_type = 'service_record' ORDER BY id"),
                        {"r": record}).first()
    client, headers = api("admin")
    assert client.put(f"/api/v1/point_entry/{entry.id}", json={"delta": 999},
                      headers=headers).status_code in (404, 405)
    assert client.delete(f"/api/v1/point_entry/{entry.id}", headers=headers).status_code in \
        (404, 405)
    assert client.post("/api/v1/point_entry/", json={"delta": 999},
                       headers=headers).status_code in (404, 405)
    browser = as_user("admin")
    assert browser.get(f"/point_entry/edit/{entry.id}").status_code == 404
    assert browser.get("/point_entry/add").status_code == 404
    assert browser.post("/point_entry/action_post", {"action": "muldelete",
                                                     "rowid": str(entry.id)},
                        form_url="/point_entry/list/").status_code == 404

    from app.errors import DomainError
    from app.models.cobuild import PointEntry

    with ctx.session() as session:
        row = session.get(PointEntry, entry.id)
        row.delta = Decimal(999)
        with pytest.raises(DomainError, match="积分流水只能追加"):
            session.commit()
        session.rollback()
        with pytest.raises(DomainError, match="不能删除"):
            session.get(PointEntry, entry.id).check_delete(session)
    # Even SQL written around the model cannot pay the same cycle twice.
    columns = ("subject_type, member_id, unit_id, rule_id, kind, delta, source_type, source_id, "
               "cycle, period, entry_key, created_on, changed_on")
    with pytest.raises(IntegrityError), ctx.session() as session:
        session.execute(text(f"INSERT INTO point_entry ({columns}) SELECT {columns} "
                             "FROM point_entry WHERE id = :i"), {"i": entry.id})
        session.commit()
    assert ctx.execute(text("SELECT delta, entry_key FROM point_entry WHERE id = :i"),
                       {"i": entry.id}).one() == (entry.delta, entry.entry_key)
    assert len(entries(ctx, record)) == len(one_payment(ctx, serving["member"], serving["unit"],
                                                        "2.5"))


def test_a_liaison_cannot_certify_and_a_member_sees_only_its_points(ctx, api, serving):
    record = serving["record"]
    assert move(api, "danwei01", record, "certify").status_code in (403, 404)
    assert entries(ctx, record) == []
    member = link(ctx, "dangyuan01").member_id
    own = set(ctx.execute(text("SELECT id FROM point_entry WHERE subject_type = 'member' "
                               "AND member_id = :m"), {"m": member}).scalars())
    client, headers = api("dangyuan01")
    listed = client.get("/api/v1/point_entry/?q=(page_size:100)", headers=headers).json
    assert {row["id"] for row in listed["result"]} == own and listed["count"] == len(own)
