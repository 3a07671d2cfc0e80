"""One helper for every state change: adds an audit row to the caller's transaction."""
from __future__ import annotations

from flask import has_request_context
from flask_login import current_user

from portal.extensions import db
from portal.models.audit import AuditLog


def actor_name(actor: str | None = None) -> str:
    if actor:
        return actor
    if has_request_context() and current_user and current_user.is_authenticated:
        return current_user.username
    return "system"


def record(object_type: str, object_id, action: str, *, org_id: int | None = None,
           from_state: str = "", to_state: str = "", reason: str = "",
           actor: str | None = None) -> AuditLog:
    """Append an audit row; committed (or rolled back) with the change it describes."""
    row = AuditLog(actor=actor_name(actor), object_type=object_type, object_id=str(object_id),
                   org_id=org_id, action=action, from_state=from_state or "",
                   to_state=to_state or "", reason=reason or "")
    db.session.add(row)
    return row
