"""`flask seed`'s demo download tasks: every resting 同步状态, made by the product itself."""
from __future__ import annotations

from sqlalchemy import func, select

from portal.demo import seed_download_tasks
from portal.extensions import db
from portal.models import AuditLog, OutboxMessage, SyncTaskAttempt


def test_demo_tasks_show_every_resting_status_through_the_service_and_sandbox(portal_with_sandbox, sandbox):
    counts = seed_download_tasks(sandbox.base, "sqlite://")  # the sandbox already answers there
    # 数据已下载 is the moment between download and pooling: it never rests
    assert set(counts) == {"success", "no_data", "header_only", "incomplete", "failed", "apply_failed",
                           "processing", "voided"}
    # produced through the product: every task was applied at the channel and audited
    assert db.session.scalar(select(func.count()).select_from(SyncTaskAttempt)) == sum(counts.values())
    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "create")) \
        == sum(counts.values())
    assert db.session.scalar(select(OutboxMessage.status)) == "delivered"  # voided at the bureau too
