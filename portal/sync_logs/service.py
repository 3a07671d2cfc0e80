"""F18012 数据同步日志查询: every state change of a download task, in one place.

The web views, the RQ jobs and the schedule plans all call these functions. Each
transition is a compare-and-set on ``SyncTask.version`` plus an audit row, committed
together, so a double click or two workers never act twice.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from flask import current_app
from sqlalchemy import select, update, exists
from sqlalchemy.exc import IntegrityError

from portal import audit, clock
from portal.auth import permissions
from portal.channels import make_client
from portal.channels.base import DownloadType, DownloadStatus, ReasonCode, ChannelKind, Outcome
from portal.extensions import db
from portal.models import Organization, PoolInvoice, SyncTask, SyncTaskInvoice
from portal.models.sync import SyncStatus, SyncType, FROM_CHANNEL

S = SyncStatus
RETRYABLE = {S.FAILED.value, S.APPLY_FAILED.value, S.INCOMPLETE.value}
FETCHABLE = {S.INCOMPLETE.value, S.PROCESSING.value}
VOIDABLE = {S.PROCESSING.value}

MSG_TOO_FREQUENT = "相同的任务重复请求过于频繁，请3分钟后再重试。"
MSG_SMALL_SCALE = ("小规模纳税人不支持抵扣类勾选数据下载，无法产生新的任务。"
                   "可根据企业在税局的信息，在星空发票云企业基础资料中修改纳税人类型。")
MSG_RPA_ONLY = "手工重试仅适用于RPA通道"
MSG_RETRY_STATUS = "仅下载失败、进销项下载申请失败、进销项数据不全的任务可手工重试"
MSG_FETCH_STATUS = "仅进销项数据不全、下载处理中的任务可获取异步结果"
MSG_VOID_STATUS = "仅下载处理中的任务可作废"
MSG_PROCESSING = "任务处理中"


@dataclass
class RowResult:
    task: SyncTask | None
    ok: bool
    message: str
    label: str = ""  # what the row is, when there is no task (e.g. a refused creation)

    @property
    def name(self) -> str:
        return self.task.batch_no if self.task else self.label


# --- transitions ----------------------------------------------------------------------
def _transition(task: SyncTask, to: SyncStatus, reason: str = "", actor: str | None = None,
                **fields) -> bool:
    """Compare-and-set the task's status; False when someone else changed it first."""
    values = dict(status=to.value, version=SyncTask.version + 1, updated_at=clock.now(), **fields)
    if to is S.PROCESSING:
        values.setdefault("processing_since", clock.now())
    changed = db.session.execute(
        update(SyncTask).where(SyncTask.id == task.id, SyncTask.version == task.version)
        .values(**values).execution_options(synchronize_session=False)).rowcount
    if not changed:
        return False
    audit.record("sync_task", task.batch_no, "status", org_id=task.org_id, from_state=task.status,
                 to_state=to.value, reason=reason, actor=actor)
    db.session.flush()
    db.session.refresh(task)
    return True


def _touch(task: SyncTask, **fields) -> bool:
    """Change fields without a status change (still compare-and-set)."""
    changed = db.session.execute(
        update(SyncTask).where(SyncTask.id == task.id, SyncTask.version == task.version)
        .values(version=SyncTask.version + 1, updated_at=clock.now(), **fields)
        .execution_options(synchronize_session=False)).rowcount
    if changed:
        db.session.refresh(task)
    return bool(changed)


def new_batch_no() -> str:
    return "DL" + clock.now().strftime("%Y%m%d%H%M%S") + secrets.token_hex(4).upper()


def _recently_requested(org_id: int, download_type: str, start: date, end: date) -> bool:
    """The 3-minute rule: same organisation, download type and period requested lately."""
    since = clock.now() - timedelta(seconds=current_app.config["SYNC_RETRY_INTERVAL_SECONDS"])
    return bool(db.session.scalar(select(exists().where(
        SyncTask.org_id == org_id, SyncTask.download_type == download_type,
        SyncTask.start_date == start, SyncTask.end_date == end, SyncTask.requested_at > since))))


def _deduction_refused(org: Organization, download_type: str) -> bool:
    return org.is_small_scale and DownloadType(download_type).is_deduction_selection


# --- creating tasks ----------------------------------------------------------------------
def create_tasks(org_ids: list[int], sync_type: SyncType, download_types: list[DownloadType],
                 start: date, end: date, actor: str | None = None,
                 check_permission: bool = True) -> list[RowResult]:
    """One task per organisation and download type; each is applied at the channel by a job."""
    from jobs import sync as sync_jobs, enqueue

    results, created = [], []
    for org in db.session.scalars(select(Organization).where(Organization.id.in_(org_ids))
                                  .order_by(Organization.code)):
        for dtype in download_types:
            label = f"{org.name} · {dtype.label}"
            if check_permission and not permissions.can("F18012.create", org.id):
                results.append(RowResult(None, False, f"无「新增下载任务」权限（核算组织：{org.name}）", label))
            elif not org.invoice_service:
                results.append(RowResult(None, False, "该组织未引入发票服务", label))
            elif _deduction_refused(org, dtype.value):
                results.append(RowResult(None, False, MSG_SMALL_SCALE, label))
            elif _recently_requested(org.id, dtype.value, start, end):
                results.append(RowResult(None, False, MSG_TOO_FREQUENT, label))
            else:
                now = clock.now()
                task = SyncTask(batch_no=new_batch_no(), org_id=org.id, download_type=dtype.value,
                                sync_type=sync_type.value, start_date=start, end_date=end,
                                channel=org.channel, status=S.PROCESSING.value,
                                created_by=audit.actor_name(actor), created_at=now, updated_at=now,
                                requested_at=now, processing_since=now)
                db.session.add(task)
                db.session.flush()
                audit.record("sync_task", task.batch_no, "create", org_id=org.id,
                             to_state=task.status, reason=f"{sync_type.label} {dtype.label} {start}~{end}",
                             actor=actor)
                created.append(task)
                results.append(RowResult(task, True, "已创建，正在向税局申请下载"))
    db.session.commit()
    for task in created:
        enqueue(sync_jobs.apply_task, task.id)
    return results


# --- talking to the channel (run in jobs) ------------------------------------------------------
def apply(task_id: int, actor: str = "job:sync.apply") -> None:
    """Apply for the download at the channel; 进销项下载申请失败 when the bureau says no."""
    from jobs import sync as sync_jobs, enqueue_after

    task = db.session.get(SyncTask, task_id)
    if task is None or task.status != S.PROCESSING.value or task.channel_task_id:
        return  # voided meanwhile, or already applied: applying twice is never needed
    client = make_client(task.org.channel_config())
    r = client.apply_download(DownloadType(task.download_type), task.start_date, task.end_date,
                              request_id=task.batch_no)
    if r.ok:
        _touch(task, channel_task_id=str(r.data["task_id"]), error="")
        db.session.commit()
        enqueue_after(current_app.config["SYNC_POLL_DELAY_SECONDS"], sync_jobs.poll_task, task.id)
        return
    message = r.message or "申请下载失败"
    if r.outcome is Outcome.UNKNOWN:
        message = f"申请结果未知（{message}），请手工重试"
    _transition(task, S.APPLY_FAILED, message, actor, error=message[:500])
    db.session.commit()


def poll(task_id: int, actor: str = "job:sync.poll", relogin: bool = False) -> str:
    """Query the channel for the task's result and store what came back.

    `relogin`: after 电子税局登录失效 log in again and query once more — the manual's
    V2.0 note ②: a manual query after a new login answers 任务处理中.
    """
    task = db.session.get(SyncTask, task_id)
    if task is None:
        return "任务不存在"
    if task.status not in FETCHABLE:
        return f"当前状态为{task.status_label}，无需查询"
    if not task.channel_task_id:
        return MSG_PROCESSING  # the apply job has not answered yet
    client = make_client(task.org.channel_config())
    r = client.query_download(task.channel_task_id, with_lines=True)
    if r.reason_code == ReasonCode.LOGIN_EXPIRED.value and relogin:
        if client.login().ok:
            r = client.query_download(task.channel_task_id, with_lines=True)
    if not r.ok:
        message = r.message or "查询失败"
        if r.outcome is Outcome.FAILED:
            _transition(task, S.FAILED, message, actor, error=message[:500])
        else:
            _touch(task, error=message[:500])
        db.session.commit()
        return message
    status = FROM_CHANNEL[DownloadStatus(r.data["status"])]
    if status is S.PROCESSING:
        if task.status != S.PROCESSING.value:
            _transition(task, S.PROCESSING, MSG_PROCESSING, actor, error="")
        elif task.error:
            _touch(task, error="")
        db.session.commit()
        return MSG_PROCESSING
    return _complete(task, status, r.data.get("invoices") or [], r.data.get("message") or "", actor)


def _complete(task: SyncTask, status: SyncStatus, invoices: list[dict], bureau_message: str,
              actor: str) -> str:
    """Store the batch's invoices into the pool and move the task on, in one transaction."""
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
    fields = dict(invoice_count=total, success_count=stored)
    if status is S.FAILED or status is S.NO_DATA:
        error = bureau_message if status is S.FAILED else ""
        _transition(task, status, bureau_message or status.label, actor, error=error[:500], **fields)
        db.session.commit()
        return status.label + (f"：{bureau_message}" if bureau_message else "")
    error = f"{failed} 份发票处理失败（详见批次明细）" if failed else ""
    if status is S.INCOMPLETE and not error:
        error = bureau_message or "进项或销项数据不全"
    if not _transition(task, status, bureau_message, actor, error=error, **fields):
        db.session.rollback()
        return "任务已被其他操作更新"
    if status is S.DOWNLOADED and not failed:
        _transition(task, S.SUCCESS, f"已入池 {stored} 份", actor)
    db.session.commit()
    return f"{task.status_label}：下载 {total} 份，入池 {stored} 份" + (f"，处理失败 {failed} 份" if failed else "")


# --- the invoice pool ---------------------------------------------------------------------
REQUIRED = {"invoice_no": "发票号码", "issue_date": "开票日期", "seller_tax_id": "销方税号",
            "buyer_tax_id": "购方税号", "amount": "金额", "tax_amount": "税额", "total": "价税合计"}


def _money(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def check_invoice(inv: dict) -> str:
    """'' when the invoice may enter the pool, else why not (counted as 处理失败)."""
    missing = [label for key, label in REQUIRED.items() if inv.get(key) in (None, "")]
    if missing:
        return "数据缺失：" + "、".join(missing)
    try:
        amount, tax, total = _money(inv["amount"]), _money(inv["tax_amount"]), _money(inv["total"])
        date.fromisoformat(str(inv["issue_date"])[:10])
    except (InvalidOperation, ValueError):
        return "金额或日期格式错误"
    if abs(amount + tax - total) > Decimal("0.01"):
        return f"查验失败：价税合计 {total} 与金额 {amount} + 税额 {tax} 不符"
    for key in ("seller_tax_id", "buyer_tax_id"):
        value = str(inv[key])
        if not (15 <= len(value) <= 20 and value.isalnum()):
            return f"查验失败：{REQUIRED[key]}“{value}”格式错误"
    return ""


def store_invoices(task: SyncTask, invoices: list[dict]) -> tuple[int, int]:
    """Upsert the batch's invoices into the pool, de-duplicated by invoice number."""
    stored = failed = 0
    existing_rows = {(r.direction, r.invoice_code, r.invoice_no): r for r in db.session.scalars(
        select(SyncTaskInvoice).where(SyncTaskInvoice.task_id == task.id))}
    for inv in invoices:
        direction = inv.get("direction") or ("out" if task.download_type == DownloadType.OUT_FULL.value else "in")
        key = (direction, inv.get("invoice_code") or "", str(inv.get("invoice_no") or ""))
        row = existing_rows.get(key) or SyncTaskInvoice(task_id=task.id, direction=key[0],
                                                       invoice_code=key[1], invoice_no=key[2])
        existing_rows[key] = row
        row.seller_name, row.buyer_name = inv.get("seller_name") or "", inv.get("buyer_name") or ""
        row.bureau_status = inv.get("status") or ""
        try:
            row.issue_date = date.fromisoformat(str(inv.get("issue_date"))[:10])
        except ValueError:
            row.issue_date = None
        try:
            row.total = _money(inv.get("total"))
        except (InvalidOperation, ValueError, TypeError):
            row.total = None
        reason = check_invoice(inv)
        if reason:
            row.outcome, row.failure_reason, row.pool_invoice_id = "failed", reason, None
            failed += 1
        else:
            pooled, outcome = _upsert_pool(task, direction, inv)
            row.outcome, row.failure_reason, row.pool_invoice_id = outcome, "", pooled.id
            stored += 1
        db.session.add(row)
    db.session.flush()
    return stored, failed


def _upsert_pool(task: SyncTask, direction: str, inv: dict) -> tuple[PoolInvoice, str]:
    code, number = inv.get("invoice_code") or "", str(inv["invoice_no"])
    pooled = db.session.scalar(select(PoolInvoice).where(
        PoolInvoice.org_id == task.org_id, PoolInvoice.direction == direction,
        PoolInvoice.invoice_code == code, PoolInvoice.invoice_no == number))
    lines = inv.get("lines")
    if pooled is None:
        pooled = PoolInvoice(
            org_id=task.org_id, direction=direction, invoice_code=code, invoice_no=number,
            invoice_type=inv.get("invoice_type") or "", issue_date=date.fromisoformat(str(inv["issue_date"])[:10]),
            seller_tax_id=inv["seller_tax_id"], seller_name=inv.get("seller_name") or "",
            buyer_tax_id=inv["buyer_tax_id"], buyer_name=inv.get("buyer_name") or "",
            amount=_money(inv["amount"]), tax_amount=_money(inv["tax_amount"]), total=_money(inv["total"]),
            status=inv.get("status") or "正常", deduction_status=inv.get("deduction_status") or "",
            has_lines=bool(lines), lines=lines or None, file_url=inv.get("file_url") or "",
            first_task_id=task.id, last_task_id=task.id)
        db.session.add(pooled)
        db.session.flush()
        return pooled, "stored"
    outcome = "unchanged"
    new_status = inv.get("status") or pooled.status
    if new_status != pooled.status:
        audit.record("pool_invoice", f"{code}{number}", "status", org_id=task.org_id,
                     from_state=pooled.status, to_state=new_status, reason=f"下载批次 {task.batch_no}",
                     actor="job:sync")
        pooled.status, outcome = new_status, "updated"
    if lines and not pooled.has_lines:
        pooled.lines, pooled.has_lines, outcome = lines, True, "updated"
    if inv.get("file_url") and not pooled.file_url:
        pooled.file_url, outcome = inv["file_url"], "updated"
    if inv.get("deduction_status") and inv["deduction_status"] != pooled.deduction_status:
        pooled.deduction_status, outcome = inv["deduction_status"], "updated"
    pooled.last_task_id = task.id
    pooled.updated_at = clock.now()
    return pooled, outcome


# --- buttons -------------------------------------------------------------------------------
def _refusals(permission: str, tasks: list[SyncTask]) -> tuple[list[SyncTask], list[RowResult]]:
    allowed, refused = permissions.partition(permission, tasks)
    return allowed, [RowResult(r.row, False, r.reason) for r in refused]


def retry(tasks: list[SyncTask], actor: str | None = None) -> list[RowResult]:
    """手工重试: RPA only, failure-type statuses, the 3-minute rule, 小规模纳税人 refusal."""
    from jobs import sync as sync_jobs, enqueue

    allowed, results = _refusals("F18012.retry", tasks)
    to_apply = []
    for task in allowed:
        if task.channel != ChannelKind.RPA.value:
            results.append(RowResult(task, False, MSG_RPA_ONLY))
        elif task.status not in RETRYABLE:
            results.append(RowResult(task, False, f"{MSG_RETRY_STATUS}（当前：{task.status_label}）"))
        elif _deduction_refused(task.org, task.download_type):
            results.append(RowResult(task, False, MSG_SMALL_SCALE))
        elif _recently_requested(task.org_id, task.download_type, task.start_date, task.end_date):
            results.append(RowResult(task, False, MSG_TOO_FREQUENT))
        else:
            now = clock.now()
            if _transition(task, S.PROCESSING, "手工重试", actor, channel_task_id="", error="",
                           requested_at=now, last_retry_at=now, processing_since=now,
                           retry_count=task.retry_count + 1):
                db.session.commit()
                to_apply.append(task)
                results.append(RowResult(task, True, "已重新发起下载请求"))
            else:
                results.append(RowResult(task, False, "任务已被其他操作更新，请刷新后重试"))
    db.session.commit()
    for task in to_apply:
        enqueue(sync_jobs.apply_task, task.id)
    return results


def fetchable(tasks: list[SyncTask]) -> tuple[list[SyncTask], list[RowResult]]:
    """获取异步结果: which rows may be queried (the query itself runs in a job)."""
    allowed, results = _refusals("F18012.fetch_result", tasks)
    ok = []
    for task in allowed:
        if task.status in FETCHABLE:
            ok.append(task)
        else:
            results.append(RowResult(task, False, f"{MSG_FETCH_STATUS}（当前：{task.status_label}）"))
    return ok, results


def void(tasks: list[SyncTask], actor: str | None = None) -> list[RowResult]:
    """作废任务: tasks in progress only; voided here at once and at the channel by a job."""
    from jobs import sync as sync_jobs, enqueue

    allowed, results = _refusals("F18012.void", tasks)
    voided = []
    for task in allowed:
        if task.status not in VOIDABLE:
            results.append(RowResult(task, False, f"{MSG_VOID_STATUS}（当前：{task.status_label}）"))
        elif _transition(task, S.VOIDED, "作废任务", actor):
            voided.append(task)
            results.append(RowResult(task, True, "已作废"))
        else:
            results.append(RowResult(task, False, "任务已被其他操作更新，请刷新后重试"))
    db.session.commit()
    for task in voided:
        if task.channel_task_id:
            enqueue(sync_jobs.void_at_channel, task.id)
    return results


def void_at_channel(task_id: int) -> str:
    task = db.session.get(SyncTask, task_id)
    if task is None or not task.channel_task_id:
        return "无需通道作废"
    r = make_client(task.org.channel_config()).void_download(task.channel_task_id)
    message = "通道已作废" if r.ok else f"通道作废失败：{r.message}"
    audit.record("sync_task", task.batch_no, "void_at_channel", org_id=task.org_id,
                 reason=message, actor="job:sync.void")
    if not r.ok:
        _touch(task, error=message[:500])
    db.session.commit()
    return message


def watchdog(actor: str = "job:sync.watchdog") -> int:
    """Query tasks stuck in 下载处理中 longer than SYNC_WATCHDOG_MINUTES; returns how many."""
    limit = clock.now() - timedelta(minutes=current_app.config["SYNC_WATCHDOG_MINUTES"])
    ids = db.session.scalars(select(SyncTask.id).where(
        SyncTask.status == S.PROCESSING.value, SyncTask.updated_at < limit).limit(500)).all()
    for task_id in ids:
        task = db.session.get(SyncTask, task_id)
        if not task.channel_task_id:
            apply(task_id, actor)
        else:
            poll(task_id, actor)
    return len(ids)
