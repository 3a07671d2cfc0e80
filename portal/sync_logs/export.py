"""导出: the download-task log to xlsx, streamed (write-only) so memory stays flat."""
from __future__ import annotations

from typing import Callable

from openpyxl import Workbook
from sqlalchemy import Select, select

from portal.extensions import db
from portal.fmt import local_time
from portal.models import Organization, SyncTask
from portal.models.sync import SYNC_STATUS_LABELS, SYNC_TYPE_LABELS, SyncStatus, SyncType
from portal.channels.base import DOWNLOAD_TYPE_LABELS, DownloadType, ChannelKind

HEADERS = ["下载批次号", "核算组织编码", "核算组织", "同步状态", "下载类型", "下载开始时间", "下载结束时间",
           "处理成功的份数", "下载发票份数", "同步类型", "错误描述", "通道", "创建时间", "更新时间", "最后重试时间"]

COLUMNS = (SyncTask.batch_no, Organization.code, Organization.name, SyncTask.status,
           SyncTask.download_type, SyncTask.start_date, SyncTask.end_date, SyncTask.success_count,
           SyncTask.invoice_count, SyncTask.sync_type, SyncTask.error, SyncTask.channel,
           SyncTask.created_at, SyncTask.updated_at, SyncTask.last_retry_at)


def rows_query(task_query: Select) -> Select:
    """Plain column rows (no ORM objects) for the tasks `task_query` selects."""
    ids = task_query.with_only_columns(SyncTask.id).order_by(None).scalar_subquery()
    return (select(*COLUMNS).join(Organization, Organization.id == SyncTask.org_id)
            .where(SyncTask.id.in_(ids)).order_by(SyncTask.created_at.desc(), SyncTask.id.desc()))


def _row(r) -> list:
    return [r[0], r[1], r[2], SYNC_STATUS_LABELS[SyncStatus(r[3])], DOWNLOAD_TYPE_LABELS[DownloadType(r[4])],
            r[5], r[6], r[7], r[8], SYNC_TYPE_LABELS[SyncType(r[9])], r[10], ChannelKind(r[11]).label,
            local_time(r[12]), local_time(r[13]), local_time(r[14])]


def write_xlsx(task_query: Select, path: str, progress: Callable[[int], None] | None = None,
               every: int = 2000) -> int:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("数据同步日志")
    ws.append(HEADERS)
    n = 0
    result = db.session.execute(rows_query(task_query).execution_options(yield_per=2000))
    for r in result:
        ws.append(_row(r))
        n += 1
        if progress and n % every == 0:
            progress(n)
    wb.save(path)
    return n
