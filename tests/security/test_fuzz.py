"""Odd input never answers 500 (issue 8, point 7).

Every route of ``app.url_map`` is probed, as an admin and as a clerk: path ids that no
INTEGER column holds (0, -1, 2^31, 2^63-1, 2^63, 2^64, 10^30) and odd strings, and
odd form values behind a valid path; on every GET route the
paging keys (page, size, sort, dir), crafted cursors (after/before) and every filter key
of every registered table (``Table.registry``) with odd values; on every POST route (with
a valid CSRF token) the form keys the pages post, with the same odd values. Each answer
must be one a browser can show: 200, 302/303, 400, 403 or 404. Run it on SQLite and on
PostgreSQL, which raises on integers beyond 2^63 where SQLite does not.
"""
from __future__ import annotations

import base64
import json
import re

import pytest
from flask import got_request_exception
from sqlalchemy import select

from portal.extensions import db
from portal.models import JobRun, User
from portal.tables import Table
from tests.conftest import Auth, csrf_from
from tests.sync_helpers import make_task

OK = {200, 302, 303, 400, 403, 404}
ODD_IDS = ["0", "-1", str(2 ** 31), str(2 ** 63 - 1), str(2 ** 63), str(2 ** 64), str(10 ** 30)]
ODD_VALUES = ODD_IDS + [str(2 ** 31 - 1), "%", "'", "\"", "\\", "_", "华东" * 3, "²", "١٢", "\u0000",
                        "x" * 5000, "NaN", "Infinity", "-0", "1e400", "2026-13-40", "0000-00-00",
                        "9999-12-31", "1.5", " ", "[]", "{}", "<script>"]
SKIP_ENDPOINTS = {"auth.logout", "static"}  # logout ends the probing user's session; files on disk


def _cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


CURSORS = [_cursor(v) for v in (
    [None, None], [{"dec": "abc"}, 1], [{"dec": "NaN"}, 1], [{"dec": "Infinity"}, 1], [{"dt": "x"}, 1],
    [{"d": "2026-13-40"}, 1], [{"dt": 5}, 1], [{"dt": "2026-01-01T00:00:00", "d": "x"}, 1],
    ["2026-01-01T00:00:00", 1], [1, "x"], [1, 2 ** 64], [2 ** 64, 1], [2 ** 31, 2 ** 31],
    [1, 2 ** 63 - 1], [-(2 ** 70), 1], [1e308, 1],
    [True, False], [[1], [2]], [{}, {}], [1], [1, 2, 3], "str", {"a": 1}, 7,
)] + ["!!!", "%%%", "", "=" * 9, "A", "\u00e9\u00e9", "x" * 4000]

PAGING = [{"page": v} for v in ODD_VALUES[:12]] + [{"size": v} for v in ODD_VALUES[:12]] + \
    [{"sort": v} for v in ("id", "password_hash", "'", "__class__", "x" * 300)] + \
    [{"dir": v} for v in ("up", "'", "")] + [{"last": "1", "page": str(2 ** 64)}]


def _filter_keys() -> set[str]:
    keys = set()
    for table in Table.registry.values():
        keys.update(f.key for f in table.filters)
        if table.tabs:
            keys.add(table.tabs.key)
    return keys


FORM_KEYS = ("ids", "org", "grant", "select_all", "filters", "next", "download_type", "sync_type",
             "start", "end", "cols", "reset", "confirmed", "code", "name", "username", "role",
             "password", "active", "tax_id", "taxpayer_type", "channel", "enabled", "cron")


def _path(rule, value: str) -> str | None:
    """The rule's path with every variable set to `value` (None when it cannot take it)."""
    path = rule.rule
    for name, conv in rule._converters.items():
        pattern = re.compile(r"<(?:[^:<>]+:)?" + re.escape(name) + r">")
        path = pattern.sub(value, path)
    return path


def _probe(client, method, url, failures, **kwargs):
    errors = []

    def note(sender, exception, **extra):
        errors.append(f"{type(exception).__name__}: {str(exception)[:300]}")
    with got_request_exception.connected_to(note, client.application):
        r = client.open(url, method=method, **kwargs)
    if r.status_code not in OK and not (url == "/login" and r.status_code == 401):  # wrong password
        sent = kwargs.get("data") or kwargs.get("query_string") or {}
        failures.append((method, url[:200], {k: str(v)[:60] for k, v in sent.items() if k != "csrf_token"},
                         r.status_code, errors))
    return r


def _real_ids() -> dict[str, str]:
    """A real id for each path variable, so forms behind a valid path are probed too
    (users: kaipiao2's, so no probe changes the probing users)."""
    from portal.models import Organization, SchedulePlan, SyncTask
    task = db.session.scalar(select(SyncTask.id).order_by(SyncTask.id))
    return {"org_id": db.session.scalar(select(Organization.id).order_by(Organization.id)),
            "user_id": db.session.scalar(select(User.id).where(User.username == "kaipiao2")),
            "plan_id": db.session.scalar(select(SchedulePlan.id).order_by(SchedulePlan.id)),
            "job_id": db.session.scalar(select(JobRun.id).order_by(JobRun.id)),
            "task_id": task, "row_id": task, "table_id": "sync-table", "code": "zh",
            "session_id": "0" * 64}


@pytest.fixture
def world(demo):
    """Rows for every kind of page: tasks on two organisations, a finished job."""
    make_task("ORG01", "success", invoice_count=3, success_count=3)
    make_task("ORG01", "failed", error="税局繁忙")
    make_task("ORG03", "processing")
    admin = db.session.scalar(select(User).where(User.username == "admin"))
    db.session.add(JobRun(kind="sync.create", user_id=admin.id, subject="t", status="done", total=0))
    db.session.commit()
    return demo


def _routes(app):
    return sorted((r for r in app.url_map.iter_rules() if r.endpoint not in SKIP_ENDPOINTS),
                  key=lambda r: r.rule)


def _run(app, client, username):
    auth = Auth(client)
    r = auth.login(username)
    assert r.status_code == 302
    token = auth.token()
    failures, count = [], 0
    filter_keys = sorted(_filter_keys())
    for rule in _routes(app):
        methods = rule.methods - {"HEAD", "OPTIONS"}
        has_vars = bool(rule.arguments)
        if has_vars:
            odd = ODD_IDS if any(type(c).__name__ == "IdConverter" for c in rule._converters.values()) \
                else ODD_IDS + ["%25", "'", "x" * 300, "%E5%8D%8E"]
            real = rule.rule
            for name, value in _real_ids().items():
                real = re.sub(r"<(?:[^:<>]+:)?" + name + r">", str(value), real)
            if "POST" in methods and "<" not in real:
                for value in ODD_VALUES:
                    data = {k: value for k in FORM_KEYS}
                    data["csrf_token"] = token
                    _probe(client, "POST", real, failures, data=data)
                    count += 1
                for key in ("ids", "org", "grant"):
                    _probe(client, "POST", real, failures,
                           data={key: [str(2 ** 64), str(2 ** 31), str(2 ** 31 - 1), "²", f"{2 ** 31}|F18012.query"],
                                 "csrf_token": token})
                    count += 1
            for value in odd:
                url = _path(rule, value)
                if "GET" in methods:
                    _probe(client, "GET", url, failures)
                    count += 1
                if "POST" in methods:
                    _probe(client, "POST", url, failures, data={"csrf_token": token})
                    count += 1
            continue
        if "GET" in methods:
            for params in PAGING:
                _probe(client, "GET", rule.rule, failures, query_string=params)
                count += 1
            for cursor in CURSORS:
                for key in ("after", "before"):
                    _probe(client, "GET", rule.rule, failures, query_string={key: cursor})
                    count += 1
            for value in ODD_VALUES:
                _probe(client, "GET", rule.rule, failures, query_string={k: value for k in filter_keys})
                count += 1
            for key in filter_keys:  # one key at a time: a combination could hide a failure
                for value in (str(2 ** 64), "²", "'", "2026-13-40"):
                    _probe(client, "GET", rule.rule, failures, query_string={key: value})
                    count += 1
        if "POST" in methods:
            for value in ODD_VALUES:
                data = {k: value for k in FORM_KEYS}
                data.update({k: value for k in filter_keys})
                data["csrf_token"] = token
                _probe(client, "POST", rule.rule, failures, data=data)
                count += 1
            for key in ("ids", "org", "grant"):
                _probe(client, "POST", rule.rule, failures,
                       data={key: [str(2 ** 64), str(2 ** 63 - 1), "²", f"{2 ** 64}|F18012.query",
                                   f"{2 ** 31}|F18012.query"], "select_all": "0",
                             "csrf_token": token})
                count += 1
        # still logged in as `username` (no probe may end the session)
        assert client.get("/").status_code == 200, rule.rule
    return failures, count


@pytest.mark.parametrize("username", ["admin", "kaipiao1"])
def test_no_route_answers_500_to_odd_input(world, client, username, capsys):
    world.config["PROPAGATE_EXCEPTIONS"] = False  # a 500 is answered (and listed), not raised
    failures, count = _run(world, client, username)
    with capsys.disabled():
        print(f"\nfuzz {username}: {len(_routes(world))} routes, {count} probes")
    assert failures == [], "\n".join(map(str, failures))


def test_path_ids_beyond_the_database_range_are_404(world, client):
    Auth(client).login("admin")
    for value in ODD_IDS:
        assert client.get(f"/sync-logs/{value}").status_code == 404
        assert client.get(f"/admin/users/{value}").status_code == 404


@pytest.mark.parametrize("sort", ["created_at", "start_date", "success_count", "batch_no"])
def test_a_malformed_cursor_is_ignored_not_an_error(world, client, sort):
    """A cursor whose values do not have the sort column's type (a string for a time, a
    number for a text…) shows the first page: every task is listed."""
    from portal.models import SyncTask
    Auth(client).login("admin")
    batches = db.session.scalars(select(SyncTask.batch_no)).all()
    wrong = {"created_at": ["2026-01-01T00:00:00", 1], "start_date": ["2026-01-01", 1],
             "success_count": ["0", 1], "batch_no": [0, 1]}[sort]
    for cursor in CURSORS + [_cursor(wrong)]:
        if sort == "batch_no" and cursor == _cursor(["2026-01-01T00:00:00", 1]):
            continue  # a well-formed cursor for a text column
        for key in ("after", "before"):
            r = client.get("/sync-logs/", query_string={key: cursor, "sort": sort, "dir": "desc"})
            assert r.status_code == 200
            html = r.get_data(as_text=True)
            assert all(b in html for b in batches), (key, cursor)


def test_a_nul_character_in_a_query_or_form_is_a_clear_400(world, client):
    """PostgreSQL refuses NUL in text, so it is refused before any query, on every database."""
    auth = Auth(client)
    auth.login("admin")
    r = client.get("/sync-logs/", query_string={"batch_no": "a\x00b"})
    assert r.status_code == 400 and "请求包含非法字符" in r.get_data(as_text=True)
    r = auth.post("/admin/users/new", {"username": "x\x00", "name": "n", "role": "clerk"})
    assert r.status_code == 400 and "请求包含非法字符" in r.get_data(as_text=True)
