"""Every `next` / back link goes through one helper, portal.urls.safe_next: known open-
redirect bypasses land on this site, on every route that takes a `next`."""
from __future__ import annotations

import pytest

from portal.urls import safe_next
from tests.conftest import csrf_from

BYPASSES = [
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r/evil.example",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example",
    "http:evil.example",
    "javascript:alert(1)",
    "\x00/evil",
    "/\x00/evil.example",
    " //evil",
    "\t//evil.example",
    "/%2F%2Fevil.example",
    "/%2f/evil.example",
    "/%5Cevil.example",
    "/%09/evil.example",
    "/\u3000/evil.example",
    "/\uff0f/evil.example",
    "evil.example",
    "",
]
def _refused_or_home(r, code=302):
    """Off-site never: a NUL is refused whole (400), anything else lands on this site."""
    if r.status_code == 400:
        assert "Location" not in r.headers and "请求包含非法字符" in r.get_data(as_text=True)
        return
    assert r.status_code == code
    assert r.headers["Location"] == "/"


SAFE = ["/", "/sync-logs/", "/sync-logs/?status=failed&org=ORG01", "/jobs/12", "/sync-logs/?q=%E5%8D%8E"]


@pytest.mark.parametrize("value", BYPASSES)
def test_safe_next_refuses_known_bypasses(value):
    assert safe_next(value, "/home") == "/home"


@pytest.mark.parametrize("value", SAFE)
def test_safe_next_keeps_paths_of_this_site(value):
    assert safe_next(value, "/home") == value


@pytest.mark.parametrize("value", BYPASSES)
def test_language_switch_never_redirects_off_site(demo, auth, client, value):
    auth.login()
    _refused_or_home(auth.post("/lang/zh", {"next": value}))


@pytest.mark.parametrize("value", BYPASSES)
def test_login_next_never_redirects_off_site(demo, client, value):
    page = client.get("/login").get_data(as_text=True)
    _refused_or_home(client.post("/login", query_string={"next": value},
                                 data={"username": "admin", "password": "demo1234", "csrf_token": csrf_from(page)}))


@pytest.mark.parametrize("value", BYPASSES)
def test_column_settings_next_never_redirects_off_site(demo, auth, value):
    auth.login()
    _refused_or_home(auth.post("/table-columns/sync-table", {"cols": ["sync_type"], "next": value},
                               page="/sync-logs/"), 303)


def test_language_switch_keeps_a_path_of_this_site(demo, auth):
    auth.login()
    r = auth.post("/lang/zh", {"next": "/sync-logs/?status=failed"})
    assert r.headers["Location"] == "/sync-logs/?status=failed"


@pytest.mark.parametrize("value", ["/\t/evil.example", "//evil.example", "/\\evil.example", "https://evil.example"])
def test_job_back_link_is_a_path_of_this_site(demo, app, value):
    from jobs import tracked
    from portal.models import User
    from portal.extensions import db
    from sqlalchemy import select

    user = db.session.scalar(select(User).where(User.username == "admin"))
    job = tracked.record("sync.create", user, [], "done", back_url=value)
    assert job.back_url == ""
    job = tracked.record("sync.create", user, [], "done", back_url="/sync-logs/?status=failed")
    assert job.back_url == "/sync-logs/?status=failed"
