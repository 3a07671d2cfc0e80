"""RQ jobs of F18012: look at a task (apply or query), log in, fetch results, export."""
from __future__ import annotations

import os
import tempfile

from flask import current_app

from jobs import app_job
from jobs.tracked import tracked
from portal.extensions import db
from portal.models import SyncTask


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


@tracked
def fetch_results(ctx, task_ids: list[int]) -> None:
    """获取异步结果 for the selected tasks; each row's outcome (done or failed) is kept."""
    from portal.sync_logs import service

    user = ctx.job.user
    actor = user.username if user else "job"
    failed = 0
    for i, task_id in enumerate(task_ids, 1):
        task = db.session.get(SyncTask, task_id)
        name = task.batch_no if task else str(task_id)
        try:
            r = service.fetch_result(task_id, actor)
            ok, message = r.ok, r.message
        except Exception as exc:  # one row's failure is reported on that row; the others go on
            db.session.rollback()
            ok, message = False, f"查询异常：{exc}"
        failed += not ok
        ctx.item(name, "done" if ok else "failed", message, ref=task_id)
        ctx.progress(i)
    ctx.finish(f"已获取 {len(task_ids)} 个任务的异步结果：成功 {len(task_ids) - failed} 个，失败 {failed} 个")


@tracked
def export_tasks(ctx, filters: str, ids: list[int] | None) -> None:
    """Big exports: stream rows into a write-only workbook, reporting progress.

    Rows come through a server-side cursor (yield_per) on the work's session; progress
    goes through ctx on its own connection, so the cursor stays open.
    """
    from portal.sync_logs import export
    stmt = export.query(ctx.job.user, filters, ids)
    ctx.progress(0, total=export.count(stmt))
    fd, path = tempfile.mkstemp(suffix=".xlsx")
    os.close(fd)
    try:
        n = export.write_xlsx(stmt, path, progress=ctx.progress,
                              every=current_app.config["EXPORT_PROGRESS_EVERY"])
        ctx.result_file(path, export.export_filename())
    finally:
        os.remove(path)
    ctx.progress(n)
    ctx.finish(f"已导出 {n} 条")
