"""手工导入: read a bureau export file (xlsx) into a download task and the invoice pool.

The whole file is checked first; any error (row, column, reason) rejects it and the
database stays as it was.
"""
from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from flask_babel import gettext
from openpyxl import Workbook
from python_calamine import CalamineWorkbook

from portal import audit, clock
from portal.channels.base import DownloadType
from portal.extensions import db
from portal.models import Organization, SyncTask
from portal.models.sync import SyncStatus, SyncType
from portal.sync_logs import service
from portal.sync_logs.pool import store_invoices
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
MAX_ROWS = 50000


def template() -> io.BytesIO:
    wb = Workbook()
    ws = wb.active
    ws.title = "发票"
    ws.append(list(COLUMNS))
    buffer = io.BytesIO()
    wb.save(buffer)
    buffer.seek(0)
    return buffer


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_bureau_file(upload) -> tuple[list[dict], list[str]]:
    """(invoices, errors); errors name the row and column of every problem."""
    data = upload.read()
    try:
        sheet = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0).to_python()
    except Exception:  # calamine raises several types for non-Excel input
        return [], [gettext("文件无法读取：请上传税局导出的 .xlsx 文件（文件损坏或不是 Excel 格式）")]
    if not sheet:
        return [], [gettext("文件为空")]
    header = [_text(c) for c in sheet[0]]
    missing = [name for name, (_, required) in COLUMNS.items() if required and name not in header]
    if missing:
        return [], [gettext("模板不正确：缺少列 %(columns)s（请下载导入模板）", columns="、".join(missing))]
    index = {COLUMNS[name][0]: header.index(name) for name in COLUMNS if name in header}
    rows = [r for r in sheet[1:] if any(_text(c) for c in r)]
    if not rows:
        return [], [gettext("文件中没有发票数据")]
    if len(rows) > MAX_ROWS:
        return [], [gettext("单次最多导入 %(max)s 行，当前 %(n)s 行", max=MAX_ROWS, n=len(rows))]
    invoices, errors = [], []
    label = {key: name for name, (key, _) in COLUMNS.items()}
    for n, raw in enumerate(rows, start=2):
        inv = {key: raw[i] if i < len(raw) else None for key, i in index.items()}
        for key, value in list(inv.items()):
            if key == "issue_date":
                if isinstance(value, (datetime, date)):
                    inv[key] = (value.date() if isinstance(value, datetime) else value).isoformat()
                else:
                    try:
                        inv[key] = date.fromisoformat(_text(value)[:10]).isoformat()
                    except ValueError:
                        errors.append(gettext("第 %(n)s 行「%(column)s」：“%(value)s”不是有效日期（格式 YYYY-MM-DD）",
                                               n=n, column="开票日期", value=_text(value)))
            elif key in ("amount", "tax_amount", "total"):
                try:
                    inv[key] = str(Decimal(_text(value)).quantize(Decimal("0.01")))
                except InvalidOperation:
                    errors.append(gettext("第 %(n)s 行「%(column)s」：“%(value)s”不是有效金额", n=n, column=label[key],
                                           value=_text(value)))
            else:
                inv[key] = _text(value)
        for key, i in index.items():
            if COLUMNS[label[key]][1] and inv.get(key) in ("", None):
                errors.append(gettext("第 %(n)s 行「%(column)s」：不能为空", n=n, column=label[key]))
        inv["status"] = inv.get("status") or "正常"
        invoices.append(inv)
        if len(errors) > 200:
            errors.append(gettext("错误过多，仅显示前 200 条"))
            break
    return invoices, errors


def import_task(org: Organization, dtype: DownloadType, invoices: list[dict]) -> SyncTask:
    """Create the 手工导入 task and pool its invoices in one transaction."""
    now = clock.now()
    dates = [date.fromisoformat(i["issue_date"]) for i in invoices]
    direction = "out" if dtype is DownloadType.OUT_FULL else "in"
    for inv in invoices:
        inv["direction"] = direction
    task = SyncTask(batch_no=service.new_batch_no(), org_id=org.id, download_type=dtype.value,
                    sync_type=SyncType.MANUAL_IMPORT.value, start_date=min(dates), end_date=max(dates),
                    channel=org.channel, status=SyncStatus.DOWNLOADED.value,
                    created_by=audit.actor_name(), created_at=now, updated_at=now, requested_at=now)
    db.session.add(task)
    db.session.flush()
    audit.record("sync_task", task.batch_no, "import", org_id=org.id, to_state=task.status,
                 reason=f"手工导入 {len(invoices)} 行")
    stored, failed = store_invoices(task, invoices)
    error = f"{failed} 份发票处理失败（详见批次明细）" if failed else ""
    transition(task, SyncStatus.SUCCESS, reason=f"已入池 {stored} 份" + (f"，处理失败 {failed} 份" if failed else ""),
               invoice_count=stored + failed, success_count=stored, error=error)
    db.session.commit()
    return task
