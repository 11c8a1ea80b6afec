"""Load: 50 simulated users on gunicorn (several workers) and PostgreSQL, then every write
accounted for.

    .venv/bin/python -m reliability.load [--seconds 180] [--users 50] [--keep-db]

Passes when no request failed (any status other than 2xx/3xx, a lost session, a refused
login; the 409s of racing moves are counted apart and must each be explained by the winner's
move), and when the database and the audit log hold exactly the journalled writes: every
need filed exists once with its create record; every move is one `transition` audit record of
that name, none missing and none extra; each need's audit trail chains status to status and
ends at the status the row has.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import subprocess
from collections import Counter, defaultdict

from app.security.roles import RIGHTS

from . import common
from .common import ARTIFACTS, BIN, ROOT, Server, log

# The load reads every export as a CSV answered in the request, as it did before exports past
# EXPORT_INLINE_MAX_ROWS became jobs (issue 21); jobs under load are reliability/two_hosts.py's.
# Its server's setting only (not this process's: another run importing this module keeps its own).
EXPORTS_IN_THE_REQUEST = {"EXPORT_INLINE_MAX_ROWS": "10000000"}

# The entity lists the readers browse (each role only those it may read).
BROWSED = ["need", "micro_wish", "service_item", "resource", "unit", "member", "organization",
           "service_post", "service_record", "point_entry", "star_rating", "meeting", "agreement"]
USERS = ["zuzhibu", "jiedao01", "shequ01", "danwei01", "danwei02", "danwei03", "shenji",
         "dangyuan01"]


def plan(seconds: int) -> dict:
    """What the simulated users need to know: their rights, the community and units of the
    loop, and the newest need before the run (the run's needs are those after it)."""
    roles = dict(common.rows(
        "SELECT u.username, r.name FROM ab_user u JOIN ab_user_role ur ON ur.user_id = u.id "
        "JOIN ab_role r ON r.id = ur.role_id WHERE u.username = ANY(:names)", names=USERS))
    assert set(roles) == set(USERS), f"demo users missing: {set(USERS) - set(roles)}"

    def granted(user, op):
        return [r for r in BROWSED if op in RIGHTS.get(r, {}).get(roles[user], set())]

    units = dict(common.rows("SELECT username, unit_id FROM ab_user WHERE username IN "
                             "('danwei01', 'danwei02')"))
    community = common.scalar(
        "SELECT o.id FROM ab_user u JOIN organization o ON o.id = u.org_id WHERE u.username = 'shequ01'")
    return {
        "password": common.PASSWORD,
        "readable": {u: granted(u, "read") for u in USERS},
        "exportable": {u: granted(u, "export") for u in USERS},
        "units": units,
        "community": community,
        "category": common.scalar("SELECT min(id) FROM dictionary WHERE kind = 'need_category'"),
        "need_baseline": common.scalar("SELECT coalesce(max(id), 0) FROM need"),
        "journal": str(ARTIFACTS / "load-journal.json"),
        "seconds": seconds,
    }


def run_locust(the_plan: dict, users: int, seconds: int, host: str = common.BASE_URL,
               name: str = "load") -> None:
    env = {**os.environ, "RELIABILITY_PLAN": json.dumps(the_plan, ensure_ascii=False)}
    subprocess.run([
        str(BIN / "locust"), "-f", str(ROOT / "reliability" / "locustfile.py"), "--headless",
        "-u", str(users), "-r", "5", "-t", f"{seconds}s", "--host", host,
        "--csv", str(ARTIFACTS / name), "--only-summary", "--stop-timeout", "150",
        "--exit-code-on-error", "0", "--loglevel", "WARNING"],
        cwd=ROOT, env=env, check=True)


def stats(name: str = "load") -> dict:
    """Locust's per-request figures: count, failures, p50/p95 (ms)."""
    table = {}
    with open(ARTIFACTS / f"{name}_stats.csv", newline="") as f:
        for row in csv.DictReader(f):
            table[f"{row['Type']} {row['Name']}"] = {
                "requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                "p50_ms": _ms(row["50%"]), "p95_ms": _ms(row["95%"]),
                "rps": round(float(row["Requests/s"]), 2)}
    failures = []
    with open(ARTIFACTS / f"{name}_failures.csv", newline="") as f:
        failures = [dict(row) for row in csv.DictReader(f)]
    return {"pages": table, "failures": failures}


def _ms(value: str):
    return None if value in ("", "N/A") else int(float(value))


def verify(the_plan: dict, journal: dict) -> dict:
    """The journalled writes against the database and the audit log."""
    baseline = the_plan["need_baseline"]
    problems = []
    created = journal["created"]
    in_db = [r[0] for r in common.rows("SELECT id FROM need WHERE id > :b", b=baseline)]
    if sorted(created) != sorted(in_db):
        problems.append(f"needs filed {len(created)} ≠ needs in the database {len(in_db)}")
    create_records = Counter(n for n in (int(r[0]) for r in common.rows(
        "SELECT record_id FROM audit_log WHERE resource = 'need' AND action = 'create'"))
        if n > baseline)
    if create_records != Counter(created):
        problems.append("create records in the audit log differ from the needs filed")

    moved = defaultdict(list)
    for move in journal["moves"]:
        moved[move["need"]].append(move)
    trail = defaultdict(list)
    for record_id, changes in common.rows(
            "SELECT record_id, changes FROM audit_log WHERE resource = 'need' AND action = "
            "'transition' ORDER BY id"):
        if int(record_id) <= baseline:
            continue
        data = json.loads(changes)
        trail[int(record_id)].append((data["_operation"], *data["status"]))
    status = dict(common.rows("SELECT id, status FROM need WHERE id > :b", b=baseline))
    for need in set(moved) | set(trail):
        # The move went from the status the client saw when it listed the need (a status
        # changed meanwhile makes the move a 409, never a move from another status).
        client = Counter((m["name"], m["from"], m["to"]) for m in moved[need])
        audited = Counter(trail[need])
        if client != audited:
            problems.append(f"need {need}: client moves {dict(client)} ≠ audit {dict(audited)}")
        chain = trail[need]
        for (_, _, after), (_, before, _) in itertools.pairwise(chain):
            if after != before:
                problems.append(f"need {need}: audit trail breaks ({after} → {before})")
        last = chain[-1][2] if chain else "待受理"
        if status.get(need) != last:
            problems.append(f"need {need}: status {status.get(need)} ≠ audit's last {last}")

    # A 409 is legitimate when another user moved the same need out of the status this one saw.
    unexplained = [c for c in journal["conflicts"]
                   if not any(m["from"] == c["from"] for m in moved[c["need"]])]
    if unexplained:
        problems.append(f"{len(unexplained)} conflicts (409) with no winning move: {unexplained[:3]}")
    loops = sum(1 for n, s in status.items() if s == "已回访")
    return {
        "needs_filed": len(created), "moves": len(journal["moves"]),
        "moves_by_name": dict(Counter(m["name"] for m in journal["moves"])),
        "conflicts_409": len(journal["conflicts"]), "conflicts_unexplained": len(unexplained),
        "loops_closed": loops, "audit_transition_records": sum(len(t) for t in trail.values()),
        "logins": dict(Counter(journal["logins"])), "problems": problems,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int,
                        default=int(os.environ.get("RELIABILITY_LOAD_SECONDS", "180")))
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--keep-db", action="store_true", help="reuse the seeded database")
    args = parser.parse_args(argv)
    if not args.keep_db:
        common.fresh_database("demo")
    the_plan = plan(args.seconds)
    with Server(name="load", env=EXPORTS_IN_THE_REQUEST):
        log(f"load: {args.users} users for {args.seconds} s on {common.WORKERS} gunicorn workers")
        run_locust(the_plan, args.users, args.seconds)
    with open(the_plan["journal"]) as f:
        journal = json.load(f)
    figures = stats()
    checked = verify(the_plan, journal)
    total = figures["pages"].pop(" Aggregated", None) or figures["pages"].pop("Aggregated", None)
    errors = sum(p["failures"] for p in figures["pages"].values())
    result = {"users": args.users, "seconds": args.seconds, "workers": common.WORKERS,
              "total": total, "errors": errors, **checked, "pages": figures["pages"],
              "failures": figures["failures"]}
    path = common.save("load", result)
    _print(result)
    log(f"figures written to {path}")
    ok = errors == 0 and not checked["problems"] and checked["moves"] > 0
    log("LOAD " + ("PASSED" if ok else "FAILED"))
    return 0 if ok else 1


def _print(result: dict) -> None:
    print(f"\n{'page':60} {'requests':>8} {'errors':>6} {'p50 ms':>7} {'p95 ms':>7}")
    for name, p in sorted(result["pages"].items()):
        print(f"{name:60} {p['requests']:>8} {p['failures']:>6} {p['p50_ms']!s:>7} {p['p95_ms']!s:>7}")
    keys = ["users", "seconds", "workers", "total", "errors", "needs_filed", "moves", "moves_by_name",
            "conflicts_409", "conflicts_unexplained", "loops_closed", "audit_transition_records",
            "logins", "problems"]
    for key in keys:
        print(f"{key}: {result[key]}")
    for failure in result["failures"][:20]:
        print("failure:", failure)


if __name__ == "__main__":
    raise SystemExit(main())
