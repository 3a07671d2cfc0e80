"""Tracked jobs: one wrapper owns a person-initiated job's lifecycle.

``start(kind, user, fn, *args, ...)`` writes the JobRun row, commits, and enqueues
``fn`` on the user queue as RQ job ``jobrun-<id>``; when Redis is unreachable the row is
removed again and ``QueueUnavailable`` tells the person nothing happened.

``@tracked`` job functions receive ``(ctx, *args)``. Everything the context writes —
status, progress, heartbeat, per-row outcomes, the result file — goes through its own
short transaction on a separate connection, never the work's session: committing the
work's session would close a PostgreSQL server-side cursor the work is streaming from
(``InvalidCursorName`` once an export passed ``yield_per`` rows), and a rollback of the
work must not lose the progress already reported.

``reap()`` (the ``jobs.reap`` schedule plan) turns dead jobs into failed ones: running
with a stale heartbeat or with their RQ job failed/gone, queued with no RQ job (healed by
re-enqueueing under the same id when possible). It also deletes expired result files.
"""
from __future__ import annotations

import functools
import importlib
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator

import redis
from flask import current_app, has_app_context
from portal.i18n import gettext
from portal.i18n import lazy_gettext as _l
from rq.job import JobStatus
from rq.timeouts import JobTimeoutException
from sqlalchemy import delete, func, insert, select, update

from jobs import app, enqueue, enqueue_once, rq_job_status
from portal import clock
from portal.extensions import db
from portal.models.job import JobFile, JobFileChunk, JobRun, JobRunItem
from portal.urls import safe_next

# The schedule plan that runs reap() (inserted by migration 066b5d42076e; the same dict
# belongs in portal.models.sync.DEFAULT_PLANS).
REAPER_PLAN = dict(code="sim_TrackedJobReaper", description="后台任务中断检测与过期文件清理", job="jobs.reap",
                   cron="", interval_seconds=60)

REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
OUTCOMES = ("done", "skipped", "failed")
DEAD_RQ_STATES = {JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}

# kind → human label (我的后台任务 and the job page); modules add theirs with register_kind.
KIND_LABELS = {
    "sync.fetch_results": _l("获取异步结果"),
    "sync.export": _l("导出数据同步日志"),
}


def setting(name: str):
    return current_app.config[name]


# kind → how a 'done' row reads for that kind (default 完成), e.g. 已提交 for a new download
DONE_LABELS: dict = {}


def register_kind(kind: str, label, done_label=None) -> None:
    KIND_LABELS[kind] = label
    if done_label is not None:
        DONE_LABELS[kind] = done_label


def done_label(kind: str) -> str:
    return str(DONE_LABELS.get(kind, _l("完成")))


def kind_label(kind: str) -> str:
    return str(KIND_LABELS.get(kind, kind))


class QueueUnavailable(Exception):
    """The job could not be enqueued (Redis unreachable); nothing was recorded."""

    def __init__(self, message: str | None = None):
        super().__init__(message or gettext("后台任务服务暂不可用，请稍后重试；本次操作未执行"))


def rq_id(job_id: int) -> str:
    return f"jobrun-{job_id}"


def _dotted(fn) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def _resolve(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


# --- starting a job (web side) ---------------------------------------------------------------
def start(kind: str, user, fn, *args, subject: str = "", back_url: str = "", total: int = 0,
          items=(), job_timeout: int = 600, retry_of: int | None = None) -> JobRun:
    """Record a JobRun for `user` and enqueue `fn(job_id, *args)` on the user queue.

    `items` are outcomes known before the job runs (rows refused up front), as
    (name, outcome, reason). Raises QueueUnavailable — with the row gone — when Redis
    cannot take the job.
    """
    back_url = safe_next(back_url, "")  # only a path of this site: the job page links to it
    job = JobRun(kind=kind, user_id=user.id if user is not None else None, subject=subject[:300],
                 back_url=back_url[:1000], total=total, status="queued", created_at=clock.now(),
                 args={"fn": _dotted(fn), "args": list(args), "timeout": job_timeout},
                 retry_of_id=retry_of)
    db.session.add(job)
    db.session.flush()
    for name, outcome, reason in items:
        db.session.add(JobRunItem(job_id=job.id, name=str(name)[:200], outcome=_outcome(outcome),
                                  reason=reason or "", created_at=clock.now()))
    job.rq_job_id = rq_id(job.id)
    db.session.commit()
    try:
        enqueue(fn, job.id, *args, queue="user", job_id=job.rq_job_id, job_timeout=job_timeout)
    except REDIS_DOWN as exc:
        current_app.logger.warning("enqueue of %s failed: %s", job.rq_job_id, exc)
        _delete_job(job.id)
        raise QueueUnavailable() from exc
    return job


def record(kind: str, user, items, message: str, subject: str = "", back_url: str = "") -> JobRun:
    """A bulk action that ran in the request: stored like a finished job, so its per-row
    result page survives a refresh (POST → redirect here) and is listed in 我的后台任务."""
    back_url = safe_next(back_url, "")
    now = clock.now()
    items = list(items)
    job = JobRun(kind=kind, user_id=user.id if user is not None else None, subject=subject[:300],
                 back_url=back_url[:1000], total=len(items), done=len(items), status="done", message=message,
                 created_at=now, started_at=now, finished_at=now)
    db.session.add(job)
    db.session.flush()
    db.session.add_all(JobRunItem(job_id=job.id, name=str(name)[:200], outcome=_outcome(outcome),
                                  reason=reason or "", ref=None if ref is None else str(ref),
                                  created_at=now)
                       for name, outcome, reason, ref in items)
    db.session.commit()
    return job


def _delete_job(job_id: int) -> None:
    db.session.rollback()
    db.session.execute(delete(JobRunItem).where(JobRunItem.job_id == job_id))
    db.session.execute(delete(JobRun).where(JobRun.id == job_id))
    db.session.commit()


def retry(job: JobRun) -> JobRun:
    """重试: a new job with the same kind, owner, subject and arguments as a failed one."""
    if job.status != "failed" or not job.args:
        raise ValueError(gettext("只有失败的后台任务可以重试"))
    again = db.session.scalar(select(JobRun).where(JobRun.retry_of_id == job.id))
    if again is not None:
        return again  # a double click retries once
    fn = _resolve(job.args["fn"])
    return start(job.kind, job.user, fn, *job.args.get("args", []), subject=job.subject,
                 back_url=job.back_url, total=job.total, job_timeout=job.args.get("timeout", 600),
                 retry_of=job.id)


def visible_jobs(user):
    """The jobs `user` may see: their own; admins see everyone's."""
    stmt = select(JobRun)
    return stmt if user.is_admin else stmt.where(JobRun.user_id == user.id)


def _outcome(outcome: str) -> str:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
    return outcome


# --- inside the job (worker side) ------------------------------------------------------------
@dataclass(frozen=True)
class JobInfo:
    id: int
    kind: str
    user_id: int | None
    subject: str

    @property
    def user(self):
        """The owner, loaded in the work's session (for permission-scoped queries)."""
        from portal.models import User
        return db.session.get(User, self.user_id) if self.user_id else None


class JobContext:
    """What a @tracked function uses to report; every write is its own transaction."""

    def __init__(self, job: JobInfo, engine):
        self.job = job
        self._engine = engine
        self._final_message: str | None = None
        self._lock = threading.Lock()

    def _write(self, *statements) -> None:
        with self._lock, self._engine.begin() as conn:  # a pooled connection of its own
            for stmt in statements:
                conn.execute(stmt)

    def _touch(self, **values):
        return update(JobRun).where(JobRun.id == self.job.id).values(heartbeat_at=clock.now(), **values)

    def heartbeat(self) -> None:
        self._write(self._touch())

    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        values = {"done": done}
        if total is not None:
            values["total"] = total
        if message:
            values["message"] = message
        self._write(self._touch(**values))

    def item(self, name: str, outcome: str, reason: str = "", ref=None) -> None:
        """One row's outcome (done / skipped / failed) with its reason."""
        self._write(insert(JobRunItem).values(job_id=self.job.id, name=str(name)[:200],
                                              outcome=_outcome(outcome), reason=reason or "",
                                              ref=None if ref is None else str(ref)[:60],
                                              created_at=clock.now()),
                    self._touch())

    def result_file(self, path_or_bytes, filename: str) -> None:
        """Store the result in the database (in slices), downloadable for JOB_FILE_TTL_HOURS."""
        size = 0
        chunk_bytes = setting("JOB_FILE_CHUNK_BYTES")
        expires = clock.now() + timedelta(hours=setting("JOB_FILE_TTL_HOURS"))
        with self._lock, self._engine.begin() as conn:
            conn.execute(delete(JobFile).where(JobFile.job_id == self.job.id))
            file_id = conn.execute(insert(JobFile).values(
                job_id=self.job.id, filename=filename[:200], size=0, created_at=clock.now(),
                expires_at=expires).returning(JobFile.id)).scalar_one()
            for seq, data in enumerate(_slices(path_or_bytes, chunk_bytes)):
                conn.execute(insert(JobFileChunk).values(file_id=file_id, seq=seq, data=data))
                size += len(data)
            conn.execute(update(JobFile).where(JobFile.id == file_id).values(size=size))
            conn.execute(self._touch())

    def finish(self, message: str) -> None:
        """The message the job ends with (status 'done' is written when the function returns)."""
        self._final_message = message

    # lifecycle, used by @tracked
    def claim(self) -> bool:
        """queued → running; False when the job already ran, runs elsewhere, or was reaped."""
        now = clock.now()
        with self._lock, self._engine.begin() as conn:
            return conn.execute(update(JobRun).where(JobRun.id == self.job.id, JobRun.status == "queued")
                                .values(status="running", started_at=now, heartbeat_at=now)).rowcount == 1

    def complete(self) -> None:
        values = dict(status="done", finished_at=clock.now())
        if self._final_message is not None:
            values["message"] = self._final_message
        self._write(self._touch(**values).where(JobRun.status == "running"))

    def fail(self, message: str) -> None:
        self._write(self._touch(status="failed", finished_at=clock.now(), message=message[:2000])
                    .where(JobRun.status.in_(("queued", "running"))))


def _slices(path_or_bytes, size: int) -> Iterator[bytes]:
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
        for i in range(0, len(data), size):
            yield data[i:i + size]
        return
    with open(path_or_bytes, "rb") as f:
        while chunk := f.read(size):
            yield chunk


class _Heartbeat(threading.Thread):
    """Writes heartbeat_at every JOB_HEARTBEAT_SECONDS while the job function runs."""

    def __init__(self, ctx: JobContext, every: float):
        super().__init__(daemon=True, name=f"heartbeat-{ctx.job.id}")
        self.ctx, self.every, self.stopped = ctx, every, threading.Event()

    def run(self):
        while not self.stopped.wait(self.every):
            try:
                self.ctx.heartbeat()
            except Exception:  # a missed beat is not worth killing the job for
                pass


def tracked(fn):
    """Decorate a job function taking (ctx, *args); enqueue it through ``start``."""
    @functools.wraps(fn)
    def wrapper(job_id: int, *args):
        if has_app_context():
            return _run(fn, job_id, args)
        with app().app_context():
            return _run(fn, job_id, args)
    wrapper.tracked_function = fn
    return wrapper


def _run(fn, job_id: int, args):
    row = db.session.get(JobRun, job_id)
    if row is None:
        return None  # withdrawn (e.g. the enqueue was reported as failed)
    ctx = JobContext(JobInfo(row.id, row.kind, row.user_id, row.subject), db.engine)
    db.session.rollback()  # the work starts from a clean session
    if not ctx.claim():
        return None  # ran already / reaped: never run a job twice
    beat = _Heartbeat(ctx, setting("JOB_HEARTBEAT_SECONDS"))
    beat.start()
    try:
        result = fn(ctx, *args)
    except BaseException as exc:
        db.session.rollback()
        if isinstance(exc, JobTimeoutException):
            ctx.fail("后台任务执行超时，已停止；请缩小范围后重试")  # stored text: no locale in the worker
        else:
            ctx.fail(str(exc) or type(exc).__name__)
        raise  # RQ keeps the traceback in its failed registry
    finally:
        beat.stopped.set()
    ctx.complete()
    return result


# --- reaping dead jobs -----------------------------------------------------------------------
def _mark_failed(job: JobRun, reason: str) -> bool:
    won = db.session.execute(update(JobRun).where(JobRun.id == job.id, JobRun.status == job.status)
                             .values(status="failed", message=reason, finished_at=clock.now())
                             .execution_options(synchronize_session=False)).rowcount == 1
    db.session.commit()
    return won


def reap() -> int:
    """Mark dead jobs failed (or re-enqueue lost ones); delete expired files. Returns how many."""
    now = clock.now()
    stale = now - timedelta(seconds=setting("JOB_HEARTBEAT_STALE_SECONDS"))
    grace = now - timedelta(seconds=setting("JOB_ENQUEUE_GRACE_SECONDS"))
    handled = 0
    running = db.session.scalars(select(JobRun).where(JobRun.status == "running")).all()
    for job in running:
        state = rq_job_status(job.rq_job_id or rq_id(job.id))
        if state is None or state in DEAD_RQ_STATES:
            why = "后台进程中断（任务执行进程已退出），请重试"  # stored text: the worker has no locale
        elif (job.heartbeat_at or job.started_at or job.created_at) < stale:
            why = f"后台进程中断（超过 {setting('JOB_HEARTBEAT_STALE_SECONDS')} 秒没有进度心跳），请重试"
        else:
            continue
        handled += _mark_failed(job, why)
    queued = db.session.scalars(select(JobRun).where(JobRun.status == "queued",
                                                     JobRun.created_at < grace)).all()
    for job in queued:
        state = rq_job_status(job.rq_job_id or rq_id(job.id))
        if state is not None and state not in DEAD_RQ_STATES:
            continue  # still waiting its turn
        if state is None and _reenqueue(job):
            handled += 1
            continue
        handled += _mark_failed(job, "后台任务未能进入执行队列，请重试")
    purge_expired_files()
    return handled


def _reenqueue(job: JobRun) -> bool:
    """A committed job whose enqueue never happened: enqueue it now under the same id."""
    try:
        fn = _resolve(job.args["fn"])
        enqueue_once(fn, job.id, *job.args.get("args", []), job_id=job.rq_job_id or rq_id(job.id),
                     queue="user", job_timeout=job.args.get("timeout", 600))
        return True  # enqueued now, or found pending after all
    except (KeyError, TypeError, ImportError, AttributeError):
        return False


def purge_expired_files() -> int:
    n = db.session.execute(delete(JobFile).where(JobFile.expires_at <= clock.now())
                           .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return n


def file_chunks(file_id: int) -> Iterator[bytes]:
    """A result file's bytes, one stored slice per query (memory stays flat).

    The engine is taken now and every slice is read on a connection of its own, so the
    iterator works after the request's app context is gone, while the response streams.
    """
    engine = db.engine

    def slices():
        seq = 0
        while True:
            with engine.connect() as conn:
                data = conn.scalar(select(JobFileChunk.data).where(JobFileChunk.file_id == file_id,
                                                                   JobFileChunk.seq == seq))
            if data is None:
                return
            yield bytes(data)
            seq += 1
    return slices()


def item_counts(job_ids: list[int]) -> dict[int, dict[str, int]]:
    """Outcome counts per job for a page of jobs, in one query."""
    counts = {i: {o: 0 for o in OUTCOMES} for i in job_ids}
    if job_ids:
        for job_id, outcome, n in db.session.execute(
                select(JobRunItem.job_id, JobRunItem.outcome, func.count())
                .where(JobRunItem.job_id.in_(job_ids)).group_by(JobRunItem.job_id, JobRunItem.outcome)):
            counts[job_id][outcome] = n
    return counts
