"""Twenty users at once on the same row (DOMAIN.md §3, issue "Concurrency"): exactly one claims a
wish, exactly one takes a need, exactly the headcount claims a post; every loser is told why,
nothing is written twice. Each request runs in its own thread with its own client and so its
own database connection, started together at a barrier; on PostgreSQL and MariaDB in the
database stage of .ci/run. SQLite lets one writer in at a time, so there the crowd is smaller.
(Twenty certifications of one service record: tests/test_cobuild_ledger.py.)
"""
import threading

import pytest
from sqlalchemy import text

from tests.conftest import api_token
from tests.test_cobuild_claims import claim_together, claimed, held
from tests.test_cobuild_rules import home_community, new_members, new_post

pytestmark = pytest.mark.db


def crowd(database_url) -> int:
    return 5 if database_url.startswith("sqlite") else 20


def together(app, url, tokens, body=None):
    """POST `url` from len(tokens) threads at the same moment; (status, json) of each."""
    start = threading.Barrier(len(tokens))
    results = []

    def post(headers):
        client = app.test_client()
        start.wait(timeout=60)
        response = client.post(url, headers=headers, json=body or {})
        results.append((response.status_code, response.get_json(silent=True)))

    threads = [threading.Thread(target=post, args=(h,)) for h in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(results) == len(tokens), "a request hung"
    return results


def one_winner(results, win=200, lose=409):
    codes = [code for code, _ in results]
    assert codes.count(win) == 1, results
    assert set(codes) <= {win, lose}, results
    assert all(body and body.get("message") for code, body in results if code == lose), results


def link(ctx, username, column):
    return ctx.execute(text(f"SELECT {column} FROM ab_user WHERE username = :u"),
                       {"u": username}).scalar()


def transitions(ctx, resource, pk, name):
    return ctx.execute(text(
        "SELECT count(*) FROM audit_log WHERE resource = :r AND record_id = :i "
        "AND action = 'transition' AND changes LIKE :n"),
        {"r": resource, "i": str(pk), "n": f'%"_operation": "{name}"%'}).scalar()


def test_twenty_claiming_the_same_wish_one_wins(app, ctx, api, database_url):
    client, headers = api("shequ01")
    wish = client.post("/api/v1/micro_wish/", headers=headers, json={
        "resident_name": "李奶奶", "community": home_community(ctx, "shequ01"),
        "content": "想要一台收音机"})
    assert wish.status_code == 201, wish.json
    pk = wish.json["id"]
    assert client.post(f"/api/v1/micro_wish/{pk}/transition/publish",
                       headers=headers).status_code == 200
    # The two liaisons of the community and its member, each account on several devices.
    accounts = {u: api_token(app, u) for u in ("danwei01", "danwei02", "dangyuan01")}
    tokens = [list(accounts.values())[i % 3] for i in range(crowd(database_url))]

    one_winner(together(app, f"/api/v1/micro_wish/{pk}/transition/claim", tokens))

    row = ctx.execute(text("SELECT status, claimant_unit_id, claimant_member_id FROM micro_wish "
                           "WHERE id = :i"), {"i": pk}).one()
    assert row.status == "已认领"
    assert (row.claimant_unit_id is None) != (row.claimant_member_id is None)
    assert transitions(ctx, "micro_wish", pk, "claim") == 1


def test_twenty_taking_the_same_need_one_wins(app, ctx, api, database_url):
    client, headers = api("shequ01")
    need = client.post("/api/v1/need/", headers=headers, json={
        "community": home_community(ctx, "shequ01"), "title": "路灯不亮", "urgency": "一般",
        "category": ctx.execute(text("SELECT min(id) FROM dictionary "
                                     "WHERE kind = 'need_category'")).scalar(),
        "source": "社区"})
    assert need.status_code == 201, need.json
    pk = need.json["id"]
    move = f"/api/v1/need/{pk}/transition/"
    assert client.post(move + "accept", headers=headers).status_code == 200
    assert client.post(move + "dispatch", headers=headers, json={
        "assigned_unit": link(ctx, "danwei01", "unit_id"),
        "assigned_members": [link(ctx, "dangyuan01", "member_id")]}).status_code == 200
    accounts = [api_token(app, u) for u in ("danwei01", "dangyuan01")]
    tokens = [accounts[i % 2] for i in range(crowd(database_url))]

    one_winner(together(app, move + "take", tokens))

    row = ctx.execute(text("SELECT status, taken_by_id FROM need WHERE id = :i"), {"i": pk}).one()
    assert row.status == "办理中" and row.taken_by_id is not None
    assert transitions(ctx, "need", pk, "take") == 1


@pytest.mark.parametrize("headcount", [1, 3])
def test_twenty_members_claiming_a_post_exactly_its_headcount_win(app, ctx, api, database_url,
                                                                  headcount):
    community = home_community(ctx, "shequ01")
    post = new_post(ctx, community, headcount, name=f"二十人认领岗位{headcount}")
    members = new_members(ctx, community, crowd(database_url))
    _, headers = api("shequ01")

    results = claim_together(app, headers, post, members)

    won = [member for member, code, _ in results if code == 201]
    assert all(code == 422 and body and body.get("message")
               for _, code, body in results if code != 201), results
    if database_url.startswith("sqlite"):
        assert 1 <= len(won) <= headcount, results  # the others may be told to try again
    else:
        assert len(won) == headcount, results
    assert sorted(held(ctx, post)) == sorted(won)
    assert claimed(ctx, post) == len(won)
