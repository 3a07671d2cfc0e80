"""What the F18012 schedule plans do."""
from __future__ import annotations

from sqlalchemy import select

from portal import clock
from portal.channels.base import DownloadType
from portal.extensions import db
from portal.models import Organization
from portal.models.sync import SyncType
from portal.sync_logs import service


def scheduled_download(sync_type: SyncType) -> str:
    """进项-全量 and 销项-全量 for every active organisation with invoice service."""
    today = clock.now().date()
    start = today if sync_type is SyncType.TODAY else today.replace(day=1)
    org_ids = list(db.session.scalars(select(Organization.id).where(
        Organization.invoice_service.is_(True), Organization.active.is_(True))))
    results = service.create_tasks(org_ids, sync_type, [DownloadType.IN_FULL, DownloadType.OUT_FULL],
                                   start, today, actor=f"job:plan.{sync_type.value}",
                                   check_permission=False)
    created = sum(r.ok for r in results)
    return f"{sync_type.label}：创建 {created} 个任务，跳过 {len(results) - created} 个"
