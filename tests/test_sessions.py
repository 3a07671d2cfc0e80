"""Server-side sessions (issue 8, point 5): logout, password change, deactivation and an
admin end a session for every copy of its cookies, the remember cookie included."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditLog, User, UserSession
from tests.conftest import Auth, FreshContextClient, csrf_from

UA = "Mozilla/5.0 (Windows NT 10.0) TestBrowser/1.0"


@pytest.fixture
def browser(app):
    """Another browser: its own cookie jar."""
    app.test_client_class = FreshContextClient

    def make():
        client = app.test_client()
        client.environ_base.update({"HTTP_USER_AGENT": UA, "REMOTE_ADDR": "10.1.2.3"})
        return client
    return make


def _login(client, username="zhuguan", password="demo1234", remember=False):
    page = client.get("/login").get_data(as_text=True)
    data = {"username": username, "password": password, "csrf_token": csrf_from(page)}
    if remember:
        data["remember"] = "y"
    r = client.post("/login", data=data)
    assert r.status_code == 302, r.get_data(as_text=True)
    return r


def _jar(client) -> dict[str, str]:
    return {name: client.get_cookie(name).value for name in ("session", "remember_token")
            if client.get_cookie(name) is not None}


def _replay(browser, cookies: dict[str, str]):
    copy = browser()
    for name, value in cookies.items():
        copy.set_cookie(name, value)
    return copy


def _logged_in(client) -> bool:
    r = client.get("/")
    if r.status_code == 302:
        assert r.headers["Location"].startswith("/login")
        return False
    assert r.status_code == 200
    return True


def _user(username) -> User:
    return db.session.scalar(select(User).where(User.username == username))


def _admin_saves_user(admin, user: User, **changes):
    data = {"username": user.username, "name": user.name, "role": user.role, "active": "y"}
    data.update(changes)
    if data["active"] is None:
        data.pop("active")
    r = Auth(admin).post(f"/admin/users/{user.id}", data, page=f"/admin/users/{user.id}")
    assert r.status_code == 302, r.get_data(as_text=True)


def test_copied_cookies_stop_working_after_logout(demo, browser):
    alice = browser()
    _login(alice, remember=True)
    cookies = _jar(alice)
    assert set(cookies) == {"session", "remember_token"}
    assert _logged_in(_replay(browser, cookies))  # a copy works while the session lives
    Auth(alice).post("/logout")
    assert not _logged_in(alice)
    assert not _logged_in(_replay(browser, cookies))
    assert not _logged_in(_replay(browser, {"remember_token": cookies["remember_token"]}))
    row = db.session.scalar(select(UserSession))
    assert row.revoked_at is not None
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "session_end")).actor == "zhuguan"


def test_remember_cookie_alone_logs_in_while_the_session_lives(demo, browser):
    alice = browser()
    _login(alice, remember=True)
    assert _logged_in(_replay(browser, {"remember_token": _jar(alice)["remember_token"]}))


def test_password_change_ends_the_users_sessions(demo, browser):
    alice, admin = browser(), browser()
    _login(alice, remember=True)
    cookies = _jar(alice)
    _login(admin, "admin")
    _admin_saves_user(admin, _user("zhuguan"), password="another-password")
    assert not _logged_in(alice)
    assert not _logged_in(_replay(browser, {"remember_token": cookies["remember_token"]}))
    assert _logged_in(admin)
    _login(alice, password="another-password")
    assert _logged_in(alice)
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "sessions_revoked")).reason == "修改密码"


def test_own_password_change_keeps_this_browser_and_ends_the_others(demo, browser):
    here, elsewhere = browser(), browser()
    _login(here, "admin")
    _login(elsewhere, "admin")
    _admin_saves_user(here, _user("admin"), password="another-password")
    assert _logged_in(here)
    assert not _logged_in(elsewhere)


def test_deactivation_ends_sessions_for_good(demo, browser):
    alice, admin = browser(), browser()
    _login(alice, remember=True)
    cookies = _jar(alice)
    _login(admin, "admin")
    zhuguan = _user("zhuguan")
    _admin_saves_user(admin, zhuguan, active=None)
    assert not _logged_in(alice)
    _admin_saves_user(admin, _user("zhuguan"))  # active again: the old sessions stay ended
    assert not _logged_in(_replay(browser, cookies))
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "sessions_revoked")).reason == "停用"


def test_admin_sees_a_users_sessions(demo, browser):
    alice, admin = browser(), browser()
    _login(alice)
    _login(admin, "admin")
    html = admin.get(f"/admin/users/{_user('zhuguan').id}/sessions").get_data(as_text=True)
    assert "10.1.2.3" in html and "TestBrowser/1.0" in html and "结束会话" in html and "有效" in html
    token = alice.get_cookie("session").value
    assert token not in html  # ended by its hash; the page never shows a usable cookie


def test_admin_ends_a_session_and_that_browser_is_logged_out(demo, browser):
    alice, bob, admin = browser(), browser(), browser()
    _login(alice)
    _login(bob)
    _login(admin, "admin")
    zhuguan = _user("zhuguan")
    alices = db.session.scalars(select(UserSession).where(UserSession.user_id == zhuguan.id)
                                .order_by(UserSession.created_at)).first()
    page = f"/admin/users/{zhuguan.id}/sessions"
    r = Auth(admin).post(f"{page}/{alices.id}/end", page=page)
    assert r.status_code == 302 and r.headers["Location"] == page
    assert not _logged_in(alice)
    assert _logged_in(bob)
    trail = db.session.scalar(select(AuditLog).where(AuditLog.action == "session_end"))
    assert trail.actor == "admin" and trail.object_id == str(zhuguan.id)


def test_admin_ends_all_sessions_of_a_user(demo, browser):
    alice, bob, admin = browser(), browser(), browser()
    _login(alice)
    _login(bob)
    _login(admin, "admin")
    zhuguan = _user("zhuguan")
    page = f"/admin/users/{zhuguan.id}/sessions"
    r = Auth(admin).post(f"{page}/end-all", page=page)
    assert r.status_code == 302
    assert not _logged_in(alice) and not _logged_in(bob) and _logged_in(admin)
    trail = db.session.scalar(select(AuditLog).where(AuditLog.action == "sessions_revoked"))
    assert trail.actor == "admin" and trail.reason == "管理员结束全部会话（2 个会话）"


def test_ending_a_session_needs_an_admin_and_a_csrf_token(demo, browser):
    alice, clerk, admin = browser(), browser(), browser()
    _login(alice)
    _login(clerk, "kaipiao1")
    _login(admin, "admin")
    zhuguan = _user("zhuguan")
    row = db.session.scalar(select(UserSession).where(UserSession.user_id == zhuguan.id))
    url = f"/admin/users/{zhuguan.id}/sessions/{row.id}/end"
    assert admin.post(url).status_code == 400  # no CSRF token
    assert Auth(clerk).post(url).status_code in (302, 403)
    assert _logged_in(alice)
    other = _user("kaipiao1")
    assert Auth(admin).post(f"/admin/users/{other.id}/sessions/{row.id}/end",
                            page=f"/admin/users/{other.id}/sessions").status_code == 404
    assert _logged_in(alice)


def test_last_seen_is_noted_at_most_once_a_minute(demo, browser):
    from datetime import timedelta
    from portal import clock
    alice = browser()
    _login(alice)
    row = db.session.scalar(select(UserSession))
    long_ago = clock.now() - timedelta(minutes=5)
    row.last_seen_at = long_ago
    db.session.commit()
    assert _logged_in(alice)
    db.session.expire_all()
    seen = db.session.get(UserSession, row.id).last_seen_at
    assert seen > long_ago + timedelta(minutes=4)
    assert _logged_in(alice)  # within the minute: no second write
    db.session.expire_all()
    assert db.session.get(UserSession, row.id).last_seen_at == seen


def test_the_chosen_language_survives_logging_in_and_out(app, demo, client):
    from tests.conftest import Auth, csrf_from
    auth = Auth(client)
    page = client.get("/login").get_data(as_text=True)
    client.post("/lang/en", data={"csrf_token": csrf_from(page), "next": "/login"})
    auth.login("kaipiao1")
    assert "Data sync log" in client.get("/sync-logs/").get_data(as_text=True)
    auth.post("/logout")
    assert "Log in" in client.get("/login").get_data(as_text=True)
