"""导出: the download-task log to xlsx, streamed (write-only) so memory stays flat.

Times are real Excel date/time cells in the display time zone (Beijing), so clerks can
sort and filter them in Excel; every column has a width, since a write-only sheet cannot
be measured afterwards.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import IO, Callable
from zoneinfo import ZoneInfo

from flask import current_app
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter
from urllib.parse import parse_qsl

from sqlalchemy import Select, func, select
from werkzeug.datastructures import MultiDict

from portal import clock
from portal.excel.cells import append_row
from portal.extensions import db
from portal.models import Organization, SyncTask
from portal.models.sync import SYNC_STATUS_LABELS, SYNC_TYPE_LABELS, SyncStatus, SyncType
from portal.channels.base import DOWNLOAD_TYPE_LABELS, DownloadType, ChannelKind

def query(user, filters: str, ids: list[int] | None) -> Select:
    """What an export of `user` covers: the ticked ids, or every row matching `filters`."""
    from portal.sync_logs import scope
    from portal.sync_logs.tables import SYNC_TABLE

    base = scope.tasks(user, "F18012.export")
    if ids:
        return base.where(SyncTask.id.in_(ids))
    return SYNC_TABLE.filtered(base, MultiDict(parse_qsl(filters)))


def count(stmt: Select) -> int:
    return db.session.scalar(select(func.count()).select_from(
        stmt.with_only_columns(SyncTask.id).order_by(None).subquery()))


DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DATE_FORMAT = "yyyy-mm-dd"

# (header, width in Excel character units; a Chinese character counts about 2)
LAYOUT = [("下载批次号", 26), ("核算组织编码", 14), ("核算组织", 30), ("同步状态", 16), ("下载类型", 14),
          ("下载开始时间", 14), ("下载结束时间", 14), ("处理成功的份数", 16), ("下载发票份数", 14),
          ("同步类型", 16), ("错误描述", 40), ("通道", 8), ("创建时间", 20), ("更新时间", 20),
          ("最后重试时间", 20)]
HEADERS = [header for header, _ in LAYOUT]
DATE_COLUMNS = (5, 6)            # 下载开始/结束时间
DATETIME_COLUMNS = (12, 13, 14)  # 创建/更新/最后重试时间

COLUMNS = (SyncTask.batch_no, Organization.code, Organization.name, SyncTask.status,
           SyncTask.download_type, SyncTask.start_date, SyncTask.end_date, SyncTask.success_count,
           SyncTask.invoice_count, SyncTask.sync_type, SyncTask.error, SyncTask.channel,
           SyncTask.created_at, SyncTask.updated_at, SyncTask.last_retry_at)


def _display_tz() -> ZoneInfo:
    return ZoneInfo(current_app.config["DISPLAY_TZ"])


def export_filename(at: datetime | None = None) -> str:
    """`数据同步日志_YYYYMMDD_HHMMSS.xlsx`, stamped in the display time zone (Beijing).

    `at` is UTC (naive, as stored); default now. Used by the direct download and the job.
    """
    local = (at or clock.now()).replace(tzinfo=timezone.utc).astimezone(_display_tz())
    return f"数据同步日志_{local:%Y%m%d_%H%M%S}.xlsx"


def _local(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    """UTC (naive) → naive wall time in `tz`: Excel cells cannot carry a time zone."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc).astimezone(tz).replace(tzinfo=None)


def rows_query(task_query: Select) -> Select:
    """Plain column rows (no ORM objects) for the tasks `task_query` selects."""
    ids = task_query.with_only_columns(SyncTask.id).order_by(None).scalar_subquery()
    return (select(*COLUMNS).join(Organization, Organization.id == SyncTask.org_id)
            .where(SyncTask.id.in_(ids)).order_by(SyncTask.created_at.desc(), SyncTask.id.desc()))


def _row(r, tz: ZoneInfo | None = None) -> list:
    tz = tz or _display_tz()
    # labels are lazy strings: a cell needs the text (the worker has no locale: Chinese)
    return [r[0], r[1], r[2], str(SYNC_STATUS_LABELS[SyncStatus(r[3])]), str(DOWNLOAD_TYPE_LABELS[DownloadType(r[4])]),
            r[5], r[6], r[7], r[8], str(SYNC_TYPE_LABELS[SyncType(r[9])]), r[10], str(ChannelKind(r[11]).label),
            _local(r[12], tz), _local(r[13], tz), _local(r[14], tz)]


def _formatted(ws, values: list) -> list:
    """Give the date and time cells an explicit number format."""
    for columns, number_format in ((DATE_COLUMNS, DATE_FORMAT), (DATETIME_COLUMNS, DATETIME_FORMAT)):
        for i in columns:
            if values[i] is not None:
                cell = WriteOnlyCell(ws, value=values[i])
                cell.number_format = number_format
                values[i] = cell
    return values


def write_xlsx(task_query: Select, path: str | IO[bytes], progress: Callable[[int], None] | None = None,
               every: int = 2000) -> int:
    """Write the tasks `task_query` selects to `path` (a file name or a binary stream)."""
    if isinstance(path, (str, os.PathLike)) and os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    tz = _display_tz()
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("数据同步日志")
    for i, (_, width) in enumerate(LAYOUT, start=1):  # before the first row, or it is lost
        ws.column_dimensions[get_column_letter(i)].width = width
    append_row(ws, HEADERS)
    n = 0
    result = db.session.execute(rows_query(task_query).execution_options(yield_per=2000))
    for r in result:
        append_row(ws, _formatted(ws, _row(r, tz)))
        n += 1
        if progress and n % every == 0:
            progress(n)
    wb.save(path)
    return n
