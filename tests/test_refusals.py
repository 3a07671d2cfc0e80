"""Refusals never name objects the user may not see (issue 8, point 11)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.auth import permissions
from portal.extensions import db
from portal.models import User
from tests.sync_helpers import create_via_form, make_task, org, tasks

HIDDEN_NAME = "华东科技有限公司"  # ORG01: kaipiao2 holds grants on ORG03–05 only


@pytest.fixture
def env(portal_with_sandbox, sandbox, auth):
    """kaipiao2 may also create download tasks, on ORG03 only."""
    from portal.models import Grant
    kaipiao2 = db.session.scalar(select(User).where(User.username == "kaipiao2"))
    db.session.add(Grant(user_id=kaipiao2.id, org_id=org("ORG03").id, permission="F18012.create"))
    db.session.commit()
    return portal_with_sandbox


def test_creating_a_task_for_an_unseen_organisation_does_not_name_it(env, auth):
    auth.login("kaipiao2")
    r = create_via_form(auth, "ORG01")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "核算组织不存在或无权限" in html
    assert HIDDEN_NAME not in html and "ORG01" not in html
    assert tasks() == []


def test_a_missing_organisation_answers_like_an_unseen_one(env, auth):
    """Otherwise the difference would tell which ids exist."""
    auth.login("kaipiao2")
    hidden, missing = org("ORG01").id, 999999
    r = auth.post("/sync-logs/new", {"org": [str(hidden), str(missing)], "download_type": ["in_full"],
                                     "sync_type": "current_month", "start": "2026-01-01", "end": "2026-01-31"},
                  page="/sync-logs/new", follow_redirects=True)
    html = r.get_data(as_text=True)
    assert f"{hidden} · 进项-全量" in html and f"{missing} · 进项-全量" in html
    assert html.count("核算组织不存在或无权限") >= 2 and HIDDEN_NAME not in html


def test_creating_a_task_for_a_visible_organisation_without_the_grant_names_it(env, auth):
    auth.login("kaipiao2")
    html = create_via_form(auth, "ORG04").get_data(as_text=True)  # queried, not created, by kaipiao2
    assert "无「新增下载任务」权限" in html and org("ORG04").name in html


def test_bulk_refusal_names_only_organisations_the_user_may_query(env):
    kaipiao2 = db.session.scalar(select(User).where(User.username == "kaipiao2"))
    hidden, visible = make_task("ORG01", "processing"), make_task("ORG03", "processing")
    from portal.models import Grant
    db.session.execute(Grant.__table__.delete().where(Grant.user_id == kaipiao2.id,
                                                      Grant.org_id == org("ORG03").id,
                                                      Grant.permission == "F18012.void"))
    db.session.commit()
    allowed, refused = permissions.partition("F18012.void", [hidden, visible], user=kaipiao2)
    reasons = {r.row.id: r.reason for r in refused}
    assert allowed == []
    assert reasons[hidden.id] == "无「作废任务」权限（核算组织不存在或无权限）"
    assert reasons[visible.id] == f"无「作废任务」权限（核算组织：{org('ORG03').name}）"
