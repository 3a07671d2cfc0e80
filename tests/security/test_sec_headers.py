"""Security headers on every response, and the cookies' flags (issue 8)."""
from __future__ import annotations

import pytest

from tests.security.conftest import login_client
from tests.security.test_sec_access import GETS


def assert_headers(r, where):
    h = r.headers
    csp = h.get("Content-Security-Policy", "")
    directives = {d.strip().split(" ")[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert directives.get("default-src") == "default-src 'self'", (where, csp)
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'", (where, csp)
    assert "'unsafe-eval'" not in csp and "script-src" not in directives, (where, csp)  # scripts: 'self' only
    assert h.get("X-Content-Type-Options") == "nosniff", where
    assert h.get("X-Frame-Options") == "DENY", where
    assert h.get("Referrer-Policy") in ("same-origin", "strict-origin-when-cross-origin", "no-referrer"), where


@pytest.mark.parametrize("role", ["anonymous", "admin"])
def test_every_get_route_sends_the_security_headers(world, role):
    auth = login_client(world.app, role)
    for rule in GETS:
        path = world.path(rule)
        assert_headers(auth.client.get(path), (role, path))


def test_error_pages_files_and_fragments_send_the_security_headers(world):
    admin = login_client(world.app, "admin")
    probes = {
        "404": admin.client.get("/no-such-page"),
        "403": login_client(world.app, "kaipiao2").client.get("/admin/orgs"),
        "400 (CSRF)": admin.client.post("/sync-logs/void", data={}),
        "file": admin.client.get("/sync-logs/import/template"),
        "static": admin.client.get("/static/htmx.min.js"),
        "htmx fragment": admin.client.get(f"/sync-logs/rows/{world.ids['task_id']}", headers={"HX-Request": "true"}),
        "login redirect": login_client(world.app, "anonymous").client.get("/sync-logs/"),
    }
    expected = {"404": 404, "403": 403, "400 (CSRF)": 400, "file": 200, "static": 200, "htmx fragment": 200,
                "login redirect": 302}
    for name, r in probes.items():
        assert r.status_code == expected[name], name
        assert_headers(r, name)
    assert "spreadsheetml" in probes["file"].headers["Content-Type"]
    assert "<html" not in probes["htmx fragment"].get_data(as_text=True)


def _cookies(response) -> dict:
    out = {}
    for header in response.headers.getlist("Set-Cookie"):
        name = header.split("=", 1)[0]
        out[name] = {p.strip().split("=")[0].lower(): p.strip() for p in header.split(";")[1:]}
    return out


def _login_cookies(app):
    auth = login_client(app, "anonymous")
    page = auth.client.get("/login").get_data(as_text=True)
    from tests.conftest import csrf_from
    r = auth.client.post("/login", data={"username": "admin", "password": "demo1234", "remember": "y",
                                         "csrf_token": csrf_from(page)})
    assert r.status_code == 302
    cookies = _cookies(r)
    assert {app.config["SESSION_COOKIE_NAME"], "remember_token"} <= set(cookies), cookies
    return cookies


def test_session_and_remember_cookies_are_httponly_and_samesite_lax(demo):
    for name, flags in _login_cookies(demo).items():
        assert "httponly" in flags, name
        assert flags.get("samesite", "").lower() == "samesite=lax", name
        assert "secure" not in flags, name  # plain HTTP in development and tests


def test_cookies_are_secure_when_session_cookie_secure_is_set(demo, monkeypatch):
    from portal.config import default_config
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "1")
    keys = [k for k in default_config() if k.endswith("COOKIE_SECURE")]
    assert set(keys) >= {"SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"}
    demo.config.update({k: default_config()[k] for k in keys})
    for name, flags in _login_cookies(demo).items():
        assert "secure" in flags and "httponly" in flags, name


def test_every_page_configures_htmx_defensively(world):
    """selfRequestsOnly, no eval, no <script> in swaps, no page copies in localStorage."""
    import json
    import re
    for role in ("anonymous", "admin"):
        auth = login_client(world.app, role)
        for path in ("/login", "/", "/sync-logs/", "/no-such-page"):
            r = auth.client.get(path)
            if r.status_code == 302:
                continue  # anonymous: to /login, checked first
            html = r.get_data(as_text=True)
            m = re.search(r"""<meta name="htmx-config" content='([^']+)'>""", html)
            assert m, (role, path)
            assert json.loads(m[1]) == {"selfRequestsOnly": True, "allowEval": False,
                                        "allowScriptTags": False, "historyCacheSize": 0}
