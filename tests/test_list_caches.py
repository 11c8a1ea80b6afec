"""What a list page keeps between requests (issue 30) never serves one user's page to another:
the menu bar (and its HTML) is kept per set of rights, role table row, language and address — two users share
one only when everything it is made from is the same, and a right granted or withdrawn shows
on the next page; the search form's unchanging parts are kept per view and language, the
filters a page is asked for are its own."""
from __future__ import annotations

import json
import re

from app.menu import MENUS_KEY
from tests.crawl import menu_links


def _menu(browser) -> list[str]:
    return menu_links(browser.get("/need/list/").get_data(as_text=True))


def _search_form(browser, url: str) -> list:
    """The four JSON arguments of the page's AdminFilters: labels, fields, filters, active."""
    page = browser.get(url).get_data(as_text=True)
    rest = page[page.index("'#filter_form',", page.index("new AdminFilters(")) + 15:]
    found = []
    for _ in range(4):
        rest = rest.lstrip().removeprefix(",").lstrip()
        value, end = json.JSONDecoder().raw_decode(rest)
        found.append(value)
        rest = rest[end:]
    return found


def test_each_user_is_served_the_menu_of_its_own_rights(app, as_user):
    liaison, org, member = as_user("danwei01"), as_user("zuzhibu"), as_user("dangyuan01")
    app.extensions.pop(MENUS_KEY, None)
    made = {name: _menu(browser) for name, browser in
            (("liaison", liaison), ("org", org), ("member", member))}
    assert len({tuple(links) for links in made.values()}) == 3, made
    # Each again, in turns, once the menus are kept: each its own.
    for _ in range(2):
        assert _menu(org) == made["org"]
        assert _menu(liaison) == made["liaison"]
        assert _menu(member) == made["member"]
    assert "/user/list/" not in made["liaison"] and "/organization/list/" in made["org"]
    # Another liaison holds the same rights: the same menu, whoever asked first.
    assert _menu(as_user("danwei02")) == made["liaison"]
    # Each menu kept is rendered once, and that HTML is what every page of its users shows.
    kept = list(app.extensions[MENUS_KEY].values())
    assert len(kept) == 3 and all(menu.html for menu in kept)
    for browser in (liaison, org, member):
        page = browser.get("/need/list/").get_data(as_text=True)
        assert sum(str(menu.html) in page for menu in kept) == 1


def test_a_right_withdrawn_leaves_the_menu_on_the_next_page(app, ctx, as_user):
    from app.extensions import appbuilder

    def grant(present: bool):
        with ctx.session():
            sm = appbuilder.sm
            role = sm.find_role("UnitLiaison")
            pv = sm.find_permission_view_menu("can_read", "meeting")
            if present:
                sm.add_permission_role(role, pv)
            else:
                sm.del_permission_role(role, pv)

    liaison = as_user("danwei01")
    assert any(link.startswith("/meeting/") for link in _menu(liaison))
    grant(False)
    try:
        assert not any(link.startswith("/meeting/") for link in _menu(liaison))
        assert liaison.get("/meeting/list/").status_code == 403
    finally:
        grant(True)
    assert any(link.startswith("/meeting/") for link in _menu(liaison))


def test_the_search_form_is_the_pages_own_language_and_filters(app, as_user):
    browser = as_user("shequ01")
    filtered = "/need/list/?_flt_3_status=" + "待受理"
    for _ in range(2):  # made, then kept
        labels, fields, names, active = _search_form(browser, "/need/list/")
        assert labels["status"] == "状态" and active == []
        assert "status" in fields and names["status"]
        assert _search_form(browser, filtered)[3] == [["status", "等于", ["待受理"]]]
    browser.get("/lang/en")
    try:
        labels, _, names, active = _search_form(browser, filtered)
        assert labels["status"] == "Status" and "Equal to" in names["status"], (labels, names)
        assert active == [["status", "Equal to", ["待受理"]]]
    finally:
        browser.get("/lang/zh")
    assert _search_form(browser, "/need/list/")[0]["status"] == "状态"


def test_a_time_field_of_the_search_form_starts_at_the_moment_of_the_page(app, as_user):
    """A column whose default is "now" (创建时间) is rendered with each page, not kept."""
    browser = as_user("shequ01")
    first = _search_form(browser, "/need/list/")[1]["created_on"]
    again = _search_form(browser, "/need/list/")[1]["created_on"]
    stamp = re.compile(r'value="([^"]+)"')
    assert stamp.search(first) and stamp.search(again)
    assert stamp.search(first).group(1) < stamp.search(again).group(1)  # two pages, two moments


# A second app process on the same database, kept alive: each line it reads, it asks for the
# liaison's meeting list and prints the answer's status.
CHILD_LIAISON = """
import sys
from app import create_app
from tests.conftest import login
app = create_app("testing", SQLALCHEMY_DATABASE_URI=sys.argv[1])
browser = login(app, "danwei01")
for _ in sys.stdin:
    print(browser.get("/meeting/list/").status_code, flush=True)
"""


def test_a_right_withdrawn_on_one_process_is_gone_on_anothers_next_page(app, ctx,
                                                                        database_url):
    """Each process keeps the roles' rights between requests (under the access stamp): a right
    withdrawn through this process is refused by the other at its next request, and given back,
    allowed again — the other process asked nothing of this one."""
    import subprocess
    import sys

    from app.extensions import appbuilder

    def grant(present: bool):
        with ctx.session():
            sm = appbuilder.sm
            role, pv = sm.find_role("UnitLiaison"), sm.find_permission_view_menu("can_read",
                                                                                 "meeting")
            (sm.add_permission_role if present else sm.del_permission_role)(role, pv)

    other = subprocess.Popen([sys.executable, "-c", CHILD_LIAISON, database_url], cwd=".",
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def status() -> str:
        other.stdin.write("\n")
        other.stdin.flush()
        return other.stdout.readline().strip()

    try:
        assert status() == "200"
        assert status() == "200"  # its rights now kept
        grant(False)
        try:
            assert status() == "403"
        finally:
            grant(True)
        assert status() == "200"
    finally:
        other.stdin.close()
        other.wait(60)
        if other.poll() is None:
            other.kill()


def test_a_page_reads_the_stamp_not_the_rights(app, as_user):
    """The roles' rights are read once per process and stamp, not on each page: a second page
    sends no statement joining them."""
    from sqlalchemy import event

    from app.extensions import db

    browser = as_user("shequ01")
    browser.get("/need/list/")
    sent = []

    def record(conn, cursor, statement, *args):
        sent.append(statement)
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert browser.get("/need/list/").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert any("access_stamp" in s for s in sent)
    assert not any("ab_permission_view_role" in s for s in sent), sent
