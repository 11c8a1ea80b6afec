"""Every cell of the access matrix (tests/security/matrix.py) driven through the HTML routes
and the REST API with the demo users.

How a cell is judged (FAB 5.3 with a logged-in user):
- refused: 403 — FAB's permission check runs before the row is looked up, so a refused cell
  answers 403 whichever row it names. A workflow move is refused with 403 and the message
  "您的角色不能执行…" (or FAB's "Forbidden" when the role cannot even read the resource).
- allowed: the request got past the permission check — a page (200), a redirect after a
  write (302, not to the login page), or, for API writes with an empty body, the validation
  answer (400/422); a move may also answer 409 (wrong status) or 403 for a row rule
  ("not your unit"), which are past the role check. Allowed cells name a row inside the
  user's scope: one it owns for writes, one it may read otherwise. Where the user has no such
  row (e.g. no star rating exists yet), 404 is accepted — the 403/404 difference still shows
  the permission — and the cell is tallied as "gate only".
- a move made through the show page's form (`form move:`) is refused with the flashed
  message "您的角色不能执行…" and no change (FAB's 403 when the role cannot read the
  resource at all); the form answers a refused move with its message, as it answers a move
  from the wrong status, rather than with a status code.
- not offered (the route does not exist for anybody): 403, 404 or 405.

Writes (delete, bulk delete, API post/put/delete, moves, form posts) run inside `rolled_back`:
what the app commits is undone, so the shared test database is left as it was.
"""
from __future__ import annotations

import collections
import time

import pytest

from tests.security import matrix
from tests.security.support import Clients, message_of, record, rolled_back, sample_ids

ROW_OPS = {"show", "edit", "delete", "bulk", "api_get", "api_put", "api_delete"}
OWNED_OPS = {"edit", "delete", "bulk", "api_put", "api_delete"}
WRITES = {"delete", "bulk", "api_post", "api_put", "api_delete"}
MISSING = 999_999_999
VIEW_NAMES: dict[str, str] = {}

TALLY: collections.Counter = collections.Counter()
SECONDS: collections.Counter = collections.Counter()  # per operation, to keep the run short
STARTED = time.monotonic()


@pytest.fixture(scope="module")
def clients(app):
    return Clients(app)


def view_name(app, resource) -> str:
    if resource not in VIEW_NAMES:
        VIEW_NAMES[resource] = next(v.__class__.__name__ for v in app.appbuilder.baseviews
                                    if getattr(v, "route_base", None) == f"/{resource}")
    return VIEW_NAMES[resource]


def _pick(ids, op, expected):
    """The row a cell names, and whether it lies where an allowed cell needs it."""
    wanted = ids["owned"] if op in OWNED_OPS else ids["readable"]
    if wanted is not None:
        return wanted, True
    return (ids["readable"] or ids["any"] or MISSING), not expected


def _request(clients, username, resource, op, pk):
    browser = clients.browser(username)
    base, api = f"/{resource}", f"/api/v1/{resource}/"
    if op == "list":  # one row is enough to show the page is served
        return browser.get(f"{base}/list/?psize_{view_name(clients.app, resource)}=1")
    if op == "show":
        return browser.get(f"{base}/show/{pk}")
    if op == "add":
        return browser.get(f"{base}/add")
    if op == "edit":
        return browser.get(f"{base}/edit/{pk}")
    if op == "delete":
        return clients.post(username, f"{base}/delete/{pk}")
    if op == "bulk":
        return clients.post(username, f"{base}/action_post",
                            {"action": "muldelete", "rowid": str(pk)})
    if op == "export":
        response = browser.get(f"{base}/export/csv")
        response.get_data()  # run the stream to its end, as a download would
        return response
    if op == "import":
        return browser.get(f"{base}/import/")
    client, headers = clients.api(username)
    if op == "api_list":
        return client.get(f"{api}?q=(page_size:5)", headers=headers)
    if op == "api_get":
        return client.get(f"{api}{pk}", headers=headers)
    if op == "api_post":
        return client.post(api, json={}, headers=headers)
    if op == "api_put":
        return client.put(f"{api}{pk}", json={}, headers=headers)
    if op == "api_delete":
        return client.delete(f"{api}{pk}", headers=headers)
    if op.startswith("move:"):
        return client.post(f"{api}{pk}/transition/{op[5:]}", json={}, headers=headers)
    if op.startswith("form move:"):
        response = clients.post(username, f"{base}/transition/{pk}/{op[10:]}")
        # The refusal is flashed: on the page re-shown, or kept for the page redirected to.
        with browser.client.session_transaction() as session:
            flashes = session.pop("_flashes", [])
        response.flashed = " ".join(message for _, message in flashes)
        return response
    raise AssertionError(op)


def verdict(response, op) -> str:
    status = response.status_code
    if status >= 500:
        return f"error {status}"
    if "form move:" in op and status < 400:
        # The form answers a refused move with its message, not a status of its own.
        said = getattr(response, "flashed", "") + response.get_data(as_text=True)
        return "refused" if "您的角色不能执行" in said else "allowed"
    if status == 403:
        if op.startswith("move:"):
            message = message_of(response)
            if message != "Forbidden" and "您的角色不能执行" not in message:
                return "allowed"  # a row rule spoke: the role itself may make the move
        return "refused"
    if status in (404, 405):
        return "absent"
    if status == 401 or (300 <= status < 400 and "/login" in response.headers.get("Location", "")):
        return "logged out"
    return "allowed"


def check_cell(app, clients, role, resource, op, ids) -> str | None:
    """Run one cell; a readable mismatch, or None."""
    username = matrix.ROLE_USERS[role]
    expected = matrix.allowed(role, resource, op)
    offered = matrix.offered(resource, op)
    if "move:" in op:
        pk, in_place = ids["readable"] or ids["any"] or MISSING, bool(ids["readable"])
    elif op in ROW_OPS:
        pk, in_place = _pick(ids, op, expected)
    else:
        pk, in_place = None, True
    started = time.monotonic()
    if op in WRITES or "move:" in op:
        with rolled_back(app):
            got = verdict(_request(clients, username, resource, op, pk), op)
    else:
        got = verdict(_request(clients, username, resource, op, pk), op)
    if not offered:
        ok = got in ("refused", "absent")
        want = "not offered"
    elif expected:
        ok = got == "allowed" or (got == "absent" and not in_place)
        want = "allowed"
    else:
        ok = got == "refused" or (got == "absent" and "move:" in op and not ids["readable"])
        want = "refused (403)"
    TALLY["cells"] += 1
    SECONDS[op.split(":")[0]] += time.monotonic() - started
    TALLY["allowed" if expected else "refused"] += 1
    if got == "absent" and ok and offered:
        TALLY["gate only"] += 1
    if ok:
        return None
    return f"{role:14} {resource:20} {op:18} expected {want:14} got {got} (row {pk})"


def _post_form(app, clients, username, url):
    with rolled_back(app):
        return clients.post(username, url)


@pytest.mark.parametrize("resource", list(matrix.TABLE))
@pytest.mark.parametrize("role", matrix.ROLES)
def test_access_matrix(app, clients, role, resource):
    username = matrix.ROLE_USERS[role]
    ids = sample_ids(app, username, resource)
    mismatches = [m for op in matrix.operations(resource)
                  if (m := check_cell(app, clients, role, resource, op, ids))]
    # A refused form is refused on POST too, not only when the form is asked for.
    for op, url in (("add", f"/{resource}/add"), ("edit", f"/{resource}/edit/{ids['any']}")):
        if matrix.offered(resource, op) and not matrix.allowed(role, resource, op):
            TALLY["refused posts"] += 1
            got = verdict(_post_form(app, clients, username, url), op)
            if got != "refused":
                mismatches.append(f"{role:14} {resource:20} POST {op:13} expected refused (403) "
                                  f"got {got}")
    assert not mismatches, "access matrix mismatches:\n" + "\n".join(mismatches)


FORM_SAMPLES = {  # one allowed form POST per role: an empty form is re-shown with its errors
    "Admin": "point_rule", "OrgAdmin": "dictionary", "StreetAdmin": "organization",
    "CommunityAdmin": "need", "UnitLiaison": "resource", "Member": "service_record",
}


@pytest.mark.parametrize("role", list(FORM_SAMPLES))
def test_an_allowed_form_post_passes_the_gate_and_writes_nothing(app, clients, role):
    resource = FORM_SAMPLES[role]
    assert matrix.allowed(role, resource, "add")
    count = f"SELECT count(*) FROM {resource}"
    with rolled_back(app) as conn:  # counted on the app's own connection: a write would show
        before = conn.exec_driver_sql(count).scalar()
        response = clients.post(matrix.ROLE_USERS[role], f"/{resource}/add")
        after = conn.exec_driver_sql(count).scalar()
    # Past the gate (not 403), the empty form is shown again with its errors (not saved: 302).
    assert response.status_code == 200, (role, resource, response.status_code)
    assert 'class="alert alert-danger"' in response.get_data(as_text=True), \
        "no validation message shown"
    assert after == before
    TALLY["allowed posts"] += 1


def test_every_cell_was_exercised():
    """Runs last in this module: the tally equals the matrix's size (no cell skipped)."""
    total = len(matrix.cells())
    if TALLY["cells"] == 0:
        pytest.skip("run with the matrix tests")
    assert TALLY["cells"] == total, (TALLY["cells"], total)
    seconds = ", ".join(f"{op} {s:.0f}" for op, s in SECONDS.most_common())
    record("security-matrix",
           f"access matrix: {TALLY['cells']} cells ({TALLY['allowed']} allowed, "
           f"{TALLY['refused']} refused; {TALLY['gate only']} allowed cells without a row in "
           f"scope, judged by 403 vs 404), {TALLY['refused posts']} refused form posts, "
           f"{TALLY['allowed posts']} allowed form posts, "
           f"{time.monotonic() - STARTED:.0f} s (seconds per operation: {seconds})")
