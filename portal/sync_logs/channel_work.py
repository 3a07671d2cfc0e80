"""F18012 talking to the channel: apply, query, complete, log in, sweep — all run in jobs.

Record before you call: an application is first committed as 申请中 with its request id;
only then is the channel called. A crash, a timeout or a second worker finds that row
and resolves it by sending the *same* request id again, which the channel answers with
the task it already has (a query, never a second download). A definitive refusal ends
the attempt; only a person's 手工重试 starts a new one with a new request id
(`service.current_attempt`).

Work is driven from the database: every task in 下载处理中 carries ``next_check_at``;
`sweep` (every minute) enqueues each due task once under a deterministic job id, so a
commit whose enqueue was lost, a Redis restart or a killed worker heals within a minute.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from portal import audit, clock
from portal.channels import make_client
from portal.channels.base import DownloadStatus, DownloadType, Outcome, ReasonCode
from portal.extensions import db
from portal.models import Organization, SyncTask
from portal.models.sync import FROM_CHANNEL, AttemptStatus, SyncStatus
from portal.sync_logs.pool import store_invoices
from portal.workflow import touch, transition

log = logging.getLogger("portal.sync")
S, A = SyncStatus, AttemptStatus

MSG_PROCESSING = "任务处理中"
MSG_LOGIN_EXPIRED = "电子税局登录失效，登录后处理中的任务将自动继续"


@dataclass
class CheckResult:
    """What one look at a task found; `ok` is False when the channel could not answer."""
    ok: bool
    message: str


def _config(key: str):
    return current_app.config[key]


def backoff(n: int) -> float:
    """Seconds before the n-th next look (n ≥ 0): doubling, capped at the watchdog interval."""
    first = float(_config("SYNC_POLL_DELAY_SECONDS"))
    return min(first * (2 ** max(n, 0)), _config("SYNC_WATCHDOG_MINUTES") * 60.0)


def _soon(n: int) -> bool:
    """The first SYNC_POLL_ATTEMPTS looks are scheduled at once; later ones by the sweeper."""
    return n < _config("SYNC_POLL_ATTEMPTS")


def job_id(task: SyncTask) -> str:
    """One id per task *state*: the same state is never queued twice."""
    return f"sync-check-{task.id}-{task.version}"


def schedule(task: SyncTask, delay: float = 0, queue: str = "background") -> bool:
    """Enqueue a look at `task` (idempotent); a Redis outage is healed by `sweep`."""
    from jobs import enqueue_once, sync as sync_jobs
    try:
        return enqueue_once(sync_jobs.check_task, task.id, job_id=job_id(task), queue=queue,
                            delay_seconds=delay)
    except Exception as exc:  # noqa: BLE001 — Redis down: the sweeper will find the row
        log.warning("could not enqueue task %s (%s); the sweeper will", task.id, exc)
        return False


def _later(seconds: float):
    return clock.now() + timedelta(seconds=seconds)


# --- the organisation's channel session --------------------------------------------------------
def mark_login_expired(org_id: int, message: str, actor: str) -> None:
    """Remember 电子税局登录失效 on the organisation (once), so nobody hammers the bureau."""
    now = clock.now()
    changed = db.session.execute(update(Organization).where(
        Organization.id == org_id, Organization.channel_login_expired_at.is_(None))
        .values(channel_login_expired_at=now)).rowcount
    if changed:
        org = db.session.get(Organization, org_id)
        audit.record("organization", org.code, "login_expired", org_id=org_id, reason=message, actor=actor)


def login(org_id: int, actor: str) -> CheckResult:
    """Log in again at the channel; on success the organisation's waiting tasks resume."""
    org = db.session.get(Organization, org_id)
    r = make_client(org.channel_config()).login()
    if not r.ok:
        audit.record("organization", org.code, "login_failed", org_id=org_id, reason=r.message, actor=actor)
        db.session.commit()
        return CheckResult(False, r.message or "登录失败")
    db.session.execute(update(Organization).where(Organization.id == org_id)
                       .values(channel_login_expired_at=None))
    db.session.execute(update(SyncTask).where(SyncTask.org_id == org_id, SyncTask.status == S.PROCESSING.value)
                       .values(next_check_at=clock.now()))
    audit.record("organization", org.code, "login", org_id=org_id, reason="电子税局已重新登录", actor=actor)
    db.session.commit()
    sweep()
    return CheckResult(True, "电子税局已重新登录，处理中的任务将自动继续")


# --- one look at a task -----------------------------------------------------------------------
def check(task_id: int, actor: str = "job:sync.check") -> CheckResult:
    """Apply (when the bureau has no task yet) or query; schedules the next look itself."""
    task = db.session.get(SyncTask, task_id)
    if task is None or task.status != S.PROCESSING.value:
        return CheckResult(True, "")
    if task.org.channel_login_expired_at:
        touch(task, next_check_at=_later(_config("SYNC_WATCHDOG_MINUTES") * 60))
        db.session.commit()
        return CheckResult(True, MSG_PROCESSING)
    if not task.channel_task_id:
        return apply(task, actor)
    return query(task, actor)


def apply(task: SyncTask, actor: str) -> CheckResult:
    from portal.sync_logs.service import current_attempt

    attempt = current_attempt(task, actor)
    if attempt.status == A.ACCEPTED.value:  # accepted, but the task row missed it
        touch(task, channel_task_id=attempt.channel_task_id, next_check_at=clock.now())
        db.session.commit()
        return query(task, actor)
    if attempt.status == A.SENT.value:
        in_flight = clock.now() - (attempt.sent_at or attempt.created_at)
        limit = task.org.channel_connect_timeout + task.org.channel_read_timeout + 30
        if in_flight.total_seconds() < limit:
            return CheckResult(True, MSG_PROCESSING)  # another worker is calling right now
        transition(attempt, A.UNKNOWN, reason="发送后无应答（进程中断）", actor=actor)
    # Record before you call: committed as 申请中 with its request id, then the call.
    if not transition(attempt, A.SENT, reason="申请下载", actor=actor, sent_at=clock.now(),
                      sends=attempt.sends + 1):
        db.session.rollback()
        return CheckResult(True, MSG_PROCESSING)
    db.session.commit()
    r = make_client(task.org.channel_config()).apply_download(
        DownloadType(task.download_type), task.start_date, task.end_date, request_id=attempt.request_id)
    now = clock.now()
    if r.ok:
        channel_task_id = str(r.data["task_id"])
        transition(attempt, A.ACCEPTED, reason="税局已受理", actor=actor, channel_task_id=channel_task_id,
                   finished_at=now, message="")
        touch(task, channel_task_id=channel_task_id, error="", reason_code="", checks=0,
              next_check_at=_later(backoff(0)))
        db.session.commit()
        if _soon(0):
            schedule(task, backoff(0))
        return CheckResult(True, "税局已受理下载申请")
    message = r.message or "申请下载失败"
    if r.outcome is Outcome.FAILED:
        transition(attempt, A.REFUSED, reason=message, actor=actor, message=message[:500], finished_at=now)
        transition(task, S.APPLY_FAILED, reason=message, actor=actor, error=message[:500], reason_code=r.reason_code or "",
                   next_check_at=None)
        db.session.commit()
        return CheckResult(True, f"{S.APPLY_FAILED.label}：{message}")
    if r.reason_code == ReasonCode.LOGIN_EXPIRED.value:
        mark_login_expired(task.org_id, message, actor)
    # Nothing happened (retryable) or maybe something did (unknown): either way the same
    # request id goes again later, which the channel answers with its existing task.
    to = A.PENDING if r.outcome is Outcome.RETRYABLE else A.UNKNOWN
    transition(attempt, to, reason=message, actor=actor, message=message[:500])
    delay = backoff(attempt.sends)
    shown = message if to is A.PENDING else f"申请结果未知（{message}），将以同一请求号自动查询"
    touch(task, error=shown[:500], reason_code=r.reason_code or "", next_check_at=_later(delay))
    db.session.commit()
    if r.reason_code != ReasonCode.LOGIN_EXPIRED.value and _soon(attempt.sends):
        schedule(task, delay)
    return CheckResult(False, shown)


def query(task: SyncTask, actor: str, manual: bool = False) -> CheckResult:
    """Ask the channel for the task's result and store what came back."""
    r = make_client(task.org.channel_config()).query_download(task.channel_task_id, with_lines=True)
    if r.reason_code == ReasonCode.LOGIN_EXPIRED.value:
        mark_login_expired(task.org_id, r.message, actor)
        touch(task, error=MSG_LOGIN_EXPIRED, reason_code=r.reason_code,
              next_check_at=_later(_config("SYNC_WATCHDOG_MINUTES") * 60))
        db.session.commit()
        return CheckResult(True, MSG_PROCESSING)  # the manual's V2.0 note ②
    if not r.ok:
        message = r.message or "查询失败"
        if r.outcome is Outcome.FAILED:
            transition(task, S.FAILED, reason=message, actor=actor, error=message[:500], reason_code=r.reason_code or "",
                       next_check_at=None)
            db.session.commit()
            return CheckResult(True, f"{S.FAILED.label}：{message}")
        delay = backoff(task.checks)
        touch(task, error=message[:500], reason_code=r.reason_code or "", checks=task.checks + 1,
              next_check_at=_later(delay))
        db.session.commit()
        if not manual and _soon(task.checks):
            schedule(task, delay)
        return CheckResult(False, message)
    status = FROM_CHANNEL[DownloadStatus(r.data["status"])]
    if status is S.PROCESSING:
        delay = backoff(task.checks + 1)
        if task.status != S.PROCESSING.value:  # 进销项数据不全 queried again: back in progress
            transition(task, S.PROCESSING, reason=MSG_PROCESSING, actor=actor, error="", reason_code="",
                       processing_since=clock.now(), next_check_at=_later(delay), checks=1)
        else:
            touch(task, error="", reason_code="", checks=task.checks + 1, next_check_at=_later(delay))
        db.session.commit()
        if not manual and _soon(task.checks):
            schedule(task, delay)
        return CheckResult(True, MSG_PROCESSING)
    return complete(task, status, r.data.get("invoices") or [], r.data.get("message") or "", actor)


def complete(task: SyncTask, status: SyncStatus, invoices: list[dict], bureau_message: str,
             actor: str) -> CheckResult:
    """Pool the batch's invoices and move the task on, in one transaction.

    数据已下载 means downloaded but not yet pooled: once pooling is done the task is 成功,
    with invoices that failed checks counted as 处理失败 (处理成功的份数 < 下载发票份数).
    """
    for attempt in range(2):  # a concurrent download may insert the same pool invoice first
        try:
            stored, failed = store_invoices(task, invoices)
            break
        except IntegrityError:
            db.session.rollback()
            task = db.session.get(SyncTask, task.id)
            if attempt:
                raise
    total = stored + failed
    fields = dict(invoice_count=total, success_count=stored, next_check_at=None)
    if status in (S.FAILED, S.NO_DATA):
        error = bureau_message if status is S.FAILED else ""
        won = transition(task, status, reason=bureau_message or str(status.label), actor=actor, error=error[:500],
                         reason_code=ReasonCode.DOWNLOAD_FAILED.value if status is S.FAILED else "", **fields)
        db.session.commit() if won else db.session.rollback()
        return CheckResult(True, str(status.label) + (f"：{bureau_message}" if bureau_message else ""))
    error = f"{failed} 份发票处理失败（详见批次明细）" if failed else ""
    if status is S.INCOMPLETE and not error:
        error = bureau_message or "进项或销项数据不全"
    if not transition(task, status, reason=bureau_message, actor=actor, error=error, reason_code="", **fields):
        db.session.rollback()
        return CheckResult(True, "任务已被其他操作更新")
    if status is S.DOWNLOADED:
        transition(task, S.SUCCESS, actor=actor,
                   reason=f"已入池 {stored} 份" + (f"，处理失败 {failed} 份" if failed else ""))
    db.session.commit()
    return CheckResult(True, f"{task.status_label}：下载 {total} 份，入池 {stored} 份"
                       + (f"，处理失败 {failed} 份" if failed else ""))


# --- the sweeper --------------------------------------------------------------------------------
def sweep(limit: int | None = None) -> int:
    """Enqueue every task whose look is due, oldest first; returns how many were enqueued.

    Tasks of organisations whose bureau login has expired wait for the login instead.
    """
    limit = limit or _config("SYNC_SWEEP_LIMIT")
    tasks = db.session.scalars(
        select(SyncTask).join(Organization, Organization.id == SyncTask.org_id)
        .where(SyncTask.status == S.PROCESSING.value, SyncTask.next_check_at <= clock.now(),
               Organization.channel_login_expired_at.is_(None))
        .order_by(SyncTask.next_check_at, SyncTask.id).limit(limit)).all()
    return sum(schedule(task) for task in tasks)
