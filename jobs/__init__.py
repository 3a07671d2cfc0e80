"""The one way to run background work: RQ jobs, each run inside a Flask app context.

Job functions live in this package (one module per area) and are decorated with
``@app_job``; enqueue them with ``enqueue(fn, *args)``. They are small, idempotent and
safe to run twice; long ones record progress on a ``JobRun`` row.
"""
from __future__ import annotations

import functools

from flask import current_app, has_app_context
from rq import Queue

_app = None


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


def queue(name: str = "user") -> Queue:
    from portal.redis_conn import get_redis
    return Queue(current_app.config["RQ_QUEUE"], connection=get_redis())


def enqueue(fn, *args, job_timeout: int = 600, queue: str = "user", job_id: str | None = None,
            **kwargs):
    from jobs import queue as _queue
    return _queue(queue).enqueue(fn, *args, job_timeout=job_timeout, job_id=job_id, **kwargs)


def enqueue_once(fn, *args, job_id: str, queue: str = "user", delay_seconds: float = 0,
                 **kwargs) -> bool:
    """Provisional (replaced by the tracked-jobs branch)."""
    from rq.job import Job
    from rq.exceptions import NoSuchJobError
    from jobs import queue as _queue
    q = _queue(queue)
    try:
        status = Job.fetch(job_id, connection=q.connection).get_status()
        if status in ("queued", "scheduled", "started", "deferred"):
            return False
    except NoSuchJobError:
        pass
    if delay_seconds > 0:
        from datetime import timedelta
        q.enqueue_in(timedelta(seconds=delay_seconds), fn, *args, job_id=job_id, **kwargs)
    else:
        q.enqueue(fn, *args, job_id=job_id, **kwargs)
    return True


def enqueue_after(seconds: float, fn, *args, **kwargs):
    """Enqueue now when `seconds` is 0, else through the worker's scheduler."""
    if seconds <= 0:
        return enqueue(fn, *args, **kwargs)
    from datetime import timedelta
    return queue().enqueue_in(timedelta(seconds=seconds), fn, *args, **kwargs)
