"""Star ratings (DOMAIN.md §1 "一季一评星，一年一授星"): a small fixture period whose ratings are
worked out by hand below — from the ledger, service months and registration for members; from
the ledger, the in-service members' registration rate and the completion of dispatched needs for
units — with the thresholds and the floor of the configuration (off by default); the year's award from
its quarters; 已计算 → 已审核 → 已公示, a period rated only once it has ended, a street rating its
own subjects, and a rating reviewed or published left alone by a later run."""
import itertools
import json
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from app import clock
from tests.test_cobuild_rules import home_community, new_members, new_unit, registration

pytestmark = pytest.mark.db

# Each test rates its own year, long before the demo data's: only its fixture has figures
# there, and a period one test publishes stays out of the others' way.
YEARS = itertools.count(2011)
THRESHOLDS = {5: 90, 4: 80, 3: 70, 2: 60, 1: 0}


@pytest.fixture
def rating_config(app, monkeypatch):
    monkeypatch.setitem(app.config, "STAR_THRESHOLDS", dict(THRESHOLDS))
    monkeypatch.setitem(app.config, "STAR_RATING_FLOOR", 0.95)
    monkeypatch.setitem(app.config, "STAR_POINT_TARGETS", {"unit": 60, "member": 12})
    # The hand-worked figures below weigh points, registration and completion only (the other
    # inputs at 0: test_meetings_lists_and_three_ones_weigh_in weighs them)
    monkeypatch.setitem(app.config, "STAR_WEIGHTS", OLD_WEIGHTS)


OLD_WEIGHTS = {"unit": {"points": 40, "registration": 30, "completion": 30, "attendance": 0,
                        "lists": 0, "three_ones": 0},
               "member": {"points": 40, "monthly_service": 40, "registration": 20}}


def add_rows(ctx, make):
    """Rows written as the system (the ledger and closed needs, as if made long ago)."""
    with ctx.session() as session:
        session.add_all(make(session))
        session.commit()


def points(ctx, community, period, **subjects):
    from app.models.cobuild import PointEntry

    rule = ctx.execute(text("SELECT min(id) FROM point_rule")).scalar()
    when = datetime(int(period[:4]), 6, 30, 9, 0)
    base = ctx.execute(text("SELECT coalesce(max(source_id), 0) FROM point_entry "
                            "WHERE source_type = 'fixture'")).scalar()

    def make(session):
        return [PointEntry(subject_type=kind, member_id=sid if kind == "member" else None,
                           unit_id=sid if kind == "unit" else None, rule_id=rule, kind="pay",
                           delta=Decimal(delta), reason="测试积分", source_type="fixture",
                           source_id=base + n, cycle=1, period=period, community_id=community,
                           created_on=when, changed_on=when)
                for n, ((kind, sid), delta) in enumerate(subjects["entries"], start=1)]
    add_rows(ctx, make)


def needs(ctx, community, unit, statuses, year):
    from app.models.lists import Need
    from app.models.org import Organization

    category = ctx.execute(text("SELECT min(id) FROM dictionary WHERE kind = 'need_category'")
                           ).scalar()
    def make(session):
        # Filed, dispatched and (when closed) completed in the fixture's year, as it happened.
        return [Need(community=session.get(Organization, community), category_id=category,
                     title=f"派单需求{n}", status=status, assigned_unit_id=unit,
                     created_on=datetime(year, 5, 8, 9, 0), accepted_on=datetime(year, 5, 9, 9, 0),
                     dispatched_on=datetime(year, 5, 10, 9, 0),
                     taken_on=datetime(year, 5, 10, 10, 0),
                     completed_on=datetime(year, 5, 12, 9, 0) if status in ("已办结", "已回访")
                     else None, result="已办理" if status in ("已办结", "已回访") else None)
                for n, status in enumerate(statuses)]
    add_rows(ctx, make)


def certified(ctx, member, *days):
    from app.models.cobuild import ServiceRecord

    add_rows(ctx, lambda session: [
        ServiceRecord(member_id=member, served_on=day, hours=Decimal(2), status=status,
                      description="测试服务", created_on=datetime.combine(day, datetime.min.time()),
                      certified_on=datetime.combine(day, datetime.min.time())
                      if status == "已认证" else None) for day, status in days])


@pytest.fixture
def fixture_period(ctx, rating_config):
    """Four units and their members in shequ01's community, with a year's figures (Q2):

    A: 2 in-service members, both registered; 2 needs dispatched in Q2, both closed; 45 points.
    B: 20 in-service members, 19 registered (95%: on the floor, still rated); 30 points.
    D: 4 in-service members, 3 registered (75%: below the floor); 60 points.
    E: 1 member, registered; 2 needs dispatched in Q2, 1 closed (50%: below the floor).
    Member a1: 9 points, certified service in April and June (May's is still pending).
    """
    year = next(YEARS)
    period = f"{year}Q2"
    community = home_community(ctx, "shequ01")
    units = {name: new_unit(ctx, community, f"评星单位{name}") for name in "ABDE"}
    people = {name: new_members(ctx, community, n, unit_id=units[name])
              for name, n in (("A", 2), ("B", 20), ("D", 4), ("E", 1))}
    for name, registered in (("A", 2), ("B", 19), ("D", 3), ("E", 1)):
        for member in people[name][:registered]:
            registration(ctx, member, community, day=date(year, 3, 15))
    needs(ctx, community, units["A"], ["已办结", "已回访"], year)
    needs(ctx, community, units["E"], ["已办结", "办理中"], year)
    a1, a2 = people["A"]
    points(ctx, community, period, entries=[
        (("unit", units["A"]), "45"), (("unit", units["B"]), "30"), (("unit", units["D"]), "60"),
        (("member", a1), "5"), (("member", a1), "4")])
    certified(ctx, a1, (date(year, 4, 10), "已认证"), (date(year, 5, 20), "待认证"),
              (date(year, 6, 5), "已认证"))
    return {"units": units, "a1": a1, "a2": a2, "community": community, "year": year,
            "period": period}


def rating(ctx, kind, subject, period):
    column = "unit_id" if kind == "unit" else "member_id"
    row = ctx.execute(text(
        f"SELECT id, score, stars, eligible, note, status, inputs, thresholds FROM star_rating "
        f"WHERE subject_type = :k AND {column} = :s AND period = :p AND deleted_on IS NULL"),
        {"k": kind, "s": subject, "p": period}).one()._asdict()
    # SQLite hands a NUMERIC back as a float: compare scores as the decimals they are.
    row["score"] = Decimal(str(row["score"])).quantize(Decimal("0.01"))
    return SimpleNamespace(**row)


@pytest.fixture
def travelled_audit(ctx):
    """The audit rows a test writes with the clock set (logins, runs) are removed after it:
    dated away from now with the latest ids, they would stand out of order in the audit trail
    other tests read in the same database (test_audit_views orders it by time)."""
    before = ctx.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar()
    yield
    with ctx.session() as session:
        session.execute(text("DELETE FROM audit_log WHERE id > :i"), {"i": before})
        session.commit()


def compute(api, period, username="zuzhibu"):
    client, headers = api(username)
    return client.post("/api/v1/star_rating/compute", json={"period": period}, headers=headers)


def test_a_quarter_rates_units_and_members_as_worked_out_by_hand(ctx, api, fixture_period):
    period = fixture_period["period"]
    units = fixture_period["units"]
    done = compute(api, period)
    assert done.status_code == 200, done.get_data(as_text=True)

    # A: points 45/60 = 0.75 × 40 = 30; registration 2/2 × 30 = 30; completion 2/2 × 30 = 30.
    a = rating(ctx, "unit", units["A"], period)
    assert (a.score, a.stars, bool(a.eligible), a.status) == (Decimal("90.00"), 5, True, "已计算")
    # B: completion does not apply (nothing dispatched): (0.5 × 40 + 0.95 × 30) / 70 = 69.29.
    b = rating(ctx, "unit", units["B"], period)
    assert (b.score, b.stars, bool(b.eligible)) == (Decimal("69.29"), 2, True)
    # D: 75% registered, below the 95% floor: not rated, whatever its points (score 89.29).
    d = rating(ctx, "unit", units["D"], period)
    assert (d.score, d.stars, bool(d.eligible)) == (Decimal("89.29"), None, False)
    assert "在职党员报到率75.0%，低于95%，不予评星" in d.note
    # E: half its dispatched needs closed, below the floor.
    e = rating(ctx, "unit", units["E"], period)
    assert (e.score, e.stars, bool(e.eligible)) == (Decimal("45.00"), None, False)
    assert "派单办结率50.0%" in e.note
    # a1: points 9/12 × 40 = 30; served 2 of 3 months × 40 = 26.67; registered × 20 = 20.
    a1 = rating(ctx, "member", fixture_period["a1"], period)
    assert (a1.score, a1.stars) == (Decimal("76.67"), 3)
    # a2: registered only.
    a2 = rating(ctx, "member", fixture_period["a2"], period)
    assert (a2.score, a2.stars) == (Decimal("20.00"), 1)
    # The inputs and the thresholds in force are kept on the rating.
    inputs = {item["name"]: item for item in json.loads(a.inputs)}
    assert inputs["points"]["value"] == 0.75 and inputs["registration"]["weight"] == 30
    used = json.loads(a.thresholds)
    assert used["stars"] == {str(k): v for k, v in THRESHOLDS.items()} and used["floor"] == 0.95


def test_thresholds_come_from_the_configuration(app, ctx, api, fixture_period, monkeypatch):
    period = fixture_period["period"]
    monkeypatch.setitem(app.config, "STAR_THRESHOLDS", {5: 95, 4: 85, 3: 75, 2: 65, 1: 0})
    assert compute(api, period).status_code == 200
    a = rating(ctx, "unit", fixture_period["units"]["A"], period)
    assert (a.score, a.stars) == (Decimal("90.00"), 4)
    assert json.loads(a.thresholds)["stars"]["5"] == 95


def test_the_floor_comes_from_the_configuration(app, ctx, api, fixture_period, monkeypatch):
    period = fixture_period["period"]
    monkeypatch.setitem(app.config, "STAR_RATING_FLOOR", 0.7)
    assert compute(api, period).status_code == 200
    d = rating(ctx, "unit", fixture_period["units"]["D"], period)
    assert (d.stars, bool(d.eligible)) == (4, True)  # 89.29 ≥ 80 once 75% is above the floor
    e = rating(ctx, "unit", fixture_period["units"]["E"], period)
    assert (e.stars, bool(e.eligible)) == (None, False)  # 50% is still below


def test_review_publish_and_a_reviewed_or_published_rating_is_kept(ctx, api, as_user,
                                                                    fixture_period, monkeypatch):
    period, year = fixture_period["period"], fixture_period["year"]
    units = fixture_period["units"]
    assert compute(api, period).status_code == 200
    a = rating(ctx, "unit", units["A"], period)
    client, headers = api("zuzhibu")
    # A community admin reads ratings but does not review them.
    shequ, shequ_headers = api("shequ01")
    assert shequ.post(f"/api/v1/star_rating/{a.id}/transition/review",
                      headers=shequ_headers).status_code == 403
    for move in ("review", "publish"):
        assert client.post(f"/api/v1/star_rating/{a.id}/transition/{move}",
                           headers=headers).status_code == 200
    assert rating(ctx, "unit", units["A"], period).status == "已公示"

    def ratings():
        return {row.id: row for row in ctx.execute(text(
            "SELECT id, score, stars, status, computed_on FROM star_rating WHERE period = :p"),
            {"p": period}).all()}

    before = ratings()
    # Computed again a minute later (the time is kept to the second): the published rating is
    # left as it is, the others computed anew.
    later = clock.utcnow() + timedelta(minutes=1)
    monkeypatch.setattr(clock, "utcnow", lambda: later)
    again = compute(api, period)
    assert again.status_code == 200, again.json
    after = ratings()
    assert after[a.id] == before[a.id]
    assert all(after[i].computed_on != before[i].computed_on for i in before if i != a.id)
    # Everything reviewed or published: nothing to compute, said so.
    with ctx.session() as session:
        session.execute(text("UPDATE star_rating SET status = '已审核' WHERE period = :p AND "
                             "status = '已计算'"), {"p": period})
        session.commit()
    refused = compute(api, period)
    assert refused.status_code == 422
    assert f"{year}年第2季度您范围内的星级评定均已审核或公示，不能重新计算" in refused.json["message"]
    # Nobody computes without the right to.
    assert compute(api, f"{year}Q3", "shequ01").status_code == 403
    assert as_user("shequ01").get("/star_rating/compute").status_code == 403


def test_a_period_is_rated_only_once_it_has_ended(app, ctx, api, travelled_audit):
    import time_machine

    with time_machine.travel(datetime(2026, 12, 6, 4, 0), tick=True):
        refused = compute(api, "2026Q4")
        assert refused.status_code == 422
        assert "2026年第4季度于2026-12-31结束，结束后才能评定" in refused.json["message"]
        refused = compute(api, "2026")
        assert "结束后才能评定" in refused.json["message"]
    assert not ctx.execute(text("SELECT count(*) FROM star_rating WHERE period = '2026Q4'")).scalar()
    try:
        with time_machine.travel(datetime(2027, 1, 2, 4, 0), tick=True):
            done = compute(api, "2026Q4", "jiedao01")
            assert done.status_code == 200, done.json
        # a street's run rates the subjects of its street, and none of another street
        street_unit = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username = 'danwei01'")).scalar()
        far_unit = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username = 'danwei03'")).scalar()
        rated = set(ctx.execute(text("SELECT unit_id FROM star_rating WHERE period = '2026Q4' "
                                     "AND subject_type = 'unit'")).scalars())
        assert street_unit in rated and far_unit not in rated
        # ... and cannot review another street's rating (not even see it)
        with time_machine.travel(datetime(2027, 1, 2, 4, 0), tick=True):
            assert compute(api, "2026Q4", "zuzhibu").status_code == 200
        far = ctx.execute(text("SELECT id FROM star_rating WHERE period = '2026Q4' AND "
                               "unit_id = :u"), {"u": far_unit}).scalar()
        client, headers = api("jiedao01")
        assert client.post(f"/api/v1/star_rating/{far}/transition/review",
                           headers=headers).status_code == 404
    finally:
        with ctx.session() as session:
            session.execute(text("DELETE FROM audit_log WHERE resource = 'star_rating' AND "
                                 "changes LIKE '%2026Q4%'"))
            session.execute(text("DELETE FROM star_rating WHERE period = '2026Q4'"))
            session.commit()


def test_a_districts_recompute_leaves_a_streets_published_ratings(ctx, api, fixture_period):
    period = fixture_period["period"]
    units = fixture_period["units"]
    assert compute(api, period, "jiedao01").status_code == 200
    a = rating(ctx, "unit", units["A"], period)
    client, headers = api("jiedao01")
    for move in ("review", "publish"):
        assert client.post(f"/api/v1/star_rating/{a.id}/transition/{move}",
                           headers=headers).status_code == 200
    published = ctx.execute(text("SELECT score, stars, status, computed_on, published_on FROM "
                                 "star_rating WHERE id = :i"), {"i": a.id}).one()
    # 组织部's run over the whole district: the street's published rating stays as it is
    assert compute(api, period, "zuzhibu").status_code == 200
    assert ctx.execute(text("SELECT score, stars, status, computed_on, published_on FROM "
                            "star_rating WHERE id = :i"), {"i": a.id}).one() == published


def test_the_year_is_awarded_from_its_quarters(app, ctx, api, fixture_period):
    period, year = fixture_period["period"], fixture_period["year"]
    units = fixture_period["units"]
    refused = compute(api, str(year))
    assert refused.status_code == 422
    assert f"请先完成{year}年各季度的星级评定" in refused.json["message"]
    assert compute(api, period).status_code == 200
    # The command line computes a quarter too (as the system).
    runner = app.test_cli_runner()
    for quarter in (f"{year}Q1", f"{year}Q3", f"{year}Q4"):
        result = runner.invoke(args=["gongjian", "rate-stars", quarter])
        assert result.exit_code == 0, result.output
        assert "星级评定已计算" in result.output
    assert compute(api, str(year)).status_code == 200
    # A: Q1, Q3, Q4 = registration only, 30/70 = 42.86; Q2 = 90.00; (42.86 × 3 + 90) / 4.
    a = rating(ctx, "unit", units["A"], str(year))
    assert (a.score, a.stars, bool(a.eligible)) == (Decimal("54.65"), 1, True)
    # a1: 20 + 76.67 + 20 + 20 = 136.67 / 4 = 34.17.
    assert rating(ctx, "member", fixture_period["a1"], str(year)).score == Decimal("34.17")
    # D stays below the floor over the year.
    d = rating(ctx, "unit", units["D"], str(year))
    assert (d.stars, bool(d.eligible)) == (None, False)
    assert runner.invoke(args=["gongjian", "rate-stars", f"{year}Q5"]).exit_code != 0


def test_a_member_and_a_liaison_see_only_their_own_ratings(ctx, api, fixture_period):
    period = fixture_period["period"]
    assert compute(api, period).status_code == 200
    member = ctx.execute(text("SELECT member_id FROM ab_user WHERE username = 'dangyuan01'")
                         ).scalar()
    unit = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username = 'danwei01'")).scalar()
    for username, sql, params in (
            ("dangyuan01", "subject_type = 'member' AND member_id = :m", {"m": member}),
            ("danwei01", ("unit_id = :u OR member_id IN (SELECT id FROM member "
                          "WHERE work_unit_id = :u)"), {"u": unit})):
        own = set(ctx.execute(text(f"SELECT id FROM star_rating WHERE ({sql}) AND period = :p"),
                              {**params, "p": period}).scalars())
        client, headers = api(username)
        found = client.get(f"/api/v1/star_rating/?q=(filters:!((col:period,opr:eq,"
                           f"value:'{period}')),page_size:100)", headers=headers).json
        assert {row["id"] for row in found["result"]} == own and found["count"] == len(own)
        assert own


# --- the run as a job (issue 21, app/jobs.py): here with the inline executor (no broker); on a
# worker in tests/test_jobs_worker.py

def rating_jobs(ctx, period):
    return ctx.execute(text("SELECT id, status, done, total, message, user_id FROM job "
                            "WHERE kind = 'rate_stars' AND params LIKE :p ORDER BY id"),
                       {"p": f'%"{period}"%'}).all()


def test_the_page_starts_the_run_as_a_job_of_its_user(ctx, as_user, fixture_period):
    period = fixture_period["period"]
    browser = as_user("zuzhibu")
    form = browser.get("/star_rating/compute").get_data(as_text=True)
    token = re.search(r'name="_token" value="([^"]+)"', form).group(1)
    # A double-click: the same form twice starts one job.
    for _ in range(2):
        response = browser.post("/star_rating/compute", {"period": period, "_token": token},
                                form_url="/star_rating/compute")
        assert response.status_code == 302
        assert f"_flt_0_period={period}" in response.headers["Location"]
    [job] = rating_jobs(ctx, period)
    rated = ctx.execute(text("SELECT count(*) FROM star_rating WHERE period = :p"),
                        {"p": period}).scalar()
    zuzhibu = ctx.execute(text("SELECT id FROM ab_user WHERE username = 'zuzhibu'")).scalar()
    assert (job.status, job.done, job.total, job.user_id) == ("已完成", rated, rated, zuzhibu)
    assert job.message.startswith(f"{fixture_period['year']}年第2季度星级评定已计算")
    # The outcome is told on the list, and the job is on 我的任务.
    listed = browser.get(response.headers["Location"]).get_data(as_text=True)
    assert job.message in listed
    mine = browser.get("/jobs/").get_data(as_text=True)
    assert f"计算{fixture_period['year']}年第2季度星级评定" in mine and f"/jobs/{job.id}" in mine
    # A period written wrong is refused at once: no job.
    page = browser.post("/star_rating/compute", {"period": "2026Q5"},
                        form_url="/star_rating/compute", follow_redirects=True)
    assert "评定期间应写作" in page.get_data(as_text=True)
    assert not rating_jobs(ctx, "2026Q5")


def test_the_api_starts_a_job_and_tells_its_outcome(ctx, api, fixture_period):
    period = fixture_period["period"]
    done = compute(api, period)
    assert done.status_code == 200
    [job] = rating_jobs(ctx, period)
    assert done.json["result"] == {"period": period, "message": job.message,
                                   "ratings": job.done, "job": job.id}
    # The job's state is the user's through the API too.
    client, headers = api("zuzhibu")
    assert client.get(f"/api/v1/job/{job.id}", headers=headers).json["status"] == "已完成"


def test_the_scheduled_run_rates_the_quarter_just_ended_once(app, ctx, api, fixture_period,
                                                             monkeypatch):
    """Beat's run (no user, no period): the quarter just ended; run again — beat's second
    delivery, or a second beat — it leaves the ratings as the raters have them."""
    from app import jobs
    from app.services import cobuild

    period = fixture_period["period"]
    monkeypatch.setattr(cobuild, "previous_quarter", lambda: period)
    units = fixture_period["units"]
    with app.app_context():
        jobs.run(jobs.start("rate_stars", jobs.KINDS["rate_stars"].title, None).id)
    a = rating(ctx, "unit", units["A"], period)
    assert (a.score, a.stars, a.status) == (Decimal("90.00"), 5, "已计算")
    client, headers = api("zuzhibu")
    assert client.post(f"/api/v1/star_rating/{a.id}/transition/review",
                       headers=headers).status_code == 200
    with app.app_context():
        again = jobs.start("rate_stars", jobs.KINDS["rate_stars"].title, None).id
        jobs.run(again)
    status, message = ctx.execute(text("SELECT status, message FROM job WHERE id = :j"),
                                  {"j": again}).one()
    assert status == "已完成" and message == f"{period} 的星级评定已计算，本次未重新计算"
    assert rating(ctx, "unit", units["A"], period).status == "已审核"


# --- the practice's inputs, the weights, the preview, the reasons ---------------------------

DEFAULT_WEIGHTS = {"unit": {"points": 30, "registration": 15, "completion": 15, "attendance": 15,
                            "lists": 10, "three_ones": 15},
                   "member": {"points": 40, "monthly_service": 40, "registration": 20}}


def practice_rows(ctx, fixture_period):
    """Unit A's joint meetings, lists and agreement in the fixture's year: in a body of its own
    that held two 季研讨会 in Q2, A present at one and absent from the other (attendance 50%, a
    quarter met and attended); a published resource and no service item (三单 half); an agreement
    signed and in force all year with a target of 4 needs (2 closed by Q2's end: 4 × 2/4 met)."""
    from app.models.cobuild import Agreement
    from app.models.lists import Resource
    from app.models.meetings import Attendance, BodyMember, JointBody, Meeting
    from app.models.org import Organization, Unit

    year, community = fixture_period["year"], fixture_period["community"]
    unit = fixture_period["units"]["A"]
    category = ctx.execute(text("SELECT min(id) FROM dictionary WHERE kind = 'resource_category'")
                           ).scalar()

    def make(session):
        host, member = session.get(Organization, community), session.get(Unit, unit)
        body = JointBody(name=f"评星联席会{year}", host=host)
        meetings = [Meeting(body=body, type="季研讨会", planned_date=date(year, 5, day),
                            held_on=date(year, 5, day), status="已召开") for day in (6, 20)]
        return [body, BodyMember(body=body, unit=member), *meetings,
                Resource(unit=member, year=year, category_id=category, title="评星场地",
                         status="已发布"),
                Agreement(community=host, unit=member, title="评星协议",
                          signed_on=date(year - 1, 12, 20), valid_from=date(year, 1, 1),
                          valid_to=date(year, 12, 31), yearly_target=4, status="已签订")]
    add_rows(ctx, make)
    ids = ctx.execute(text("SELECT m.id FROM meeting m JOIN joint_body b ON b.id = m.body_id "
                           "WHERE b.name = :n ORDER BY m.planned_date"),
                      {"n": f"评星联席会{year}"}).scalars().all()

    def attend(session):
        # recorded once the body has its member (a unit outside the body is refused)
        member, meetings = session.get(Unit, unit), [session.get(Meeting, i) for i in ids]
        return [Attendance(meeting=meetings[0], unit=member, attendee="一把手甲",
                           attendee_level="一把手", status="出席"),
                Attendance(meeting=meetings[1], unit=member, status="缺席")]
    add_rows(ctx, attend)


def test_meetings_lists_and_three_ones_weigh_in(app, ctx, api, fixture_period, monkeypatch):
    monkeypatch.setitem(app.config, "STAR_WEIGHTS", DEFAULT_WEIGHTS)
    practice_rows(ctx, fixture_period)
    period, units = fixture_period["period"], fixture_period["units"]
    assert compute(api, period).status_code == 200
    a = rating(ctx, "unit", units["A"], period)
    inputs = {item["name"]: item for item in json.loads(a.inputs)}
    assert {name: inputs[name]["value"] for name in ("attendance", "lists", "three_ones")} == {
        "attendance": 0.5, "lists": 0.5, "three_ones": 1.0}
    # points 0.75 × 30 + registration 15 + completion 15 + attendance 0.5 × 15 + lists 0.5 × 10
    # + 三个一 15 = 80 of 100
    assert (a.score, a.stars) == (Decimal("80.00"), 4)
    assert json.loads(a.thresholds)["weights"]["unit"]["attendance"] == 15
    # B attended no meeting (left out of its weights), filed no list, signed no agreement:
    # (0.5 × 30 + 0.95 × 15) / (30 + 15 + 10 + 15) = 41.79
    b = rating(ctx, "unit", units["B"], period)
    assert b.score == Decimal("41.79")


@pytest.mark.parametrize("weights, says", [
    ({**DEFAULT_WEIGHTS, "unit": {**DEFAULT_WEIGHTS["unit"], "points": 20}}, "合计为90，应为100"),
    ({**DEFAULT_WEIGHTS, "member": {"points": 50, "monthly_service": 50}}, "缺少到社区报到的权重"),
    ({**DEFAULT_WEIGHTS, "unit": {**DEFAULT_WEIGHTS["unit"], "points": -10, "lists": 50}},
     "不能为负数"),
    ("{not json", "不是有效的 JSON"),
])
def test_weights_not_summing_to_100_refuse_the_run_and_the_preview(
        app, ctx, api, as_user, monkeypatch, weights, says):
    monkeypatch.setitem(app.config, "STAR_WEIGHTS", weights)
    period = "2010Q2"  # a year no fixture takes (YEARS starts at 2011) and the demo is far from
    jobs_before = ctx.execute(text("SELECT count(*) FROM job")).scalar()
    refused = compute(api, period)
    assert refused.status_code == 422 and says in refused.json["message"]
    client, headers = api("zuzhibu")
    preview = client.post("/api/v1/star_rating/preview", json={"period": period}, headers=headers)
    assert preview.status_code == 422 and says in preview.json["message"]
    browser = as_user("zuzhibu")
    page = browser.post("/star_rating/compute", data={"period": period},
                        form_url="/star_rating/compute").get_data(as_text=True)
    assert says in page
    # nothing written: no rating, no job
    assert not ctx.execute(text("SELECT count(*) FROM star_rating WHERE period = :p"),
                           {"p": period}).scalar()
    assert ctx.execute(text("SELECT count(*) FROM job")).scalar() == jobs_before


def test_a_period_not_ended_is_previewed_not_stored(ctx, api, as_user, travelled_audit):
    import time_machine

    def counts():
        return ctx.execute(text("SELECT (SELECT count(*) FROM star_rating WHERE period IN "
                                "('2026Q4', '2026')), (SELECT count(*) FROM audit_log WHERE "
                                "resource = 'star_rating'), (SELECT count(*) FROM job)")).one()

    before = counts()
    with time_machine.travel(datetime(2026, 12, 6, 4, 0), tick=True):
        client, headers = api("jiedao01")
        done = client.post("/api/v1/star_rating/preview", json={"period": "2026Q4"},
                           headers=headers)
        assert done.status_code == 200, done.json
        assert done.json["preview"] is True and "预览" in done.json["label"]
        assert done.json["ended"] is False and done.json["units"]
        street_unit = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username = 'danwei01'")
                                  ).scalar()
        far_unit = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username = 'danwei03'")
                               ).scalar()
        shown = {row["id"] for row in done.json["units"]}
        assert street_unit in shown and far_unit not in shown  # the street's own subjects
        year = client.post("/api/v1/star_rating/preview", json={"period": "2026"},
                           headers=headers)
        assert year.status_code == 200 and len(year.json["units"][0]["inputs"]) == 4
        page = as_user("jiedao01").post("/star_rating/compute",
                                        data={"period": "2026Q4", "preview": "1"},
                                        form_url="/star_rating/compute").get_data(as_text=True)
        assert 'id="preview"' in page and "未保存" in page and "2026年第4季度" in page
        # a community admin, who does not compute ratings, does not preview them either
        shequ, shequ_headers = api("shequ01")
        assert shequ.post("/api/v1/star_rating/preview", json={"period": "2026Q4"},
                          headers=shequ_headers).status_code == 403
        # a period not begun has nothing to preview
        later = client.post("/api/v1/star_rating/preview", json={"period": "2027Q2"},
                            headers=headers)
        assert later.status_code == 422 and "2027-04-01开始" in later.json["message"]
    assert counts() == before


def test_a_subject_left_unrated_says_why_on_its_page(app, ctx, api, as_user, fixture_period,
                                                     travelled_audit):
    import time_machine

    from app.services.cobuild import unrated_reason

    units, year = fixture_period["units"], fixture_period["year"]
    # The clock in the quarter after the fixture's: Q2 is the last one ended.
    with time_machine.travel(datetime(year, 7, 15, 4, 0), tick=True):
        def reason(kind, pk):
            with app.test_request_context():
                from app.extensions import db
                from app.security.scope import unscoped
                with unscoped():
                    return unrated_reason(db.session, kind, pk)

        assert reason("unit", units["D"]) == f"{year}年第2季度尚未评定：季度结束后由街道党工委或区委组织部计算"
        assert compute(api, fixture_period["period"]).status_code == 200
        # D below the floor (95%), the page says so
        page = as_user("zuzhibu").get(f"/unit/show/{units['D']}").get_data(as_text=True)
        assert "不予评星：在职党员报到率75.0%，低于95%，不予评星" in page
        # a member with nothing in the quarter: no data
        idle = ctx.execute(text("SELECT id FROM member WHERE work_unit_id = :u ORDER BY id DESC"),
                           {"u": units["D"]}).scalars().first()
        page = as_user("zuzhibu").get(f"/member/show/{idle}").get_data(as_text=True)
        assert "本期没有可评分的数据" in page
        assert reason("unit", units["A"]) is None
