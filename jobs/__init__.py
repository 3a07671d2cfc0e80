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


def queue() -> Queue:
    from portal.redis_conn import get_redis
    return Queue(current_app.config["RQ_QUEUE"], connection=get_redis())


def enqueue(fn, *args, job_timeout: int = 600, **kwargs):
    return queue().enqueue(fn, *args, job_timeout=job_timeout, **kwargs)


def enqueue_after(seconds: float, fn, *args, **kwargs):
    """Enqueue now when `seconds` is 0, else through the worker's scheduler."""
    if seconds <= 0:
        return enqueue(fn, *args, **kwargs)
    from datetime import timedelta
    return queue().enqueue_in(timedelta(seconds=seconds), fn, *args, **kwargs)
