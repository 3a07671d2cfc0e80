"""手工导入: read a bureau export file (xlsx) into a download task and the invoice pool.

The whole file is checked first; any error (row, column, reason) rejects it and the
database stays as it was. The request only checks the upload cheaply (size, the zip
checks of portal.excel.safe_read) and stores it; the import job parses it in a capped
process, validates every row, and only then pools the invoices, IMPORT_BATCH_SIZE per
transaction, so other writers never wait long behind it.
"""
from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Callable

from flask import current_app
from portal.i18n import gettext as _
from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from sqlalchemy import String, and_, column, insert, select, values

from portal import audit, clock
from portal.channels.base import DownloadType
from portal.excel import safe_read, uploads  # noqa: F401  (uploads: registers its model)
from portal.extensions import db
from portal.models import Organization, PoolInvoice, SyncTask, SyncTaskInvoice
from portal.models.sync import SyncStatus, SyncType
from portal.sync_logs import pool, service
from portal.workflow import transition

IMPORTABLE_TYPES = [DownloadType.IN_FULL, DownloadType.OUT_FULL]
# header → (key, required)
COLUMNS = {
    "发票代码": ("invoice_code", False),
    "发票号码": ("invoice_no", True),
    "开票日期": ("issue_date", True),
    "销方识别号": ("seller_tax_id", True),
    "销方名称": ("seller_name", True),
    "购方识别号": ("buyer_tax_id", True),
    "购方名称": ("buyer_name", True),
    "金额": ("amount", True),
    "税额": ("tax_amount", True),
    "价税合计": ("total", True),
    "发票状态": ("status", False),
    "发票票种": ("invoice_type", False),
}
# Identifiers up to 20 digits: Excel keeps 15 significant digits of a number, so in a
# numeric cell a longer one has already been changed (…0001 and …0002 both become …0000).
IDENTIFIER_COLUMNS = ("发票代码", "发票号码", "销方识别号", "购方识别号")
EXCEL_DIGITS = 15


def template() -> io.BytesIO:
    """The import template; identifier columns are formatted as text, whole column."""
    wb = Workbook()
    ws = wb.active
    ws.title = "发票"
    ws.append(list(COLUMNS))
    for i, name in enumerate(COLUMNS, start=1):
        if name in IDENTIFIER_COLUMNS:
            letter = get_column_letter(i)
            ws.column_dimensions[letter].number_format = "@"
            ws.column_dimensions[letter].width = 24
            for row in range(2, template_rows() + 2):
                ws.cell(row=row, column=i).number_format = "@"
    buffer = io.BytesIO()
    wb.save(buffer)
    buffer.seek(0)
    return buffer


def template_rows() -> int:
    """Rows pre-formatted as text in the template (besides the column style, which not
    every spreadsheet program applies to new cells)."""
    return 1000


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def check_upload(data: bytes) -> str:
    """The request's cheap check (zip structure, declared and scanned extent): '' or why not."""
    try:
        safe_read.check(data)
    except safe_read.ExcelRefused as exc:
        return exc.message
    return ""


def _identifier(value, n: int, name: str) -> tuple[str, str]:
    """(text, error) for an identifier cell; a number may already have lost digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _text(value), ""
    if isinstance(value, float) and not value.is_integer():
        return "", _("第 %(n)s 行「%(col)s」：数字单元格“%(v)s”不是有效号码；请将该列设为文本格式后重新输入",
                      n=n, col=name, v=value)
    digits = str(int(value))
    if len(digits) > EXCEL_DIGITS:
        return "", _("第 %(n)s 行「%(col)s」：数字单元格中的 %(d)s 位号码（%(v)s）超过 Excel 数字的 15 位精度，"
                     "可能已被改动；请将该列设为文本格式后重新输入", n=n, col=name, d=len(digits), v=digits)
    return digits, ""


def read_bureau_file(data: bytes) -> tuple[list[dict], list[str]]:
    """(invoices, errors); errors name the row and column of every problem."""
    try:
        sheet = safe_read.read_rows(data)
    except safe_read.ExcelRefused as exc:
        return [], [exc.message]
    if not sheet:
        return [], [_("文件为空")]
    header = [_text(c) for c in sheet[0]]
    missing = [name for name, (_key, required) in COLUMNS.items() if required and name not in header]
    if missing:
        return [], [_("模板不正确：缺少列 %(cols)s（请下载导入模板）", cols="、".join(missing))]
    index = {COLUMNS[name][0]: header.index(name) for name in COLUMNS if name in header}
    rows = [(n, r) for n, r in enumerate(sheet[1:], start=2) if any(_text(c) for c in r)]
    if not rows:
        return [], [_("文件中没有发票数据")]
    invoices, errors = [], []
    label = {key: name for name, (key, _required) in COLUMNS.items()}
    seen: dict[tuple[str, str], int] = {}
    for n, raw in rows:
        inv = {key: raw[i] if i < len(raw) else None for key, i in index.items()}
        refused = set()  # cells with an error already (a refused number is not also 'empty')
        for key, value in list(inv.items()):
            if key == "issue_date":
                if isinstance(value, (datetime, date)):
                    inv[key] = (value.date() if isinstance(value, datetime) else value).isoformat()
                else:
                    try:
                        inv[key] = date.fromisoformat(_text(value)[:10]).isoformat()
                    except ValueError:
                        errors.append(_("第 %(n)s 行「开票日期」：“%(v)s”不是有效日期（格式 YYYY-MM-DD）",
                                        n=n, v=_text(value)))
            elif key in ("amount", "tax_amount", "total"):
                try:
                    amount = Decimal(_text(value))
                    if not amount.is_finite():  # NaN / Infinity parse, but are no amount
                        raise InvalidOperation
                    inv[key] = str(amount.quantize(Decimal("0.01")))
                except InvalidOperation:  # also 1e999: quantize overflows the context
                    errors.append(_("第 %(n)s 行「%(col)s」：“%(v)s”不是有效金额", n=n, col=label[key], v=_text(value)))
            elif label[key] in IDENTIFIER_COLUMNS:
                inv[key], error = _identifier(value, n, label[key])
                if error:
                    errors.append(error)
                    refused.add(key)
            else:
                inv[key] = _text(value)
        for key, i in index.items():
            if COLUMNS[label[key]][1] and inv.get(key) in ("", None) and key not in refused:
                errors.append(_("第 %(n)s 行「%(col)s」：不能为空", n=n, col=label[key]))
        number = (inv.get("invoice_code") or "", inv.get("invoice_no") or "")
        if number[1]:
            if number in seen:
                shown = _("发票代码 %(code)s，发票号码 %(no)s", code=number[0], no=number[1]) if number[0] \
                    else _("发票号码 %(no)s", no=number[1])
                errors.append(_("第 %(first)s 行与第 %(n)s 行是同一张发票（%(number)s）",
                                first=seen[number], n=n, number=shown))
            else:
                seen[number] = n
        inv["status"] = inv.get("status") or "正常"
        invoices.append(inv)
        if len(errors) > 200:
            errors.append(_("错误过多，仅显示前 200 条"))
            break
    return invoices, errors


def find_task(batch_no: str) -> SyncTask | None:
    return db.session.scalar(select(SyncTask).where(SyncTask.batch_no == batch_no))


def import_task(org: Organization, dtype: DownloadType, invoices: list[dict], batch_no: str | None = None,
                actor: str | None = None, progress: Callable[[int], None] | None = None) -> SyncTask:
    """Create the 手工导入 task, then pool its invoices IMPORT_BATCH_SIZE per transaction.

    The invoices were all validated before: pooling cannot reject the file any more. Safe
    to run again for the same batch_no (a job run twice): a finished task is returned as
    it is; a task left in 数据已下载 by a crash is pooled again (the pool de-duplicates).
    """
    task = find_task(batch_no) if batch_no else None
    if task is not None and task.status == SyncStatus.SUCCESS.value:
        return task
    direction = "out" if dtype is DownloadType.OUT_FULL else "in"
    for inv in invoices:
        inv["direction"] = direction
    resumed = task is not None
    if task is None:
        now = clock.now()
        dates = [date.fromisoformat(i["issue_date"]) for i in invoices]
        task = SyncTask(batch_no=batch_no or service.new_batch_no(), org_id=org.id, download_type=dtype.value,
                        sync_type=SyncType.MANUAL_IMPORT.value, start_date=min(dates), end_date=max(dates),
                        channel=org.channel, status=SyncStatus.DOWNLOADED.value,
                        created_by=audit.actor_name(actor), created_at=now, updated_at=now, requested_at=now)
        db.session.add(task)
        db.session.flush()
        audit.record("sync_task", task.batch_no, "import", org_id=org.id, to_state=task.status,
                     reason=f"手工导入 {len(invoices)} 行", actor=actor)
        db.session.commit()
    size = current_app.config["IMPORT_BATCH_SIZE"]
    stored = failed = 0
    for start in range(0, len(invoices), size):
        ok, bad = _pool_batch(task, invoices[start:start + size], resumed)
        db.session.commit()  # short transactions: other writers never wait behind a whole file
        stored, failed = stored + ok, failed + bad
        if progress:
            progress(min(start + size, len(invoices)))
    error = f"{failed} 份发票处理失败（详见批次明细）" if failed else ""
    transition(task, SyncStatus.SUCCESS, reason=f"已入池 {stored} 份" + (f"，处理失败 {failed} 份" if failed else ""),
               invoice_count=stored + failed, success_count=stored, error=error, actor=actor)
    db.session.commit()
    return task


def _pooled_ids(org_id: int, direction: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Pool ids by (code, number) for a batch's keys.

    On PostgreSQL a join with a VALUES list, not IN lists: without fresh statistics (a pool
    table just filled) an IN list of 1,000 numbers was planned as a sequential scan that
    compares every row with every number (0.6 s per batch, 61 s for 50,000 rows); the join
    is hashed or probes the unique index. SQLite cannot name VALUES columns, and probes the
    unique index for IN lists anyway.
    """
    stmt = select(PoolInvoice.id, PoolInvoice.invoice_code, PoolInvoice.invoice_no).where(
        PoolInvoice.org_id == org_id, PoolInvoice.direction == direction)
    if db.session.get_bind().dialect.name == "postgresql":
        wanted = values(column("code", String), column("no", String), name="wanted").data(keys)
        stmt = stmt.join(wanted, and_(PoolInvoice.invoice_code == wanted.c.code,
                                      PoolInvoice.invoice_no == wanted.c.no))
    else:
        stmt = stmt.where(PoolInvoice.invoice_code.in_({k[0] for k in keys}),
                          PoolInvoice.invoice_no.in_({k[1] for k in keys}))
    wanted_keys = set(keys)
    return {(code, no): id_ for id_, code, no in db.session.execute(stmt) if (code, no) in wanted_keys}


def _pool_batch(task: SyncTask, invoices: list[dict], resumed: bool = False) -> tuple[int, int]:
    """pool.store_invoices for one batch of a file, with a few statements per batch instead
    of several per invoice (store_invoices reloads every row of the task and flushes per
    invoice: 50,000 rows took over 100 s). The checks and the update rules for an invoice
    already pooled (status change audited) are the pool's own; new pool invoices and the
    batch's rows are inserted with one executemany each. `resumed`: the task was started
    by an earlier run of the job, so some of its rows may exist already."""
    direction = invoices[0]["direction"]
    keys = [(inv.get("invoice_code") or "", str(inv["invoice_no"])) for inv in invoices]
    pooled = _pooled_ids(task.org_id, direction, keys)
    again = {} if not resumed else {(r.invoice_code, r.invoice_no): r for r in db.session.scalars(
        select(SyncTaskInvoice).where(SyncTaskInvoice.task_id == task.id,
                                      SyncTaskInvoice.invoice_no.in_({no for _code, no in keys})))}
    now = clock.now()
    stored = failed = 0
    rows, fresh = [], []
    for inv in invoices:
        key = (inv.get("invoice_code") or "", str(inv["invoice_no"]))
        row = dict(task_id=task.id, direction=direction, invoice_code=key[0], invoice_no=key[1],
                   seller_name=inv.get("seller_name") or "", buyer_name=inv.get("buyer_name") or "",
                   bureau_status=inv.get("status") or "", issue_date=date.fromisoformat(inv["issue_date"]),
                   total=pool.money(inv["total"]), outcome="stored", failure_reason="", pool_invoice_id=None)
        reason = pool.check_invoice(inv)
        if reason:
            row.update(outcome="failed", failure_reason=reason)
            failed += 1
        elif key in pooled:
            existing, outcome = pool.upsert_pool(task, direction, inv)
            row.update(outcome=outcome, pool_invoice_id=existing.id)
            stored += 1
        else:
            fresh.append((row, dict(
                org_id=task.org_id, direction=direction, invoice_code=key[0], invoice_no=key[1],
                invoice_type=inv.get("invoice_type") or "", issue_date=row["issue_date"],
                seller_tax_id=inv["seller_tax_id"], seller_name=row["seller_name"],
                buyer_tax_id=inv["buyer_tax_id"], buyer_name=row["buyer_name"], amount=pool.money(inv["amount"]),
                tax_amount=pool.money(inv["tax_amount"]), total=row["total"], status=inv.get("status") or "正常",
                deduction_status="", has_lines=False, file_url="", first_task_id=task.id, last_task_id=task.id,
                created_at=now, updated_at=now)))
            stored += 1
        rows.append(row)
    if fresh:  # a plain executemany (pipelined on PostgreSQL), then the new ids by the unique key
        db.session.execute(insert(PoolInvoice), [new for _row, new in fresh])
        ids = _pooled_ids(task.org_id, direction, [(r["invoice_code"], r["invoice_no"]) for r, _new in fresh])
        for row, _new in fresh:
            row["pool_invoice_id"] = ids[(row["invoice_code"], row["invoice_no"])]
    for row in rows:
        if (row["invoice_code"], row["invoice_no"]) in again:
            existing = again[(row["invoice_code"], row["invoice_no"])]
            for field, value in row.items():
                setattr(existing, field, value)
    new_rows = [r for r in rows if (r["invoice_code"], r["invoice_no"]) not in again]
    if new_rows:
        db.session.execute(insert(SyncTaskInvoice), new_rows)
    db.session.flush()
    return stored, failed
