"""RQ jobs of F18012: apply, poll, fetch results, void at the channel, watchdog, export."""
from __future__ import annotations

import os
import tempfile

from flask import current_app

from jobs import app_job, enqueue_after
from jobs.tracked import tracked
from portal.extensions import db
from portal.models import SyncTask
from portal.models.sync import SyncStatus


@app_job
def apply_task(task_id: int) -> None:
    from portal.sync_logs import service
    service.apply(task_id)


@app_job
def poll_task(task_id: int, attempt: int = 1) -> str:
    """Poll until the bureau answers; after SYNC_POLL_ATTEMPTS the watchdog takes over."""
    from portal.sync_logs import service
    message = service.poll(task_id)
    task = db.session.get(SyncTask, task_id)
    cfg = current_app.config
    if task and task.status == SyncStatus.PROCESSING.value and attempt < cfg["SYNC_POLL_ATTEMPTS"]:
        enqueue_after(cfg["SYNC_POLL_DELAY_SECONDS"] * attempt, poll_task, task_id, attempt + 1)
    return message


@tracked
def fetch_results(ctx, task_ids: list[int]) -> None:
    """获取异步结果 for the selected tasks; each row's outcome (done or failed) is kept."""
    from portal.sync_logs import service

    def outcome(task_id: int) -> tuple[bool, str]:
        """service.poll as (ok, message). Until poll returns an object with .ok/.message,
        a bare message counts as failed when it left the task failed or is now the
        task's error (税局繁忙, timeouts …)."""
        r = service.poll(task_id, actor=actor, relogin=True)
        if hasattr(r, "ok"):
            return bool(r.ok), r.message
        db.session.expire_all()
        task = db.session.get(SyncTask, task_id)
        failed = task is None or task.status == SyncStatus.FAILED.value or bool(task.error and task.error == r[:500])
        return not failed, r

    user = ctx.job.user
    actor = user.username if user else "job"
    failed = 0
    for i, task_id in enumerate(task_ids, 1):
        task = db.session.get(SyncTask, task_id)
        name = task.batch_no if task else str(task_id)
        try:
            ok, message = outcome(task_id)
        except Exception as exc:  # one row's failure is reported on that row; the others go on
            db.session.rollback()
            ok, message = False, f"查询异常：{exc}"
        failed += not ok
        ctx.item(name, "done" if ok else "failed", message, ref=task_id)
        ctx.progress(i)
    ctx.finish(f"已获取 {len(task_ids)} 个任务的异步结果：成功 {len(task_ids) - failed} 个，失败 {failed} 个")


@app_job
def void_at_channel(task_id: int) -> str:
    from portal.sync_logs import service
    return service.void_at_channel(task_id)


@app_job
def watchdog() -> int:
    from portal.sync_logs import service
    return service.watchdog()


@tracked
def export_tasks(ctx, filters: str, ids: list[int] | None) -> None:
    """Big exports: stream rows into a write-only workbook, reporting progress.

    Rows come through a server-side cursor (yield_per) on the work's session; progress
    goes through ctx on its own connection, so the cursor stays open.
    """
    from portal.sync_logs import export, views
    stmt = views.export_query(ctx.job.user, filters, ids)
    ctx.progress(0, total=views.count_for_export(stmt))
    fd, path = tempfile.mkstemp(suffix=".xlsx")
    os.close(fd)
    try:
        n = export.write_xlsx(stmt, path, progress=ctx.progress,
                              every=current_app.config.get("EXPORT_PROGRESS_EVERY", 2000))
        ctx.result_file(path, f"数据同步日志_{ctx.job.id}.xlsx")
    finally:
        os.remove(path)
    ctx.progress(n)
    ctx.finish(f"已导出 {n} 条")
