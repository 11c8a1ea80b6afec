"""Accounts that can see something (issue 20): a role that needs a link — UnitLiaison → unit,
StreetAdmin/CommunityAdmin/GridAdmin → node (GridAdmin's below a community), Member → member —
is not saved without it, by the user admin or the API, each refusing with a Chinese message;
an existing account lacking its link is flagged in the user list and reported by
`flask gongjian check-accounts`."""
import uuid

import pytest
from sqlalchemy import text

from tests.conftest import TEST_PASSWORD

STRONG = "Harbour-L1ght-77"


def uid() -> str:
    return uuid.uuid4().hex[:8]


def role_id(ctx, name):
    return ctx.execute(text("SELECT id FROM ab_role WHERE name = :n"), {"n": name}).scalar()


def user_row(ctx, username):
    return ctx.execute(text("SELECT id, org_id, unit_id, member_id FROM ab_user "
                            "WHERE username = :u"), {"u": username}).one_or_none()


def link_of(ctx, username, column):
    return ctx.execute(text(f"SELECT {column} FROM ab_user WHERE username = :u"),
                       {"u": username}).scalar()


def add_form(ctx, username, role, **links):
    return {"first_name": "新", "last_name": "账号", "username": username,
            "email": f"{username}@gongjian.invalid", "active": "y",
            "roles": str(role_id(ctx, role)), "password": STRONG, "conf_password": STRONG,
            **{k: str(v) for k, v in links.items()}}


@pytest.fixture
def made(app):
    """Usernames made by a test, removed after it (accounts are not business rows)."""
    names: list[str] = []
    yield names
    from app.extensions import db

    with app.app_context():
        for name in names:
            pk = db.session.execute(text("SELECT id FROM ab_user WHERE username = :u"),
                                    {"u": name}).scalar()
            if pk is None:
                continue
            for table in ("ab_user_role", "user_session", "refresh_token"):
                db.session.execute(text(f"DELETE FROM {table} WHERE user_id = :u"), {"u": pk})
            db.session.execute(text("UPDATE audit_log SET user_id = NULL WHERE user_id = :u"),
                               {"u": pk})
            db.session.execute(text("DELETE FROM ab_user WHERE id = :u"), {"u": pk})
        db.session.commit()
        db.session.remove()


@pytest.mark.parametrize("role, message", [
    ("UnitLiaison", "驻区单位联络员须指定所属单位"),
    ("CommunityAdmin", "社区管理员须指定所属组织"),
    ("StreetAdmin", "街道管理员须指定所属组织"),
    ("GridAdmin", "网格管理员须指定所属组织"),
    ("Member", "党员须指定对应党员"),
])
def test_the_user_admin_refuses_a_role_without_its_link(ctx, as_user, made, role, message):
    name = f"lnk{uid()}"
    made.append(name)
    page = as_user("admin").post("/users/add", add_form(ctx, name, role), form_url="/users/add",
                                 follow_redirects=True).get_data(as_text=True)
    assert message in page
    assert "记录已添加" not in page and "Added Row" not in page
    assert user_row(ctx, name) is None


def test_the_user_admin_saves_a_role_with_its_link(ctx, as_user, made):
    unit = link_of(ctx, "danwei01", "unit_id")
    name = f"lnk{uid()}"
    made.append(name)
    as_user("admin").post("/users/add", add_form(ctx, name, "UnitLiaison", unit=unit),
                          form_url="/users/add", follow_redirects=True)
    assert user_row(ctx, name).unit_id == unit


def test_a_grid_admin_is_linked_below_a_community(ctx, as_user, made):
    community = link_of(ctx, "shequ01", "org_id")
    grid = link_of(ctx, "wangge01", "org_id")
    browser = as_user("admin")
    name = f"lnk{uid()}"
    made.append(name)
    page = browser.post("/users/add", add_form(ctx, name, "GridAdmin", org=community),
                        form_url="/users/add", follow_redirects=True).get_data(as_text=True)
    assert "网格党支部、楼栋党小组或党员中心户" in page
    assert user_row(ctx, name) is None
    browser.post("/users/add", add_form(ctx, name, "GridAdmin", org=grid), form_url="/users/add",
                 follow_redirects=True)
    assert user_row(ctx, name).org_id == grid


def test_removing_the_link_of_an_account_is_refused(ctx, as_user):
    pk = user_row(ctx, "danwei02").id
    unit = link_of(ctx, "danwei02", "unit_id")
    page = as_user("admin").post(f"/users/edit/{pk}", {
        "first_name": "单位二", "last_name": "联络员", "username": "danwei02",
        "email": "danwei02@gongjian.invalid", "active": "y",
        "roles": str(role_id(ctx, "UnitLiaison")), "unit": ""},
        form_url=f"/users/edit/{pk}", follow_redirects=True).get_data(as_text=True)
    assert "驻区单位联络员须指定所属单位" in page
    assert link_of(ctx, "danwei02", "unit_id") == unit


def test_the_user_api_refuses_a_role_without_its_link(ctx, api, made):
    client, headers = api("admin")
    name = f"lnk{uid()}"
    made.append(name)
    body = {"username": name, "first_name": "新", "last_name": "账号", "active": True,
            "email": f"{name}@gongjian.invalid", "password": STRONG}
    response = client.post("/api/v1/security/users/", headers=headers,
                           json={**body, "roles": [role_id(ctx, "CommunityAdmin")]})
    assert response.status_code == 400
    assert "社区管理员须指定所属组织" in str(response.json)
    assert user_row(ctx, name) is None
    response = client.post("/api/v1/security/users/", headers=headers,
                           json={**body, "roles": [role_id(ctx, "Auditor")]})
    assert response.status_code == 201
    # nor may an existing account be given such a role without its link
    response = client.put(f"/api/v1/security/users/{response.json['id']}", headers=headers,
                          json={"roles": [role_id(ctx, "UnitLiaison")]})
    assert response.status_code == 400 and "须指定所属单位" in str(response.json)
    # an account that has its link keeps its role through the API
    pk = user_row(ctx, "danwei02").id
    response = client.put(f"/api/v1/security/users/{pk}", headers=headers,
                          json={"roles": [role_id(ctx, "UnitLiaison")]})
    assert response.status_code == 200, response.json


def test_an_account_lacking_its_link_is_flagged_and_reported(app, ctx, as_user, made):
    from app.extensions import appbuilder, db

    name = f"lnk{uid()}"
    made.append(name)
    with app.app_context():  # as a command would: the system, before the rule existed
        sm = appbuilder.sm
        sm.add_user(name, "旧", "账号", f"{name}@gongjian.invalid", sm.find_role("CommunityAdmin"),
                    password=TEST_PASSWORD)
        db.session.remove()
    page = as_user("admin").get(f"/users/list/?_flt_0_username={name}").get_data(as_text=True)
    assert "社区管理员须指定所属组织" in page
    result = app.test_cli_runner().invoke(args=["gongjian", "check-accounts"])
    assert result.exit_code == 1
    assert f"{name}：社区管理员须指定所属组织" in result.output
    assert "shequ01" not in result.output  # linked accounts are not reported


def test_the_user_admin_keeps_a_phone_masked_as_every_phone(ctx, as_user, made):
    """手机号 on the user admin form: read as the imports read phones (full-width digits,
    spaces), refused when it is no phone; masked in the list, in full on the record's page to
    a role that sees personal data — that showing audited as every reveal."""
    unit = link_of(ctx, "danwei01", "unit_id")
    name = f"lnk{uid()}"
    made.append(name)
    browser = as_user("admin")
    page = browser.post("/users/add", {**add_form(ctx, name, "UnitLiaison", unit=unit),
                                       "phone": "电话见备注"},
                        form_url="/users/add", follow_redirects=True).get_data(as_text=True)
    assert "手机号只能包含数字" in page and user_row(ctx, name) is None
    browser.post("/users/add", {**add_form(ctx, name, "UnitLiaison", unit=unit),
                                "phone": "１３８ 1234 5678"}, form_url="/users/add",
                 follow_redirects=True)
    assert link_of(ctx, name, "phone") == "13812345678"
    listed = browser.get(f"/users/list/?_flt_0_username={name}").get_data(as_text=True)
    assert "138****5678" in listed and "13812345678" not in listed
    pk = user_row(ctx, name).id
    shown = browser.get(f"/users/show/{pk}").get_data(as_text=True)
    assert "13812345678" in shown
    assert ctx.execute(text("SELECT count(*) FROM audit_log WHERE action = 'reveal' AND "
                            "resource = 'ab_user' AND record_id = :pk"), {"pk": str(pk)}).scalar() == 1


def test_an_account_has_no_data_scope_so_only_who_sees_all_sees_its_phone(app, ctx):
    """The one rule of personal data (principal.sees_personal_data) on an account: it belongs
    to no node or unit, so a community admin, who sees its own members' phones, sees an
    account's masked."""
    from app.extensions import db
    from app.security.models import UserAccount
    from app.security.principal import acting_as, principal_for

    with app.test_request_context():
        account = db.session.execute(text("SELECT id FROM ab_user WHERE username = 'danwei01'"))\
            .scalar()
        user = db.session.get(UserAccount, account)
        user.phone = "13912345678"
        for username, expected in (("shequ01", "139****5678"), ("admin", "13912345678")):
            acting = db.session.execute(text("SELECT id FROM ab_user WHERE username = :u"),
                                        {"u": username}).scalar()
            with acting_as(principal_for(db.session.get(UserAccount, acting))):
                assert user.phone_shown == expected, username
        db.session.rollback()
        db.session.remove()
