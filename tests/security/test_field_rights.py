"""Field-level rights (issue 17 finding 1, roles.FIELD_RIGHTS): a liaison keeps its unit's
contact details current, and nothing more — it cannot move its unit to another community,
de-register it or change its credit code, by the form, the API or an import. Those stay with
the community, the street and 组织部. Another unit's edit page is not found for a liaison (the
directory lets it read the unit, not open a form on it); its show page stays readable."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text

from app import validators
from tests.security.support import Clients, user_principal

pytestmark = pytest.mark.db

LIAISON, OTHER_LIAISON, COMMUNITY_ADMIN = "danwei01", "danwei03", "shequ01"
# A valid code no other test registers (the GB 32100 example is registered by test_org_rules,
# and a taken code is refused as taken, 422, before its right is asked).
_BODY = "91350100MA8XQR7K9"
UNUSED_CREDIT_CODE = _BODY + validators.credit_code_check_char(_BODY)


@pytest.fixture(scope="module")
def clients(app):
    return Clients(app)


@pytest.fixture
def units(ctx):
    """danwei01's unit, danwei03's (another street), a community elsewhere; every unit column
    put back afterwards."""
    own = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username = :u"), {"u": LIAISON}).scalar()
    other = ctx.execute(text("SELECT unit_id FROM ab_user WHERE username = :u"),
                        {"u": OTHER_LIAISON}).scalar()
    home = ctx.execute(text("SELECT community_id FROM unit WHERE id = :i"), {"i": own}).scalar()
    elsewhere = ctx.execute(text("SELECT id FROM organization WHERE type = 'community' AND id <> :c "
                                 "AND deleted_on IS NULL ORDER BY id"), {"c": home}).scalar()
    saved = {pk: dict(ctx.execute(text("SELECT * FROM unit WHERE id = :i"), {"i": pk}).one()._mapping)
             for pk in (own, other)}
    yield {"own": own, "other": other, "home": home, "elsewhere": elsewhere}
    with ctx.session() as session:
        for pk, row in saved.items():
            columns = {k: v for k, v in row.items() if k != "id"}
            session.execute(text("UPDATE unit SET " + ", ".join(f"{k} = :{k}" for k in columns)
                                 + " WHERE id = :id"), {**columns, "id": pk})
        session.commit()


def unit_row(ctx, pk):
    return ctx.execute(text("SELECT community_id, status, credit_code, address, contact_phone, "
                            "cancel_reason FROM unit WHERE id = :i"), {"i": pk}).one()


@pytest.mark.parametrize("body", [
    {"community": "elsewhere"},
    {"status": "已注销", "cancel_reason": "搬迁", "cancelled_on": "2026-12-01"},
    {"credit_code": UNUSED_CREDIT_CODE},
    {"address": "新地址一号", "community": "elsewhere"},  # one refused field refuses the write
])
def test_the_api_refuses_a_liaison_the_unit_s_standing(clients, ctx, units, body):
    client, headers = clients.api(LIAISON)
    body = {k: units["elsewhere"] if v == "elsewhere" else v for k, v in body.items()}
    before = unit_row(ctx, units["own"])
    response = client.put(f"/api/v1/unit/{units['own']}", json=body, headers=headers)
    assert response.status_code == 403, response.get_data(as_text=True)
    assert "请联系所在社区" in response.json["message"]
    assert unit_row(ctx, units["own"]) == before


def test_the_api_lets_a_liaison_update_its_contacts(clients, ctx, units):
    client, headers = clients.api(LIAISON)
    response = client.put(f"/api/v1/unit/{units['own']}", headers=headers, json={
        "address": "联络员更新的地址", "contact_phone": "13911112222", "leader_name": "新一把手",
        "party_org_name": "新党支部"})
    assert response.status_code == 200, response.get_data(as_text=True)
    row = unit_row(ctx, units["own"])
    assert row.address == "联络员更新的地址" and row.contact_phone == "13911112222"
    assert row.community_id == units["home"]


def test_the_community_admin_still_moves_and_deregisters(clients, ctx, units):
    client, headers = clients.api(COMMUNITY_ADMIN)
    response = client.put(f"/api/v1/unit/{units['own']}", headers=headers, json={
        "status": "已注销", "cancel_reason": "迁出本社区", "cancelled_on": "2026-12-01"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert unit_row(ctx, units["own"]).status == "已注销"


def test_the_liaison_s_edit_form_offers_only_contacts_and_ignores_the_rest(clients, ctx, units):
    browser = clients.browser(LIAISON)
    page = browser.get(f"/unit/edit/{units['own']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="address"' in html and 'name="contact_phone"' in html
    for hidden in ("community", "status", "cancel_reason", "cancelled_on", "credit_code"):
        assert f'name="{hidden}"' not in html, hidden
    before = unit_row(ctx, units["own"])
    clients.post(LIAISON, f"/unit/edit/{units['own']}", {
        "address": "表单更新的地址", "contact_phone": "13933334444", "party_member_count": "12",
        "community": str(units["elsewhere"]), "status": "已注销", "cancel_reason": "x",
        "credit_code": UNUSED_CREDIT_CODE})
    after = unit_row(ctx, units["own"])
    assert after.address == "表单更新的地址"
    assert (after.community_id, after.status, after.credit_code) == \
        (before.community_id, before.status, before.credit_code)


def test_another_unit_s_edit_page_is_not_found_and_its_show_page_is_read(clients, ctx, units):
    browser = clients.browser(LIAISON)
    before = unit_row(ctx, units["other"])
    assert browser.get(f"/unit/edit/{units['other']}").status_code == 404
    response = clients.post(LIAISON, f"/unit/edit/{units['other']}", {"address": "越权地址"})
    assert response.status_code == 404
    assert unit_row(ctx, units["other"]) == before
    assert browser.get(f"/unit/show/{units['other']}").status_code == 200


def test_any_writer_meets_the_same_check(app, units):
    """The check sits at the flush: an import, a CLI command or a service acting as the
    liaison is refused as the form and the API are."""
    from app.extensions import db
    from app.imports import Importer
    from app.models.org import Unit
    from app.security.scope import FieldRefused, acting_as

    with app.test_request_context("/"):
        principal = user_principal(db.session, LIAISON)
        with acting_as(principal):
            unit = db.session.execute(select(Unit).where(Unit.id == units["own"])).scalar_one()
            unit.status, unit.cancel_reason = "已注销", "搬迁"
            with pytest.raises(FieldRefused):
                db.session.flush()
            db.session.rollback()
            # An import that updates the unit by its credit code, naming another community.
            view = next(v for v in app.appbuilder.baseviews
                        if getattr(v, "class_permission_name", None) == "unit"
                        and getattr(v, "import_columns", None))
            unit = db.session.get(Unit, units["own"])
            community = db.session.execute(text("SELECT name FROM organization WHERE id = :i"),
                                           {"i": units["elsewhere"]}).scalar()
            importer = Importer(view)
            headers = [c.header for c in importer.columns]
            values = {"name": unit.name, "credit_code": unit.credit_code,
                      "category": unit.category.label, "community": community}
            row = [values.get(c.name, "") for c in importer.columns]
            data = ("\ufeff" + ",".join(headers) + "\n" + ",".join(row) + "\n").encode()
            outcome = importer.run("units.csv", data, dry_run=True)
            assert not outcome.ok
            assert any("请联系所在社区" in p.message or "范围" in p.message
                       for p in outcome.problems), outcome.problems
        db.session.remove()


def test_another_unit_reads_as_the_directory(clients, units):
    """Its show page and its API read give the directory's columns: names, types, places, the
    phone masked — not its register details (party members, cancellation, bookkeeping)."""
    page = clients.browser(LIAISON).get(f"/unit/show/{units['other']}").get_data(as_text=True)
    own = clients.browser(LIAISON).get(f"/unit/show/{units['own']}").get_data(as_text=True)
    for label in ("党员人数", "注销原因", "注销日期"):
        assert label in own and label not in page, label
    for label in ("单位名称", "所在社区", "一把手姓名", "联络员", "联系电话"):
        assert label in page, label
    client, headers = clients.api(LIAISON)
    other = client.get(f"/api/v1/unit/{units['other']}", headers=headers).json["result"]
    mine = client.get(f"/api/v1/unit/{units['own']}", headers=headers).json["result"]
    assert "party_member_count" in mine and "cancel_reason" in mine
    assert "party_member_count" not in other and "cancel_reason" not in other
    assert {"name", "community_id", "leader_name", "contact_phone_shown"} <= set(other)
