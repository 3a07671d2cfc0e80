"""Server-side sessions: started at login, checked on every request, ended by logout,
password change, deactivation or an admin (model: portal/models/session.py)."""
from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app, g, request
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import SQLAlchemyError

from portal import audit, clock
from portal.extensions import db
from portal.models import User
from portal.models.session import UserSession, token_hash


def start(user: User) -> str:
    """A new session for `user` in this browser; returns the token its cookies carry."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    db.session.add(UserSession(id=token_hash(token), user_id=user.id, created_at=now, last_seen_at=now,
                               ip=(request.remote_addr or "")[:64],
                               user_agent=request.headers.get("User-Agent", "")[:300]))
    user.session_cookie_token = token
    g.user_session_id = token_hash(token)
    return token


# Asked on every request: built once (a statement built anew costs more Python than the query).
_LIVE_SESSION = (select(User, UserSession.last_seen_at).join(UserSession, UserSession.user_id == User.id)
                 .where(UserSession.id == bindparam("sid"), UserSession.revoked_at.is_(None), User.active.is_(True)))


def user_for(token: str) -> User | None:
    """The user of a live session (from the session or the remember cookie), or None."""
    if not token or len(token) > 100:
        return None
    sid = token_hash(token)
    found = db.session.execute(_LIVE_SESSION, {"sid": sid}).first()
    if found is None:
        return None
    user, last_seen_at = found
    user.session_cookie_token = token
    g.user_session_id = sid
    if last_seen_at < clock.now() - timedelta(seconds=current_app.config["SESSION_TOUCH_SECONDS"]):
        g.touch_user_session = sid
    return user


def touch(response):
    """After the request: note when the session was last seen (at most once a minute),
    on its own connection so it never commits the request's own work."""
    sid = g.pop("touch_user_session", None)
    if sid:
        try:
            with db.engine.begin() as conn:
                conn.execute(update(UserSession).where(UserSession.id == sid).values(last_seen_at=clock.now()))
        except SQLAlchemyError as exc:  # bookkeeping only: never fail the page for it
            current_app.logger.warning("session touch failed: %s", exc)
    return response


def end(row: UserSession, reason: str) -> bool:
    """Revoke one session; False when it had already ended."""
    won = db.session.execute(update(UserSession).where(UserSession.id == row.id, UserSession.revoked_at.is_(None))
                             .values(revoked_at=clock.now())).rowcount == 1
    if won:
        audit.record("user", row.user_id, "session_end", reason=f"{reason}（会话 {row.id[:8]}，{row.ip}）")
    return won


def end_all(user: User, reason: str) -> int:
    n = UserSession.revoke_all(db.session, user.id)
    if n:
        audit.record("user", user.id, "sessions_revoked", reason=f"{reason}（{n} 个会话）")
    return n
