"""The browser stage: Debian's chromium, driven by Playwright, against the panel served on
loopback (fixtures in conftest.py). Screenshots go to the git-ignored artifacts/ folder."""
import pytest

from tests.browser.conftest import ARTIFACTS
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


def test_liaison_logs_in_and_opens_the_member_list(server, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    outside = []
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(server)
               else (outside.append(route.request.url), route.abort()))
    page.goto(f"{server}/login/")
    page.fill("input[name=username]", "danwei01")
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "您的角色" in page.content()
    page.goto(f"{server}/member/list/")
    page.wait_for_selector("a[href^='/member/show/']")
    assert page.locator("a[href^='/member/show/']").count() > 0
    assert "党员列表" in page.content()
    page.screenshot(path=str(ARTIFACTS / "danwei01-member-list.png"), full_page=True)
    assert outside == [], f"the page asked for other hosts: {outside}"
    page.close()
