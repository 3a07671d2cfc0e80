"""后台任务 — a row per long-running job (export, import, sweep) for progress and result."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, DateTime, Integer, Text, ForeignKey, JSON
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import now
from portal.extensions import db


class JobRun(db.Model):
    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(12), default="queued")  # queued|running|done|failed
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    result_file: Mapped[str] = mapped_column(String(300), default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    results: Mapped[list | None] = mapped_column(JSON, nullable=True)  # per-row outcomes
    rq_job_id: Mapped[str] = mapped_column(String(60), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    @property
    def percent(self) -> int:
        if self.status == "done":
            return 100
        return int(self.done * 100 / self.total) if self.total else 0

    def step(self, done: int, message: str = "") -> None:
        """Record progress (committed so the polling page sees it)."""
        self.done = done
        if message:
            self.message = message
        db.session.commit()

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")
