"""后台任务 — a row per person-initiated background job (export, 获取异步结果 …).

The row says what the job is (kind, subject, who, where it came from), how far it got
and how it ended. Per-row outcomes live in ``job_run_items`` (one INSERT per row, never a
JSON blob rewritten per row); a result file lives in ``job_files`` / ``job_file_chunks``
so every web process can serve it. Only ``jobs.tracked`` writes these tables.
"""
from __future__ import annotations

from datetime import datetime

from portal.i18n import lazy_gettext as _l
from sqlalchemy import (BigInteger, DateTime, ForeignKey, Index, Integer, JSON, LargeBinary, String, Text,
                        UniqueConstraint, func, select)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import clock
from portal.clock import now
from portal.extensions import db

JOB_STATUS_LABELS = {"queued": _l("排队中"), "running": _l("执行中"), "done": _l("已完成"), "failed": _l("失败")}
OUTCOME_LABELS = {"done": _l("完成"), "skipped": _l("跳过"), "failed": _l("失败")}


class JobRun(db.Model):
    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(12), default="queued", index=True)  # queued|running|done|failed
    subject: Mapped[str] = mapped_column(String(300), default="")    # what it acts on
    back_url: Mapped[str] = mapped_column(String(1000), default="")  # the list (with filters) it came from
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    args: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # {"fn": dotted path, "args": [...]} for 重试
    rq_job_id: Mapped[str] = mapped_column(String(60), default="")
    retry_of_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    user = relationship("User", lazy="joined")
    file: Mapped["JobFile | None"] = relationship(back_populates="job", uselist=False, passive_deletes=True,
                                                  lazy="selectin")

    @property
    def percent(self) -> int:
        if self.status == "done":
            return 100
        return min(int(self.done * 100 / self.total), 100) if self.total else 0

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")

    @property
    def status_label(self) -> str:
        return str(JOB_STATUS_LABELS.get(self.status, self.status))

    @property
    def kind_label(self) -> str:
        from jobs.tracked import kind_label
        return kind_label(self.kind)

    @property
    def in_background(self) -> bool:
        """Run by a worker (else: a bulk action done in the request, kept for its result page)."""
        return self.args is not None

    @property
    def done_label(self) -> str:
        """How a row this job did reads (完成, or e.g. 已提交 for a new download task)."""
        from jobs.tracked import done_label
        return done_label(self.kind)

    def outcome_counts(self) -> dict[str, int]:
        """{'done': n, 'skipped': n, 'failed': n} from job_run_items."""
        rows = db.session.execute(select(JobRunItem.outcome, func.count()).where(JobRunItem.job_id == self.id)
                                  .group_by(JobRunItem.outcome)).all()
        return {"done": 0, "skipped": 0, "failed": 0, **{o: n for o, n in rows}}

    @property
    def results(self) -> list[dict]:
        """Per-row outcomes as {name, ok, message} (the shape the first F18012 tests read)."""
        items = db.session.scalars(select(JobRunItem).where(JobRunItem.job_id == self.id)
                                   .order_by(JobRunItem.id)).all()
        return [{"name": i.name, "ok": i.outcome == "done", "message": i.reason} for i in items]


class JobRunItem(db.Model):
    """One row's outcome in a job: done / skipped / failed, with the reason."""
    __tablename__ = "job_run_items"
    __table_args__ = (Index("ix_job_run_items_job_outcome", "job_id", "outcome"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job_runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(10))  # done|skipped|failed
    reason: Mapped[str] = mapped_column(Text, default="")
    ref: Mapped[str | None] = mapped_column(String(60), nullable=True)  # e.g. the task id it acted on
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)

    @property
    def outcome_label(self) -> str:
        return str(OUTCOME_LABELS.get(self.outcome, self.outcome))


class JobFile(db.Model):
    """A job's result file, stored in the database so any web process can serve it."""
    __tablename__ = "job_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job_runs.id", ondelete="CASCADE"), unique=True)
    filename: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)

    job: Mapped[JobRun] = relationship(back_populates="file")

    @property
    def expired(self) -> bool:
        return self.expires_at <= clock.now()


class JobFileChunk(db.Model):
    """A slice of a result file (written and streamed one slice at a time)."""
    __tablename__ = "job_file_chunks"
    __table_args__ = (UniqueConstraint("file_id", "seq", name="uq_job_file_chunks_file_seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("job_files.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
