"""发送队列 (outbox) — effects that must reach another system, delivered with retries.

A row is written in the same transaction as the local change that needs it (e.g. 作废
at the bureau after a task is voided here); a sweeper delivers it with backoff. A failed
delivery never rolls the local state back: it stays visible with its last error, and is
given up (失败) only after OUTBOX_MAX_ATTEMPTS, where a person can send it again.
"""
from __future__ import annotations

import enum
from datetime import datetime

from portal.i18n import lazy_gettext as _l
from sqlalchemy import DateTime, Index, Integer, JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import now
from portal.extensions import db
from portal.workflow import StateMachine


class OutboxStatus(str, enum.Enum):
    PENDING = "pending"      # waiting for (another) delivery attempt
    SENDING = "sending"      # claimed by one worker
    DELIVERED = "delivered"
    FAILED = "failed"        # given up (definitive refusal or too many attempts)


OUTBOX_STATUS_LABELS = {OutboxStatus.PENDING: _l("待发送"), OutboxStatus.SENDING: _l("发送中"),
                        OutboxStatus.DELIVERED: _l("已送达"), OutboxStatus.FAILED: _l("发送失败")}

_O = OutboxStatus
OUTBOX_MACHINE = StateMachine.of("outbox", {
    _O.PENDING.value: {_O.SENDING.value},
    _O.SENDING.value: {_O.DELIVERED.value, _O.PENDING.value, _O.FAILED.value},
    _O.FAILED.value: {_O.PENDING.value},  # 重新发送 by a person
    _O.DELIVERED.value: set(),
})


class OutboxMessage(db.Model):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at", "id"),)
    MACHINE = OUTBOX_MACHINE

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(120), unique=True)  # e.g. sync_task:123:void
    subject: Mapped[str] = mapped_column(String(120), default="")  # what it is about, for people
    org_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(12), default=OutboxStatus.PENDING.value)
    version: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    @property
    def audit_key(self) -> str:
        return self.key

    @property
    def status_label(self) -> str:
        return OUTBOX_STATUS_LABELS[OutboxStatus(self.status)]
