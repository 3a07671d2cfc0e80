"""The outbox: effects that must reach another system, delivered with retries and backoff.

`add` writes a message in the caller's transaction (so it exists exactly when the local
change does); `deliver` claims one message (pending → sending, compare-and-set), calls the
handler registered for its kind and records the outcome; `sweep` enqueues what is due.
A failed delivery never rolls the local state back — it stays visible with its error.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from flask import current_app
from sqlalchemy import select

from portal import clock
from portal.extensions import db
from portal.models.outbox import OutboxMessage, OutboxStatus
from portal.workflow import transition

log = logging.getLogger("portal.outbox")
O = OutboxStatus
DONE, RETRY, GIVE_UP = "done", "retry", "give_up"
HANDLERS: dict[str, Callable[[OutboxMessage], "Delivery"]] = {}


@dataclass
class Delivery:
    result: str    # DONE | RETRY (not delivered, try later) | GIVE_UP (definitive refusal)
    message: str = ""


def handler(kind: str):
    """Register the function that delivers messages of `kind`."""
    def register(fn):
        HANDLERS[kind] = fn
        return fn
    return register


def add(kind: str, key: str, payload: dict, subject: str = "", org_id: int | None = None) -> OutboxMessage:
    """A message in the caller's transaction; the same key twice yields the first one."""
    existing = db.session.scalar(select(OutboxMessage).where(OutboxMessage.key == key))
    if existing is not None:
        return existing
    message = OutboxMessage(kind=kind, key=key, payload=payload, subject=subject, org_id=org_id,
                            next_attempt_at=clock.now(), created_at=clock.now())
    db.session.add(message)
    db.session.flush()
    return message


def backoff(attempts: int) -> float:
    base = current_app.config["OUTBOX_RETRY_SECONDS"]
    return min(base * 2 ** max(attempts - 1, 0), 3600)


def deliver(message_id: int, actor: str = "job:outbox") -> str:
    """One delivery attempt of one message; returns what happened."""
    message = db.session.get(OutboxMessage, message_id)
    if message is None or message.status != O.PENDING.value:
        return "nothing to do"
    if not transition(message, O.SENDING, reason="发送", actor=actor, attempts=message.attempts + 1):
        db.session.rollback()
        return "taken by another worker"
    db.session.commit()
    try:
        outcome = HANDLERS[message.kind](message)
    except Exception as exc:  # noqa: BLE001 — a handler bug must not lose the message
        db.session.rollback()
        log.exception("outbox %s failed", message.key)
        outcome = Delivery(RETRY, f"{type(exc).__name__}: {exc}")
        message = db.session.get(OutboxMessage, message_id)
    now = clock.now()
    if outcome.result == DONE:
        transition(message, O.DELIVERED, reason=outcome.message, actor=actor, delivered_at=now,
                   last_error="")
    elif outcome.result == GIVE_UP or message.attempts >= current_app.config["OUTBOX_MAX_ATTEMPTS"]:
        transition(message, O.FAILED, reason=outcome.message, actor=actor, last_error=outcome.message[:500])
    else:
        transition(message, O.PENDING, reason=outcome.message, actor=actor, last_error=outcome.message[:500],
                   next_attempt_at=now + timedelta(seconds=backoff(message.attempts)))
    db.session.commit()
    return outcome.message


def resend(message: OutboxMessage, actor: str | None = None) -> bool:
    """重新发送 a message that was given up, by a person."""
    won = transition(message, O.PENDING, allowed_from={O.FAILED}, reason="重新发送", actor=actor,
                     next_attempt_at=clock.now())
    db.session.commit()
    if won:
        kick()
    return won


def sweep(limit: int = 200) -> int:
    """Enqueue due messages; messages claimed by a worker that died go back to pending."""
    from jobs import enqueue_once, outbox as outbox_jobs

    now = clock.now()
    stale = now - timedelta(seconds=current_app.config["OUTBOX_SENDING_TIMEOUT_SECONDS"])
    for message in db.session.scalars(select(OutboxMessage).where(
            OutboxMessage.status == O.SENDING.value, OutboxMessage.updated_at < stale).limit(limit)):
        transition(message, O.PENDING, reason="发送中断，重新排队", actor="job:outbox", next_attempt_at=now)
    db.session.commit()
    due = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.status == O.PENDING.value, OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit)).all()
    enqueued = 0
    for message in due:
        enqueued += enqueue_once(outbox_jobs.deliver, message.id, queue="background",
                                 job_id=f"outbox-{message.id}-{message.version}")
    return enqueued


def kick() -> None:
    """Deliver what is due now rather than at the next sweep (best effort)."""
    try:
        sweep()
    except Exception as exc:  # noqa: BLE001 — Redis down: the next sweep delivers
        log.warning("outbox not enqueued now (%s); the sweeper will", exc)
