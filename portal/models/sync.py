"""下载任务 (sync task), its downloaded invoices, and the 进项/销项 invoice pools."""
from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from portal.i18n import lazy_gettext as _l
from sqlalchemy import (String, Date, DateTime, Integer, Numeric, Boolean, ForeignKey,
                        Index, UniqueConstraint, JSON, text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.channels.base import DownloadType, DownloadStatus
from portal import clock
from portal.clock import now
from portal.extensions import db
from portal.models.counts import Counted
from portal.workflow import StateMachine


class SyncStatus(str, enum.Enum):
    """同步状态 — the eight states of the F18012 manual, plus 已作废."""
    INCOMPLETE = "incomplete"        # 进销项数据不全
    HEADER_ONLY = "header_only"      # 已下载表头
    FAILED = "failed"                # 下载失败
    PROCESSING = "processing"        # 下载处理中
    APPLY_FAILED = "apply_failed"    # 进销项下载申请失败
    DOWNLOADED = "downloaded"        # 数据已下载
    NO_DATA = "no_data"              # 没有数据
    SUCCESS = "success"              # 成功
    VOIDED = "voided"                # 已作废

    @property
    def label(self) -> str:
        return SYNC_STATUS_LABELS[self]


SYNC_STATUS_LABELS = {
    SyncStatus.INCOMPLETE: _l("进销项数据不全"),
    SyncStatus.HEADER_ONLY: _l("已下载表头"),
    SyncStatus.FAILED: _l("下载失败"),
    SyncStatus.PROCESSING: _l("下载处理中"),
    SyncStatus.APPLY_FAILED: _l("进销项下载申请失败"),
    SyncStatus.DOWNLOADED: _l("数据已下载"),
    SyncStatus.NO_DATA: _l("没有数据"),
    SyncStatus.SUCCESS: _l("成功"),
    SyncStatus.VOIDED: _l("已作废"),
}

# What the bureau's answer to a download query means for the task.
FROM_CHANNEL = {
    DownloadStatus.PROCESSING: SyncStatus.PROCESSING,
    DownloadStatus.SUCCESS: SyncStatus.DOWNLOADED,
    DownloadStatus.NO_DATA: SyncStatus.NO_DATA,
    DownloadStatus.HEADER_ONLY: SyncStatus.HEADER_ONLY,
    DownloadStatus.INCOMPLETE: SyncStatus.INCOMPLETE,
    DownloadStatus.FAILED: SyncStatus.FAILED,
}


_S = SyncStatus
_AFTER_QUERY = {_S.DOWNLOADED.value, _S.SUCCESS.value, _S.NO_DATA.value, _S.HEADER_ONLY.value,
                _S.INCOMPLETE.value, _S.FAILED.value}
# Which 同步状态 may follow which; `portal.workflow.transition` enforces it.
SYNC_MACHINE = StateMachine.of("sync_task", {
    _S.PROCESSING.value: _AFTER_QUERY | {_S.APPLY_FAILED.value, _S.VOIDED.value},
    _S.DOWNLOADED.value: {_S.SUCCESS.value},                       # pooled
    _S.INCOMPLETE.value: _AFTER_QUERY | {_S.PROCESSING.value},     # 获取异步结果 / 手工重试
    _S.FAILED.value: {_S.PROCESSING.value},                        # 手工重试
    _S.APPLY_FAILED.value: {_S.PROCESSING.value},                  # 手工重试
    _S.HEADER_ONLY.value: set(), _S.NO_DATA.value: set(), _S.SUCCESS.value: set(),
    _S.VOIDED.value: set(),
})


class SyncType(str, enum.Enum):
    """同步类型 — the seven sync types of the F18012 manual."""
    INPUT_COLLECT = "input_collect"      # 进项采集
    CURRENT_MONTH = "current_month"      # 当前月进销项下载
    HISTORY_MONTH = "history_month"      # 历史月进销项下载
    CURRENT_PERIOD = "current_period"    # 当前属期进项下载
    MANUAL_IMPORT = "manual_import"      # 手工导入
    HISTORY_PERIOD = "history_period"    # 历史属期进项下载
    TODAY = "today"                      # 当天进销项下载

    @property
    def label(self) -> str:
        return SYNC_TYPE_LABELS[self]


SYNC_TYPE_LABELS = {
    SyncType.INPUT_COLLECT: _l("进项采集"),
    SyncType.CURRENT_MONTH: _l("当前月进销项下载"),
    SyncType.HISTORY_MONTH: _l("历史月进销项下载"),
    SyncType.CURRENT_PERIOD: _l("当前属期进项下载"),
    SyncType.MANUAL_IMPORT: _l("手工导入"),
    SyncType.HISTORY_PERIOD: _l("历史属期进项下载"),
    SyncType.TODAY: _l("当天进销项下载"),
}


# Exact counts of the download-task list (portal.list_counts): status tabs and totals under
# organisation, 下载类型 and 通道 (group a), 同步类型 (s), 失败原因 (r), or a 创建时间 range.
SYNC_COUNTS = Counted("sync_tasks", org="org_id", status="status", day="created_at",
                      groups={"a": ("download_type", "channel"), "s": ("sync_type",), "r": ("reason_code",)})


# The list's indexes, derived from what the list offers (bench/README.md explains each rule).
# The list is partitioned by organisation (portal.table_walks): every index leads with org_id,
# so one organisation's rows in any order are one index range, for a clerk and for the
# per-organisation walks an admin's page merges.
# - every sortable column X: (org_id, X, created_at, id, status) for the 全部 tab and
#   (org_id, status, X, created_at, id) for a status tab; the list orders by
#   (X, created_at, id), so the same index serves the filter X = v or a range of X
#   (which sorts by X, Table.implied_sort);
# - every equality filter F: (org_id, F, created_at, id, status);
# - a vocabulary filter (错误描述) also (F): its distinct texts are read by skipping through it;
# - a flag filter (有处理失败: success_count < invoice_count): a partial index over the rows it
#   selects, (org_id, created_at, id, status) WHERE flag.
SYNC_SORTS = ("batch_no", "start_date", "end_date", "success_count", "invoice_count", "created_at", "updated_at")
SYNC_FILTERS = ("download_type", "sync_type", "channel", "reason_code", "error")
SYNC_VOCABULARIES = ("error",)
SYNC_FLAGS = {"has_failures": "success_count < invoice_count"}  # the same text as the filter's SQL


def _sync_indexes() -> list[Index]:
    def order(col):
        return [col, "created_at", "id"] if col != "created_at" else ["created_at", "id"]
    out = []
    for col in SYNC_SORTS:
        out.append(Index(f"ix_sync_tasks_org_by_{col}", "org_id", *order(col), "status"))
        out.append(Index(f"ix_sync_tasks_org_status_by_{col}", "org_id", "status", *order(col)))
    for col in SYNC_FILTERS:
        out.append(Index(f"ix_sync_tasks_org_{col}_by_created", "org_id", col, "created_at", "id", "status"))
    for col in SYNC_VOCABULARIES:
        out.append(Index(f"ix_sync_tasks_{col}_texts", col))
    for name, condition in SYNC_FLAGS.items():
        out.append(Index(f"ix_sync_tasks_org_{name}_by_created", "org_id", "created_at", "id", "status",
                         sqlite_where=text(condition), postgresql_where=text(condition)))
    return out


SYNC_TASK_INDEXES = _sync_indexes()


class SyncTask(db.Model):
    """下载任务/批次 — one download of one organisation, type and period from the bureau."""
    __tablename__ = "sync_tasks"
    __table_args__ = (
        *SYNC_TASK_INDEXES,
        # prefix (LIKE 'x%') filter on PostgreSQL under a non-C collation
        Index("ix_sync_tasks_batch_no_pattern", "batch_no", postgresql_ops={"batch_no": "varchar_pattern_ops"}),
        Index("ix_sync_tasks_status_check", "status", "next_check_at", "id"),
    )
    MACHINE = SYNC_MACHINE

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_no: Mapped[str] = mapped_column(String(40), unique=True)  # 下载批次号
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    status: Mapped[str] = mapped_column(String(20), default=SyncStatus.PROCESSING.value)
    download_type: Mapped[str] = mapped_column(String(20))
    sync_type: Mapped[str] = mapped_column(String(20))
    start_date: Mapped[date] = mapped_column(Date)  # 下载开始时间 (by 开票日期)
    end_date: Mapped[date] = mapped_column(Date)    # 下载结束时间
    success_count: Mapped[int] = mapped_column(Integer, default=0)  # 处理成功的份数
    invoice_count: Mapped[int] = mapped_column(Integer, default=0)  # 下载发票份数
    error: Mapped[str] = mapped_column(String(500), default="")     # 错误描述
    reason_code: Mapped[str] = mapped_column(String(40), default="")  # ReasonCode of the error
    channel: Mapped[str] = mapped_column(String(10))
    channel_task_id: Mapped[str] = mapped_column(String(80), default="")
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=0)  # compare-and-set guard
    created_by: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    requested_at: Mapped[datetime] = mapped_column(DateTime, default=now)  # last apply sent
    last_retry_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    processing_since: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # When the sweeper should next act on a task in 下载处理中 (apply again or query).
    next_check_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    checks: Mapped[int] = mapped_column(Integer, default=0)  # queries since the last apply

    # many-to-one: found in the session (a list has loaded the organisations it may show) or
    # read once per organisation, rather than joined into every row of every query
    org = relationship("Organization", lazy="select")
    attempts = relationship("SyncTaskAttempt", order_by="SyncTaskAttempt.seq", lazy="select",
                            back_populates="task")

    @property
    def audit_key(self) -> str:
        return self.batch_no

    @property
    def status_label(self) -> str:
        return SyncStatus(self.status).label

    @property
    def download_type_label(self) -> str:
        return DownloadType(self.download_type).label

    @property
    def sync_type_label(self) -> str:
        return SyncType(self.sync_type).label

    @property
    def waiting_seconds(self) -> int | None:
        """How long a task in 下载处理中 has waited (None for every other state)."""
        if self.status != SyncStatus.PROCESSING.value or not self.processing_since:
            return None
        return max(int((clock.now() - self.processing_since).total_seconds()), 0)

    @property
    def in_flight(self) -> bool:
        return self.status == SyncStatus.PROCESSING.value

    @property
    def waiting_for(self) -> str:
        """What a task in 下载处理中 waits for, in the user's words ('' otherwise)."""
        from portal.i18n import gettext as _

        if not self.in_flight:
            return ""
        if self.org.channel_login_expired_at:
            return _("等待电子税局重新登录")
        if not self.channel_task_id:
            return _("正在向税局申请下载")
        return _("等待税局生成下载数据")


class AttemptStatus(str, enum.Enum):
    """One application for the download at the channel (one request id)."""
    PENDING = "pending"    # recorded, not sent yet
    SENT = "sent"          # call in flight: a crash here is resolved by sending the same id again
    ACCEPTED = "accepted"  # the bureau created its task (channel_task_id)
    REFUSED = "refused"    # definitive refusal: a retry needs a new request id
    UNKNOWN = "unknown"    # timeout / lost answer: recovered with the SAME request id


ATTEMPT_REASON_LABELS = {"新增": _l("新增"), "手工重试": _l("手工重试")}  # SyncTaskAttempt.reason
ATTEMPT_STATUS_LABELS = {
    AttemptStatus.PENDING: _l("待申请"), AttemptStatus.SENT: _l("申请中"), AttemptStatus.ACCEPTED: _l("税局已受理"),
    AttemptStatus.REFUSED: _l("申请失败"), AttemptStatus.UNKNOWN: _l("结果未知，将以同一请求号查询"),
}

_A = AttemptStatus
ATTEMPT_MACHINE = StateMachine.of("sync_attempt", {
    _A.PENDING.value: {_A.SENT.value},
    _A.SENT.value: {_A.ACCEPTED.value, _A.REFUSED.value, _A.UNKNOWN.value, _A.PENDING.value},
    _A.UNKNOWN.value: {_A.SENT.value, _A.REFUSED.value},
    _A.ACCEPTED.value: set(), _A.REFUSED.value: set(),
})


class SyncTaskAttempt(db.Model):
    """申请记录 — each application of a task at the channel, with its request id.

    The request id is the channel's idempotency key: sending the same id again returns
    the bureau's existing task (a query), a new id asks for a new download.
    """
    __tablename__ = "sync_task_attempts"
    __table_args__ = (UniqueConstraint("task_id", "seq"),)
    MACHINE = ATTEMPT_MACHINE

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("sync_tasks.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str] = mapped_column(String(60), unique=True)
    org_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default=AttemptStatus.PENDING.value)
    version: Mapped[int] = mapped_column(Integer, default=0)
    actor: Mapped[str] = mapped_column(String(80), default="")
    reason: Mapped[str] = mapped_column(String(40), default="")  # 新增 / 手工重试 / ...
    channel_task_id: Mapped[str] = mapped_column(String(80), default="")
    message: Mapped[str] = mapped_column(String(500), default="")
    sends: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    task = relationship("SyncTask", back_populates="attempts")

    @property
    def audit_key(self) -> str:
        return self.request_id

    @property
    def status_label(self) -> str:
        return ATTEMPT_STATUS_LABELS[AttemptStatus(self.status)]

    @property
    def reason_label(self) -> str:
        """What started the application; `reason` stores the Chinese word as a code."""
        return ATTEMPT_REASON_LABELS.get(self.reason, self.reason)


class SyncRequestClaim(db.Model):
    """The 3-minute rule, atomically: one row per organisation, type and period.

    Claiming is one INSERT … ON CONFLICT DO UPDATE … WHERE older than the interval, so
    two requests for the same download in the same second cannot both win.
    """
    __tablename__ = "sync_request_claims"

    org_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    download_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    start_date: Mapped[date] = mapped_column(Date, primary_key=True)
    end_date: Mapped[date] = mapped_column(Date, primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime)


class SyncTaskInvoice(db.Model):
    """One invoice of a download batch, with what happened to it (入池 or why not)."""
    __tablename__ = "sync_task_invoices"
    __table_args__ = (
        UniqueConstraint("task_id", "direction", "invoice_code", "invoice_no"),
        Index("ix_sync_task_invoices_task_outcome", "task_id", "outcome", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("sync_tasks.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(3))
    invoice_code: Mapped[str] = mapped_column(String(12), default="")
    invoice_no: Mapped[str] = mapped_column(String(20))
    issue_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    seller_name: Mapped[str] = mapped_column(String(200), default="")
    buyer_name: Mapped[str] = mapped_column(String(200), default="")
    total: Mapped[Decimal | None] = mapped_column(Numeric(18, 2), nullable=True)
    bureau_status: Mapped[str] = mapped_column(String(10), default="")
    outcome: Mapped[str] = mapped_column(String(10))  # stored | updated | unchanged | failed
    failure_reason: Mapped[str] = mapped_column(String(300), default="")
    pool_invoice_id: Mapped[int | None] = mapped_column(ForeignKey("pool_invoices.id"), nullable=True)

    pool_invoice = relationship("PoolInvoice", lazy="joined")

    OUTCOME_LABELS = {"stored": _l("已入池"), "updated": _l("已更新票池"), "unchanged": _l("票池已有"),
                      "failed": _l("处理失败")}

    @property
    def outcome_label(self) -> str:
        return self.OUTCOME_LABELS.get(self.outcome, self.outcome)


class PoolInvoice(db.Model):
    """进项/销项全票池 — one row per invoice, whatever number of downloads brought it."""
    __tablename__ = "pool_invoices"
    __table_args__ = (
        UniqueConstraint("org_id", "direction", "invoice_code", "invoice_no"),
        Index("ix_pool_invoices_org_date", "org_id", "direction", "issue_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    direction: Mapped[str] = mapped_column(String(3))  # in 进项 | out 销项
    invoice_code: Mapped[str] = mapped_column(String(12), default="")
    invoice_no: Mapped[str] = mapped_column(String(20))
    invoice_type: Mapped[str] = mapped_column(String(4), default="")
    issue_date: Mapped[date] = mapped_column(Date)
    seller_tax_id: Mapped[str] = mapped_column(String(20))
    seller_name: Mapped[str] = mapped_column(String(200), default="")
    buyer_tax_id: Mapped[str] = mapped_column(String(20))
    buyer_name: Mapped[str] = mapped_column(String(200), default="")
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    tax_amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    total: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    status: Mapped[str] = mapped_column(String(10), default="正常")
    deduction_status: Mapped[str] = mapped_column(String(10), default="")
    has_lines: Mapped[bool] = mapped_column(Boolean, default=False)
    lines: Mapped[list | None] = mapped_column(JSON, nullable=True)
    file_url: Mapped[str] = mapped_column(String(500), default="")
    first_task_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_task_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=now)


class SchedulePlan(db.Model):
    """调度计划 — a recurring job, edited by admins, dispatched every minute by `flask dispatch`."""
    __tablename__ = "schedule_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    description: Mapped[str] = mapped_column(String(200))
    job: Mapped[str] = mapped_column(String(60))  # key in jobs.plans.PLAN_JOBS
    cron: Mapped[str] = mapped_column(String(60), default="")
    interval_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_result: Mapped[str] = mapped_column(String(500), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=now)


# The plans every installation starts with (inserted by the F18012 migration).
DEFAULT_PLANS = [
    dict(code="sim_SyncTodayInvoiceTask", description="当天进销项下载（每日）", job="sync.today",
         cron="0 23 * * *", interval_seconds=None),
    dict(code="sim_SyncMonthInvoiceTask", description="当前月进销项下载（每月）", job="sync.current_month",
         cron="0 2 1 * *", interval_seconds=None),
    dict(code="sim_SyncTaskWatchdog", description="下载任务巡检：申请、查询、通道作废（每分钟）",
         job="sync.watchdog", cron="", interval_seconds=60),
    dict(code="sim_TrackedJobReaper", description="后台任务中断检测与过期文件清理", job="jobs.reap",
         cron="", interval_seconds=60),
    dict(code="sim_DatabaseMaintenance", description="数据库维护：合并列表计数、更新查询统计信息",
         job="db.maintenance", cron="", interval_seconds=300),
]
