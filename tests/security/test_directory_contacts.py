"""Directory contacts (issue 17 finding 2): a unit's contact phone, an organisation node's
phone and a resource's phone are personal data like a member's. On a row one reads only
through the directory rule (every unit, every node), they are masked for every role; on one's
own rows a role that may reveal personal data sees them in full — and the reveal is recorded
as for members; the auditor sees them masked. Lists mask them for everyone. The same on the
show page, the API and the exports."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from app import validators
from tests.security.support import Clients

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def clients(app):
    return Clients(app)


@pytest.fixture(scope="module")
def rows(app):
    """danwei01's unit and another street's unit (danwei03's), with distinctive phones; the
    community node of danwei01 and another community, likewise; a resource of danwei01's."""
    from tests.conftest import Db

    ctx = Db(app)
    q = lambda sql, **kw: ctx.execute(text(sql), kw).scalar()
    own = q("SELECT unit_id FROM ab_user WHERE username = 'danwei01'")
    other = q("SELECT unit_id FROM ab_user WHERE username = 'danwei03'")
    home = q("SELECT community_id FROM unit WHERE id = :i", i=own)
    far = q("SELECT community_id FROM unit WHERE id = :i", i=other)
    # A node is placed (owned) by its parent: shequ01 owns the grids below its community.
    grid = q("SELECT id FROM organization WHERE parent_id = :c AND deleted_on IS NULL ORDER BY id",
             c=home)
    resource = q("SELECT id FROM resource WHERE unit_id = :u AND deleted_on IS NULL ORDER BY id",
                 u=own)
    phones = {("unit", own): "13700001111", ("unit", other): "13700002222",
              ("organization", grid): "13700003333", ("organization", far): "13700004444",
              ("resource", resource): "13700005555"}
    column = {"unit": "contact_phone", "organization": "phone", "resource": "phone"}
    saved = {key: q(f"SELECT {column[key[0]]} FROM {key[0]} WHERE id = :i", i=key[1])
             for key in phones}
    with ctx.session() as session:
        for (table, pk), phone in phones.items():
            session.execute(text(f"UPDATE {table} SET {column[table]} = :p WHERE id = :i"),
                            {"p": phone, "i": pk})
        session.commit()
    yield {"own": own, "other": other, "home": grid, "far": far, "resource": resource,
           "phones": phones}
    with ctx.session() as session:
        for (table, pk), phone in saved.items():
            session.execute(text(f"UPDATE {table} SET {column[table]} = :p WHERE id = :i"),
                            {"p": phone, "i": pk})
        session.commit()


def masked(phone):
    return validators.mask_phone(phone)


def api_show(clients, username, resource, pk, field):
    client, headers = clients.api(username)
    response = client.get(f"/api/v1/{resource}/{pk}", headers=headers)
    assert response.status_code == 200, (username, resource, pk, response.status_code)
    return response.json["result"][field]


@pytest.mark.parametrize("username", ["danwei01", "shequ01", "shenji", "danwei03"])
def test_a_unit_read_through_the_directory_shows_its_phone_masked(clients, rows, username):
    """danwei03's unit is in another street: only the directory shows it to these users."""
    pk, phone = rows["other"], rows["phones"][("unit", rows["other"])]
    if username == "danwei03":
        pk, phone = rows["own"], rows["phones"][("unit", rows["own"])]
    page = clients.browser(username).get(f"/unit/show/{pk}").get_data(as_text=True)
    assert phone not in page and masked(phone) in page
    assert api_show(clients, username, "unit", pk, "contact_phone_shown") == masked(phone)


def test_a_node_read_through_the_directory_shows_its_phone_masked(clients, rows):
    phone = rows["phones"][("organization", rows["far"])]
    for username in ("danwei01", "shequ01", "shenji"):
        page = clients.browser(username).get(f"/organization/show/{rows['far']}").get_data(
            as_text=True)
        assert phone not in page and masked(phone) in page, username
        assert api_show(clients, username, "organization", rows["far"], "phone_shown") == \
            masked(phone)


def test_own_rows_show_in_full_to_revealing_roles_and_the_reveal_is_recorded(app, clients, rows,
                                                                            ctx):
    unit_phone = rows["phones"][("unit", rows["own"])]
    node_phone = rows["phones"][("organization", rows["home"])]
    resource_phone = rows["phones"][("resource", rows["resource"])]
    before = ctx.execute(text("SELECT MAX(id) FROM audit_log")).scalar() or 0
    assert unit_phone in clients.browser("danwei01").get(f"/unit/show/{rows['own']}").get_data(
        as_text=True)
    assert api_show(clients, "shequ01", "unit", rows["own"], "contact_phone_shown") == unit_phone
    assert api_show(clients, "shequ01", "organization", rows["home"], "phone_shown") == node_phone
    assert api_show(clients, "danwei01", "resource", rows["resource"], "phone_shown") == \
        resource_phone
    reveals = ctx.execute(text("SELECT username, resource, record_id FROM audit_log "
                               "WHERE id > :i AND action = 'reveal'"), {"i": before}).all()
    assert ("danwei01", "unit", str(rows["own"])) in reveals
    assert ("shequ01", "organization", str(rows["home"])) in reveals
    assert ("danwei01", "resource", str(rows["resource"])) in reveals


def test_the_auditor_sees_them_masked_everywhere(clients, rows):
    auditor = clients.browser("shenji")
    for (table, pk), phone in rows["phones"].items():
        field = {"unit": "contact_phone_shown", "organization": "phone_shown",
                 "resource": "phone_shown"}[table]
        assert api_show(clients, "shenji", table, pk, field) == masked(phone), table
        page = auditor.get(f"/{table}/show/{pk}").get_data(as_text=True)
        assert phone not in page, table
    for table in ("unit", "organization", "resource"):
        export = auditor.get(f"/{table}/export/csv").get_data(as_text=True)
        assert not [p for (t, _), p in rows["phones"].items() if p in export], table
        client, headers = clients.api("shenji")
        listed = client.get(f"/api/v1/{table}/?q=(page_size:100)", headers=headers)
        assert not [p for (t, _), p in rows["phones"].items() if p in listed.get_data(as_text=True)]


def test_lists_and_exports_mask_what_the_user_does_not_own(clients, rows):
    """A community admin exports every unit (the directory): those of other streets masked,
    its own community's in full."""
    export = clients.browser("shequ01").get("/unit/export/csv").get_data(as_text=True)
    assert rows["phones"][("unit", rows["other"])] not in export
    assert masked(rows["phones"][("unit", rows["other"])]) in export
    assert rows["phones"][("unit", rows["own"])] in export
    page = clients.browser("shequ01").get("/organization/list/?psize_OrganizationView=100")
    body = page.get_data(as_text=True)
    assert not [p for p in rows["phones"].values() if p in body]


ODD_PHONES = ["13800138000", "+86 138-0013-8000", "0591-87654321", "1234", "12", "",
              "12345678901", "1380013800a", "９１３８"]


@pytest.fixture
def odd_phones(ctx):
    """Phones of every shape on the first units and nodes; put back afterwards."""
    units = ctx.execute(text("SELECT id, contact_phone FROM unit ORDER BY id")).all()[:len(ODD_PHONES)]
    nodes = ctx.execute(text("SELECT id, phone FROM organization ORDER BY id")).all()[:len(ODD_PHONES)]
    with ctx.session() as session:
        for (pk, _), phone in zip(units, ODD_PHONES):
            session.execute(text("UPDATE unit SET contact_phone = :p WHERE id = :i"),
                            {"p": phone, "i": pk})
        for (pk, _), phone in zip(nodes, ODD_PHONES):
            session.execute(text("UPDATE organization SET phone = :p WHERE id = :i"),
                            {"p": phone, "i": pk})
        session.commit()
    yield
    with ctx.session() as session:
        for pk, phone in units:
            session.execute(text("UPDATE unit SET contact_phone = :p WHERE id = :i"),
                            {"p": phone, "i": pk})
        for pk, phone in nodes:
            session.execute(text("UPDATE organization SET phone = :p WHERE id = :i"),
                            {"p": phone, "i": pk})
        session.commit()


@pytest.mark.parametrize("username", ["shequ01", "shenji", "danwei01", "zuzhibu"])
def test_the_database_masks_as_python_masks(clients, odd_phones, monkeypatch, username):
    """The unit and node exports are written by the database (app/exports.py): its masking of
    their phones, per row and per viewer, is the Python one, byte for byte."""
    from app import exports

    browser = clients.browser(username)
    cells_sql = exports._cells_sql
    for resource in ("unit", "organization"):
        # Each export read whole before the next request (it streams within its request).
        database = browser.get(f"/{resource}/export/csv")
        status, by_database = database.status_code, database.get_data()
        monkeypatch.setattr(exports, "_cells_sql", lambda *args: None)
        python = browser.get(f"/{resource}/export/csv")
        by_python = python.get_data()
        monkeypatch.setattr(exports, "_cells_sql", cells_sql)
        assert status == python.status_code, resource
        if status != 200:  # refused: the panel's error page (its own nonces)
            continue
        assert by_database == by_python, resource
        if username in ("shenji", "danwei01"):
            assert b"13800138000" not in by_database
