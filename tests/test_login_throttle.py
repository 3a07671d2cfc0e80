"""Login throttling (issue 8, point 4): counted before the password is checked, atomically,
per user and IP, with a growing pause — never a lock-out of other accounts or networks."""
from __future__ import annotations

import threading
import time

import pytest

from portal.models import User
from tests.conftest import csrf_from

ATTACKER, OFFICE, HOME = "10.0.0.66", "10.0.0.10", "192.168.1.5"


def _login(client, username, password, ip):
    env = {"REMOTE_ADDR": ip}
    page = client.get("/login", environ_overrides=env).get_data(as_text=True)
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf_from(page)}, environ_overrides=env)


def _pause_message(seconds: int) -> str:
    wait = f"{seconds} 秒" if seconds < 60 else f"{-(-seconds // 60)} 分钟"
    return f"登录失败次数过多，请 {wait} 后再试"


@pytest.fixture
def checks(monkeypatch):
    """Count password checks; each is slowed a little so concurrent requests overlap."""
    calls = []
    lock = threading.Lock()
    real = User.check_password

    def spy(self, password):
        with lock:
            calls.append(self.username)
        time.sleep(0.05)
        return real(self, password)
    monkeypatch.setattr(User, "check_password", spy)
    return calls


def test_concurrent_wrong_passwords_check_at_most_the_limit(demo, app, checks):
    clients = [app.test_client() for _ in range(20)]
    tokens = []
    for c in clients:
        with app.app_context():  # each request its own `g`, as in production
            tokens.append(csrf_from(c.get("/login", environ_overrides={"REMOTE_ADDR": ATTACKER})
                                    .get_data(as_text=True)))
    barrier = threading.Barrier(len(clients))
    statuses = []

    def post(client, token):
        barrier.wait()
        with app.app_context():
            r = client.post("/login", data={"username": "admin", "password": "wrong", "csrf_token": token},
                            environ_overrides={"REMOTE_ADDR": ATTACKER})
        statuses.append((r.status_code, r.get_data(as_text=True)))

    threads = [threading.Thread(target=post, args=pair) for pair in zip(clients, tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(statuses) == 20 and all(code == 401 for code, _ in statuses)
    assert len(checks) == app.config["LOGIN_MAX_FAILURES"]
    paused = [html for _, html in statuses if "登录失败次数过多" in html]
    assert len(paused) == 20 - app.config["LOGIN_MAX_FAILURES"]


def test_paused_user_and_ip_get_a_clear_message_with_the_wait(demo, app, client, checks):
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert "用户名或密码错误" in _login(client, "kaipiao1", "wrong", ATTACKER).get_data(as_text=True)
    r = _login(client, "kaipiao1", "demo1234", ATTACKER)  # even the right password waits
    assert r.status_code == 401
    assert _pause_message(app.config["LOGIN_LOCK_SECONDS"]) in r.get_data(as_text=True)
    assert len(checks) == app.config["LOGIN_MAX_FAILURES"]


def test_pause_grows_at_every_further_lock_out(demo, app, client):
    from portal.redis_conn import get_redis
    app.config.update(LOGIN_LOCK_SECONDS=2, LOGIN_LOCK_MAX_SECONDS=3600)
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        _login(client, "kaipiao1", "wrong", ATTACKER)
    assert _pause_message(2) in _login(client, "kaipiao1", "wrong", ATTACKER).get_data(as_text=True)
    get_redis().delete("login:lock:kaipiao1|" + ATTACKER)  # the first pause is over
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        _login(client, "kaipiao1", "wrong", ATTACKER)
    assert _pause_message(4) in _login(client, "kaipiao1", "wrong", ATTACKER).get_data(as_text=True)


def test_failures_against_one_user_do_not_pause_another_user_from_that_ip(demo, app, client):
    for _ in range(app.config["LOGIN_MAX_FAILURES_PER_IP"] + 5):
        _login(client, "kaipiao1", "wrong", OFFICE)
    assert "登录失败次数过多" in _login(client, "kaipiao1", "demo1234", OFFICE).get_data(as_text=True)
    r = _login(client, "kaipiao2", "demo1234", OFFICE)
    assert r.status_code == 302


def test_paused_admin_still_logs_in_from_another_ip(demo, app, client):
    for _ in range(app.config["LOGIN_MAX_FAILURES"] + 3):
        _login(client, "admin", "wrong", ATTACKER)
    assert "登录失败次数过多" in _login(client, "admin", "demo1234", ATTACKER).get_data(as_text=True)
    assert _login(client, "admin", "demo1234", HOME).status_code == 302


def test_a_spray_from_one_ip_does_not_lock_out_users_known_there(demo, app, client):
    """Behind one office NAT: an attacker spraying usernames is paused, colleagues who
    have logged in from there before are not."""
    app.config["LOGIN_MAX_FAILURES_PER_IP"] = 6
    assert _login(client, "admin", "demo1234", OFFICE).status_code == 302  # admin known at OFFICE
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/").get_data(as_text=True))})
    for i in range(8):
        _login(client, f"nobody{i}", "guess", OFFICE)
    assert "登录失败次数过多" in _login(client, "nobody99", "guess", OFFICE).get_data(as_text=True)
    assert "登录失败次数过多" in _login(client, "kaipiao2", "demo1234", OFFICE).get_data(as_text=True)
    assert _login(client, "admin", "demo1234", OFFICE).status_code == 302


def test_a_success_gives_back_its_ip_count_but_never_below_zero(demo, app):
    from portal.auth import throttle
    from portal.redis_conn import get_redis
    key = "login:fail:ip:" + OFFICE
    with app.test_request_context():
        assert throttle.attempt("kaipiao2", OFFICE).allowed
        assert get_redis().get(key) == b"1"
        get_redis().delete(key)  # the window expired while the password was checked
        throttle.succeeded("kaipiao2", OFFICE)
    assert int(get_redis().get(key) or 0) == 0
