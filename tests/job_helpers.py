"""Job functions for tests/test_jobs.py (importable by name, as RQ needs)."""
from __future__ import annotations

import time

from jobs import app_job
from jobs.tracked import tracked
from portal.redis_conn import get_redis

ORDER_KEY = "test:job-order"


@app_job
def record(tag: str) -> None:
    """Append `tag` to a Redis list: the order jobs ran in."""
    get_redis().rpush(ORDER_KEY, tag)


@tracked
def boom(ctx, message: str) -> None:
    ctx.item("第一行", "done")
    ctx.progress(1, total=2)
    raise RuntimeError(message)


@tracked
def steps(ctx, n: int, pause: float = 0.0) -> None:
    """n rows, each an item; pauses let the heartbeat thread beat."""
    for i in range(1, n + 1):
        time.sleep(pause)
        ctx.item(f"行{i}", "done" if i % 2 else "skipped", "" if i % 2 else "无需处理", ref=i)
        ctx.progress(i, total=n)
    get_redis().incr("test:steps-runs")
    ctx.result_file(b"a,b\n1,2\n", "steps.csv")
    ctx.finish(f"处理 {n} 行")


@tracked
def overtaken(ctx) -> None:
    """Finishes after the reaper already declared it dead (as a stalled worker would)."""
    from sqlalchemy import update
    from portal.models.job import JobRun
    ctx._write(update(JobRun).where(JobRun.id == ctx.job.id).values(status="failed", message="后台进程中断"))


@tracked
def quiet(ctx, pause: float) -> None:
    """Reports nothing for `pause` seconds, then notes how fresh its heartbeat is."""
    from sqlalchemy import select
    from portal.extensions import db
    from portal.models.job import JobRun
    time.sleep(pause)
    with db.engine.connect() as conn:
        started, beat = conn.execute(select(JobRun.started_at, JobRun.heartbeat_at)
                                     .where(JobRun.id == ctx.job.id)).one()
    get_redis().set("test:beat-after", (beat - started).total_seconds())
