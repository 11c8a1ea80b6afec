"""The panel as people meet it: every demo user logs in, the pages speak Chinese (English as a
switch), and nothing served points at another host (a closed intranet)."""
import re

import pytest

from tests.conftest import DEMO_USERS, TEST_PASSWORD

MAIN_PAGES = ["/", "/organization/list/", "/unit/list/", "/member/list/", "/dictionary/list/",
              "/member/add", "/unit/add", "/organization/add"]
# Any src/href/url() that names a host: the offline promise of ARCHITECTURE.md.
EXTERNAL = re.compile(r"""(?:src|href|action)\s*=\s*["']\s*(?:https?:)?//|url\(\s*["']?(?:https?:)?//""",
                      re.IGNORECASE)


@pytest.mark.parametrize("username", DEMO_USERS)
def test_every_demo_user_logs_in_and_lands_on_a_chinese_home(as_user, username):
    page = as_user(username).get("/").get_data(as_text=True)
    assert "共驻共建管理平台" in page
    assert "您的角色" in page
    assert f'{username}' in page or "退出" in page or "Logout" not in page


def test_wrong_password_is_refused(app):
    client = app.test_client()
    login_page = client.get("/login/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    response = client.post("/login/", data={"username": "danwei01", "password": TEST_PASSWORD + "x",
                                            "csrf_token": token}, follow_redirects=True)
    assert "我的资料" not in response.get_data(as_text=True)
    assert client.get("/member/list/").status_code in (302, 401, 403)


def test_pages_are_in_chinese(as_user):
    browser = as_user("shequ01")
    listing = browser.get("/member/list/").get_data(as_text=True)
    for text in ("党员列表", "姓名", "身份证号", "居住社区", "组织与人员"):
        assert text in listing, text
    form = browser.get("/member/add").get_data(as_text=True)
    for text in ("新增党员", "身份证号", "工作单位", "保存"):
        assert text in form, text


def test_english_is_a_switch(as_user):
    browser = as_user("shequ01")
    browser.get("/lang/en")
    listing = browser.get("/member/list/").get_data(as_text=True)
    assert "ID number" in listing and "Home community" in listing
    browser.get("/lang/zh")
    assert "身份证号" in browser.get("/member/list/").get_data(as_text=True)


@pytest.mark.parametrize("username", ["admin", "shequ01", "danwei01"])
def test_no_page_references_another_host(as_user, username):
    browser = as_user(username)
    for url in MAIN_PAGES:
        response = browser.get(url)
        if response.status_code == 403:
            continue
        assert response.status_code == 200, url
        found = EXTERNAL.findall(response.get_data(as_text=True))
        assert not found, f"{url} references another host: {found}"
    login = browser.client.application.test_client().get("/login/").get_data(as_text=True)
    assert not EXTERNAL.findall(login)


def test_personal_data_is_masked_for_roles_that_do_not_need_it(as_user, ctx):
    from sqlalchemy import text

    member_id = ctx.execute(text("SELECT member_id FROM ab_user WHERE username='dangyuan01'")).scalar()
    auditor = as_user("shenji").get(f"/member/show/{member_id}").get_data(as_text=True)
    admin = as_user("shequ01").get(f"/member/show/{member_id}").get_data(as_text=True)
    full = re.search(r"\b\d{17}[\dX]\b", admin)
    assert full, "the community admin sees the 身份证号 in full"
    assert full.group(0) not in auditor
    assert (full.group(0)[:6] + "********" + full.group(0)[-4:]) in auditor
