"""Cross-unit probes (DOMAIN.md §4): danwei01, liaison of a unit in shequ01's community, goes
after rows of danwei02 (another unit of the same community) and danwei03 (a unit in another
street) that no rule makes visible to it — by id, by filter arguments, through the API, by
transitions and bulk actions, by related-record ids in forms and API bodies, and by import
files. Nothing may leak (no status that serves the row, no distinctive text or id of it in a
body) and nothing may change: every business table is compared before and after (the audit
log, the session and token tables and the login fields of ab_user may change)."""
from __future__ import annotations

import collections
import csv
import io
import re

import pytest
from sqlalchemy import MetaData, String, Text, func, select, text

from app import clock
from tests.security import matrix
from tests.security.support import Clients, model_of, record, rolled_back, user_principal

pytestmark = pytest.mark.db

PROBER, SAME_COMMUNITY, OTHER_STREET = "danwei01", "danwei02", "danwei03"
GLOBAL = {"dictionary", "point_rule", "assessment_indicator", "audit_log",
          "inspection_item"}  # the same for every user: nothing to probe
DIRECTORY = {"organization", "unit"}  # readable by every role; only writes are probed
LOGIN_FIELDS = {"last_login", "login_count", "fail_login_count", "changed_on", "locked_until",
                "failed_logins", "last_failed_login"}
PROBES: collections.Counter = collections.Counter()
EDITED = "越权修改PROBE"


@pytest.fixture(scope="module")
def clients(app):
    return Clients(app)


# --- the state that must not change ---------------------------------------------------------

def snapshot(conn) -> dict[str, list]:
    """Every row of every table but the audit log; ab_user without its login bookkeeping —
    read on the probes' own connection, so that what they wrote would show."""
    meta = MetaData()
    meta.reflect(conn)
    state = {}
    for name, table in sorted(meta.tables.items()):
        if name in ("audit_log", "alembic_version", "user_session", "refresh_token",
                    "stored_file", "file_chunk"):
            # (the sessions' and tokens' own bookkeeping: a request notes its session's activity;
            # a refused import's error report, kept in the file storage for its download link)
            continue
        columns = [c for c in table.columns
                   if not (name == "ab_user" and c.name in LOGIN_FIELDS)]
        order = list(table.primary_key.columns) or columns
        state[name] = [tuple(r) for r in conn.execute(select(*columns).order_by(*order))]
    return state


def changed_tables(before, after) -> list[str]:
    return [name for name in before if before[name] != after.get(name)]


# --- the rows danwei01 must not reach -------------------------------------------------------

def targets(app, resource) -> list[dict]:
    """For danwei02 and danwei03: the first row it owns (else reads) that danwei01 cannot
    read, with the texts that only that row carries among what danwei01 reads."""
    from app.extensions import db
    from app.security.scope import owner_clause, read_clause, unscoped

    model = model_of(resource)
    found = []
    with app.app_context():
        prober = user_principal(db.session, PROBER)
        hidden = read_clause(model, prober)
        with unscoped():
            for owner in (SAME_COMMUNITY, OTHER_STREET):
                principal = user_principal(db.session, owner)
                # NOT IN, not NOT(...): a rule on a NULL column is unknown, and NOT unknown
                # would drop the very rows it hides.
                base = select(model).where(model.deleted_on.is_(None),
                                           model.id.not_in(select(model.id).where(hidden))) \
                    .order_by(model.id)
                row = (db.session.scalars(base.where(owner_clause(model, principal))).first()
                       or db.session.scalars(base.where(read_clause(model, principal))).first())
                if row is None:
                    continue
                texts = []
                for column in model.__table__.columns:
                    value = getattr(row, column.key, None)
                    if not isinstance(column.type, (String, Text)) or not isinstance(value, str) \
                            or len(value) < 4 or column.key in ("status",):
                        continue
                    seen = db.session.execute(select(func.count()).select_from(model).where(
                        column == value, hidden)).scalar()
                    if not seen:
                        texts.append(value)
                found.append({"owner": owner, "pk": row.id, "texts": texts[:3]})
        db.session.remove()
    return found


def view_name(app, resource) -> str:
    return next(v.__class__.__name__ for v in app.appbuilder.baseviews
                if getattr(v, "route_base", None) == f"/{resource}")


def own_row(app, resource, username=PROBER):
    from app.extensions import db
    from app.security.scope import owner_clause, unscoped

    model = model_of(resource)
    with app.app_context():
        with unscoped():
            pk = db.session.execute(select(model.id).where(
                model.deleted_on.is_(None),
                owner_clause(model, user_principal(db.session, username)))
                .order_by(model.id).limit(1)).scalar()
        db.session.remove()
    return pk


# --- probes ---------------------------------------------------------------------------------

def leaks(body: str, resource: str, target: dict) -> list[str]:
    found = [t for t in target["texts"] if t in body]
    if re.search(rf'/{resource}/(show|edit)/{target["pk"]}["?/]', body):
        found.append(f"link to row {target['pk']}")
    return found


class Probe:
    def __init__(self, app, clients, resource):
        self.app, self.clients, self.resource = app, clients, resource
        self.browser = clients.browser(PROBER)
        self.api_client, self.headers = clients.api(PROBER)
        self.problems: list[str] = []

    def note(self, what, target, response, allowed=(403, 404), body_check=True, echo=None):
        PROBES["probes"] += 1
        body = response.get_data(as_text=True)
        if echo:  # the page repeats what was searched for (filter box, export links): the row's
            body = body.replace(echo, "")  # link and its other texts must still be absent
        where = f"{self.resource} row {target['pk']} of {target['owner']}: {what}"
        if response.status_code >= 500:
            self.problems.append(f"{where}: error {response.status_code}")
        elif allowed and response.status_code not in allowed:
            self.problems.append(f"{where}: answered {response.status_code}")
        if body_check and (found := leaks(body, self.resource, target)):
            self.problems.append(f"{where}: body shows {found}")

    def html(self, what, target, url, **kw):
        self.note(what, target, self.browser.get(url), **kw)

    def html_pages(self, what, target, url, view, **kw):
        """Every page of a list (a page shows at most 100 rows), each probed."""
        for page in range(1000):
            response = self.browser.get(f"{url}&psize_{view}=100&page_{view}={page}")
            self.note(f"{what}, page {page}", target, response, **kw)
            shown = set(re.findall(rf'href="/{self.resource}/show/(\d+)"',
                                   response.get_data(as_text=True)))
            if response.status_code != 200 or len(shown) < 100:
                return

    def post(self, what, target, url, data=None, **kw):
        self.note(what, target, self.clients.post(PROBER, url, data), **kw)

    def api(self, what, target, method, url, json=None, **kw):
        response = getattr(self.api_client, method)(url, json=json, headers=self.headers)
        self.note(what, target, response, **kw)
        return response


def probe_reads(p: Probe, target, resource):
    pk, base, api = target["pk"], f"/{resource}", f"/api/v1/{resource}/"
    p.html("show by id", target, f"{base}/show/{pk}")
    p.html("edit form by id", target, f"{base}/edit/{pk}")
    p.api("API get by id", target, "get", f"{api}{pk}")
    view = view_name(p.app, resource)
    everything = f"psize_{view}=100"
    p.html_pages("list, all pages", target, f"{base}/list/?", view, allowed=(200, 403))
    p.html("export", target, f"{base}/export/csv", allowed=(200, 403))
    communities = [unit_of(p.app, owner)[2] for owner in (SAME_COMMUNITY, OTHER_STREET)]
    for column in ("within", "id"):
        for value in (*communities, pk):  # the two units' communities, and the row's own id
            p.html_pages(f"list filtered {column}={value}", target,
                         f"{base}/list/?_flt_0_{column}={value}", view, allowed=(200, 403))
            p.html(f"export filtered {column}={value}", target,
                   f"{base}/export/csv?_flt_0_{column}={value}", allowed=(200, 403))
    for value in target["texts"][:1]:
        for column in ("title", "name", "content"):
            for op in (0, 1, 2):
                p.html(f"list filtered {column} op {op}", target,
                       f"{base}/list/?_flt_{op}_{column}={value}&{everything}", allowed=(200, 403),
                       echo=value)
        api_filter = f"(filters:!((col:title,opr:ct,value:'{value}')),page_size:100)"
        p.api("API list filtered by text", target, "get", f"{api}?q={api_filter}",
              allowed=(200, 400, 403))
    response = p.api("API list", target, "get", f"{api}?q=(page_size:100)", allowed=(200, 403))
    if response.status_code == 200:
        page, pages = 0, (response.json["count"] + 99) // 100
        while page + 1 < pages:  # every page, not just the first
            page += 1
            p.api("API list page", target, "get", f"{api}?q=(page_size:100,page:{page})",
                  allowed=(200,))


def probe_writes(p: Probe, target, resource, own_pk):
    pk, base, api = target["pk"], f"/{resource}", f"/api/v1/{resource}/"
    directory = resource in DIRECTORY
    # A directory row is readable: its edit form may be shown, the save must be refused.
    form_codes = (200, 403, 404) if directory else (403, 404)
    # 405: the ledger and the ratings have no PUT or DELETE at all.
    api_codes = (400, 403, 404, 405, 422) if directory else (403, 404, 405)
    text_fields = {"title": EDITED, "name": EDITED, "content": EDITED, "note": EDITED}
    p.post("edit form post", target, f"{base}/edit/{pk}", text_fields, allowed=form_codes,
           body_check=not directory)
    p.post("delete", target, f"{base}/delete/{pk}", allowed=(403, 404))
    p.post("bulk delete", target, f"{base}/action_post",
           {"action": "muldelete", "rowid": str(pk)}, allowed=(403, 404))
    if own_pk:  # one of its own rows beside: all or nothing, so nothing
        p.post("bulk delete with an own row", target, f"{base}/action_post",
               {"action": "muldelete", "rowid": [str(own_pk), str(pk)]}, allowed=(403, 404))
    p.api("API put", target, "put", f"{api}{pk}", {"title": EDITED}, allowed=api_codes,
          body_check=not directory)
    p.api("API delete", target, "delete", f"{api}{pk}", allowed=(403, 404, 405))
    for move in matrix.all_moves(resource):
        p.api(f"API move {move}", target, "post", f"{api}{pk}/transition/{move}",
              {"reason": "x", "result": "x", "unit": own_pk}, allowed=(403, 404))
        p.post(f"move {move}", target, f"{base}/transition/{pk}/{move}",
               {"reason": "x", "result": "x"}, allowed=(403, 404))
        p.post(f"bulk move {move}", target, f"{base}/action_post",
               {"action": f"bulk_{move}", "rowid": str(pk)}, allowed=(403, 404))


# Read by no liaison at all (its every operation refused to one, tests/security/matrix.py):
# no unit's row to probe for. 月汇报 is a node's report, for the node's and the tree's admins.
NO_UNIT_ROWS = {"work_report"}
PROBED = [r for r in matrix.TABLE if r not in GLOBAL | NO_UNIT_ROWS]


def plant(app, resource) -> None:
    """Rows the test data set lacks, made (as the system, inside the rolled-back block) for
    danwei02's and danwei03's units: a need dispatched to each, a point entry paid to each,
    a star-rating run (the units' assessment of the last full year is seeded), a resource of each proposed for a need of its community."""
    from app.extensions import db
    from app.models.cobuild import PointEntry
    from app.models.lists import Need, NeedResource, Resource
    from app.services.cobuild import compute_ratings

    with app.app_context():
        session = db.session
        if resource == "star_rating":
            compute_ratings(session, "2026Q1")
        for owner in (SAME_COMMUNITY, OTHER_STREET):
            unit_id, _, community_id = unit_of(app, owner)
            if resource == "need":
                source = session.scalars(select(Need).order_by(Need.id)).first()
                copy = _copy(source, assigned_unit_id=unit_id, community_id=community_id,
                             status="已派单", submitted_by_unit_id=None,
                             submitted_by_member_id=None, title=f"派给{owner}的需求")
                session.add(copy)
            if resource == "need_resource":
                offered = session.scalars(select(Resource).where(Resource.unit_id == unit_id)
                                          .order_by(Resource.id)).first()
                need = session.scalars(select(Need).where(Need.community_id == community_id)
                                       .order_by(Need.id)).first()
                session.add(NeedResource(need=need, resource=offered, status="待认领",
                                         note=f"提议给{owner}的资源"))
            if resource in ROUND_ROWS:
                _plant_round(session, owner, unit_id, community_id)
            if resource == "point_entry":
                source = session.scalars(select(PointEntry).order_by(PointEntry.id)).first()
                session.add(_copy(source, subject_type="unit", unit_id=unit_id, member_id=None,
                                  community_id=community_id, reason=f"付给{owner}的积分"))
        session.commit()
        session.remove()


# 季度督查's rows and the plan's notes: a round of the unit's street over the unit, its failing
# finding, the unit's rectification task and its progress report; a plan item the unit leads.
ROUND_ROWS = {"inspection", "inspection_finding", "rectification", "rectification_note",
              "work_plan_note"}


def _plant_round(session, owner, unit_id, community_id) -> None:
    from app.models.inspections import (
        Inspection,
        InspectionFinding,
        InspectionItem,
        Rectification,
        RectificationNote,
    )
    from app.models.org import Organization, Unit
    from app.models.workplan import WorkPlanItem, WorkPlanNote

    unit, community = session.get(Unit, unit_id), session.get(Organization, community_id)
    street = session.get(Organization, community.parent_id)
    today = clock.today()
    item = session.scalars(select(InspectionItem).order_by(InspectionItem.id)).first()
    finding = InspectionFinding(
        inspection=Inspection(organizer=street, title=f"督查{owner}", year=today.year,
                              quarter=(today.month + 2) // 3, units=[unit]),
        item=item, unit=unit, result="不符合", note=f"{owner}的问题", responsible_unit=unit,
        deadline=today)
    session.add(finding)
    session.flush()  # saving the failing finding opens its rectification task
    task = session.scalars(select(Rectification).where(Rectification.finding_id == finding.id)).one()
    plan = WorkPlanItem(org=community, year=today.year, number=f"P-{owner}", lead_unit=unit,
                        content=f"{owner}的工作要点", deadline=today)
    session.add_all([RectificationNote(rectification=task, unit=unit, content=f"{owner}的进展"),
                     WorkPlanNote(item=plan, unit=unit, content=f"{owner}的要点进展")])


def _copy(row, **changes):
    values = {c.key: getattr(row, c.key) for c in row.__table__.columns
              if c.key not in ("id", "created_on", "changed_on")}
    values.update(changes)
    return type(row)(**{k: v for k, v in values.items() if hasattr(type(row), k)})


@pytest.mark.parametrize("resource", PROBED)
def test_danwei01_cannot_reach_other_units_rows(app, clients, resource):
    with rolled_back(app) as conn:
        found = targets(app, resource)
        if not found and resource not in DIRECTORY:
            plant(app, resource)
            found = targets(app, resource)
        # Some resources hide nothing of danwei02's (its joint body is danwei01's too): then
        # danwei03's rows are the probe's targets.
        assert found or resource in DIRECTORY, f"{resource}: no row hidden from danwei01"
        before = snapshot(conn)
        probe = Probe(app, clients, resource)
        own_pk = own_row(app, resource)
        for target in found:
            if resource not in DIRECTORY:
                probe_reads(probe, target, resource)
            probe_writes(probe, target, resource, own_pk)
        PROBES["rows"] += len(found)
        assert not changed_tables(before, snapshot(conn)), "probes changed data"
    assert not probe.problems, "\n".join(probe.problems)


@pytest.mark.parametrize("resource", ["unit"])
def test_directory_rows_cannot_be_changed(app, clients, resource):
    """The unit directory is readable by every role; danwei01 may edit its own unit only."""
    with rolled_back(app) as conn:
        _directory_probes(app, clients, resource, conn)


def _directory_probes(app, clients, resource, conn):
    before = snapshot(conn)
    probe = Probe(app, clients, resource)
    for owner in (SAME_COMMUNITY, OTHER_STREET):
        pk = unit_of(app, owner)[0]
        target = {"owner": owner, "pk": pk, "texts": []}
        probe.post("edit form post", target, f"/unit/edit/{pk}",
                   {"name": EDITED, "address": EDITED}, allowed=(200, 403, 404))
        probe.api("API put", target, "put", f"/api/v1/unit/{pk}", {"address": EDITED},
                  allowed=(400, 403, 404, 422))
    assert not changed_tables(before, snapshot(conn))
    assert not probe.problems, "\n".join(probe.problems)


# Related-record ids: an own row re-pointed at another unit's row, by form and by API.
REPOINT = [  # (resource, field in the API body / form, the other unit's row it names)
    ("resource", "unit", "unit"), ("service_item", "provider_unit", "unit"),
    ("member", "work_unit", "unit"), ("unit_registration", "unit", "unit"),
    ("member_registration", "member", "member"), ("service_record", "member", "member"),
]


def _others(app, resource):
    return [t["pk"] for t in targets(app, resource)]


@pytest.mark.parametrize("resource,field,target_resource", REPOINT)
def test_own_rows_cannot_point_at_other_units_rows(app, clients, resource, field,
                                                    target_resource):
    own_pk = own_row(app, resource)
    assert own_pk, f"danwei01 should own a {resource} row"
    others = [unit_of(app, SAME_COMMUNITY)[0], unit_of(app, OTHER_STREET)[0]] \
        if target_resource == "unit" else _others(app, target_resource)
    assert others
    with rolled_back(app) as conn:
        _repoint_probes(app, clients, resource, field, own_pk, others, conn)


def _repoint_probes(app, clients, resource, field, own_pk, others, conn):
    before = snapshot(conn)
    probe = Probe(app, clients, resource)
    _client, _headers = clients.api(PROBER)
    for other in others:
        PROBES["repointed"] += 1
        target = {"owner": "another unit", "pk": other, "texts": []}
        probe.api(f"API put {field}={other}", target, "put", f"/api/v1/{resource}/{own_pk}",
                  {field: other}, allowed=(400, 404, 422), body_check=False)
        probe.api(f"API post {field}={other}", target, "post", f"/api/v1/{resource}/",
                  {field: other, "title": EDITED, "year": 2026, "name": EDITED},
                  allowed=(400, 404, 422), body_check=False)
        probe.post(f"edit form {field}={other}", target, f"/{resource}/edit/{own_pk}",
                   {field: str(other)}, allowed=(200,), body_check=False)
        probe.post(f"add form {field}={other}", target, f"/{resource}/add",
                   {field: str(other), "title": EDITED, "year": "2026"}, allowed=(200,),
                   body_check=False)
        # The form's own choices never offer it.
        response = clients.browser(PROBER).get(f"/{resource}/choices/{field}?id={other}")
        PROBES["probes"] += 1
        if response.status_code == 200 and any(
                r["id"] == other for r in response.json["results"]):
            probe.problems.append(f"{resource}.{field} choices offer row {other}")
    assert not changed_tables(before, snapshot(conn)), "re-pointing changed data"
    assert not probe.problems, "\n".join(probe.problems)


def unit_of(app, username) -> tuple[int, str, int]:
    """The unit a liaison answers for: its id, name and community."""
    from app.extensions import db

    with app.app_context():
        row = db.session.execute(text(
            "SELECT u.id, u.name, u.community_id FROM unit u JOIN ab_user a ON a.unit_id = u.id"
            " WHERE a.username = :name"), {"name": username}).one()
        db.session.remove()
    return tuple(row)


@pytest.mark.parametrize("resource,unit_header,category_kind", [
    ("resource", "unit", "resource_category"), ("service_item", "provider_unit", "need_category")])
def test_import_files_cannot_place_rows_in_other_units(app, clients, resource, unit_header,
                                                       category_kind):
    """A spreadsheet naming another unit is refused as a whole; nothing is written."""
    from openpyxl import load_workbook

    browser = clients.browser(PROBER)
    template = browser.get(f"/{resource}/import/template")
    assert template.status_code == 200
    sheet = load_workbook(io.BytesIO(template.data)).worksheets[0]
    headers = [c.value for c in sheet[1]]
    from app.import_words import EXAMPLE_MARK

    # The example row, unmarked (a marked example row is skipped on import).
    example = [None if c.value == EXAMPLE_MARK else c.value for c in sheet[2]]
    problems = []
    from app.views.base import labels_of

    header = str(labels_of(model_of(resource))[unit_header])
    def column(label):
        return next(i for i, h in enumerate(headers) if str(label) in str(h))

    position = column(header)
    category = column(labels_of(model_of(resource))["category"])
    # A title no record has: a row naming an existing one (unit, year, title) would update it.
    example[column(labels_of(model_of(resource))["title"])] = f"越权探测{resource}条目"
    with app.app_context():
        from app.extensions import db

        example[category] = db.session.execute(text(
            "SELECT label FROM dictionary WHERE kind = :kind ORDER BY id"),
            {"kind": category_kind}).scalar()
        db.session.remove()
    def upload(unit_name, dry_run=False):
        row = ["" if v is None else str(v) for v in example]
        row[position] = unit_name
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([str(h).rstrip("*").strip() for h in headers])
        writer.writerow(row)
        data = {"csrf_token": clients.csrf(PROBER),
                "file": (io.BytesIO(buffer.getvalue().encode("utf-8-sig")), "probe.csv")}
        if dry_run:
            data["dry_run"] = "1"
        return browser.client.post(f"/{resource}/import/", data=data,
                                   content_type="multipart/form-data")

    with rolled_back(app) as conn:
        before = snapshot(conn)
        _import_probes(app, upload, problems)
        assert not changed_tables(before, snapshot(conn)), "an import changed data"
    assert not problems, problems


def _import_probes(app, upload, problems):
    # The control: the same file naming danwei01's own unit would import (a dry run).
    own = upload(unit_of(app, PROBER)[1], dry_run=True)
    assert "预览：将新增 1 条" in own.get_data(as_text=True), own.get_data(as_text=True)[-2000:]
    for name in (unit_of(app, SAME_COMMUNITY)[1], unit_of(app, OTHER_STREET)[1]):
        response = upload(name)
        PROBES["probes"] += 1
        PROBES["imports"] += 1
        body = response.get_data(as_text=True)
        if response.status_code >= 500 or "导入成功" in body:
            problems.append(f"import naming {name}: {response.status_code}")


def test_probe_count():
    if not PROBES["probes"]:
        pytest.skip("run with the probes")
    record("security-cross-unit",
           f"cross-unit probes: {PROBES['probes']} requests against {PROBES['rows']} rows of "
           f"danwei02/danwei03 in {len(PROBED)} resources, {PROBES['repointed']} re-pointed "
           f"related ids, {PROBES['imports']} import files")
