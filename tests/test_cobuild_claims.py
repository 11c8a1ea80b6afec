"""Service-post claims under concurrency (DOMAIN.md §3): members claiming a post at the same
moment never exceed its headcount, a member never holds the same post twice, and the losers are
told why in Chinese — on PostgreSQL and MariaDB with real threads started together, and on
SQLite (which serialises writers) without a single error page."""
import threading

import pytest
from sqlalchemy import text

from tests.test_cobuild_rules import home_community, new_members, new_post

pytestmark = pytest.mark.db


def claim_together(app, headers, post, members):
    """Each member's claim sent at once from its own thread (own client, own app context)."""
    start = threading.Barrier(len(members))
    results = []

    def claim(member):
        client = app.test_client()
        start.wait()
        response = client.post("/api/v1/post_claim/", json={"member": member, "post": post},
                               headers=headers)
        results.append((member, response.status_code, response.get_json(silent=True)))

    workers = [threading.Thread(target=claim, args=(m,)) for m in members]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert len(results) == len(members)
    return results


def held(ctx, post):
    return ctx.execute(text("SELECT member_id FROM post_claim WHERE post_id = :p AND "
                            "status = '已认领' AND deleted_on IS NULL"), {"p": post}).scalars().all()


def claimed(ctx, post):
    return ctx.execute(text("SELECT claimed FROM service_post WHERE id = :p"), {"p": post}).scalar()


@pytest.mark.parametrize("headcount", [1, 3])
def test_concurrent_claims_never_exceed_the_headcount(app, ctx, api, database_url, headcount):
    community = home_community(ctx, "shequ01")
    post = new_post(ctx, community, headcount, name=f"并发认领岗位{headcount}")
    members = new_members(ctx, community, 6 if database_url.startswith("sqlite") else 12)
    _, headers = api("shequ01")
    results = claim_together(app, headers, post, members)

    won = [member for member, code, _ in results if code == 201]
    lost = [(code, body) for _, code, body in results if code != 201]
    full, busy = f"的{headcount}个名额已满", "请稍后重试"
    if database_url.startswith("sqlite"):
        # SQLite lets one writer in at a time: the others are told the post is full, or to
        # try again — never an error page, never a place too many.
        assert 1 <= len(won) <= headcount, results
        assert all(code == 422 and (full in body["message"] or busy in body["message"])
                   for code, body in lost), lost
    else:
        assert len(won) == headcount, results
        assert all(code == 422 and full in body["message"] for code, body in lost), lost
    assert sorted(held(ctx, post)) == sorted(won)
    assert claimed(ctx, post) == len(won)


def test_one_member_claiming_the_same_post_at_once_holds_it_once(app, ctx, api, database_url):
    community = home_community(ctx, "shequ01")
    post = new_post(ctx, community, 3, name="重复认领岗位")
    member = new_members(ctx, community, 1)[0]
    _, headers = api("shequ01")
    tries = 4 if database_url.startswith("sqlite") else 8
    results = claim_together(app, headers, post, [member] * tries)

    codes = [code for _, code, _ in results]
    assert codes.count(201) == 1, results
    assert all(code == 422 and ("不能重复认领" in body["message"]
                                or "请稍后重试" in body["message"])
               for _, code, body in results if code != 201), results
    assert held(ctx, post) == [member]
    assert claimed(ctx, post) == 1


def test_a_member_claims_a_post_of_its_community_and_withdraws(ctx, api):
    community = home_community(ctx, "dangyuan01")
    post = new_post(ctx, community, 2, name="党员自主认领岗位")
    member = ctx.execute(text("SELECT member_id FROM ab_user WHERE username = 'dangyuan01'")).scalar()
    client, headers = api("dangyuan01")
    # The post is offered to the member (visible by rule), who claims it for itself only.
    info = client.get("/api/v1/post_claim/_info?q=(keys:!(add_columns),add_columns:"
                      "(member:(page_size:100)))", headers=headers).json
    offered = {v["id"] for f in info["add_columns"] if f["name"] == "member" for v in f["values"]}
    assert offered == {member}
    taken = client.post("/api/v1/post_claim/", json={"member": member, "post": post},
                        headers=headers)
    assert taken.status_code == 201, taken.get_data(as_text=True)
    out = client.post(f"/api/v1/post_claim/{taken.json['id']}/transition/withdraw",
                      headers=headers)
    assert out.status_code == 200, out.get_data(as_text=True)
    assert claimed(ctx, post) == 0 and held(ctx, post) == []
    # Withdrawn twice: refused, and the count stays right.
    again = client.post(f"/api/v1/post_claim/{taken.json['id']}/transition/withdraw",
                        headers=headers)
    assert again.status_code == 409
    assert claimed(ctx, post) == 0
    # A post of another community is not even visible to the member.
    other = ctx.execute(text("SELECT id FROM service_post WHERE community_id <> :c ORDER BY id"),
                        {"c": community}).scalar()
    before = held(ctx, other)
    refused = client.post("/api/v1/post_claim/", json={"member": member, "post": other},
                          headers=headers)
    assert refused.status_code in (404, 422)
    assert "不存在或超出您的数据范围" in str(refused.json["message"])
    assert held(ctx, other) == before
