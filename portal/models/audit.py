"""审计日志 — the append-only audit trail of every state change."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, DateTime, Text, Integer, Index, event
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import now
from portal.extensions import db


class AuditLog(db.Model):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at_id", "at", "id"),
        Index("ix_audit_log_object", "object_type", "object_id"),
        Index("ix_audit_log_actor_at", "actor", "at"),
        Index("ix_audit_log_actor_action_at", "actor", "action", "at"),
        Index("ix_audit_log_action_at", "action", "at"),
        Index("ix_audit_log_org_at", "org_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=now)
    actor: Mapped[str] = mapped_column(String(80))  # username, or "job:<name>"
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(60))
    org_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    action: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str] = mapped_column(String(40), default="")
    to_state: Mapped[str] = mapped_column(String(40), default="")
    reason: Mapped[str] = mapped_column(Text, default="")


@event.listens_for(AuditLog, "before_update")
@event.listens_for(AuditLog, "before_delete")
def _append_only(mapper, connection, target):
    raise RuntimeError("audit_log is append-only")
