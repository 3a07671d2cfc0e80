"""Route × role, CSRF and IDOR, generated from ``app.url_map`` and the declarations in routes.py."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal import create_app
from portal.extensions import db
from portal.models import JobRun, SyncTask
from tests.conftest import _test_config, csrf_from
from tests.security.conftest import ROLES, login_client, row_counts
from tests.security.routes import ADMIN, BY_ENDPOINT, LOGIN, NOT_PROBED, PUBLIC, ROUTES

PERMS = {  # module permissions each role holds on at least one organisation (portal/seed.py)
    "admin": None, "zhuguan": None, "outsider": None,
    "kaipiao1": {"F18012.query", "F18012.create"}, "kaipiao2": {"F18012.query"},
}
SEES = {  # who may see the rows the world fixture made: ORG01's task, kaipiao1's job
    "task": {"admin", "zhuguan", "kaipiao1"},
    "job": {"admin", "kaipiao1"},
}


def _rules():
    app = create_app(_test_config())
    return sorted((r for r in app.url_map.iter_rules() if r.endpoint not in NOT_PROBED),
                  key=lambda r: (r.endpoint, r.rule))


RULES = _rules()


def test_every_route_is_declared():
    """A new route fails here until routes.py says who may use it."""
    assert {r.endpoint for r in RULES} == set(BY_ENDPOINT)
    for rule in RULES:
        declared = BY_ENDPOINT[rule.endpoint]
        assert rule.methods - {"HEAD", "OPTIONS"} == declared.methods, rule.rule
        assert set(rule.arguments) <= set(declared.ids), rule.rule


def allowed(route, role) -> bool:
    if route.access == PUBLIC:
        return True
    if role == "anonymous":
        return False
    if route.access == LOGIN:
        return True
    if route.access == ADMIN:
        return role == "admin"
    return PERMS[role] is None or route.access in PERMS[role]


def sees_rows(route, role) -> bool:
    return all(role in SEES[kind] for kind in route.ids.values() if kind in SEES)


def assert_refused(r, route, role, path):
    if role == "anonymous":
        assert r.status_code == 302 and r.headers["Location"].startswith("/login"), (path, r.status_code)
    elif route.refuse == "redirect":
        assert r.status_code == 302 and "/login" not in r.headers["Location"], (path, r.status_code)
    else:
        assert r.status_code == 403, (path, role, r.status_code)


GETS = [r for r in RULES if "GET" in r.methods]


@pytest.mark.parametrize("role", ROLES)
def test_every_get_route_answers_each_role_as_declared(world, role):
    """Allowed → 200 (a file or a page); refused → the login redirect, 403 or the redirect
    with the no-permission message; another user's or organisation's row → 404."""
    auth = login_client(world.app, role)
    probed = 0
    for rule in GETS:
        route, path = BY_ENDPOINT[rule.endpoint], world.path(rule)
        r = auth.client.get(path)
        probed += 1
        if not allowed(route, role):
            assert_refused(r, route, role, path)
        elif not sees_rows(route, role):
            assert r.status_code == 404, (path, role, r.status_code)
        elif rule.endpoint == "main.job_file":
            assert r.status_code == 404  # an import job keeps no file; exports are tested apart
        else:
            assert r.status_code == route.ok, (path, role, r.status_code, r.get_data(as_text=True)[:300])
    assert probed == len(GETS)


POSTS = [r for r in RULES if "POST" in r.methods]


@pytest.mark.parametrize("role", ROLES)
def test_every_post_route_refuses_a_role_without_the_right_and_changes_nothing(world, role):
    """With a valid CSRF token, a role that may not use a POST route is refused before
    anything is written."""
    auth = login_client(world.app, role)
    token = auth.token("/login" if role == "anonymous" else "/")
    refused = [r for r in POSTS if not allowed(BY_ENDPOINT[r.endpoint], role)]
    before = row_counts()
    for rule in refused:
        path = world.path(rule)
        r = auth.client.post(path, data={"csrf_token": token, "ids": [str(world.ids["task_id"])]})
        assert_refused(r, BY_ENDPOINT[rule.endpoint], role, path)
    assert row_counts() == before
    if role in ("anonymous", "kaipiao1", "kaipiao2"):
        assert refused  # the probe is not vacuous


# --- CSRF on every state-changing route --------------------------------------------------------
def _garbled(token: str) -> str:
    return token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")


BAD_TOKENS = ["missing", "foreign", "garbled", "stale"]


@pytest.mark.parametrize("how", BAD_TOKENS + ["htmx-foreign"])
def test_every_post_route_refuses_a_bad_csrf_token_with_400_and_no_change(world, how):
    admin = login_client(world.app, "admin")
    other = login_client(world.app, "admin")  # another session of the same user
    foreign = other.token("/")
    own = admin.token("/")
    stale = None
    if how == "stale":  # a token of this browser's previous session (before logout and login)
        admin.client.post("/logout", data={"csrf_token": own})
        stale = own
        admin.login("admin")
    before = row_counts()
    for rule in POSTS:
        path = world.path(rule)
        data = {"ids": [str(world.ids["task_id"])], "name": "x", "username": "admin", "password": "demo1234"}
        headers = {}
        if how == "foreign":
            data["csrf_token"] = foreign
        elif how == "garbled":
            data["csrf_token"] = _garbled(own)
        elif how == "stale":
            data["csrf_token"] = stale
        elif how == "htmx-foreign":
            headers = {"HX-Request": "true", "X-CSRFToken": foreign}
        r = admin.client.post(path, data=data, headers=headers)
        assert r.status_code == 400, (path, how, r.status_code)
        assert "CSRF" in r.get_data(as_text=True)
    assert row_counts() == before
    assert admin.client.get("/").status_code == 200  # still logged in: logout was refused too


# --- IDOR: another organisation's or user's rows -----------------------------------------------
def test_a_clerk_of_other_organisations_cannot_act_on_org01_rows(world):
    """kaipiao2 (ORG03–ORG05) and the outsider (ORG06): ORG01's task and kaipiao1's job are
    404 by id, and every bulk button with their ids changes nothing."""
    task_id, job_id = world.ids["task_id"], world.ids["job_id"]
    status = db.session.get(SyncTask, task_id).status
    for role in ("kaipiao2", "outsider", "zhuguan"):
        auth = login_client(world.app, role)
        token = auth.token("/")
        for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/file"):
            assert auth.client.get(path).status_code == 404, (role, path)
        assert auth.client.post(f"/jobs/{job_id}/retry", data={"csrf_token": token}).status_code == 404
        if role == "zhuguan":
            continue  # zhuguan holds ORG01: only kaipiao1's job is out of reach
        for path in (f"/sync-logs/{task_id}", f"/sync-logs/rows/{task_id}"):
            r = auth.client.get(path)
            assert r.status_code == 404 and "华东科技" not in r.get_data(as_text=True), (role, path)
        before = row_counts()
        jobs_before = db.session.scalar(select(func.count()).select_from(JobRun))
        for path in ("/sync-logs/retry", "/sync-logs/void", "/sync-logs/fetch-results",
                     f"/sync-logs/orgs/{world.ids['org_id']}/login"):
            r = auth.client.post(path, data={"csrf_token": token, "ids": [str(task_id)], "confirmed": "1"})
            assert r.status_code in (200, 302, 403, 404), (role, path, r.status_code)
        r = auth.client.post("/sync-logs/export", data={"csrf_token": token, "ids": [str(task_id)]})
        assert "spreadsheetml" not in r.headers.get("Content-Type", "") or b"ORG01" not in r.data
        assert row_counts() == before
        assert db.session.scalar(select(func.count()).select_from(JobRun)) == jobs_before
        assert db.session.get(SyncTask, task_id).status == status


def test_a_non_admin_cannot_see_another_users_sessions(world):
    uid = world.ids["user_id"]
    for role in ("zhuguan", "kaipiao2", "outsider", "kaipiao1"):
        auth = login_client(world.app, role)
        r = auth.client.get(f"/admin/users/{uid}/sessions")
        assert r.status_code == 403 and world.ids["session_id"][:12] not in r.get_data(as_text=True)
