"""进项/销项全票池: a downloaded batch's invoices into the pool, de-duplicated by number."""
from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from sqlalchemy import select

from portal import audit, clock
from portal.channels.base import DownloadType
from portal.extensions import db
from portal.models import PoolInvoice, SyncTask, SyncTaskInvoice


REQUIRED = {"invoice_no": "发票号码", "issue_date": "开票日期", "seller_tax_id": "销方税号",
            "buyer_tax_id": "购方税号", "amount": "金额", "tax_amount": "税额", "total": "价税合计"}


def money(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def check_invoice(inv: dict) -> str:
    """'' when the invoice may enter the pool, else why not (counted as 处理失败)."""
    missing = [label for key, label in REQUIRED.items() if inv.get(key) in (None, "")]
    if missing:
        return "数据缺失：" + "、".join(missing)
    try:
        amount, tax, total = money(inv["amount"]), money(inv["tax_amount"]), money(inv["total"])
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
            row.total = money(inv.get("total"))
        except (InvalidOperation, ValueError, TypeError):
            row.total = None
        reason = check_invoice(inv)
        if reason:
            row.outcome, row.failure_reason, row.pool_invoice_id = "failed", reason, None
            failed += 1
        else:
            pooled, outcome = upsert_pool(task, direction, inv)
            row.outcome, row.failure_reason, row.pool_invoice_id = outcome, "", pooled.id
            stored += 1
        db.session.add(row)
    db.session.flush()
    return stored, failed


def upsert_pool(task: SyncTask, direction: str, inv: dict) -> tuple[PoolInvoice, str]:
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
            amount=money(inv["amount"]), tax_amount=money(inv["tax_amount"]), total=money(inv["total"]),
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
