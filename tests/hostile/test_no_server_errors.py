"""Requests that made a 500 (issue 17, findings 5 and 6): an id past 64 bits in any URL, FAB's
file download for a name it never made, an order column the list does not offer, page
arguments that are not numbers, and an unbounded page size. Each is answered as "not found",
"bad request" or the list in its default order — on every database. The API's 405 says which
methods its address takes, and a malformed token is a 401, as a missing one."""
from __future__ import annotations

import re

import pytest

from tests.security.support import Clients

pytestmark = pytest.mark.db

HUGE_IDS = [2 ** 63, 2 ** 64, 10 ** 30]


@pytest.fixture(scope="module")
def clients(app):
    return Clients(app)


def entity_routes(app) -> list[tuple[str, str]]:
    """(resource, list view name) of every business list."""
    from app.views.base import EntityView

    return [(v.class_permission_name, type(v).__name__) for v in app.appbuilder.baseviews
            if isinstance(v, EntityView)]


def api_resources(app) -> list[str]:
    from app.views.base import EntityApi

    return [v.resource_name for v in app.appbuilder.baseviews if isinstance(v, EntityApi)]


def rows_on(page, resource) -> list[str]:
    return re.findall(rf'href="/{resource}/show/(\d+)"', page.get_data(as_text=True))


@pytest.mark.parametrize("username", ["admin", "danwei01"])
def test_an_id_past_64_bits_is_not_found_anywhere(app, clients, username):
    browser = clients.browser(username)
    client, headers = clients.api(username)
    wrong = []
    for pk in HUGE_IDS:
        for resource, _ in entity_routes(app):
            for url in (f"/{resource}/show/{pk}", f"/{resource}/edit/{pk}",
                        f"/{resource}/transition/{pk}/accept",
                        f"/{resource}/list/?_flt_0_id={pk}"):
                status = browser.get(url).status_code
                if status not in (404, 403, 200) or (status == 200 and "/list/" not in url):
                    wrong.append((url, status))
            status = clients.post(username, f"/{resource}/delete/{pk}").status_code
            if status not in (404, 403, 405):
                wrong.append((f"POST /{resource}/delete/{pk}", status))
        for resource in api_resources(app):
            for method, url in (("get", f"/api/v1/{resource}/{pk}"),
                                ("put", f"/api/v1/{resource}/{pk}"),
                                ("delete", f"/api/v1/{resource}/{pk}"),
                                ("post", f"/api/v1/{resource}/{pk}/transition/accept")):
                status = getattr(client, method)(url, headers=headers, json={}).status_code
                if status not in (404, 403, 405):  # 405: a read-only resource (the ledger)
                    wrong.append((method.upper(), url, status))
        for url in (f"/public/community/{pk}", f"/agreement/scan/{pk}",
                    f"/meeting/download/{pk}", f"/unit_registration/receipt/{pk}"):
            status = browser.get(url).status_code
            if status not in (404, 403):
                wrong.append((url, status))
    assert not wrong, wrong


def test_fab_file_download_of_any_name_is_not_found(app, clients):
    browser = clients.browser("admin")
    for resource, _ in entity_routes(app):
        for name in ("nothing", "x_sep_y.pdf", "..%2F..%2Fconfig.py"):
            status = browser.get(f"/{resource}/download/{name}").status_code
            assert status == 404, (resource, name, status)


def test_an_unknown_order_column_falls_back_to_the_default_order(app, clients):
    browser = clients.browser("admin")
    default = rows_on(browser.get("/member/list/"), "member")
    assert default
    for column in ("name;drop", "id_number_enc", "nonexistent", "community.path"):
        for direction in ("asc", "desc"):
            page = browser.get(f"/member/list/?_oc_MemberView={column}&_od_MemberView={direction}")
            assert page.status_code == 200, (column, page.status_code)
            assert rows_on(page, "member") == default, column
        export = browser.get(f"/member/export/csv?_oc_MemberView={column}&_od_MemberView=asc")
        assert export.status_code == 200, (column, export.status_code)
        assert export.get_data(as_text=True).count("\n") > 1  # read to its end, as a download is
    # A column the list offers still orders it.
    ordered = browser.get("/member/list/?_oc_MemberView=name&_od_MemberView=desc")
    assert ordered.status_code == 200 and rows_on(ordered, "member") != default


@pytest.mark.parametrize("resource,view", [("member", "MemberView"), ("need", "NeedView"),
                                           ("organization", "OrganizationView")])
def test_html_page_size_is_clamped_to_100(clients, resource, view):
    browser = clients.browser("admin")
    page = browser.get(f"/{resource}/list/?psize_{view}=100000")
    assert page.status_code == 200
    shown = rows_on(page, resource)
    assert 0 < len(set(shown)) <= 100, len(set(shown))
    for args in (f"psize_{view}=abc", f"page_{view}=abc", f"psize_{view}=-5",
                 f"page_{view}=-3", f"page_{view}={10 ** 30}", f"psize_{view}=0"):
        response = browser.get(f"/{resource}/list/?{args}")
        assert response.status_code == 200, (args, response.status_code)
        assert len(set(rows_on(response, resource))) <= 100


def test_api_405_carries_an_allow_header(clients):
    client, headers = clients.api("admin")
    response = client.patch("/api/v1/member/1", headers=headers, json={})
    assert response.status_code == 405
    allowed = {m.strip() for m in response.headers.get("Allow", "").split(",")}
    assert {"GET", "PUT", "DELETE"} <= allowed and "PATCH" not in allowed
    response = client.delete("/api/v1/member/", headers=headers)
    assert response.status_code == 405 and "POST" in response.headers.get("Allow", "")


@pytest.mark.parametrize("token", ["abc", "abc.def", "abc.def.ghi", "e30.e30.", "Bearer"])
def test_a_malformed_token_is_401(app, token):
    response = app.test_client().get("/api/v1/member/",
                                     headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, (token, response.status_code, response.get_data())
    assert response.get_json().get("message")


def test_numbers_past_64_bits_in_filters_and_pages_are_not_a_500(clients):
    """Past the routes: filter values, pages and choices that reach a query as a number."""
    big = 2 ** 64
    browser = clients.browser("admin")
    for url in (f"/member/list/?_flt_0_within={big}", f"/member/list/?_flt_0_community={big}",
                f"/member/choices/community?id={big}", f"/member/choices/community?page={big}",
                f"/member/add?_flt_0_community={big}"):
        status = browser.get(url).status_code
        assert status in (200, 400, 404), (url, status)
    for url in ("/member/edit/1?page_MemberView=abc", "/member/show/1?psize_MemberView=x"):
        assert browser.get(url).status_code in (400, 404), url
    client, headers = clients.api("admin")
    for q in (f"(filters:!((col:name,opr:eq,value:{big})))", f"(page:{big},page_size:10)",
              f"(filters:!((col:community,opr:rel_o_m,value:{big})))"):
        response = client.get(f"/api/v1/member/?q={q}", headers=headers)
        assert response.status_code in (200, 400), (q, response.status_code)
    response = client.get(f"/api/v1/member/_info?q=(add_columns:(community:(page:{big})))",
                          headers=headers)
    assert response.status_code in (200, 400), response.status_code
