"""Public intake under load: residents filing needs from 50 addresses at 200 a minute, on
gunicorn (several workers) and PostgreSQL, with the limits counted in Redis.

    .venv/bin/python -m reliability.intake [--seconds 180] [--per-minute 200] [--addresses 50]

Each submission is what a phone does: GET /public/intake/<code> (the form, its CSRF token and
its arithmetic question), then POST the answer, a description, a phone and a small photo — over
a connection bound to its own source address 127.0.0.x, so that the app sees 50 clients
without trusting any proxy header. Phones are shared so that some of them go past the daily
per-phone limit, and each phone's second report repeats its first (same category): the
duplicate is attached to the first need.

Passes when every answer is a 302 to a tracking page (new or repeat) or a 429 in Chinese (no
other status, no connection error), every new code names exactly one stored need (待受理,
扫码点单) with one create record in the audit log, the repeats are counted on their first
need, and nothing else was stored.
"""
from __future__ import annotations

import argparse
import http.client
import os
import re
import statistics
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from . import common
from .common import Server, log

REDIS_URL = os.environ.get("RELIABILITY_REDIS_URL", "redis://127.0.0.1:6379/2")
PHONE_USES = 8  # each phone files this many times: the 6th and later pass the limit of 5
# A JPEG's bare structure (SOI, APP0, an EXIF segment the app strips, a scan, EOI).
PHOTO = (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
         b"\xff\xe1\x00\x10Exif\x00\x00GPS=39.9" b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
         b"\x12\x34\xff\xd9")


def plan() -> dict:
    community = common.rows(
        "SELECT o.id, o.code FROM ab_user u JOIN organization o ON o.id = u.org_id "
        "WHERE u.username = 'shequ01'")[0]
    categories = [r[0] for r in common.rows(
        "SELECT id FROM dictionary WHERE kind = 'need_category' AND active ORDER BY id")]
    return {"community": community[0], "code": community[1], "categories": categories,
            "need_baseline": common.scalar("SELECT coalesce(max(id), 0) FROM need"),
            "audit_baseline": common.scalar("SELECT coalesce(max(id), 0) FROM audit_log")}


def _multipart(fields: dict, photo: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f"{value}\r\n".encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; '
                 f'filename="photo.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
                 + photo + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def submit(the_plan: dict, address: str, phone: str, category: int, n: int) -> dict:
    """One resident's visit: the form, then the report. Returns what happened."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", common.PORT, timeout=60,
                                            source_address=(address, 0))
    try:
        path = f"/public/intake/{the_plan['code']}"
        connection.request("GET", path)
        response = connection.getresponse()
        page = response.read().decode()
        if response.status == 429:
            return {"outcome": "limited" if "过于频繁" in page else "error",
                    "status": 429, "seconds": time.perf_counter() - started}
        cookie = "; ".join(c.split(";", 1)[0] for c in response.headers.get_all("Set-Cookie") or [])
        a, op, b = re.search(r"验证题：(\d+) (加|减) (\d+) 等于几", page).groups()
        fields = {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1),
                  "check": re.search(r'name="check" value="([^"]+)"', page).group(1),
                  "answer": int(a) + int(b) if op == "加" else int(a) - int(b),
                  "kind": "need", "category": category, "name": "居民",
                  "content": f"负载测试第{n}件：楼道灯不亮", "phone": phone}
        body, content_type = _multipart(fields, PHOTO)
        connection.request("POST", path, body=body, headers={
            "Content-Type": content_type, "Cookie": cookie})
        response = connection.getresponse()
        text = response.read().decode(errors="replace")
        seconds = time.perf_counter() - started
        location = response.headers.get("Location", "")
        found = re.search(r"/public/track/([^?]+)\?filed=(new|repeat)", location)
        if response.status == 302 and found:
            return {"outcome": found.group(2), "code": found.group(1), "status": 302,
                    "seconds": seconds, "phone": phone, "address": address}
        if response.status == 429 and "过于频繁" in text:
            return {"outcome": "limited", "status": 429, "seconds": seconds}
        refused = re.search(r'class="pi-error"[^>]*>([^<]*)<', text)
        return {"outcome": "error", "status": response.status, "seconds": seconds,
                "body": refused.group(1) if refused else text[:300]}
    except (OSError, http.client.HTTPException, AttributeError) as error:
        return {"outcome": "error", "status": None, "error": repr(error),
                "seconds": time.perf_counter() - started}
    finally:
        connection.close()


def run(the_plan: dict, seconds: int, per_minute: int, addresses: int) -> list[dict]:
    total = seconds * per_minute // 60
    interval = 60 / per_minute
    phones = max(total // PHONE_USES, 1)
    categories = the_plan["categories"]
    results: list[dict] = []
    lock = threading.Lock()

    def one(i):
        use = i // phones  # how many times this phone filed before
        # The second report repeats the first (same category): a duplicate within 24 h.
        category = categories[(0 if use == 1 else use) % len(categories)]
        outcome = submit(the_plan, f"127.0.0.{2 + i % addresses}", f"137{i % phones:08d}",
                         category, i)
        with lock:
            results.append(outcome)

    log(f"intake: {total} submissions over {seconds} s from {addresses} addresses, "
        f"{phones} phones")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        for i in range(total):
            delay = started + i * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, i)
    return results


def verify(the_plan: dict, results: list[dict]) -> dict:
    problems = []
    outcomes = Counter(r["outcome"] for r in results)
    new = {r["code"] for r in results if r["outcome"] == "new"}
    repeats = [r for r in results if r["outcome"] == "repeat"]
    if len(new) != outcomes["new"]:
        problems.append("a tracking code was given to two new needs")
    stored = common.rows(
        "SELECT tracking_code, status, source, repeat_reports, photo_id FROM need WHERE id > :b",
        b=the_plan["need_baseline"])
    by_code = {r[0]: r for r in stored}
    if set(by_code) != new:
        problems.append(f"needs stored {len(by_code)} ≠ new needs answered {len(new)}")
    if any(r[1] != "待受理" or r[2] != "扫码点单" or r[4] is None for r in stored):
        problems.append("a stored need is not 待受理/扫码点单 with its photo")
    if any(r["code"] not in new for r in repeats):
        problems.append("a repeat was given a code that is not a need of this run")
    if sum(r[3] for r in stored) != len(repeats):
        problems.append(f"repeat_reports {sum(r[3] for r in stored)} ≠ repeats {len(repeats)}")
    creates = common.scalar(
        "SELECT count(*) FROM audit_log WHERE id > :a AND resource = 'need' AND action = 'create'",
        a=the_plan["audit_baseline"])
    if creates != len(new):
        problems.append(f"create records {creates} ≠ new needs {len(new)}")
    # The app saw each client's own address (the per-address limit counts by it): the creates
    # were recorded from exactly the addresses the new needs were sent from.
    addresses = {r[0] for r in common.rows(
        "SELECT DISTINCT ip FROM audit_log WHERE id > :a AND resource = 'need' "
        "AND action = 'create'", a=the_plan["audit_baseline"])}
    sent_from = {r["address"] for r in results if r["outcome"] == "new"}
    if addresses != sent_from:
        problems.append(f"creates recorded from {len(addresses)} addresses ≠ the "
                        f"{len(sent_from)} they were sent from")
    if outcomes["error"]:
        problems.append(f"{outcomes['error']} errors: "
                        f"{[r for r in results if r['outcome'] == 'error'][:3]}")
    times = sorted(r["seconds"] for r in results)
    return {"submissions": len(results), "new": outcomes["new"], "repeat": outcomes["repeat"],
            "limited_429": outcomes["limited"], "errors": outcomes["error"],
            "stored": len(by_code), "audit_creates": creates, "client_addresses": len(addresses),
            "visit_p50_ms": round(statistics.median(times) * 1000) if times else None,
            "visit_p95_ms": round(times[int(len(times) * 0.95) - 1] * 1000) if times else None,
            "problems": problems}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int,
                        default=int(os.environ.get("RELIABILITY_INTAKE_SECONDS", "180")))
    parser.add_argument("--per-minute", type=int, default=200)
    parser.add_argument("--addresses", type=int, default=50)
    parser.add_argument("--keep-db", action="store_true", help="reuse the database as it is")
    args = parser.parse_args(argv)
    if not args.keep_db:
        common.fresh_database("demo")
    the_plan = plan()
    # The limits in Redis, under a prefix of this run's own (an hour's counts stay there).
    limits = {"RATELIMIT_STORAGE_URI": REDIS_URL,
              "RATELIMIT_KEY_PREFIX": f"gongjian-intake-{uuid.uuid4().hex[:8]}"}
    with Server(name="intake", env=limits):
        results = run(the_plan, args.seconds, args.per_minute, args.addresses)
    checked = verify(the_plan, results)
    result = {"seconds": args.seconds, "per_minute": args.per_minute,
              "addresses": args.addresses, "workers": common.WORKERS, "redis": REDIS_URL,
              **checked}
    path = common.save("intake", result)
    for key, value in result.items():
        print(f"{key}: {value}")
    log(f"figures written to {path}")
    ok = not checked["problems"] and checked["new"] > 0 and checked["limited_429"] > 0
    log("INTAKE LOAD " + ("PASSED" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
