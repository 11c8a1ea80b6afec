"""The browser stage's fixtures: the panel served on loopback from the session's test app, one
Debian chromium driven by Playwright, and pages logged in as a demo user on which every request
to another host is refused (and remembered, so a test can assert there was none)."""
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import TEST_PASSWORD

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM = "/usr/bin/chromium"
# As the machine's notes say: without these, chromium keeps trying hosts a closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def server(app):
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def offline_page(browser, server, **options):
    """A page in a fresh context (its own cookies) that may reach only the panel; returns
    (page, the list of other hosts' URLs it tried)."""
    context = browser.new_context(**{"viewport": {"width": 1280, "height": 900},
                                     "locale": "zh-CN", **options})
    page = context.new_page()
    outside = []
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(server)
               else (outside.append(route.request.url), route.abort()))
    return page, outside


def log_in(page, server, username, password=TEST_PASSWORD):
    page.goto(f"{server}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_load_state("networkidle")
