"""The one way to run background work: RQ jobs, each run inside a Flask app context.

Job functions live in this package (one module per area) and are decorated with
``@app_job`` (or ``@jobs.tracked.tracked`` for person-initiated work with a JobRun row);
enqueue them with ``enqueue(fn, *args, queue=...)``. They are small, idempotent and safe
to run twice.

Two queues, named from RQ_QUEUE: ``<base>-user`` for what a person just asked for and
``<base>-bg`` for sweeps, plans and follow-ups. Workers are started with the user queue
first (``worker_queue_names``); RQ always takes the first non-empty queue in that order,
so a person's action never waits behind a background sweep.
"""
from __future__ import annotations

import functools
from datetime import timedelta

from flask import current_app, has_app_context
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

_app = None

QUEUE_SUFFIXES = {"user": "-user", "background": "-bg"}
# An RQ job in one of these states will still run: enqueue_once leaves it alone.
PENDING_STATES = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED, JobStatus.DEFERRED}


def app():
    """The Flask app for this worker process (the current one when already inside one)."""
    global _app
    if has_app_context():
        return current_app._get_current_object()
    if _app is None:
        from portal import create_app
        _app = create_app()
    return _app


def app_job(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if has_app_context():
            return fn(*args, **kwargs)
        with app().app_context():
            return fn(*args, **kwargs)
    return wrapper


def queue_name(kind: str = "background", base: str | None = None) -> str:
    """The RQ queue name for 'user' or 'background' work."""
    if kind not in QUEUE_SUFFIXES:
        raise ValueError(f"unknown queue {kind!r}: use 'user' or 'background'")
    return (base if base is not None else current_app.config["RQ_QUEUE"]) + QUEUE_SUFFIXES[kind]


def worker_queue_names(base: str | None = None) -> list[str]:
    """Queue names in the order a worker must listen to them: user first."""
    return [queue_name("user", base), queue_name("background", base)]


def queue(kind: str = "background") -> Queue:
    from portal.redis_conn import get_redis
    return Queue(queue_name(kind), connection=get_redis())


def queues() -> list[Queue]:
    """Both queues, user first (what a worker drains)."""
    return [queue("user"), queue("background")]


def enqueue(fn, *args, queue: str = "background", job_id: str | None = None,
            job_timeout: int = 600, **kwargs):
    """Enqueue `fn(*args, **kwargs)` on the user or background queue."""
    return _queue(queue).enqueue(fn, *args, job_id=job_id, job_timeout=job_timeout, **kwargs)


def enqueue_after(seconds: float, fn, *args, queue: str = "background", **kwargs):
    """Enqueue now when `seconds` is 0, else through the worker's scheduler."""
    if seconds <= 0:
        return enqueue(fn, *args, queue=queue, **kwargs)
    return _queue(queue).enqueue_in(timedelta(seconds=seconds), fn, *args, **kwargs)


def enqueue_once(fn, *args, job_id: str, queue: str = "background", delay_seconds: float = 0,
                 job_timeout: int = 600) -> bool:
    """Enqueue under a deterministic id unless a job with that id is still pending.

    Returns whether it enqueued. A short Redis lock on the id makes two sweepers calling
    at the same moment enqueue it once.
    """
    q = _queue(queue)
    lock = q.connection.set(f"portal:enqueue-once:{job_id}", "1", nx=True, px=10_000)
    if not lock:
        return False
    try:
        if rq_job_status(job_id, q.connection) in PENDING_STATES:
            return False
        if delay_seconds > 0:
            q.enqueue_in(timedelta(seconds=delay_seconds), fn, *args, job_id=job_id, job_timeout=job_timeout)
        else:
            q.enqueue(fn, *args, job_id=job_id, job_timeout=job_timeout)
        return True
    finally:
        q.connection.delete(f"portal:enqueue-once:{job_id}")


def rq_job_status(job_id: str, connection=None) -> JobStatus | None:
    """The RQ status of `job_id`, or None when Redis no longer knows the job."""
    if connection is None:
        from portal.redis_conn import get_redis
        connection = get_redis()
    try:
        return Job.fetch(job_id, connection=connection).get_status(refresh=True)
    except NoSuchJobError:
        return None


_queue = queue  # `enqueue(queue=...)` shadows the function name inside it
