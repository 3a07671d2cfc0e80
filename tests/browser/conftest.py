"""Browser fixtures: the real portal on a free port, and headless Chromium driving it.

The server is a second ``create_app`` on the suite's test config (same database and
Redis as the ``app`` fixture, which migrates and empties them); werkzeug serves it from a
background thread, so every request gets its own app context and DB session while the
test keeps the ``app`` fixture's context open for setup and assertions.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from portal import create_app
from portal.extensions import db

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _suite_conftest(pytestconfig):
    """tests/conftest.py as pytest loaded it (conftest modules share the name `conftest`,
    so it cannot be imported by name from here without re-running it)."""
    path = str(Path(__file__).resolve().parent.parent / "conftest.py")
    module = pytestconfig.pluginmanager.get_plugin(path)
    assert module is not None, f"{path} not loaded"
    return module


@pytest.fixture
def live_server(pytestconfig, demo):
    """Base URL of the portal serving the demo data (admin/zhuguan/kaipiao1/kaipiao2)."""
    server_app = create_app(_suite_conftest(pytestconfig)._test_config())
    server = make_server("127.0.0.1", 0, server_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with server_app.app_context():
            db.engine.dispose()  # no pooled connection outlives the test (TRUNCATE next time)


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium not installed: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _context(browser, live_server, javascript: bool):
    context = browser.new_context(base_url=live_server, java_script_enabled=javascript,
                                  locale="zh-CN")
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def page(browser, live_server):
    """A fresh browser tab (own cookies) with JavaScript on."""
    context = _context(browser, live_server, javascript=True)
    yield context.new_page()
    context.close()


@pytest.fixture
def page_nojs(browser, live_server):
    """A fresh browser tab with JavaScript off: forms and links must still work."""
    context = _context(browser, live_server, javascript=False)
    yield context.new_page()
    context.close()


@pytest.fixture
def login():
    """Log in through the login form, as a person would."""
    def submit(page, username="admin", password="demo1234"):
        page.goto("/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        with page.expect_navigation():
            page.locator("form").get_by_role("button", name="登录").click()
    return submit
