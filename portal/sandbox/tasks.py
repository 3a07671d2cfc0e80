"""Download tasks (F18012): apply, query with every 同步状态 reachable, void."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.channels.base import DownloadStatus, DownloadType, ReasonCode

from .downloads import (direction_of, find_generated, generated_invoices, make_defective,
                        public, select_for_type)
from .issuing import invoice_record, refuse, settle
from .models import DownloadTask, IssuedInvoice, Taxpayer
from .rules import invalid

MESSAGES = {
    DownloadStatus.PROCESSING: "下载处理中",
    DownloadStatus.SUCCESS: "下载成功",
    DownloadStatus.NO_DATA: "当期没有需要同步的发票",
    DownloadStatus.HEADER_ONLY: "已下载发票表头，明细未下载",
    DownloadStatus.INCOMPLETE: "进销项数据不全：部分发票数据缺失",
    DownloadStatus.FAILED: "下载失败：税局数据文件生成失败",
}


def _date(value, label: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise invalid(f"{label}须为YYYY-MM-DD") from None


def apply(s: Session, tp: Taxpayer, channel: str, body: dict, now: datetime, control: dict,
          default_delay: float, default_per_day: int) -> dict:
    try:
        download_type = DownloadType(body.get("download_type"))
    except ValueError:
        raise invalid("下载类型不支持") from None
    start, end = _date(body.get("start"), "下载开始时间"), _date(body.get("end"), "下载结束时间")
    if start > end or (end - start).days > 366:
        raise invalid("下载开始时间须不晚于结束时间，且跨度不超过一年")
    if channel == "taxctrl" and download_type is DownloadType.IN_EINV_FILE:
        raise refuse(ReasonCode.NOT_SUPPORTED, "税控通道不支持数电发票文件下载")
    if download_type.is_deduction_selection and tp.taxpayer_type == "small":
        raise refuse(ReasonCode.TAXPAYER_TYPE)
    request_id = str(body.get("request_id") or "")
    if request_id:
        existing = s.scalars(select(DownloadTask).where(
            DownloadTask.taxpayer_id == tp.taxpayer_id, DownloadTask.channel == channel,
            DownloadTask.request_id == request_id)).first()
        if existing:
            return {"task_id": existing.task_id}
    outcome = control.get("outcome") or ""
    if outcome == "apply_failed":
        raise refuse(ReasonCode.DOWNLOAD_APPLY_FAILED)
    delay = control.get("delay")
    task = DownloadTask(
        task_id=uuid.uuid4().hex, taxpayer_id=tp.taxpayer_id, channel=channel,
        request_id=request_id, download_type=download_type.value, start=start.isoformat(),
        end=end.isoformat(),
        ready_at=now + timedelta(seconds=float(default_delay if delay is None else delay)),
        forced_outcome=outcome, defective=int(control.get("defective") or 0),
        per_day=int(control.get("per_day") or default_per_day), voided=False, created_at=now)
    s.add(task)
    return {"task_id": task.task_id}


def _task(s: Session, tp: Taxpayer, task_id: str) -> DownloadTask:
    task = s.get(DownloadTask, task_id)
    if task is None or task.taxpayer_id != tp.taxpayer_id:
        raise refuse(ReasonCode.NOT_FOUND, "下载任务不存在")
    return task


def is_processing(task: DownloadTask, now: datetime) -> bool:
    return task.forced_outcome == "processing" or now < task.ready_at


def task_invoices(s: Session, tp: Taxpayer, task: DownloadTask, now: datetime, root: str) -> list[dict]:
    """Generated invoices for the period plus those the sandbox really issued."""
    download_type = DownloadType(task.download_type)
    direction = direction_of(download_type)
    start, end = date.fromisoformat(task.start), date.fromisoformat(task.end)
    invoices = generated_invoices(tp.taxpayer_id, tp.name, direction, start, end, task.per_day)
    party = IssuedInvoice.buyer_tax_id if direction == "in" else IssuedInvoice.seller_tax_id
    for row in s.scalars(select(IssuedInvoice).where(party == tp.taxpayer_id).order_by(IssuedInvoice.id)):
        if settle(row, now).status != "issued" or not start <= row.ready_at.date() <= end:
            continue
        record = invoice_record(row, root)
        record["direction"] = direction
        record["_changed"] = record["status"] if record["status"] != "正常" else None
        record["_unselected"] = row.invoice_type == "01"
        record["status"] = "正常"
        invoices.append(record)
    selected = select_for_type(download_type, invoices)
    for inv in selected:
        inv.pop("is_red", None)
        inv.pop("blue_invoice_no", None)
        if download_type is DownloadType.IN_EINV_FILE:
            inv.setdefault("file_url", f"{root}files/generated/{tp.taxpayer_id}/{direction}/"
                                       f"{inv['issue_date']}/{inv['invoice_no']}.pdf?per_day={task.per_day}")
        else:
            inv.pop("file_url", None)
    return selected


def query(s: Session, tp: Taxpayer, task_id: str, with_lines: bool, now: datetime, root: str) -> dict:
    task = _task(s, tp, task_id)
    if task.voided:
        raise refuse(ReasonCode.NOT_FOUND, "下载任务已作废")
    if is_processing(task, now):
        status = DownloadStatus.PROCESSING
        return {"task_id": task_id, "status": status.value, "message": MESSAGES[status], "invoices": []}
    forced = task.forced_outcome
    if forced == "failed":
        invoices, status = [], DownloadStatus.FAILED
    elif forced == "no_data":
        invoices, status = [], DownloadStatus.NO_DATA
    else:
        invoices = task_invoices(s, tp, task, now, root)
        if not invoices:
            status = DownloadStatus.NO_DATA
        elif forced == "header_only":
            status, with_lines = DownloadStatus.HEADER_ONLY, False
        elif forced == "incomplete":
            status, invoices = DownloadStatus.INCOMPLETE, invoices[: len(invoices) // 2]
        else:
            status = DownloadStatus.SUCCESS
    make_defective(invoices, task.defective)
    return {"task_id": task_id, "status": status.value, "message": MESSAGES[status],
            "download_type": task.download_type, "start": task.start, "end": task.end,
            "invoices": [public(inv, with_lines) for inv in invoices]}


def void(s: Session, tp: Taxpayer, task_id: str, now: datetime) -> dict:
    """作废: only a task still processing can be voided."""
    task = _task(s, tp, task_id)
    if not task.voided:
        if not is_processing(task, now):
            raise invalid("仅处理中的下载任务可以作废")
        task.voided = True
    return {"task_id": task_id, "status": "voided"}


def generated_file_invoice(tp: Taxpayer, direction: str, day: str, invoice_no: str,
                           per_day: int) -> dict | None:
    try:
        d = date.fromisoformat(day)
    except ValueError:
        return None
    return find_generated(tp.taxpayer_id, tp.name, direction, d, invoice_no, per_day)
