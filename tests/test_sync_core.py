"""F18012 on the workflow core: request ids, record-before-call, the sweeper, the atomic
3-minute rule, login expiry per organisation, the outbox — each on the path a user takes
(the product's forms and the real sandbox over HTTP, a real RQ worker)."""
from __future__ import annotations

import threading
from datetime import datetime

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import DBAPIError

from portal import clock, outbox
from portal.channels import make_client
from portal.channels.http import HttpChannelClient
from portal.extensions import db
from portal.models import AuditLog, OutboxMessage, SchedulePlan, SyncTask, SyncTaskAttempt
from portal.sync_logs import channel_work, service
from tests.conftest import Auth
from tests.sync_helpers import create_via_form, later, org, reload, run_worker, tasks


@pytest.fixture
def env(portal_with_sandbox, sandbox, auth):
    return portal_with_sandbox


def _attempts(task) -> list[SyncTaskAttempt]:
    return db.session.scalars(select(SyncTaskAttempt).where(SyncTaskAttempt.task_id == task.id)
                              .order_by(SyncTaskAttempt.seq)).all()


def _task_in_progress(auth, sandbox) -> SyncTask:
    """A task kaipiao1 created through the form that the bureau keeps in 下载处理中."""
    sandbox.downloads(org("ORG01").tax_id, outcome="processing", mode="all")
    auth.login("kaipiao1")
    create_via_form(auth)
    run_worker()
    return tasks()[0]


# --- request ids: one decision -------------------------------------------------------------------
def test_retry_after_a_definitive_failure_is_a_new_request_and_recovers(env, auth, sandbox, monkeypatch):
    sandbox.downloads(org("ORG01").tax_id, outcome="failed", mode="next")
    auth.login("kaipiao1")
    create_via_form(auth)
    run_worker()
    task = tasks()[0]
    assert task.status == "failed"
    first_bureau_task = task.channel_task_id
    later(monkeypatch, 181)
    r = auth.post("/sync-logs/retry", {"ids": [str(task.id)]}, page="/sync-logs/", follow_redirects=True)
    assert "已重新发起下载请求" in r.get_data(as_text=True)
    run_worker()
    task = reload(task)
    assert task.status == "success", task.error
    assert task.channel_task_id and task.channel_task_id != first_bureau_task
    first, second = _attempts(task)
    assert (first.request_id, second.request_id) == (task.batch_no, f"{task.batch_no}-R1")
    assert (first.channel_task_id, second.channel_task_id) == (first_bureau_task, task.channel_task_id)
    assert (second.actor, second.reason, second.status) == ("kaipiao1", "手工重试", "accepted")
    html = auth.client.get(f"/sync-logs/{task.id}").get_data(as_text=True)
    assert first.request_id in html and second.request_id in html and "手工重试" in html


@pytest.mark.parametrize("org_code", ["ORG01", "ORG02", "ORG04"])  # RPA, 乐企, 税控
def test_unknown_application_is_recovered_automatically_with_the_same_request_id(env, auth, sandbox, org_code):
    sandbox.fault(org(org_code).tax_id, "response_lost", operation="apply_download", count=1)
    auth.login("zhuguan")
    create_via_form(auth, org_code=org_code)
    run_worker()  # nobody presses anything: the same request id goes again and is answered
    task = tasks()[0]
    assert task.status == "success", task.error
    (attempt,) = _attempts(task)
    assert (attempt.request_id, attempt.sends, attempt.status) == (task.batch_no, 2, "accepted")
    trail = db.session.scalars(select(AuditLog.to_state).where(
        AuditLog.object_type == "sync_attempt").order_by(AuditLog.id)).all()
    assert trail == ["sent", "unknown", "sent", "accepted"]


def test_application_is_committed_as_sent_before_the_channel_is_called(env, auth, monkeypatch):
    seen = []
    real = HttpChannelClient.apply_download
    other = create_engine(env.config["SQLALCHEMY_DATABASE_URI"])  # another process's view

    def spy(self, download_type, start, end, request_id):
        with other.connect() as conn:
            seen.append(conn.execute(text("SELECT status, sends FROM sync_task_attempts WHERE request_id = :r"),
                                     {"r": request_id}).one())
        return real(self, download_type, start, end, request_id)

    monkeypatch.setattr(HttpChannelClient, "apply_download", spy)
    auth.login("kaipiao1")
    create_via_form(auth)
    run_worker()
    other.dispose()
    assert seen == [("sent", 1)]
    assert tasks()[0].status == "success"


# --- the compare-and-set ---------------------------------------------------------------------------
def test_transition_loses_against_a_newer_version(env, auth, sandbox):
    task = _task_in_progress(auth, sandbox)
    db.session.expunge(task)  # what a second worker still holds: version N
    db.session.execute(text("UPDATE sync_tasks SET version = version + 1 WHERE id = :i"), {"i": task.id})
    db.session.commit()
    assert service.void([task], actor="second") == [service.RowResult(task, False, service.MSG_RACE)]
    assert reload(task).status == "processing"


def test_transition_checks_the_starting_state_in_the_database(env, auth, sandbox):
    task = _task_in_progress(auth, sandbox)
    db.session.expunge(task)  # the stale view: 下载处理中, version N
    # a writer that bypassed the core moved it on without a version bump
    db.session.execute(text("UPDATE sync_tasks SET status = 'success' WHERE id = :i"), {"i": task.id})
    db.session.commit()
    from portal.workflow import transition
    assert transition(task, "voided", reason="x") is False
    db.session.rollback()
    assert reload(task).status == "success"


def test_two_sessions_voiding_the_same_task_at_once_act_once(env, auth, sandbox):
    task_id = _task_in_progress(auth, sandbox).id
    barrier, outcomes = threading.Barrier(2), []

    def void_in_own_session(name):
        with env.app_context():
            task = db.session.get(SyncTask, task_id)  # both read version N …
            barrier.wait()                            # … then both try to act
            outcomes.append(service.void([task], actor=name)[0].ok)
            db.session.remove()

    threads = [threading.Thread(target=void_in_own_session, args=(f"user{i}",)) for i in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(outcomes) == [False, True]
    voids = db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.to_state == "voided"))
    assert voids == 1 and db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_illegal_moves_are_refused_by_the_state_machine(env, auth):
    from portal.workflow import IllegalTransition, transition
    auth.login("kaipiao1")
    create_via_form(auth)
    run_worker()
    task = tasks()[0]
    assert task.status == "success"
    assert transition(task, "processing", reason="x") is False  # 成功 is terminal
    with pytest.raises(IllegalTransition):
        transition(task, "processing", allowed_from={"success"}, reason="x")


def test_audit_trail_is_append_only_in_the_database(env, auth):
    auth.login("kaipiao1")
    create_via_form(auth)
    assert db.session.scalar(select(func.count()).select_from(AuditLog)) > 0
    with pytest.raises(DBAPIError):
        db.session.execute(text("UPDATE audit_log SET reason = 'rewritten'"))
    db.session.rollback()
    with pytest.raises(DBAPIError):
        db.session.execute(text("DELETE FROM audit_log"))
    db.session.rollback()


# --- the sweeper -----------------------------------------------------------------------------------
def test_sweeper_never_queues_a_task_twice(env, auth):
    from jobs import queue
    auth.login("kaipiao1")
    create_via_form(auth)  # queued for the worker, not run yet
    assert channel_work.sweep() == 0
    assert len(set(queue("user").get_job_ids()) | set(queue("background").get_job_ids())) == 1


def test_a_lost_enqueue_is_healed_by_the_sweeper_within_a_minute(env, auth, monkeypatch):
    import jobs
    from redis.exceptions import ConnectionError as RedisDown

    def redis_down(*args, **kwargs):
        raise RedisDown("Redis is down")

    monkeypatch.setattr(jobs, "enqueue_once", redis_down)
    auth.login("kaipiao1")
    r = create_via_form(auth)
    assert "已创建，正在向税局申请下载" in r.get_data(as_text=True)
    monkeypatch.undo()
    task = tasks()[0]
    assert task.status == "processing" and not task.channel_task_id
    plan = db.session.scalar(select(SchedulePlan).where(SchedulePlan.code == "sim_SyncTaskWatchdog"))
    assert plan.interval_seconds == 60 and plan.job == "sync.watchdog"
    assert channel_work.sweep() == 1
    run_worker()
    assert reload(task).status == "success"


def test_sweeper_takes_the_oldest_first(env, auth, sandbox, monkeypatch):
    from jobs import queue
    env.config.update(SYNC_POLL_ATTEMPTS=0)  # leave every later look to the sweeper
    sandbox.downloads(org("ORG01").tax_id, outcome="processing", mode="all")
    sandbox.downloads(org("ORG02").tax_id, outcome="processing", mode="all")
    auth.login("kaipiao1")
    create_via_form(auth, org_code="ORG02")
    create_via_form(auth, org_code="ORG01")
    run_worker()
    newer, older = tasks()
    db.session.execute(text("UPDATE sync_tasks SET next_check_at = :t WHERE id = :i"),
                       {"t": datetime(2026, 1, 1), "i": older.id})
    db.session.commit()
    assert channel_work.sweep(limit=1) == 1
    assert queue("background").get_job_ids() == [channel_work.job_id(reload(older))]


# --- the 3-minute rule, atomically -------------------------------------------------------------------
def test_two_tasks_for_the_same_download_retried_at_once_reach_the_bureau_once(env, auth, client, sandbox, monkeypatch):
    sandbox.downloads(org("ORG01").tax_id, outcome="failed", mode="all")
    auth.login("zhuguan")
    create_via_form(auth)
    later(monkeypatch, 200)
    create_via_form(auth)
    run_worker()
    a, b = tasks()
    assert a.status == b.status == "failed"
    sandbox.release(org("ORG01").tax_id)
    later(monkeypatch, 800)
    other = Auth(env.test_client())
    other.login("zhuguan")
    tokens = [auth.token("/sync-logs/"), other.token("/sync-logs/")]
    barrier, pages = threading.Barrier(2), {}

    def press(who, task_id, token):
        with env.app_context():
            barrier.wait()
            pages[task_id] = who.client.post("/sync-logs/retry", data={"ids": [str(task_id)], "csrf_token": token},
                                             follow_redirects=True).get_data(as_text=True)
            db.session.remove()

    threads = [threading.Thread(target=press, args=args) for args in ((auth, a.id, tokens[0]), (other, b.id, tokens[1]))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    won = [tid for tid, html in pages.items() if "已重新发起下载请求" in html]
    lost = [tid for tid, html in pages.items() if service.MSG_TOO_FREQUENT in html]
    assert len(won) == 1 and len(lost) == 1
    db.session.expire_all()  # the requests committed in their own sessions
    run_worker()
    sent = db.session.scalar(select(func.count()).select_from(SyncTaskAttempt).where(SyncTaskAttempt.seq == 2))
    assert sent == 1 and db.session.get(SyncTask, won[0]).status == "success"


# --- 电子税局登录失效 belongs to the organisation ---------------------------------------------------------
def test_login_expiry_pauses_the_organisation_until_someone_logs_in_then_resumes(env, auth, sandbox):
    tax_id = org("ORG01").tax_id
    sandbox.downloads(tax_id, outcome="processing", mode="all")
    auth.login("kaipiao1")
    create_via_form(auth)
    run_worker()
    task = tasks()[0]
    assert task.status == "processing" and task.channel_task_id
    sandbox.release(tax_id)
    sandbox.fault(tax_id, "login_expired")
    assert channel_work.sweep() == 1
    run_worker()
    task = reload(task)
    assert task.status == "processing" and org("ORG01").channel_login_expired_at is not None
    assert task.waiting_for == "等待电子税局重新登录"
    assert channel_work.sweep() == 0  # the bureau is not hammered while the login is gone
    html = auth.client.get("/sync-logs/").get_data(as_text=True)
    assert "华东科技有限公司：电子税局登录失效" in html and ">登录</button>" in html
    # a manual query meanwhile answers 任务处理中 (the manual's V2.0 note ②)
    auth.post("/sync-logs/fetch-results", {"ids": [str(task.id)]}, page="/sync-logs/")
    run_worker()
    from portal.models import JobRun
    fetch = db.session.scalar(select(JobRun).where(JobRun.kind == "sync.fetch_results"))
    assert "任务处理中" in auth.client.get(f"/jobs/{fetch.id}").get_data(as_text=True)
    r = auth.post(f"/sync-logs/orgs/{org('ORG01').id}/login", {"filters": ""}, page="/sync-logs/",
                  follow_redirects=True)
    assert "已向电子税局发起登录" in r.get_data(as_text=True)
    run_worker()  # the login, then the organisation's waiting task by itself
    assert org("ORG01").channel_login_expired_at is None
    assert reload(task).status == "success"
    actions = db.session.scalars(select(AuditLog.action).where(AuditLog.object_type == "organization")).all()
    assert actions == ["login_expired", "login"]


# --- channel-side effects through the outbox -----------------------------------------------------------
def test_failed_void_at_the_channel_is_retried_and_visible(env, auth, sandbox, monkeypatch):
    tax_id = org("ORG01").tax_id
    sandbox.downloads(tax_id, outcome="processing", mode="all")
    auth.login("zhuguan")
    create_via_form(auth)
    run_worker()
    task = tasks()[0]
    sandbox.fault(tax_id, "bureau_busy", operation="void_download", count=1)
    auth.post("/sync-logs/void", {"ids": [str(task.id)], "confirmed": "1"}, page="/sync-logs/", follow_redirects=True)
    run_worker()
    message = db.session.scalar(select(OutboxMessage))
    assert reload(task).status == "voided"
    assert (message.status, message.attempts) == ("pending", 1) and "税局繁忙" in message.last_error
    html = auth.client.get(f"/sync-logs/{task.id}").get_data(as_text=True)
    assert "税局通道作废" in html and "待发送" in html
    later(monkeypatch, env.config["OUTBOX_RETRY_SECONDS"] + 1)
    assert outbox.sweep() == 1
    run_worker()
    message = db.session.scalar(select(OutboxMessage))
    assert (message.status, message.attempts) == ("delivered", 2)
    answer = make_client(org("ORG01").channel_config()).query_download(task.channel_task_id)
    assert answer.message == "下载任务已作废"


# --- what people see -------------------------------------------------------------------------------------
def test_void_confirmation_counts_only_rows_that_will_change_and_lists_the_skipped(env, auth, sandbox, monkeypatch):
    sandbox.downloads(org("ORG01").tax_id, outcome="processing", mode="all")
    auth.login("zhuguan")
    for i in range(4):
        create_via_form(auth, org_code="ORG01")
        later(monkeypatch, 200 * (i + 1))
    run_worker()
    first, second, third, fourth = tasks()
    auth.post("/sync-logs/void", {"ids": [str(first.id), str(second.id)], "confirmed": "1"}, page="/sync-logs/", follow_redirects=True)
    ids = [str(t.id) for t in (first, second, third, fourth)]
    html = auth.post("/sync-logs/void", {"ids": ids}, page="/sync-logs/").get_data(as_text=True)
    assert "确定作废 2 个任务吗" in html and "另有 2 个不会作废" in html
    assert "仅下载处理中的任务可作废（当前：已作废）" in html
    auth.post("/sync-logs/void", {"ids": ids, "confirmed": "1"}, page="/sync-logs/", follow_redirects=True)
    html = auth.post("/sync-logs/void", {"ids": ids}, page="/sync-logs/").get_data(as_text=True)
    assert "所选 4 个任务均不能作废，没有任务会被更改。" in html and "确认作废" not in html


def test_times_are_shown_in_one_zone_and_durations_humanised(env, monkeypatch):
    from portal.fmt import duration
    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 11, 22, 20, 30, 0))  # UTC
    assert service.new_batch_no().startswith("DL20261123043000")  # Beijing time
    from jobs import plans
    plan = db.session.scalar(select(SchedulePlan).where(SchedulePlan.code == "sim_SyncTaskWatchdog"))
    plans.run_plan(plan.id)
    assert db.session.get(SchedulePlan, plan.id).last_result.startswith("2026-11-23 04:30:00 ")
    assert [duration(s) for s in (30, 62 * 60, 2 * 3600, 3 * 86400 + 2 * 3600, 1039002 * 60)] == \
        ["不到1分钟", "1小时2分钟", "2小时", "3天2小时", "721天12小时"]


def test_create_page_without_the_grant_answers_the_buttons_no_permission_message(env, auth):
    auth.login("kaipiao2")
    r = auth.client.get("/sync-logs/new", follow_redirects=True)
    assert r.status_code == 200 and "您没有「新增下载任务」的权限，请联系管理员授权" in r.get_data(as_text=True)


def test_a_plan_run_whose_enqueue_fails_is_given_back_not_lost(env, monkeypatch):
    from datetime import timedelta
    from redis.exceptions import ConnectionError as RedisDown
    from jobs import plans

    plan = db.session.scalar(select(SchedulePlan).where(SchedulePlan.code == "sim_SyncTaskWatchdog"))
    due = clock.now() - timedelta(seconds=1)
    plan.next_run_at = due
    db.session.commit()

    def redis_down(*args, **kwargs):
        raise RedisDown("Redis went away")

    monkeypatch.setattr(plans, "enqueue", redis_down)
    with pytest.raises(RedisDown):
        plans.dispatch_due()
    monkeypatch.undo()
    db.session.expire_all()
    assert db.session.get(SchedulePlan, plan.id).next_run_at == due
    assert plans.dispatch_due() == ["sim_SyncTaskWatchdog"]


# --- finding what needs attention ------------------------------------------------------------------
def test_failure_reason_and_has_failures_filters_find_exactly_those_tasks(env, auth, sandbox):
    sandbox.downloads(org("ORG01").tax_id, outcome="failed", mode="next")
    sandbox.downloads(org("ORG02").tax_id, outcome="success", defective=2, mode="next")
    auth.login("kaipiao1")
    create_via_form(auth, org_code="ORG01")
    create_via_form(auth, org_code="ORG02")
    create_via_form(auth, org_code="ORG02", types=("out_full",))
    run_worker()
    failed, with_failures, clean = tasks()
    assert (failed.status, with_failures.status, clean.status) == ("failed", "success", "success")
    html = auth.client.get("/sync-logs/?reason=download_failed").get_data(as_text=True)
    assert failed.batch_no in html and with_failures.batch_no not in html and clean.batch_no not in html
    html = auth.client.get("/sync-logs/?has_failures=1").get_data(as_text=True)
    assert with_failures.batch_no in html and failed.batch_no not in html and clean.batch_no not in html
    assert "下载失败：税局数据文件生成失败" in auth.client.get("/sync-logs/").get_data(as_text=True)


def test_rows_in_flight_refresh_themselves_until_they_settle(env, auth, sandbox):
    sandbox.downloads(org("ORG01").tax_id, outcome="processing", mode="all")
    auth.login("kaipiao1")
    result = create_via_form(auth).get_data(as_text=True)
    assert "已提交</td>" in result and "完成</td>" not in result  # submitted, not "finished"
    run_worker()
    task = tasks()[0]
    html = auth.client.get("/sync-logs/").get_data(as_text=True)
    assert f'hx-get="/sync-logs/rows/{task.id}"' in html and 'hx-trigger="every 10s"' in html
    assert "本页有 1 条处理中，状态会自动刷新。" in html and "立即刷新" in html  # the no-JS way
    row = auth.client.get(f"/sync-logs/rows/{task.id}?ids={task.id}").get_data(as_text=True)
    assert row.lstrip().startswith("<tr") and "hx-get" in row and "checked" in row  # the tick survives
    sandbox.release(org("ORG01").tax_id)
    assert channel_work.sweep() == 1
    run_worker()
    row = auth.client.get(f"/sync-logs/rows/{task.id}").get_data(as_text=True)
    assert "成功" in row and "hx-get" not in row and "checked" not in row  # settled: polling stops
    other = db.session.scalar(select(SyncTask).where(SyncTask.id == task.id))
    auth.post("/logout")
    auth.login("kaipiao2")  # ORG03–ORG05 only
    assert auth.client.get(f"/sync-logs/rows/{other.id}").status_code == 404


def test_import_page_without_the_grant_answers_the_buttons_no_permission_message(env, auth):
    auth.login("kaipiao2")
    r = auth.client.get("/sync-logs/import", follow_redirects=True)
    assert r.status_code == 200 and "您没有「新增下载任务」的权限，请联系管理员授权" in r.get_data(as_text=True)


def test_an_accepted_application_the_task_row_missed_is_recovered_not_sent_anew(env, auth, monkeypatch):
    """A concurrent writer bumps the task while its application is in flight: the bureau's
    answer is kept on the application, and the next look uses it instead of a new request."""
    real = HttpChannelClient.apply_download
    calls = []

    def racing(self, download_type, start, end, request_id):
        calls.append(request_id)
        if len(calls) == 1:
            with env.app_context():
                db.session.execute(text("UPDATE sync_tasks SET version = version + 1"))
                db.session.commit()
        return real(self, download_type, start, end, request_id)

    monkeypatch.setattr(HttpChannelClient, "apply_download", racing)
    auth.login("kaipiao1")
    create_via_form(auth)
    run_worker()
    task = tasks()[0]
    if task.status != "success":  # the look after the lost write comes from the sweeper
        assert channel_work.sweep() == 1
        run_worker()
    task = reload(task)
    (attempt,) = _attempts(task)
    assert task.status == "success" and task.channel_task_id == attempt.channel_task_id
    assert calls == [task.batch_no]  # one application, never a second request
