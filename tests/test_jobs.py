"""Tracked jobs and 我的后台任务 — against a real RQ worker, real Redis and the real sandbox.

Run on PostgreSQL too (DATABASE_URL=…): the big-export test is the one that broke there
when progress was committed on the session streaming rows through a server-side cursor.
"""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select, update

from jobs import enqueue, enqueue_once, queues, rq_job_status, tracked
from jobs.plans import PLAN_JOBS
from portal import clock
from portal.extensions import db
from portal.models import SchedulePlan, SyncTask, User
from portal.models.job import JobFile, JobRun, JobRunItem
from portal.redis_conn import get_redis
from tests import job_helpers
from tests.sync_helpers import make_task, org, reload, run_worker


@pytest.fixture
def env(portal_with_sandbox, sandbox, auth):
    return portal_with_sandbox


def _user(username: str) -> User:
    return db.session.scalar(select(User).where(User.username == username))


def _jobs() -> list[JobRun]:
    db.session.expire_all()
    return db.session.scalars(select(JobRun).order_by(JobRun.id)).all()


def _items(job: JobRun) -> list[JobRunItem]:
    return db.session.scalars(select(JobRunItem).where(JobRunItem.job_id == job.id).order_by(JobRunItem.id)).all()


def _later(monkeypatch, seconds):
    base = clock.now()
    monkeypatch.setattr(clock, "now", lambda: base + timedelta(seconds=seconds))


def _big_export(env, auth, n=30, user="kaipiao1"):
    env.config.update(EXPORT_SYNC_LIMIT=5, EXPORT_PROGRESS_EVERY=5)
    for _ in range(n):
        make_task("ORG01", "success")
    auth.login(user)
    r = auth.post("/sync-logs/export", {"select_all": "1", "filters": "status=success"}, page="/sync-logs/")
    assert r.status_code == 302 and "/jobs/" in r.headers["Location"], r.get_data(as_text=True)
    return _jobs()[-1]


def _rows(response) -> list[list]:
    ws = load_workbook(io.BytesIO(response.data)).active
    return [[c.value for c in row] for row in ws.iter_rows()]


# --- big export (the PostgreSQL cursor bug) ----------------------------------------------------
def test_big_export_above_the_threshold_streams_and_succeeds(env, auth):
    job = _big_export(env, auth)
    assert job.status == "queued" and job.kind == "sync.export"
    assert job.back_url == "/sync-logs/?status=success" and job.subject == "数据同步日志：全部符合条件的（同步状态：成功）"
    run_worker()
    job = _jobs()[-1]
    assert job.status == "done", job.message
    assert job.message == "已导出 30 条" and job.done == job.total == 30
    rows = _rows(auth.client.get(f"/jobs/{job.id}/file"))
    assert len(rows) == 31 and rows[0][0] == "下载批次号"


@pytest.mark.skipif("not __import__('os').environ.get('DATABASE_URL', '').startswith('postgres')",
                    reason="PostgreSQL only: SQLite has no server-side cursor to lose")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_committing_the_streaming_session_mid_export_breaks_on_postgresql(env):
    """Why progress goes through its own connection: the export above would fail like this."""
    import gc
    from sqlalchemy.exc import ProgrammingError
    from portal.sync_logs import export
    for _ in range(30):
        make_task("ORG01", "success")
    with pytest.raises(ProgrammingError, match="does not exist"):
        export.write_xlsx(select(SyncTask), io.BytesIO(), progress=lambda n: db.session.commit(), every=5)
    db.session.rollback()
    gc.collect()  # the half-written workbook's generator complains here, not in the next test


def test_progress_and_items_survive_a_rollback_of_the_work(env):
    """ctx writes are their own transactions: the work's rollback cannot undo them."""
    tracked.start("test.boom", _user("kaipiao1"), job_helpers.boom, "磁盘已满")
    run_worker(allow_failed=True)
    job = _jobs()[-1]
    assert job.done == 1 and [i.name for i in _items(job)] == ["第一行"]


# --- 获取异步结果 reports failures ------------------------------------------------------------------
def test_fetch_result_with_bureau_busy_shows_the_row_failed(env, auth, sandbox):
    tax_id = org("ORG01").tax_id
    sandbox.downloads(tax_id, outcome="processing", mode="all")
    done = make_task("ORG01", "success", download_type="out_full")
    auth.login("kaipiao1")
    auth.post("/sync-logs/new", {"org": [str(org("ORG01").id)], "download_type": ["in_full"],
                                 "sync_type": "current_month", "start": "2026-11-02", "end": "2026-11-07"},
              page="/sync-logs/new")
    run_worker()
    task = db.session.scalar(select(SyncTask).where(SyncTask.id != done.id))
    assert task.status == "processing" and task.channel_task_id
    sandbox.fault(tax_id, "bureau_busy")
    r = auth.post("/sync-logs/fetch-results", {"ids": [str(task.id), str(done.id)]},
                  page="/sync-logs/?status=processing")
    assert r.status_code == 302
    run_worker()
    job = _jobs()[-1]
    assert job.status == "done"
    outcomes = {i.name: (i.outcome, i.reason) for i in _items(job)}
    assert outcomes[task.batch_no][0] == "failed" and "繁忙" in outcomes[task.batch_no][1], (outcomes, reload(task).error)
    assert outcomes[done.batch_no][0] == "skipped"
    assert "失败 1 个" in job.message
    page = auth.client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert 'class="failed"' in page and "繁忙" in page


def test_fetch_result_that_succeeds_is_done(env, auth, sandbox):
    sandbox.downloads(org("ORG01").tax_id, outcome="processing", mode="all")
    auth.login("kaipiao1")
    auth.post("/sync-logs/new", {"org": [str(org("ORG01").id)], "download_type": ["in_full"],
                                 "sync_type": "current_month", "start": "2026-11-02", "end": "2026-11-07"},
              page="/sync-logs/new")
    run_worker()
    task = db.session.scalar(select(SyncTask))
    sandbox.release(org("ORG01").tax_id)
    auth.post("/sync-logs/fetch-results", {"ids": [str(task.id)]}, page="/sync-logs/")
    run_worker()
    [item] = _items(_jobs()[-1])
    assert item.outcome == "done" and item.ref == str(task.id) and reload(task).status == "success"


def test_fetch_result_row_that_raises_is_failed_and_the_others_still_run(env, auth, monkeypatch):
    from portal.sync_logs import service
    a = make_task("ORG01", "processing", download_type="in_full")
    b = make_task("ORG01", "processing", download_type="out_full")

    from portal.sync_logs.channel_work import CheckResult

    def fetch_result(task_id, actor):
        if task_id == a.id:
            raise ConnectionError("通道连接中断")
        return CheckResult(True, "任务处理中")
    monkeypatch.setattr(service, "fetch_result", fetch_result)
    auth.login("kaipiao1")
    auth.post("/sync-logs/fetch-results", {"ids": [str(a.id), str(b.id)]}, page="/sync-logs/")
    run_worker()
    job = _jobs()[-1]
    assert job.status == "done" and job.done == 2
    assert [(i.name, i.outcome) for i in _items(job)] == [(a.batch_no, "failed"), (b.batch_no, "done")]
    assert "通道连接中断" in _items(job)[0].reason


# --- failures, dead workers, 重试 -------------------------------------------------------------
def test_exception_inside_a_job_marks_it_failed_and_the_page_stops_polling(env, auth, monkeypatch):
    from portal.sync_logs import export

    def broken(*a, **k):
        raise RuntimeError("磁盘已满")
    monkeypatch.setattr(export, "write_xlsx", broken)
    job = _big_export(env, auth, n=8)
    running = auth.client.get(f"/jobs/{job.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "hx-get" in running and "刷新进度" in running
    run_worker(allow_failed=True)
    job = _jobs()[-1]
    assert job.status == "failed" and job.message == "磁盘已满" and job.finished_at
    block = auth.client.get(f"/jobs/{job.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "hx-get" not in block and "磁盘已满" in block and "重试" in block


def test_a_job_never_runs_twice(env):
    job = tracked.start("test.steps", _user("kaipiao1"), job_helpers.steps, 3)
    run_worker()
    enqueue(job_helpers.steps, job.id, 3, queue="user")  # the same job delivered again
    run_worker()
    assert int(get_redis().get("test:steps-runs")) == 1
    assert len(_items(_jobs()[-1])) == 3


def test_heartbeat_is_written_while_the_job_runs(env):
    env.config["JOB_HEARTBEAT_SECONDS"] = 0.05
    # 2 s of silence, 40 beats due: asking for one ≥ 0.3 s in survives a slow moment (in one CI
    # run no beat landed in the last 0.7 s of a 1 s pause)
    tracked.start("test.quiet", _user("kaipiao1"), job_helpers.quiet, 2.0)
    run_worker()
    assert float(get_redis().get("test:beat-after")) >= 0.3  # beats while the job says nothing (0 without)


def _as_if_started(job: JobRun):
    """The state a worker leaves when it claimed the job and then died."""
    db.session.execute(update(JobRun).where(JobRun.id == job.id).values(
        status="running", started_at=clock.now(), heartbeat_at=clock.now()))
    db.session.commit()


def test_job_whose_rq_job_vanished_is_reaped_and_retry_runs_it_again(env, auth):
    from rq.job import Job
    job = _big_export(env, auth, n=8)
    _as_if_started(job)
    Job.fetch(job.rq_job_id, connection=get_redis()).delete()  # work-horse killed, job gone
    assert tracked.reap() == 1
    job = _jobs()[-1]
    assert job.status == "failed" and "后台进程中断" in job.message
    page = auth.client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "后台进程中断" in page and "重试" in page
    r = auth.post(f"/jobs/{job.id}/retry", page=f"/jobs/{job.id}")
    again = auth.post(f"/jobs/{job.id}/retry", page=f"/jobs/{job.id}")  # double click
    assert r.status_code == again.status_code == 302 and r.headers["Location"] == again.headers["Location"]
    run_worker()
    old, new = _jobs()
    assert new.retry_of_id == old.id and new.status == "done" and new.message == "已导出 8 条"
    assert new.subject == old.subject and new.back_url == old.back_url and new.user_id == old.user_id
    assert len(_rows(auth.client.get(f"/jobs/{new.id}/file"))) == 9


def test_job_marked_failed_by_rq_is_reaped(env, auth):
    from rq.job import Job
    job = _big_export(env, auth, n=6)
    _as_if_started(job)
    rq_job = Job.fetch(job.rq_job_id, connection=get_redis())
    rq_job.set_status("failed")
    assert tracked.reap() == 1 and _jobs()[-1].status == "failed"


def test_running_job_with_a_stale_heartbeat_is_reaped_and_never_runs_later(env, auth, monkeypatch):
    job = _big_export(env, auth, n=6)
    _as_if_started(job)
    assert tracked.reap() == 0  # fresh heartbeat, RQ job still there: alive
    _later(monkeypatch, 121)
    assert tracked.reap() == 1
    job = _jobs()[-1]
    assert job.status == "failed" and "心跳" in job.message
    run_worker()  # the RQ job still in the queue must not bring it back
    assert _jobs()[-1].status == "failed" and db.session.scalar(select(func.count()).select_from(JobFile)) == 0


def test_lost_enqueue_is_healed_with_the_same_job_id(env, auth, monkeypatch):
    job = _big_export(env, auth, n=6)
    for q in queues():
        q.empty()  # committed, but the enqueue never reached Redis
    assert rq_job_status(job.rq_job_id) is None
    assert tracked.reap() == 0  # within the grace period: the web process may still enqueue it
    _later(monkeypatch, 61)
    assert tracked.reap() == 1
    assert rq_job_status(job.rq_job_id) is not None
    run_worker()
    assert _jobs()[-1].status == "done"


def test_lost_enqueue_that_cannot_be_rebuilt_is_failed(env, auth, monkeypatch):
    job = _big_export(env, auth, n=6)
    for q in queues():
        q.empty()
    db.session.execute(update(JobRun).values(args={"fn": "jobs.sync.no_such_job", "args": []}))
    db.session.commit()
    _later(monkeypatch, 61)
    assert tracked.reap() == 1
    job = _jobs()[-1]
    assert job.status == "failed" and "未能进入执行队列" in job.message


def test_only_a_failed_job_can_be_retried(env, auth):
    job = _big_export(env, auth, n=6)
    run_worker()
    r = auth.post(f"/jobs/{job.id}/retry", page=f"/jobs/{job.id}", follow_redirects=True)
    assert "只有失败的后台任务可以重试" in r.get_data(as_text=True) and len(_jobs()) == 1


def test_reaper_runs_as_a_schedule_plan(env):
    from jobs import plans
    assert "jobs.reap" in PLAN_JOBS
    plan = db.session.scalar(select(SchedulePlan).where(SchedulePlan.code == tracked.REAPER_PLAN["code"]))
    if plan is None:  # until DEFAULT_PLANS (re-inserted for every test) carries it
        plan = SchedulePlan(**tracked.REAPER_PLAN)
        db.session.add(plan)
    plan.next_run_at = clock.now() - timedelta(seconds=1)
    db.session.commit()
    assert plans.dispatch_due() == [tracked.REAPER_PLAN["code"]]
    run_worker()
    plan = db.session.scalar(select(SchedulePlan).where(SchedulePlan.code == tracked.REAPER_PLAN["code"]))
    assert "中断" in plan.last_result


# --- Redis down ------------------------------------------------------------------------------
def test_post_while_redis_is_unreachable_says_so_and_leaves_no_job(env, auth):
    make_task("ORG01", "processing", channel_task_id="X1")
    auth.login("kaipiao1")
    token = auth.token("/sync-logs/")
    env.config.update(REDIS_URL="redis://127.0.0.1:1/0", EMBEDDED_REDIS=False, EXPORT_SYNC_LIMIT=0)
    task = db.session.scalar(select(SyncTask))
    for path, data in [("/sync-logs/export", {"select_all": "1", "filters": ""}),
                       ("/sync-logs/fetch-results", {"ids": [str(task.id)]})]:
        r = auth.client.post(path, data={**data, "csrf_token": token}, follow_redirects=True)
        assert r.status_code == 200
        assert "后台任务服务暂不可用，请稍后重试；本次操作未执行" in r.get_data(as_text=True)
    assert _jobs() == [] and db.session.scalar(select(func.count()).select_from(JobRunItem)) == 0


# --- queues ----------------------------------------------------------------------------------
def test_person_action_is_taken_before_background_sweeps(env):
    for i in range(5):
        enqueue(job_helpers.record, f"bg{i}", queue="background")
    enqueue(job_helpers.record, "user", queue="user")
    run_worker()
    order = [v.decode() for v in get_redis().lrange(job_helpers.ORDER_KEY, 0, -1)]
    assert order == ["user", "bg0", "bg1", "bg2", "bg3", "bg4"]


def test_enqueue_once_by_deterministic_id(env):
    assert enqueue_once(job_helpers.record, "a", job_id="sweep-1") is True
    assert enqueue_once(job_helpers.record, "a", job_id="sweep-1") is False
    run_worker()
    assert enqueue_once(job_helpers.record, "a", job_id="sweep-1") is True  # finished: may run again
    assert enqueue_once(job_helpers.record, "b", job_id="sweep-2", delay_seconds=60) is True
    assert enqueue_once(job_helpers.record, "b", job_id="sweep-2", delay_seconds=60) is False  # scheduled


def test_enqueue_once_while_another_caller_holds_the_id_does_nothing(env):
    get_redis().set("portal:enqueue-once:sweep-3", "1", px=10_000)  # another sweeper, mid-enqueue
    assert enqueue_once(job_helpers.record, "c", job_id="sweep-3") is False
    assert rq_job_status("sweep-3") is None


# --- 我的后台任务 and the job page ---------------------------------------------------------------
def test_job_list_shows_only_own_jobs_and_others_answer_404(env, auth):
    job = _big_export(env, auth, n=6)
    run_worker()
    page = auth.client.get("/jobs/").get_data(as_text=True)
    assert f"/jobs/{job.id}" in page and "导出数据同步日志" in page and "/sync-logs/?status=success" in page
    auth.post("/logout")
    auth.login("kaipiao2")
    assert f"/jobs/{job.id}\"" not in auth.client.get("/jobs/").get_data(as_text=True)
    for path in (f"/jobs/{job.id}", f"/jobs/{job.id}/file"):
        assert auth.client.get(path).status_code == 404
    assert auth.post(f"/jobs/{job.id}/retry", page="/jobs/").status_code == 404
    auth.post("/logout")
    auth.login("admin")
    kaipiao1 = _user("kaipiao1")
    listed = auth.client.get(f"/jobs/?user={kaipiao1.id}").get_data(as_text=True)
    assert f"/jobs/{job.id}\"" in listed and "李开票" in listed
    other = auth.client.get(f"/jobs/?user={_user('kaipiao2').id}").get_data(as_text=True)
    assert f"/jobs/{job.id}\"" not in other


def test_back_link_is_only_a_path_of_this_site(env):
    for url in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        assert tracked.start("test.steps", _user("kaipiao1"), job_helpers.steps, 1, back_url=url).back_url == ""
    assert tracked.start("test.steps", _user("kaipiao1"), job_helpers.steps, 1,
                         back_url="/sync-logs/?status=failed").back_url == "/sync-logs/?status=failed"


def test_job_page_says_what_it_is_with_outcomes_and_links(env, auth):
    env.config["JOB_ITEMS_SHOWN"] = 2
    job = tracked.start("test.steps", _user("kaipiao1"), job_helpers.steps, 5,
                        subject="五行测试", back_url="/sync-logs/?status=failed")
    auth.login("kaipiao1")
    running = auth.client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert f"后台任务 #{job.id}" in running and "五行测试" in running and 'hx-get="/jobs/' in running
    run_worker()
    page = auth.client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "hx-get" not in page
    assert "完成 3 · 跳过 2 · 失败 0" in page and "仅显示前 2 条，共 5 条" in page
    assert 'href="/sync-logs/?status=failed"' in page and 'href="/jobs/"' in page
    listed = auth.client.get("/jobs/").get_data(as_text=True)
    assert "完成 3 · 跳过 2 · 失败 0" in listed and f"/jobs/{job.id}/file" in listed
    assert "我的后台任务" in auth.client.get("/").get_data(as_text=True)


# --- result files ----------------------------------------------------------------------------
def test_result_file_expires_and_the_reaper_removes_it(env, auth, monkeypatch):
    job = _big_export(env, auth, n=6)
    run_worker()
    assert auth.client.get(f"/jobs/{job.id}/file").status_code == 200
    _later(monkeypatch, 72 * 3600 + 1)
    r = auth.client.get(f"/jobs/{job.id}/file")
    assert r.status_code == 410 and "结果文件已过期（保留 72 小时）" in r.get_data(as_text=True)
    tracked.reap()
    assert db.session.scalar(select(func.count()).select_from(JobFile)) == 0


def test_result_file_is_stored_in_slices_and_streamed_whole(env, auth):
    env.config["JOB_FILE_CHUNK_BYTES"] = 1000
    job = _big_export(env, auth, n=40)
    run_worker()
    f = db.session.scalar(select(JobFile))
    assert f.size > 2000
    r = auth.client.get(f"/jobs/{job.id}/file")
    assert len(r.data) == f.size and len(_rows(r)) == 41



def test_result_file_streams_after_the_request_context_is_gone(env, auth):
    """Gunicorn iterates the response after the view returned: no app context is left."""
    import threading
    job = _big_export(env, auth, n=6)
    run_worker()
    f = db.session.scalar(select(JobFile).where(JobFile.job_id == job.id))
    chunks, out, errors = tracked.file_chunks(f.id), [], []

    def consume():  # a thread has no app context
        try:
            out.extend(chunks)
        except Exception as exc:  # "Working outside of application context"
            errors.append(exc)
    t = threading.Thread(target=consume)
    t.start()
    t.join()
    assert errors == [] and sum(map(len, out)) == f.size


def test_a_job_reaped_while_stalled_stays_failed_when_it_returns(env):
    """The person may already have pressed 重试: the old run must not turn 'done' too."""
    tracked.start("test.overtaken", _user("kaipiao1"), job_helpers.overtaken)
    run_worker()
    job = _jobs()[-1]
    assert job.status == "failed" and job.message == "后台进程中断"


def test_a_withdrawn_job_is_not_run(env):
    """Enqueued, but the row was removed (its enqueue was reported as failed)."""
    enqueue(job_helpers.steps, 999, 2, queue="user", job_id="jobrun-999")
    run_worker()
    assert get_redis().get("test:steps-runs") is None and _jobs() == []


def test_item_outcomes_are_done_skipped_or_failed(env):
    with pytest.raises(ValueError):
        tracked.start("test.steps", _user("kaipiao1"), job_helpers.steps, 1, items=[("行", "ok", "")])


def test_a_job_over_its_time_limit_fails_with_a_clear_reason(env):
    tracked.start("test.quiet", _user("kaipiao1"), job_helpers.quiet, 3, job_timeout=1)
    run_worker(allow_failed=True)
    job = _jobs()[-1]
    assert job.status == "failed" and job.message.startswith("后台任务执行超时")


def test_retry_while_redis_is_unreachable_says_so_and_adds_no_job(env, auth):
    job = tracked.start("test.boom", _user("kaipiao1"), job_helpers.boom, "磁盘已满")
    run_worker(allow_failed=True)
    auth.login("kaipiao1")
    token = auth.token(f"/jobs/{job.id}")
    env.config.update(REDIS_URL="redis://127.0.0.1:1/0", EMBEDDED_REDIS=False)
    r = auth.client.post(f"/jobs/{job.id}/retry", data={"csrf_token": token}, follow_redirects=True)
    assert r.status_code == 200 and "后台任务服务暂不可用" in r.get_data(as_text=True)
    assert [j.id for j in _jobs()] == [job.id]
