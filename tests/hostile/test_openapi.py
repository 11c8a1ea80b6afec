"""The REST API fuzzed from its own OpenAPI document (schemathesis), with a logged-in token.

The document is the one FAB serves at /api/v1/_openapi when FAB_API_SWAGGER_UI is on: built
here by FAB's own `OpenApi` view code (the testing app runs with the switch off, and a view
cannot be added to an app that has served requests). Every GET operation, and the writes of a
few resources, get a bounded number of generated requests; each response must not be a server
error and must conform to the document (status code declared, body matching its schema).
"""
from __future__ import annotations

import re
import time
from urllib.parse import unquote

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.openapi.checks import JsonSchemaError, UndefinedStatusCode
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.conftest import api_token

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
GET_EXAMPLES = 3
WRITE_EXAMPLES = 8
DEADLINE_MS = 30_000  # per generated request, on a loaded 2-core machine
# Writes on a few resources with plain fields (and the logged-in user's own data untouched):
# dictionary entries, resources of the lists, joint-meeting supervision notes.
WRITE_PATHS = ("/api/v1/dictionary/", "/api/v1/resource/", "/api/v1/supervision_note/")
# Not the security API's writes: they would let the fuzzer change the admin's own password
# and roles mid-run (its GETs are fuzzed); FAB's login endpoint is used by every fixture.


def openapi_document(app) -> dict:
    """What GET /api/v1/_openapi answers (flask_appbuilder.api.manager.OpenApi.get)."""
    from flask_appbuilder.api import BaseApi
    from flask_appbuilder.api.manager import OpenApi

    with app.test_request_context("/api/v1/_openapi"):
        spec = OpenApi._create_api_spec("v1")
        for view in app.appbuilder.baseviews:
            if isinstance(view, BaseApi) and view.version == "v1":
                view.add_api_spec(spec)
        return spec.to_dict()


def _operations(schema):
    for result in schema.get_all_operations():
        operation = result.ok()
        path, method = operation.path, operation.method.upper()
        if method == "GET" or (method in ("POST", "PUT") and path.startswith(WRITE_PATHS)):
            yield operation


# Where FAB 5.3's generated document does not describe what FAB itself answers. These are
# upstream (flask_appbuilder/api/__init__.py and its menu API), the same for every FAB app;
# each is matched narrowly, so that any other mismatch fails the test.
DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$")


def fab_upstream(operation, response, failure) -> str | None:
    """Why a failure is FAB's documented-vs-served mismatch, or None if it is ours."""
    path, status = operation.path, response.status_code
    if isinstance(failure, UndefinedStatusCode):
        # GET/PUT/DELETE /{pk} are routed with <int:pk>: a negative id matches no GET route
        # but another method's, so Werkzeug answers 405 (now in JSON, app/errors.py).
        if status == 405 and "{pk}" in path:
            return "405 for a negative id"
        return None
    if not isinstance(failure, JsonSchemaError):
        return None
    where, value = list(failure.instance_path), failure.instance
    if path.startswith("/api/v1/security/"):
        return "FAB's security API (users, roles, groups)"
    if where[:1] == ["ids"] and isinstance(value, int):
        return "list ids declared as strings"
    if where == ["id"] and isinstance(value, int):
        return "the row's id declared as a string"
    if where == ["message"] and status in (400, 422) and isinstance(value, dict):
        return "field errors declared as one string"
    if path.endswith("/_info") and where[:1] in (["add_columns"], ["edit_columns"]):
        return "_info columns declared as an object"
    if isinstance(value, str) and DATE_TIME.match(value) and "date-time" in str(failure):
        return "naive date-time declared as RFC 3339"
    if isinstance(value, str) and DECIMAL.match(value) and "number" in str(failure):
        return "Numeric columns sent as strings, declared as numbers"
    if path == "/api/v1/menu/" and value == "-":
        return "menu separators declared as objects"
    if where[:1] == ["result"] and "is a required property" in str(failure) \
            and "columns" in unquote(response.request.url):
        return "a list narrowed by q's columns, declared with every column required"
    return None


def _exercise(operation, app, headers, examples):
    """Run one operation's generated cases: (cases, our failures, FAB's known ones)."""
    failures: list[str] = []
    known: dict[str, int] = {}
    count = 0

    @settings(max_examples=examples, deadline=DEADLINE_MS, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case):
        nonlocal count
        count += 1
        response = case.call(app=app, headers=headers)
        try:
            case.validate_response(response, checks=CHECKS)
        except (Failure, FailureGroup) as exc:  # keep going: report every operation's failures
            found = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
            for failure in found:
                reason = fab_upstream(operation, response, failure)
                if reason:
                    known[reason] = known.get(reason, 0) + 1
                    continue
                text = [line.strip() for line in str(failure).strip().splitlines() if line.strip()]
                failures.append(f"{operation.method.upper()} {operation.path}: "
                                f"{response.status_code} — " + " | ".join(text[:8]))

    run()
    return count, failures, known


@pytest.fixture(scope="module")
def schema(app):
    document = openapi_document(app)
    loaded = schemathesis.openapi.from_dict(document)
    loaded.app = app
    return loaded


def test_the_api_answers_every_generated_request_within_its_schema(app, schema):
    headers = api_token(app, "admin")
    started = time.monotonic()
    operations, cases, failures, known = 0, 0, [], {}
    for operation in _operations(schema):
        examples = GET_EXAMPLES if operation.method.upper() == "GET" else WRITE_EXAMPLES
        ran, found, fab = _exercise(operation, app, headers, examples)
        operations += 1
        cases += ran
        failures += found
        for reason, times in fab.items():
            known[reason] = known.get(reason, 0) + times
    elapsed = time.monotonic() - started
    print(f"\nschemathesis: {operations} operations, {cases} cases, {elapsed:.0f} s; "
          f"FAB's own document mismatches tolerated: {known}")
    assert operations >= 50, "the document lists every resource's operations"
    assert not failures, "\n".join(dict.fromkeys(failures))


def test_what_the_fuzzer_found_stays_fixed(app, api, ctx):
    """Findings of the first runs: a related record sent as a JSON object or an unknown id (FAB
    built a new row from it, or failed with a 500), a lone surrogate in a text field and an
    integer past the column's range (the flush failed: 500), and HTML error pages under /api/."""
    from sqlalchemy import text

    client, headers = api("danwei01")
    unit_id = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username='danwei01'")).scalar()
    category = ctx.execute(text(
        "SELECT id FROM dictionary WHERE kind='resource_category' ORDER BY id")).scalar()
    count = lambda: ctx.execute(text("SELECT count(*) FROM resource")).scalar()
    before = count()
    good = {"unit": unit_id, "year": 2026, "title": "会议室", "category": category}
    for unit in ({"name": "新单位"}, {"id": 999_999, "name": "新单位"}, 999_999, "\ud800",
                 [unit_id], True):
        response = client.post("/api/v1/resource/", headers=headers, json={**good, "unit": unit})
        assert response.status_code == 422, (unit, response.get_data(as_text=True))
        assert "unit" in response.json["message"]
    response = client.post("/api/v1/resource/", headers=headers, json={**good, "title": "\ud800会"})
    assert response.status_code == 422 and "字符" in response.json["message"]
    response = client.post("/api/v1/resource/", headers=headers, json={**good, "year": 10 ** 20})
    assert response.status_code == 422 and "范围" in response.json["message"]
    assert count() == before
    for method, url, status in (("GET", "/api/v1/resource/-1", 405),
                                ("POST", "/api/v1/resource/-1/transition/submit", 404),
                                ("GET", "/api/v1/no-such-resource/", 404)):
        response = client.open(url, method=method, headers=headers)
        assert response.status_code == status and response.is_json, url
    assert client.post("/api/v1/resource/", headers=headers,
                       json={**good, "unit": {"id": unit_id}}).status_code == 201
    assert count() == before + 1
