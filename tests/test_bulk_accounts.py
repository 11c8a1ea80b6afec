"""People in bulk (issue 20): 300 member accounts opened from the member list in one action —
in batches of 100 with progress —, their 账号通知单 printed (the passwords shown the first time
only, each printing audited), and the first login of an opened account forced to a new password
whatever PASSWORD_CHANGE_AT_FIRST_LOGIN says. A member who has an account is named, not given a
second; a selection reaching outside one's scope opens nothing; a batch is its creator's alone."""
import re

import pytest
from sqlalchemy import text

from tests.conftest import Browser, tables_kept_by

pytestmark = pytest.mark.db

MANY = 300


def id_number(serial: int) -> str:
    body = f"32010219900101{serial:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]


@pytest.fixture(scope="module")
def many_members(app):
    """MANY members living in shequ01's community, made for this module and removed after it
    with the accounts opened for them."""
    from app.extensions import db
    from app.models.org import Member, Organization

    with tables_kept_by(app):
        with app.app_context():
            session = db.session
            community = session.get(Organization, session.execute(text(
                "SELECT org_id FROM ab_user WHERE username = 'shequ01'")).scalar())
            members = [Member(name=f"批量{n:03d}", id_number=id_number(n), community=community)
                       for n in range(MANY + 3)]  # three more for the account imports below
            session.add_all(members)
            session.commit()
            ids = [m.id for m in members]
            session.remove()
        yield ids
        with app.app_context():
            users = db.session.execute(text(
                "SELECT id FROM ab_user WHERE member_id IN (SELECT id FROM member WHERE name LIKE "
                "'批量%')")).scalars().all()
            for pk in users:
                for table in ("ab_user_role", "user_session", "refresh_token"):
                    db.session.execute(text(f"DELETE FROM {table} WHERE user_id = :u"), {"u": pk})
                db.session.execute(text("UPDATE audit_log SET user_id = NULL WHERE user_id = :u"),
                                   {"u": pk})
                db.session.execute(text("DELETE FROM ab_user WHERE id = :u"), {"u": pk})
            db.session.execute(text("DELETE FROM account_batch"))
            db.session.commit()
            db.session.remove()


def open_accounts(browser, member_ids):
    """Select the rows and choose 开通账号, then follow the batches to the slips."""
    response = browser.post("/member/action_post", {
        "action": "open_accounts", "rowid": [str(i) for i in member_ids]},
        form_url="/member/list/")
    pages = 0
    while response.status_code == 302 and "/account/batch/" in response.headers["Location"]:
        location = response.headers["Location"]
        page = browser.get(location)
        if page.status_code == 302:  # all opened: on to the slips
            response = page
            break
        assert "继续开通" in page.get_data(as_text=True)
        pages += 1
        response = browser.post(location, form_url=location)
    return response, pages


def slips_of(html):
    return re.findall(r"<th>用户名</th><td>([^<]+)</td></tr>\s*<tr><th>初始密码</th><td>([^<]+)</td>",
                      html)


def test_300_accounts_opened_slips_printed_and_first_login_forced(app, ctx, as_user,
                                                                  many_members):
    browser = as_user("shequ01")
    response, pages = open_accounts(browser, many_members[:MANY])
    assert pages == 2  # 100 opened at once, then two more batches with the progress page
    assert response.status_code == 302 and "/account/slips/" in response.headers["Location"]
    slips_url = response.headers["Location"]
    html = browser.get(slips_url).get_data(as_text=True)
    slips = slips_of(html)
    assert len(slips) == MANY
    assert len({u for u, _ in slips}) == MANY
    made = ctx.execute(text(
        "SELECT count(*) FROM ab_user u JOIN ab_user_role ur ON ur.user_id = u.id "
        "JOIN ab_role r ON r.id = ur.role_id WHERE r.name = 'Member' AND u.must_change_password "
        "AND u.member_id IN (SELECT id FROM member WHERE name LIKE '批量%')")).scalar()
    assert made == MANY
    # printed again: allowed to its creator, recorded, and without a password
    again = browser.get(slips_url).get_data(as_text=True)
    assert "已清除" in again
    assert not any(password in again for _, password in slips)
    assert {u for u, _ in slips} <= set(re.findall(r"<td>(dy\d+)</td>", again))
    printed = ctx.execute(text("SELECT changes FROM audit_log WHERE resource = 'account' AND "
                               "action = 'export' ORDER BY id")).scalars().all()
    assert len(printed) >= 2 and '"passwords_shown": true' in printed[-2] \
        and '"passwords_shown": false' in printed[-1]
    assert ctx.execute(text("SELECT password FROM ab_user WHERE username = :u"),
                       {"u": slips[0][0]}).scalar() != slips[0][1]  # stored hashed
    # another user is told the slips do not exist
    assert as_user("jiedao01").get(slips_url).status_code == 404
    # the first login leads to the password form, and the API gives no token until changed
    username, password = slips[0]
    client = app.test_client()
    login_page = Browser(client, username)
    token = login_page.csrf("/login/")
    assert client.post("/login/", data={"username": username, "password": password,
                                        "csrf_token": token}).status_code == 302
    forced = client.get("/member/list/")
    assert forced.status_code == 302 and "/resetmypassword/" in forced.headers["Location"]
    api = client.post("/api/v1/security/login", json={"username": username, "password": password,
                                                       "provider": "db"})
    assert api.status_code == 403


def test_a_member_who_has_an_account_is_named_not_given_another(ctx, as_user, many_members):
    member = ctx.execute(text("SELECT member_id FROM ab_user WHERE username = 'dangyuan01'")).scalar()
    before = ctx.execute(text("SELECT count(*) FROM ab_user")).scalar()
    browser = as_user("shequ01")
    response, _ = open_accounts(browser, [member])
    html = browser.get(response.headers["Location"]).get_data(as_text=True)
    assert "已有账号“dangyuan01”" in html
    assert ctx.execute(text("SELECT count(*) FROM ab_user")).scalar() == before


def test_a_selection_reaching_outside_ones_scope_opens_nothing(ctx, as_user, many_members):
    path = ctx.execute(text("SELECT o.path FROM ab_user u JOIN organization o ON o.id = u.org_id "
                            "WHERE u.username = 'shequ01'")).scalar()
    elsewhere = ctx.execute(text(
        "SELECT id FROM member WHERE deleted_on IS NULL AND community_id NOT IN (SELECT id FROM "
        "organization WHERE path LIKE :p) ORDER BY id"), {"p": path + "%"}).scalar()
    before = ctx.execute(text("SELECT count(*) FROM ab_user")).scalar()
    response = as_user("shequ01").post("/member/action_post", {
        "action": "open_accounts", "rowid": [str(many_members[0]), str(elsewhere)]},
        form_url="/member/list/")
    assert response.status_code == 404
    assert ctx.execute(text("SELECT count(*) FROM ab_user")).scalar() == before


def test_a_grid_secretary_opens_no_accounts(as_user, many_members):
    response = as_user("wangge01").post("/member/action_post", {
        "action": "open_accounts", "rowid": [str(many_members[0])]}, form_url="/member/list/")
    assert response.status_code == 403


# --- accounts from a file (the importable resource `account`) ---------------------------------

def account_file(rows):
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["用户名", "姓名", "角色", "所属单位", "所属组织", "对应党员"])
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


def upload_accounts(browser, data):
    import io

    return browser.post("/account/import/", {"file": (io.BytesIO(data), "账号.csv")},
                        form_url="/account/import/", content_type="multipart/form-data")


def test_accounts_from_a_file(app, ctx, as_user, many_members):
    from app.extensions import db
    from app.models.org import Member

    grid = ctx.execute(text("SELECT o.code FROM ab_user u JOIN organization o ON o.id = u.org_id "
                            "WHERE u.username = 'wangge01'")).scalar()
    own_unit = ctx.execute(text("SELECT u.credit_code FROM unit u JOIN ab_user a ON a.unit_id = u.id "
                                "WHERE a.username = 'danwei02'")).scalar()
    far_unit = ctx.execute(text("SELECT u.credit_code FROM unit u JOIN ab_user a ON a.unit_id = u.id "
                                "WHERE a.username = 'danwei03'")).scalar()
    with app.app_context():
        numbers = {m.id: m.id_number for m in db.session.query(Member).filter(Member.id.in_(
            [many_members[MANY], ctx.execute(text(
                "SELECT member_id FROM ab_user WHERE username = 'dangyuan01'")).scalar()]))}
        db.session.remove()
    fresh = numbers[many_members[MANY]]
    holder = next(n for pk, n in numbers.items() if pk != many_members[MANY])
    browser = as_user("shequ01")
    before = ctx.execute(text("SELECT count(*) FROM ab_user")).scalar()
    bad = upload_accounts(browser, account_file([
        ["", "网格员甲", "网格管理员", "", grid, ""],
        ["", "越权", "系统管理员", "", "", ""],
        ["", "外街道联络员", "驻区单位联络员", far_unit, "", ""],
        ["shequ01", "重名", "党员", "", "", fresh],
        ["", "老党员", "党员", "", "", holder],
        ["", "无单位", "驻区单位联络员", "", "", ""],
    ])).get_data(as_text=True)
    assert "未开通任何账号" in bad
    for message in ("您不能开通“系统管理员”账号", f"找不到“{far_unit}”", "用户名“shequ01”已被使用",
                    "已有账号“dangyuan01”", "驻区单位联络员须指定所属单位"):
        assert message in bad, message
    assert ctx.execute(text("SELECT count(*) FROM ab_user")).scalar() == before
    response = upload_accounts(browser, account_file([
        ["", "网格员甲", "网格管理员", "", grid, ""],
        ["lly_h20", "联络员乙", "驻区单位联络员", own_unit, "", ""],
        ["", "党员丙", "党员", "", "", fresh],
    ]))
    assert response.status_code == 302 and "/account/slips/" in response.headers["Location"]
    slips = slips_of(browser.get(response.headers["Location"]).get_data(as_text=True))
    assert len(slips) == 3 and slips[1][0] == "lly_h20"
    made = ctx.execute(text(
        "SELECT u.username, r.name, u.org_id, u.unit_id, u.member_id, u.must_change_password "
        "FROM ab_user u JOIN ab_user_role ur ON ur.user_id = u.id JOIN ab_role r ON r.id = ur.role_id "
        "WHERE u.username IN :names").bindparams(__import__("sqlalchemy").bindparam(
            "names", expanding=True)), {"names": [u for u, _ in slips]}).all()
    by_role = {row.name: row for row in made}
    assert by_role["GridAdmin"].org_id == ctx.execute(text(
        "SELECT id FROM organization WHERE code = :c"), {"c": grid}).scalar()
    assert by_role["UnitLiaison"].unit_id is not None and by_role["Member"].member_id == many_members[MANY]
    assert all(row.must_change_password for row in made)
    # the opened accounts go with the module's clean-up
    with app.app_context():
        for username, _ in slips:
            pk = db.session.execute(text("SELECT id FROM ab_user WHERE username = :u"),
                                    {"u": username}).scalar()
            db.session.execute(text("DELETE FROM ab_user_role WHERE user_id = :u"), {"u": pk})
            db.session.execute(text("DELETE FROM ab_user WHERE id = :u"), {"u": pk})
        db.session.commit()
        db.session.remove()


def test_accounts_from_a_file_on_the_command_line(app, ctx, tmp_path, many_members):
    """`flask import account FILE --as USER`: the web import's checks and batch; the slips, with
    the initial passwords shown this once, in a file only its owner may read."""
    import csv
    import stat

    from app.extensions import db
    from app.models.org import Member

    with app.app_context():
        fresh = db.session.get(Member, many_members[MANY + 1]).id_number
        db.session.remove()
    path = tmp_path / "账号.csv"
    path.write_bytes(account_file([["", "越权", "组织部管理员", "", "", ""]]))
    cli = app.test_cli_runner()
    refused = cli.invoke(args=["import", "account", str(path), "--as", "shequ01"])
    assert refused.exit_code != 0 and "未开通任何账号" in refused.output
    assert "您不能开通“组织部管理员”账号" in refused.output
    assert (tmp_path / "账号.errors.csv").exists()
    path.write_bytes(account_file([["", "党员丁", "党员", "", "", fresh]]))
    preview = cli.invoke(args=["import", "account", str(path), "--as", "shequ01", "--dry-run"])
    assert preview.exit_code == 0 and "将开通 1 个账号" in preview.output
    assert not ctx.execute(text("SELECT count(*) FROM ab_user WHERE member_id = :m"),
                           {"m": many_members[MANY + 1]}).scalar()
    done = cli.invoke(args=["import", "account", str(path), "--as", "shequ01"])
    assert done.exit_code == 0, done.output
    slips = tmp_path / "账号.slips.csv"
    assert stat.S_IMODE(slips.stat().st_mode) == 0o600
    [row] = list(csv.DictReader(slips.read_text(encoding="utf-8-sig").splitlines()))
    account = ctx.execute(text("SELECT username, password, must_change_password FROM ab_user "
                               "WHERE member_id = :m"), {"m": many_members[MANY + 1]}).one()
    assert (row["姓名"], row["用户名"]) == ("党员丁", account.username)
    assert account.must_change_password
    from werkzeug.security import check_password_hash
    assert check_password_hash(account.password, row["初始密码"])
    # shown once: the batch keeps no password, and the showing is recorded
    assert ctx.execute(text("SELECT count(*) FROM audit_log WHERE resource = 'account' AND "
                            "action = 'export' AND changes LIKE '%passwords_shown%true%'")).scalar()


def test_an_account_file_carries_phones(app, ctx, as_user, many_members):
    """手机号 in an account file: read as every phone column — one a spreadsheet turned into
    1.38E+10 is a row error saying so, nothing opened — and kept on the account (ab_user.phone),
    masked in the user list."""
    import csv
    import io

    from app.extensions import db
    from app.models.org import Member

    with app.app_context():
        fresh = db.session.get(Member, many_members[MANY + 2]).id_number
        db.session.remove()

    def phone_file(phone):
        buffer = io.StringIO()
        csv.writer(buffer).writerows([["姓名", "角色", "对应党员", "手机"],
                                      ["党员戊", "党员", fresh, phone]])
        return buffer.getvalue().encode("utf-8-sig")

    browser = as_user("shequ01")
    bad = upload_accounts(browser, phone_file("1.38123E+10")).get_data(as_text=True)
    assert "未开通任何账号" in bad and "被表格软件按数字保存" in bad
    assert not ctx.execute(text("SELECT count(*) FROM ab_user WHERE member_id = :m"),
                           {"m": many_members[MANY + 2]}).scalar()
    response = upload_accounts(browser, phone_file("１３８ 1234 5679"))
    assert response.status_code == 302, response.get_data(as_text=True)
    username, phone = ctx.execute(text("SELECT username, phone FROM ab_user WHERE member_id = :m"),
                                  {"m": many_members[MANY + 2]}).one()
    assert phone == "13812345679"
    listed = as_user("admin").get(f"/users/list/?_flt_0_username={username}").get_data(as_text=True)
    assert "138****5679" in listed and "13812345679" not in listed
