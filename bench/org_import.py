"""The organisation tree by import at size (issue 20): 2,000 nodes — communities, grids and
building groups under one street, rows shuffled, half the 编码 left to be generated —
imported by the street's admin (`jiedao01`) into a fresh SQLite database seeded at the test
scale, as `flask import organization FILE --as jiedao01` does. Target: within 10 s.

    .venv/bin/python -m bench.org_import [--nodes 2000] [--repeat 3]

Prints the machine, each sample and the median; the last report is kept in
bench/results/org_import.txt.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from bench.run import RESULTS, commit, machine

TARGET_SECONDS = 10.0


def tree_file(street_code: str, nodes: int) -> bytes:
    """`nodes` rows: communities of 4 grids of 4 building groups (21 nodes each), shuffled."""
    rows, c = [], 0
    while len(rows) < nodes:
        c += 1
        community = f"B{c:03d}"
        rows.append([f"测试{c}社区党委", street_code, "社区党组织", community])
        for g in range(1, 5):
            grid = f"{community}G{g}"
            rows.append([f"测试{c}社区第{g}网格党支部", community, "网格党支部", grid])
            for b in range(1, 5):
                # every other building group by its grid's name and without 编码 (generated)
                if b % 2:
                    rows.append([f"测试{c}社区{g}网格{b}号楼", grid, "楼栋党小组", ""])
                else:
                    rows.append([f"测试{c}社区{g}网格{b}号楼", f"测试{c}社区第{g}网格党支部",
                                 "楼栋党小组", f"{grid}B{b}"])
    rows = rows[:nodes]
    random.Random(2026).shuffle(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["组织名称", "上级组织", "组织类型", "组织编码"])
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


def sample(nodes: int) -> tuple[float, float]:
    """One import into a fresh database: its wall-clock and CPU seconds (the file's reading
    included). The CPU time tells a busy shared machine from a slow import."""
    from flask_migrate import upgrade

    from app import create_app
    from app.cli import sync_roles
    from app.extensions import appbuilder, db
    from app.imports import REGISTRY
    from app.security.scope import acting_as, principal_for
    from app.services.defaults import ensure_dictionary
    from seed.demo import seed_demo

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        app = create_app("testing", SQLALCHEMY_DATABASE_URI=url)
        with app.app_context():
            upgrade()
            sync_roles()
            ensure_dictionary(db.session)
            seed_demo(scale="test", password="Bench-Passw0rd!", echo=lambda *a: None)
            user = appbuilder.sm.find_user(username="jiedao01")
            data = tree_file(user.org.code, nodes)
            importer = REGISTRY["organization"]
            with app.test_request_context(), acting_as(principal_for(user)):
                started, cpu = time.perf_counter(), time.process_time()
                outcome = importer.run("tree.csv", data)
                seconds = time.perf_counter() - started, time.process_time() - cpu
            assert outcome.written and outcome.created == nodes, outcome.problems[:5]
            db.session.remove()
            db.engine.dispose()
    return seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    samples = [sample(args.nodes) for _ in range(args.repeat)]
    median = statistics.median(wall for wall, _ in samples)
    lines = [
        f"Organisation tree import, SQLite, {args.nodes} nodes in shuffled order (commit {commit()})",
        f"machine: {machine()}",
        f"load average (1, 5, 15 min): {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        "samples (wall / CPU): " + ", ".join(f"{w:.2f} s / {c:.2f} s" for w, c in samples),
        f"median: {median:.2f} s — target {TARGET_SECONDS:.0f} s: "
        + ("met" if median <= TARGET_SECONDS else "MISSED"),
    ]
    report = "\n".join(lines)
    print(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "org_import.txt").write_text(report + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
