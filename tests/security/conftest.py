"""Fixtures of the security suite: the demo roles, an outsider, and real rows for every path id."""
from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from portal.auth.permissions import ALL_PERMISSIONS
from portal.extensions import db
from portal.models import Grant, JobRun, Organization, User
from portal.models.session import UserSession
from portal.models.sync import SchedulePlan
from tests.conftest import Auth, FreshContextClient
from tests.sync_helpers import create_via_form, org, run_worker, tasks

ROLES = ["anonymous", "admin", "zhuguan", "kaipiao1", "kaipiao2", "outsider"]


def login_client(app, role: str):
    """A fresh browser (its own cookie jar) logged in as `role` (anonymous: not logged in)."""
    app.test_client_class = FreshContextClient
    auth = Auth(app.test_client())
    if role != "anonymous":
        r = auth.login(role)
        assert r.status_code == 302 and "/login" not in r.headers["Location"], role
    return auth


@dataclass
class World:
    """Real rows for every path variable: ORG01's task, kaipiao1's job, kaipiao1 himself."""
    app: object
    ids: dict

    def path(self, rule) -> str:
        path = rule.rule
        for name in rule.arguments:
            path = re.sub(r"<(?:[^:<>]+:)?" + name + ">", str(self.ids[name]), path)
        return path


def _add_outsider():
    """A clerk of another organisation (ORG06 only) with every permission there."""
    user = User(username="outsider", name="外部用户", role="clerk")
    user.set_password("demo1234")
    db.session.add(user)
    db.session.flush()
    o6 = org("ORG06")
    db.session.add_all(Grant(user_id=user.id, org_id=o6.id, permission=p) for p in ALL_PERMISSIONS)
    db.session.commit()


@pytest.fixture
def world(portal_with_sandbox, sandbox):
    app = portal_with_sandbox
    _add_outsider()
    k1 = login_client(app, "kaipiao1")
    create_via_form(k1, "ORG01")          # a task of ORG01, through the form and the worker
    from tests.test_imports import ROW, bureau_file, upload
    r = upload(k1, bureau_file([ROW]))    # a job of kaipiao1 (手工导入), through the form
    assert r.status_code == 302, r.get_data(as_text=True)
    run_worker()
    task = tasks()[0]
    job = db.session.scalar(select(JobRun).order_by(JobRun.id))
    kaipiao1 = db.session.scalar(select(User).where(User.username == "kaipiao1"))
    session_id = db.session.scalar(select(UserSession.id).where(UserSession.user_id == kaipiao1.id))
    ids = {"task_id": task.id, "row_id": task.id, "job_id": job.id, "org_id": org("ORG01").id,
           "user_id": kaipiao1.id, "session_id": session_id,
           "plan_id": db.session.scalar(select(func.min(SchedulePlan.id))),
           "table_id": "sync-table", "code": "en", "filename": "favicon.ico"}
    return World(app, ids)


def row_counts() -> dict:
    """Rows in every table: a refused request must leave all of them as they were."""
    return {t.name: db.session.scalar(select(func.count()).select_from(t)) for t in db.metadata.sorted_tables}
