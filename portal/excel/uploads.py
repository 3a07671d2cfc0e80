"""上传文件 — an uploaded file's bytes, kept in the database until its import job is done.

In scaled mode the worker that parses a file runs on another machine than the web process
that received it, so the bytes cannot wait in a local temp file.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import BigInteger, DateTime, ForeignKey, LargeBinary, String, delete
from sqlalchemy.orm import Mapped, mapped_column

from portal import clock
from portal.clock import now
from portal.extensions import db


class Upload(db.Model):
    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    filename: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


def store(data: bytes, filename: str, user) -> Upload:
    """Keep `data` for IMPORT_UPLOAD_TTL_HOURS (flushed in the caller's transaction)."""
    upload = Upload(user_id=user.id if user is not None else None, filename=(filename or "")[:200],
                    size=len(data), data=data, created_at=clock.now(),
                    expires_at=clock.now() + timedelta(hours=current_app.config["IMPORT_UPLOAD_TTL_HOURS"]))
    db.session.add(upload)
    db.session.flush()
    return upload


def purge_expired() -> int:
    n = db.session.execute(delete(Upload).where(Upload.expires_at <= clock.now())
                           .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return n


def discard(upload_id: int) -> None:
    """The job is done with the file."""
    db.session.execute(delete(Upload).where(Upload.id == upload_id).execution_options(synchronize_session=False))
    db.session.commit()
