"""Sessions (登录会话): one login of a user in one browser, revocable on the server.

The browser's session and remember cookies carry a random token; the table stores only
its SHA-256 (`id`), so neither a database read nor the admin page (which lists and ends
sessions by `id`) hands out a token that would log anyone in. A password change or a
deactivation revokes every session of the user, whichever code path makes it.
"""
from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, event, inspect, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from portal.clock import now
from portal.extensions import db


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserSession(db.Model):
    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie's token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    @property
    def live(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def revoke_all(session: Session, user_id: int, keep: str | None = None) -> int:
        """Revoke every live session of the user (but `keep`); returns how many."""
        stmt = update(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        if keep:
            stmt = stmt.where(UserSession.id != keep)
        return session.execute(stmt.values(revoked_at=now())).rowcount


@event.listens_for(Session, "before_flush")
def _revoke_on_password_change_or_deactivation(session, _context, _instances):
    from flask import g, has_app_context

    from portal import audit
    from portal.models.user import User
    for user in [o for o in session.dirty if isinstance(o, User)]:
        state = inspect(user)
        password = state.attrs.password_hash.history.has_changes()
        deactivated = state.attrs.active.history.has_changes() and not user.active
        if not (password or deactivated) or user.id is None:
            continue
        # the admin changing their own password keeps the browser they are using
        keep = g.get("user_session_id") if has_app_context() and not deactivated else None
        if UserSession.revoke_all(session, user.id, keep=keep):
            audit.record("user", user.id, "sessions_revoked", reason="停用" if deactivated else "修改密码")
