"""RQ jobs of F18012: look at a task (apply or query), log in, fetch results, export."""
from __future__ import annotations

import os
from flask import current_app

from jobs import app_job
from portal import clock
from portal.extensions import db
from portal.models import JobRun, SyncTask, User


@app_job
def check_task(task_id: int) -> str:
    """Apply or query one task (the sweeper and the channel work schedule this)."""
    from portal.sync_logs import channel_work
    return channel_work.check(task_id).message


@app_job
def login_org(org_id: int, actor: str) -> str:
    """登录: a person logs the organisation in again; its waiting tasks resume."""
    from portal.sync_logs import channel_work
    return channel_work.login(org_id, actor).message


@app_job
def fetch_results(job_id: int, task_ids: list[int]) -> None:
    """获取异步结果 for the selected tasks; each row's answer is kept for the user."""
    from portal.sync_logs import service
    job = db.session.get(JobRun, job_id)
    user = db.session.get(User, job.user_id)
    job.status, job.total = "running", len(task_ids)
    db.session.commit()
    results = list(job.results or [])
    for i, task_id in enumerate(task_ids, 1):
        task = db.session.get(SyncTask, task_id)
        r = service.fetch_result(task_id, actor=user.username if user else "job")
        results.append({"name": task.batch_no if task else str(task_id), "ok": r.ok, "message": r.message})
        job.results = list(results)
        job.step(i)
    job.status, job.finished_at = "done", clock.now()
    job.message = f"已获取 {len(task_ids)} 个任务的异步结果"
    db.session.commit()


@app_job
def export_tasks(job_id: int, filters: str, ids: list[int] | None) -> None:
    """Big exports: stream rows into a write-only workbook, reporting progress."""
    from portal.sync_logs import export, views
    job = db.session.get(JobRun, job_id)
    user = db.session.get(User, job.user_id)
    try:
        stmt = views.export_query(user, filters, ids)
        job.status = "running"
        job.total = views.count_for_export(stmt)
        db.session.commit()
        os.makedirs(current_app.config["EXPORT_DIR"], exist_ok=True)
        path = os.path.join(current_app.config["EXPORT_DIR"], str(job.id), export.export_filename())
        n = export.write_xlsx(stmt, path, progress=lambda done: job.step(done))
        job.result_file, job.done, job.status = path, n, "done"
        job.message = f"已导出 {n} 条"
    except Exception as exc:  # recorded for the user; RQ keeps the traceback
        db.session.rollback()
        job = db.session.get(JobRun, job_id)
        job.status, job.message = "failed", f"导出失败：{exc}"
        db.session.commit()
        raise
    job.finished_at = clock.now()
    db.session.commit()
