"""审计日志 — the append-only audit trail of every state change."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, DateTime, Text, Integer, Index, event
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import now
from portal.extensions import db
from portal.models.counts import Counted


AUDIT_FILTERS = ("actor", "object_type", "object_id", "action", "org_id")

# Exact totals of the audit list under organisation, object type, action, actor or a date range.
AUDIT_COUNTS = Counted("audit_log", org="org_id", day="at",
                       groups={"a": ("object_type", "action"), "u": ("actor",)})


class AuditLog(db.Model):
    __tablename__ = "audit_log"
    __table_args__ = (
        # the list: its one sort (at, id), and (F, at, id) for every equality filter F
        Index("ix_audit_log_at_id", "at", "id"),
        *(Index(f"ix_audit_log_{col}_by_at", col, "at", "id") for col in AUDIT_FILTERS),
        Index("ix_audit_log_object", "object_type", "object_id"),  # a task's 处理历史
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


# Append-only in the database itself (not only this ORM event): used by the migration
# that installs it and by the test suite, which empties tables between tests.
APPEND_ONLY_DDL = {
    "postgresql": (
        ["CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$ "
         "BEGIN RAISE EXCEPTION 'audit_log is append-only'; END; $$ LANGUAGE plpgsql",
         "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
         "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"],
        ["DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
         "DROP FUNCTION IF EXISTS audit_log_append_only()"]),
    "sqlite": (
        ["CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
         "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
         "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
         "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"],
        ["DROP TRIGGER IF EXISTS audit_log_no_update", "DROP TRIGGER IF EXISTS audit_log_no_delete"]),
}


@event.listens_for(AuditLog, "before_update")
@event.listens_for(AuditLog, "before_delete")
def _append_only(mapper, connection, target):
    raise RuntimeError("audit_log is append-only")
