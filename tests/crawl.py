"""The panel as a new user walks it (issue 27): every demo role, in Chinese and in English, opens
every menu entry and, on each list, the first row's show and edit pages and the add form. What
it reports is what a user would read as a developer's admin: Flask-AppBuilder's or Werkzeug's
English in the Chinese panel, raw Python values in a table cell, a menu entry or a bulk action
the role cannot use, an error page without the panel's layout."""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

# One user per demo role (tests/conftest.py DEMO_USERS has several liaisons).
ROLE_USERS = {"Admin": "admin", "OrgAdmin": "zuzhibu", "StreetAdmin": "jiedao01",
              "CommunityAdmin": "shequ01", "UnitLiaison": "danwei01", "Auditor": "shenji",
              "Member": "dangyuan01", "GridAdmin": "wangge01"}

# Flask-AppBuilder's and Werkzeug's English a Chinese page must not show (as whole words, in
# the page's text and its buttons' titles and labels).
ENGLISH = ["Are you sure you want to delete", "Cancel", "Add", "Show", "Edit", "Delete",
           "List Groups", "List Users", "List Roles", "Security", "Forbidden", "Not Found",
           "Internal Server Error", "Record Count", "Actions", "Search", "Back", "Save",
           "Profile", "Logout", "Access is Denied", "No records found", "Select all",
           "can read on", "menu access on", "can export on", "Yes", "No", "Refresh",
           "Searching", "Loading more results", "No results found",
           # the user form's help texts; FAB's own pages by their class names (roles page)
           "just make it inactive", "password for authentication", "associate with a list",
           "UserView", "RoleModelView", "MenuApi", "ViewMenu", "PermissionViewMenu"]
ENGLISH_RE = re.compile(r"(?<![\w-])(" + "|".join(re.escape(w) for w in ENGLISH) + r")(?![\w-])")
RAW_VALUES = {"None", "True", "False", "[]"}

NAVBAR = re.compile(r'<ul class="nav navbar-nav">(.*?)</ul>\s*<ul class="nav navbar-nav navbar-right">',
                    re.DOTALL)
LINK = re.compile(r'href="(/[^"#?]*)"')
CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.DOTALL)
TAG = re.compile(r"<[^>]+>")
SCRIPT = re.compile(r"<script.*?</script>|<style.*?</style>", re.DOTALL)
ACTION = re.compile(r'class="(\w+)_menu_item"')  # FAB's list actions menu
MOVE = re.compile(r'"/(\w+)/transition/\d+/(\w+)"')  # a show page's workflow moves
LAYOUT = 'class="navbar'


@dataclass
class Walk:
    problems: list[str] = field(default_factory=list)
    pages: int = 0

    def note(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")


def menu_links(page: str) -> list[str]:
    match = NAVBAR.search(page)
    assert match, "no menu bar"
    return list(dict.fromkeys(LINK.findall(match.group(1))))


def visible_text(page: str) -> str:
    """What a user reads or hears: the text, and the titles, labels and placeholders."""
    body = SCRIPT.sub(" ", page)
    said = " ".join(re.findall(r'(?:title|aria-label|placeholder|value)="([^"]*)"', body))
    return html.unescape(TAG.sub(" ", body) + " " + said)


def check_page(walk: Walk, where: str, response, zh: bool) -> str | None:
    walk.pages += 1
    page = response.get_data(as_text=True)
    if response.status_code in (403, 404, 500):
        if LAYOUT not in page:
            walk.note(where, f"{response.status_code} without the panel's layout")
        return None
    if response.status_code != 200:
        walk.note(where, f"status {response.status_code}")
        return None
    if zh:
        english = set(ENGLISH_RE.findall(visible_text(page)))
        if english:
            walk.note(where, f"English: {sorted(english)}")
    for cell in CELL.findall(page):
        text = html.unescape(TAG.sub("", cell)).strip()
        if text in RAW_VALUES:
            walk.note(where, f"raw value in a cell: {text}")
    return page


def walk_as(browser, zh: bool, usable_action) -> Walk:
    """Every menu entry, and on each list its first row's show and edit and its add form.
    `usable_action(path, name)` says whether the role may make a list's bulk action; a show
    page's move is judged as the bulk action of the same move (`bulk_<move>`)."""
    walk = Walk()
    browser.get("/lang/zh" if zh else "/lang/en")
    home = check_page(walk, "/", browser.get("/"), zh)
    for url in menu_links(home or ""):
        response = browser.get(url)
        if response.status_code != 200:
            walk.note(url, f"menu entry answers {response.status_code}")
        page = check_page(walk, url, response, zh)
        if not page or not url.endswith("/list/"):
            continue
        base = url[: -len("list/")]
        for name in ACTION.findall(page):
            if not usable_action(url, name):
                walk.note(url, f"offers the action {name} the role cannot make")
        for kind in ("show", "edit"):
            first = re.search(rf'href="({re.escape(base)}{kind}/\d+)[^"]*"', page)
            if first:
                shown = check_page(walk, first.group(1), browser.get(first.group(1)), zh)
                for resource, move in set(MOVE.findall(shown or "")) if kind == "show" else ():
                    if not usable_action(f"/{resource}/list/", f"bulk_{move}"):
                        walk.note(first.group(1), f"offers the move {move} the role cannot make")
        if f'href="{base}add' in page:
            check_page(walk, base + "add", browser.get(base + "add"), zh)
    return walk
