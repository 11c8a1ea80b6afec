"""The message centre in Debian's chromium: shequ01 dispatches a need to danwei01's unit;
danwei01's bell shows 1; the message links to the need, and reading it clears the bell."""
import pytest
from sqlalchemy import text

from tests.browser.test_journeys import Visit

pytestmark = pytest.mark.browser


def bell(visit) -> str:
    return visit.page.locator(".gj-bell .gj-bell-unread").inner_text().strip()


def test_a_dispatched_need_rings_the_liaisons_bell_and_its_message_links_to_it(
        browser, server, ctx):
    unit = ctx.execute(text("SELECT unit.name FROM ab_user JOIN unit ON unit.id = ab_user.unit_id "
                            "WHERE ab_user.username = 'danwei01'")).scalar_one()
    liaison = Visit(browser, server, "danwei01")
    liaison.go("/messages/")
    if liaison.page.locator("button.gj-read-all").count():  # earlier tests' messages
        liaison.follow("button.gj-read-all")
    assert bell(liaison) == "0"
    assert liaison.page.locator(".gj-bell .gj-bell-count").count() == 0

    admin = Visit(browser, server, "shequ01")
    # A waiting need the liaison's unit did not file (its acceptance would tell the unit too).
    need_id = ctx.execute(text(
        "SELECT need.id FROM need JOIN ab_user a ON a.username = 'shequ01' "
        "JOIN ab_user d ON d.username = 'danwei01' WHERE need.status = '待受理' "
        "AND need.community_id = a.org_id AND need.deleted_on IS NULL "
        "AND (need.submitted_by_unit_id IS NULL OR need.submitted_by_unit_id <> d.unit_id) "
        "AND (need.created_by_id IS NULL OR need.created_by_id <> d.id) ORDER BY need.id")).scalar()
    need_path = f"/need/show/{need_id}"
    admin.go(need_path)
    title = admin.field("需求标题")
    admin.move("平台接单")
    admin.open_move("会商派单")
    admin.pick("assigned_unit", unit[:3], unit)
    admin.submit("会商派单")
    assert admin.field("状态") == "已派单"
    admin.close()

    liaison.go("/need/list/")
    assert bell(liaison) == "1"
    assert liaison.page.locator(".gj-bell .gj-bell-count").inner_text().strip() == "1"
    liaison.follow(".gj-bell a")
    message = liaison.page.locator("tr.gj-unread a.gj-message-link")
    assert message.count() == 1
    assert title in message.inner_text() and "已派给您" in message.inner_text()
    liaison.page.screenshot(path="artifacts/messages-danwei01.png", full_page=True)
    liaison.follow(message)
    assert liaison.page.url.removeprefix(server).split("?")[0] == need_path
    assert liaison.field("需求标题") == title
    assert bell(liaison) == "0"
    liaison.close()
