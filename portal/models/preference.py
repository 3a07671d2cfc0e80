"""Per-user table preferences (列设置): which optional columns a user shows.

Stored in the database, not the session or a cookie, so the choice follows the user to
any browser and any web process. ``choices`` maps an optional column's key to True
(shown) or False (hidden); a column absent from it keeps the table's declared default,
so columns added later still appear (or not) as their declaration says.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, String, UniqueConstraint, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import now
from portal.extensions import db


class TablePreference(db.Model):
    """列设置 — one user's column choices for one table (by the table's dom id)."""
    __tablename__ = "table_preferences"
    __table_args__ = (UniqueConstraint("user_id", "table_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    table_id: Mapped[str] = mapped_column(String(60))
    choices: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=now, onupdate=now)

    @staticmethod
    def choices_for(session, user_id: int, table_id: str) -> dict[str, bool]:
        choices = session.scalar(_CHOICES, {"uid": user_id, "tid": table_id})
        return dict(choices or {})

    @staticmethod
    def save(session, user_id: int, table_id: str, choices: dict[str, bool] | None) -> None:
        """Store (or, with None, forget) a user's choices; a concurrent first save by the
        same user (double click, two tabs) hits the unique constraint and is retried
        as an update."""
        for attempt in range(2):
            pref = session.scalar(select(TablePreference).where(
                TablePreference.user_id == user_id, TablePreference.table_id == table_id))
            if choices is None:
                if pref:
                    session.delete(pref)
                session.commit()
                return
            if pref is None:
                session.add(TablePreference(user_id=user_id, table_id=table_id, choices=dict(choices)))
            else:
                pref.choices = dict(choices)
                pref.updated_at = now()
            try:
                session.commit()
                return
            except IntegrityError:
                session.rollback()
                if attempt:
                    raise


_CHOICES = select(TablePreference.choices).where(TablePreference.user_id == bindparam("uid"),
                                                 TablePreference.table_id == bindparam("tid"))
