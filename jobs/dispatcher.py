"""The 调度计划 dispatcher (`flask --app app dispatch`): a loop that outlives Redis and
database outages.

`rq cron` exits on the first Redis error and never comes back, which silently stops every
schedule plan. This loop calls `jobs.plans.dispatch_due()` once per tick; when Redis or the
database is unreachable it logs, waits (1 s doubling to 30 s) and tries again, so it ends
only on SIGTERM / SIGINT. Any number may run: dispatch_due claims each plan run atomically
in the database, so two dispatchers never enqueue the same run.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from portal.extensions import db
from portal.supervisor import backoff_delay

log = logging.getLogger("portal.dispatcher")

OUTAGES = (RedisError, SQLAlchemyError, OSError)


def _reset_session() -> None:
    """Drop the (possibly broken) session so the next tick starts on a fresh connection."""
    try:
        db.session.rollback()
    except Exception:  # the database may still be away; remove() discards it anyway
        pass
    db.session.remove()


def tick() -> list[str]:
    """One dispatch: enqueue every due plan; returns the plan codes it enqueued."""
    from jobs.plans import dispatch_due
    from portal.redis_conn import get_redis

    # Claim nothing while Redis is away: a claimed run whose enqueue fails would be lost.
    get_redis().ping()
    return dispatch_due()


def run_dispatcher(*, interval: float = 60.0, backoff_initial: float = 1.0, backoff_max: float = 30.0,
                   stop: threading.Event | None = None, sleep: Callable[[float], object] | None = None,
                   max_iterations: int | None = None) -> int:
    """Dispatch every `interval` seconds until `stop` is set (or `max_iterations` ticks ran).

    Needs an app context. `sleep` defaults to waiting on `stop`, so a signal ends a long
    wait at once. Returns how many ticks succeeded.
    """
    stop = stop or threading.Event()
    sleep = sleep or stop.wait
    failures = succeeded = iterations = 0
    while not stop.is_set() and (max_iterations is None or iterations < max_iterations):
        iterations += 1
        try:
            codes = tick()
        except OUTAGES as exc:
            delay = backoff_delay(failures, backoff_initial, backoff_max)
            failures += 1
            log.warning("dispatch failed (%s: %s); retrying in %gs", type(exc).__name__, exc, delay)
            _reset_session()
            sleep(delay)
            continue
        except Exception:  # a bug in one plan must not stop every other plan
            delay = backoff_delay(failures, backoff_initial, backoff_max)
            failures += 1
            log.exception("dispatch failed; retrying in %gs", delay)
            _reset_session()
            sleep(delay)
            continue
        if failures:
            log.info("dispatch recovered after %d failed attempt(s)", failures)
        failures = 0
        succeeded += 1
        if codes:
            log.info("enqueued %s", ", ".join(codes))
        db.session.remove()
        sleep(interval)
    return succeeded
