"""App factory, config defaults, migrations, login, throttling, CSRF, audit."""
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect, select

from portal import create_app
from portal.config import database_url, redis_url
from portal.extensions import db
from portal.models import AuditLog, User
from portal.taxid import validate_tax_id, uscc_check_char


def test_app_factory_uses_given_config(app):
    assert app.config["TESTING"] is True
    assert "auth" in app.blueprints and "admin" in app.blueprints


def test_config_defaults_are_embedded(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert database_url().startswith("sqlite:///") and database_url().endswith("portal.db")
    assert redis_url().startswith("unix://") and redis_url().endswith("redis.sock")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    assert database_url() == "postgresql+psycopg://u@h/db"


def test_secret_key_is_generated_once_into_instance(tmp_path):
    env = dict(os.environ, PORTAL_INSTANCE=str(tmp_path))
    env.pop("SECRET_KEY", None)
    code = "from portal.config import secret_key; print(secret_key())"
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert len(first.stdout.strip()) == 64
    assert first.stdout == second.stdout
    assert oct((tmp_path / "secret_key").stat().st_mode)[-3:] == "600"


def test_migrations_build_the_schema_from_empty(tmp_path):
    from flask_migrate import upgrade

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    fresh = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with fresh.app_context():
        upgrade()
        names = set(inspect(db.engine).get_table_names())
        from portal.models import SchedulePlan
        from portal.models.sync import DEFAULT_PLANS
        plans = set(db.session.scalars(select(SchedulePlan.code)))
        db.session.remove()
        db.engine.dispose()
    assert plans == {p["code"] for p in DEFAULT_PLANS}
    assert {"organizations", "users", "grants", "system_parameters", "audit_log",
            "job_runs", "alembic_version"} <= names


def test_migrations_match_the_models(app):
    """No model change is left without a migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == []


def test_login_page_renders_in_chinese(client):
    html = client.get("/login").get_data(as_text=True)
    assert "登录发票云" in html and 'name="csrf_token"' in html


def test_pages_require_login(client):
    r = client.get("/admin/orgs")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_login_with_right_password(demo, auth, client):
    r = auth.login("admin", "demo1234")
    assert r.status_code == 302
    assert client.get("/").status_code == 200
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "login")).actor == "admin"


def test_login_with_wrong_password_is_refused(demo, auth):
    r = auth.login("admin", "wrong-password")
    assert r.status_code == 401
    assert "用户名或密码错误" in r.get_data(as_text=True)


def test_login_is_throttled_after_repeated_failures(demo, auth, app):
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        auth.login("admin", "wrong")
    r = auth.login("admin", "demo1234")  # even the right password is refused while locked
    assert r.status_code == 401
    assert "登录失败次数过多" in r.get_data(as_text=True)


def test_post_without_csrf_token_is_refused(demo, auth, client):
    auth.login()
    r = client.post("/admin/params", data={"hide_unauthorized_buttons": "1"})
    assert r.status_code == 400
    assert "CSRF" in r.get_data(as_text=True)


def test_login_form_without_csrf_token_is_refused(demo, client):
    r = client.post("/login", data={"username": "admin", "password": "demo1234"})
    assert r.status_code == 400


def test_htmx_request_with_csrf_header_is_accepted(demo, auth, client):
    auth.login()
    token = auth.token()
    r = client.post("/admin/params", data={"hide_unauthorized_buttons": "1"},
                    headers={"HX-Request": "true", "X-CSRFToken": token})
    assert r.status_code == 302, r.get_data(as_text=True)


def test_logout_ends_the_session(demo, auth, client):
    auth.login()
    auth.post("/logout")
    assert client.get("/").status_code == 302


def test_password_change_ends_other_sessions(demo, auth, client, app):
    auth.login("zhuguan")
    user = db.session.scalar(select(User).where(User.username == "zhuguan"))
    user.set_password("another-password")
    db.session.commit()
    assert client.get("/").status_code == 302


def test_session_cookie_is_hardened(demo, auth, client):
    r = auth.login()
    cookie = r.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_open_redirect_after_login_is_refused(demo, client):
    from tests.conftest import csrf_from
    page = client.get("/login").get_data(as_text=True)
    r = client.post("/login?next=//evil.example/x", data={
        "username": "admin", "password": "demo1234", "csrf_token": csrf_from(page)})
    assert r.headers["Location"] == "/"


def test_audit_log_is_append_only(app):
    import pytest
    from portal import audit
    row = audit.record("thing", 1, "create", to_state="new", actor="tester")
    db.session.commit()
    row.reason = "tamper"
    with pytest.raises(RuntimeError):
        db.session.commit()
    db.session.rollback()


def test_uscc_check_character():
    for valid in ["91110000600037341L", "121200004013590816", "91310115MA1K3BTP2B",
                  "9144030071526726XG", "92340602MA2PBMEM24"]:
        assert validate_tax_id(valid) is None, valid
    assert uscc_check_char("91110000600037341") == "L"


def test_uscc_with_wrong_check_character_is_refused_with_the_expected_one():
    msg = validate_tax_id("91110000600037341K")
    assert "第18位应为“L”" in msg


def test_early_legal_code_needs_the_explicit_override():
    assert validate_tax_id("91350100M0001TGQXM") is not None
    assert validate_tax_id("91350100M0001TGQXM", override=True) is None


def test_tax_id_with_forbidden_letters_or_length_is_refused():
    assert "非法字符" in validate_tax_id("91110000600037341O")
    assert "15至20位" in validate_tax_id("1234")
    assert validate_tax_id("110101123456789") is None  # old 15-character ID


def test_english_can_be_switched_on(demo, auth, client):
    auth.login("kaipiao1")
    html = client.get("/sync-logs/").get_data(as_text=True)
    assert "数据同步日志查询" in html
    auth.post("/lang/en", {"next": "/sync-logs/"})
    html = client.get("/sync-logs/").get_data(as_text=True)
    assert "Data sync log" in html and "Download batch no." in html and "Retry manually" in html  # the manuals' English


def test_compiled_catalogue_is_up_to_date():
    """translations/*.mo must be recompiled whenever the .po changes (make translations)."""
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po
    base = Path(__file__).parent.parent / "translations/en/LC_MESSAGES/messages"
    po = {m.id: m.string for m in read_po(open(f"{base}.po", "rb")) if m.id}
    mo = {m.id: m.string for m in read_mo(open(f"{base}.mo", "rb")) if m.id}
    assert po == mo
