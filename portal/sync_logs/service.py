"""F18012 数据同步日志查询: what people do to download tasks, in one place.

The web views, the schedule plans and (later) the API call these functions; the channel
side runs in jobs (`portal.sync_logs.channel_work`). Every status change goes through
`portal.workflow.transition`, every button's rules are one `*_refusal` function used both
for the confirmation ("how many will change, which are skipped and why") and the action.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import current_app
from portal.i18n import gettext as _
from sqlalchemy import select

from portal import audit, clock, outbox
from portal.auth import permissions
from portal.channels.base import N_, ChannelKind, DownloadType
from portal.extensions import db
from portal.models import Organization, SyncRequestClaim, SyncTask, SyncTaskAttempt
from portal.models.sync import AttemptStatus, SyncStatus, SyncType
from portal.sync_logs import channel_work
from portal.workflow import transition

S, A = SyncStatus, AttemptStatus
RETRYABLE = {S.FAILED.value, S.APPLY_FAILED.value, S.INCOMPLETE.value}
FETCHABLE = {S.INCOMPLETE.value, S.PROCESSING.value}
VOIDABLE = {S.PROCESSING.value}

MSG_TOO_FREQUENT = N_("相同的任务重复请求过于频繁，请3分钟后再重试。")
MSG_SMALL_SCALE = N_("小规模纳税人不支持抵扣类勾选数据下载，无法产生新的任务。"
                     "可根据企业在税局的信息，在星空发票云企业基础资料中修改纳税人类型。")
MSG_RPA_ONLY = N_("手工重试仅适用于RPA通道")
MSG_RETRY_STATUS = N_("仅下载失败、进销项下载申请失败、进销项数据不全的任务可手工重试")
MSG_FETCH_STATUS = N_("仅进销项数据不全、下载处理中的任务可获取异步结果")
MSG_VOID_STATUS = N_("仅下载处理中的任务可作废")
MSG_PROCESSING = channel_work.MSG_PROCESSING
MSG_RACE = N_("任务已被其他操作更新，请刷新后重试")
MSG_NO_SUCH_ORG = N_("核算组织不存在或无权限")


@dataclass
class RowResult:
    task: SyncTask | None
    ok: bool
    message: str
    label: str = ""  # what the row is, when there is no task (e.g. a refused creation)

    @property
    def name(self) -> str:
        return self.task.batch_no if self.task else self.label


def new_batch_no() -> str:
    """下载批次号 in the display time zone (the time people see on the page)."""
    local = clock.now().replace(tzinfo=timezone.utc).astimezone(ZoneInfo(current_app.config["DISPLAY_TZ"]))
    return "DL" + local.strftime("%Y%m%d%H%M%S") + secrets.token_hex(4).upper()


# --- the two rules every request for a download obeys -------------------------------------------
def claim_request(org_id: int, download_type: str, start: date, end: date) -> bool:
    """相同的任务 3 分钟内不可重复请求 — claimed atomically in the caller's transaction.

    One statement inserts the claim, or takes it over when the last one is older than the
    interval; two concurrent requests for the same organisation, type and period cannot
    both succeed (the second waits for the first's row and then finds it recent).
    """
    now = clock.now()
    limit = now - timedelta(seconds=current_app.config["SYNC_RETRY_INTERVAL_SECONDS"])
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(SyncRequestClaim).values(org_id=org_id, download_type=download_type, start_date=start,
                                           end_date=end, requested_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["org_id", "download_type", "start_date", "end_date"],
        set_={"requested_at": now}, where=SyncRequestClaim.requested_at <= limit)
    return db.session.execute(stmt.returning(SyncRequestClaim.org_id)).first() is not None


def _deduction_refused(org: Organization, download_type: str) -> bool:
    return org.is_small_scale and DownloadType(download_type).is_deduction_selection


OPEN_ATTEMPT = {A.PENDING.value, A.SENT.value, A.UNKNOWN.value}


def current_attempt(task: SyncTask, actor: str | None = None, reason: str = "新增",
                    fresh: bool = False) -> SyncTaskAttempt:
    """The application to send for `task` — the one decision about request ids.

    While the last application's outcome is open (not sent yet, in flight, unknown) it is
    recovered with the *same* request id: the channel answers with the task it already has.
    A `fresh` application (手工重试 after a definitive failure) and one after a refusal get a
    new request id, which asks the bureau for a new download; the first one uses the batch
    number itself. Without `fresh`, an accepted application is returned as it is (its
    bureau task id is what the task needs).
    """
    last = db.session.scalar(select(SyncTaskAttempt).where(SyncTaskAttempt.task_id == task.id)
                             .order_by(SyncTaskAttempt.seq.desc()).limit(1))
    if last is not None and (last.status in OPEN_ATTEMPT or (last.status == A.ACCEPTED.value and not fresh)):
        return last
    seq = last.seq + 1 if last else 1
    attempt = SyncTaskAttempt(task_id=task.id, seq=seq, org_id=task.org_id,
                              request_id=task.batch_no if seq == 1 else f"{task.batch_no}-R{seq - 1}",
                              actor=audit.actor_name(actor), reason=reason, created_at=clock.now())
    db.session.add(attempt)
    db.session.flush()
    return attempt


def task_story(task: SyncTask) -> dict:
    """What the detail page tells about a task: applications, outbox effects, history."""
    from portal.models import AuditLog, OutboxMessage
    return dict(
        attempts=list(db.session.scalars(select(SyncTaskAttempt).where(SyncTaskAttempt.task_id == task.id)
                                         .order_by(SyncTaskAttempt.seq))),
        effects=list(db.session.scalars(select(OutboxMessage).where(
            OutboxMessage.key.like(f"sync_task:{task.id}:%")).order_by(OutboxMessage.id))),
        history=list(db.session.scalars(select(AuditLog).where(
            AuditLog.object_type == "sync_task", AuditLog.object_id == task.batch_no).order_by(AuditLog.id))),
        status_label=lambda value: SyncStatus(value).label if value else "",
    )


# --- 新增下载任务 --------------------------------------------------------------------------------
def create_refusal(org: Organization, dtype: DownloadType, check_permission: bool = True,
                   user=None) -> str | None:
    if check_permission and not permissions.can("F18012.create", org.id, user):
        if not permissions.can("F18012.query", org.id, user):
            return _(MSG_NO_SUCH_ORG)  # never confirm, nor name, an organisation the user may not see
        return _("无「新增下载任务」权限")
    if not org.invoice_service:
        return _("该组织未引入发票服务")
    if _deduction_refused(org, dtype.value):
        return _(MSG_SMALL_SCALE)
    return None


def create_tasks(org_ids: list[int], sync_type: SyncType, download_types: list[DownloadType],
                 start: date, end: date, actor: str | None = None,
                 check_permission: bool = True) -> list[RowResult]:
    """One task per organisation and download type; each is applied at the channel by a job."""
    results, created = [], []
    orgs = db.session.scalars(select(Organization).where(Organization.id.in_(org_ids))
                              .order_by(Organization.code)).all()
    # ids that do not exist and organisations the user may not see answer alike, by id
    unseen = set(org_ids) - {o.id for o in orgs} if check_permission else set()
    for org in orgs:
        for dtype in download_types:
            refusal = create_refusal(org, dtype, check_permission)
            if refusal == _(MSG_NO_SUCH_ORG):
                unseen.add(org.id)
                break
            label = f"{org.name} · {dtype.label}"
            if refusal:
                results.append(RowResult(None, False, refusal, label))
                continue
            if not claim_request(org.id, dtype.value, start, end):
                results.append(RowResult(None, False, _(MSG_TOO_FREQUENT), label))
                continue
            now = clock.now()
            task = SyncTask(batch_no=new_batch_no(), org_id=org.id, download_type=dtype.value,
                            sync_type=sync_type.value, start_date=start, end_date=end,
                            channel=org.channel, status=S.PROCESSING.value,
                            created_by=audit.actor_name(actor), created_at=now, updated_at=now,
                            requested_at=now, processing_since=now, next_check_at=now)
            db.session.add(task)
            db.session.flush()
            audit.record("sync_task", task.batch_no, "create", org_id=org.id, to_state=task.status,
                         reason=f"{sync_type.label} {dtype.label} {start}~{end}", actor=actor)
            current_attempt(task, actor, "新增")
            created.append(task)
            results.append(RowResult(task, True, _("已创建，正在向税局申请下载")))
    results += [RowResult(None, False, _(MSG_NO_SUCH_ORG), f"{org_id} · {dtype.label}")
                for org_id in sorted(unseen) for dtype in download_types]
    db.session.commit()
    for task in created:
        channel_work.schedule(task, queue="user")
    return results


# --- 手工重试 -------------------------------------------------------------------------------------
def retry_refusal(task: SyncTask) -> str | None:
    """Why 手工重试 would skip `task` (None: it will be retried)."""
    if task.channel != ChannelKind.RPA.value:
        return _(MSG_RPA_ONLY)
    if task.status not in RETRYABLE:
        return _("仅下载失败、进销项下载申请失败、进销项数据不全的任务可手工重试（当前：%(s)s）", s=task.status_label)
    if _deduction_refused(task.org, task.download_type):
        return _(MSG_SMALL_SCALE)
    return None


def retry(tasks: list[SyncTask], actor: str | None = None) -> list[RowResult]:
    """手工重试: a new application (new request id) for tasks that failed definitively."""
    results, retried = [], []
    for task in tasks:
        refusal = retry_refusal(task)
        if refusal:
            results.append(RowResult(task, False, refusal))
            continue
        if not claim_request(task.org_id, task.download_type, task.start_date, task.end_date):
            db.session.rollback()
            results.append(RowResult(task, False, _(MSG_TOO_FREQUENT)))
            continue
        now = clock.now()
        if not transition(task, S.PROCESSING, allowed_from=RETRYABLE, reason="手工重试", actor=actor,
                          channel_task_id="", error="",
                          reason_code="", requested_at=now, last_retry_at=now, processing_since=now,
                          retry_count=task.retry_count + 1, next_check_at=now, checks=0):
            db.session.rollback()
            results.append(RowResult(task, False, _(MSG_RACE)))
            continue
        attempt = current_attempt(task, actor, "手工重试", fresh=True)
        db.session.commit()
        retried.append(task)
        results.append(RowResult(task, True, _("已重新发起下载请求（请求号 %(id)s）", id=attempt.request_id)))
    for task in retried:
        channel_work.schedule(task, queue="user")
    return results


# --- 获取异步结果 ----------------------------------------------------------------------------------
def fetch_refusal(task: SyncTask) -> str | None:
    if task.status not in FETCHABLE:
        return _("仅进销项数据不全、下载处理中的任务可获取异步结果（当前：%(s)s）", s=task.status_label)
    return None


def fetchable(tasks: list[SyncTask]) -> tuple[list[SyncTask], list[RowResult]]:
    """获取异步结果: which rows may be queried (the query itself runs in a job)."""
    from portal import bulk
    plan = bulk.plan("F18012.fetch_result", fetch_refusal, tasks)
    return plan.will_change, [RowResult(row, False, reason) for row, reason in plan.skipped]


def fetch_result(task_id: int, actor: str) -> channel_work.CheckResult:
    """获取异步结果 for one task (run in the person's tracked job)."""
    task = db.session.get(SyncTask, task_id)
    if task is None:
        return channel_work.CheckResult(False, _("任务不存在"))
    refusal = fetch_refusal(task)
    if refusal:
        return channel_work.CheckResult(False, refusal)
    if task.org.channel_login_expired_at:
        return channel_work.CheckResult(True, MSG_PROCESSING)  # the manual's V2.0 note ②
    if not task.channel_task_id:
        return channel_work.apply(task, actor)
    return channel_work.query(task, actor, manual=True)


# --- 作废任务 -------------------------------------------------------------------------------------
def void_refusal(task: SyncTask) -> str | None:
    if task.status not in VOIDABLE:
        return _("仅下载处理中的任务可作废（当前：%(s)s）", s=task.status_label)
    return None


def void(tasks: list[SyncTask], actor: str | None = None) -> list[RowResult]:
    """作废任务: voided here at once; at the bureau through the outbox (retried until done)."""
    results = []
    for task in tasks:
        refusal = void_refusal(task)
        if refusal:
            results.append(RowResult(task, False, refusal))
        elif transition(task, S.VOIDED, allowed_from=VOIDABLE, reason="作废任务", actor=actor,
                            next_check_at=None):
            if _bureau_may_have_task(task):
                outbox.add("sync.void_download", f"sync_task:{task.id}:void", {"task_id": task.id},
                           subject=task.batch_no, org_id=task.org_id)
            db.session.commit()
            results.append(RowResult(task, True, _("已作废")))
        else:
            db.session.rollback()
            results.append(RowResult(task, False, _(MSG_RACE)))
    outbox.kick()
    return results


def _bureau_may_have_task(task: SyncTask) -> bool:
    if task.channel_task_id:
        return True
    return db.session.scalar(select(SyncTaskAttempt.id).where(
        SyncTaskAttempt.task_id == task.id,
        SyncTaskAttempt.status.in_([A.SENT.value, A.UNKNOWN.value])).limit(1)) is not None


@outbox.handler("sync.void_download")
def void_at_channel(message) -> outbox.Delivery:
    """作废 at the bureau; an unknown application is first resolved with its own request id."""
    from portal.channels import make_client
    from portal.channels.base import Outcome, ReasonCode

    task = db.session.get(SyncTask, message.payload["task_id"])
    if task is None:
        return outbox.Delivery(outbox.DONE, "任务不存在，无需作废")
    client = make_client(task.org.channel_config())
    channel_task_id = task.channel_task_id
    if not channel_task_id:
        attempt = db.session.scalar(select(SyncTaskAttempt).where(SyncTaskAttempt.task_id == task.id)
                                    .order_by(SyncTaskAttempt.seq.desc()).limit(1))
        r = client.apply_download(DownloadType(task.download_type), task.start_date, task.end_date,
                                  request_id=attempt.request_id)
        if r.outcome is Outcome.FAILED:
            return outbox.Delivery(outbox.DONE, "税局未创建该任务，无需作废")
        if not r.ok:
            return outbox.Delivery(outbox.RETRY, r.message)
        channel_task_id = str(r.data["task_id"])
    r = client.void_download(channel_task_id)
    if r.ok:
        return outbox.Delivery(outbox.DONE, "通道已作废")
    if r.reason_code == ReasonCode.NOT_FOUND.value:
        return outbox.Delivery(outbox.DONE, r.message or "通道任务已不存在")
    if r.outcome is Outcome.FAILED:
        return outbox.Delivery(outbox.GIVE_UP, f"通道作废失败：{r.message}")
    if r.reason_code == ReasonCode.LOGIN_EXPIRED.value:
        channel_work.mark_login_expired(task.org_id, r.message, "job:outbox")
    return outbox.Delivery(outbox.RETRY, f"通道作废失败：{r.message}")
