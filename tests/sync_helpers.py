"""Helpers for the F18012 tests: a real RQ worker, the sandbox admin API, task rows."""
from __future__ import annotations

from datetime import date

import requests
from sqlalchemy import select

from portal import clock
from portal.extensions import db
from portal.models import Organization, SyncTask
from portal.redis_conn import get_redis
from portal.sync_logs import service

PERIOD = (date(2026, 11, 2), date(2026, 11, 7))  # Monday–Saturday: the sandbox has invoices


def run_worker(allow_failed: bool = False):
    """Run every queued job with a real RQ worker (in this process) until both queues are
    empty — user queue first, as the production worker does."""
    from rq import SimpleWorker
    from jobs import queues

    qs = queues()
    SimpleWorker(qs, connection=get_redis()).work(burst=True)
    if not allow_failed:
        for q in qs:
            failed = q.failed_job_registry
            assert failed.count == 0, [q.fetch_job(j).exc_info for j in failed.get_job_ids()]
    db.session.expire_all()


def org(code: str) -> Organization:
    return db.session.scalar(select(Organization).where(Organization.code == code))


def make_task(org_code: str, status: str, download_type: str = "in_full", **fields) -> SyncTask:
    o = org(org_code)
    now = clock.now()
    task = SyncTask(batch_no=fields.pop("batch_no", None) or service.new_batch_no(), org_id=o.id, status=status, download_type=download_type,
                    sync_type=fields.pop("sync_type", "current_month"), start_date=PERIOD[0], end_date=PERIOD[1],
                    channel=o.channel, created_at=now, updated_at=now, requested_at=fields.pop("requested_at", now),
                    processing_since=now if status == "processing" else None, **fields)
    db.session.add(task)
    db.session.commit()
    return task


def reload(task: SyncTask) -> SyncTask:
    db.session.expire_all()
    return db.session.get(SyncTask, task.id)


class Sandbox:
    """The sandbox's admin API (fault switches and download controls)."""

    def __init__(self, base: str):
        self.base = base

    def _post(self, path, body):
        r = requests.post(f"{self.base}/_admin{path}", json=body, timeout=5)
        assert r.status_code < 300, r.text
        return r.json()

    def reset(self):
        return self._post("/reset", {"data": True})

    def downloads(self, taxpayer_id: str, **body):
        return self._post("/downloads", {"taxpayer_id": taxpayer_id, **body})

    def release(self, taxpayer_id: str):
        """Clear download controls and let tasks stuck in 'processing' finish (successfully)."""
        r = requests.delete(f"{self.base}/_admin/downloads", params={"taxpayer_id": taxpayer_id}, timeout=5)
        assert r.status_code < 300, r.text

    def fault(self, taxpayer_id: str, kind: str, **spec):
        return self._post("/faults", {"taxpayer_id": taxpayer_id, "kind": kind, **spec})

    def taxpayer(self, taxpayer_id: str, **body):
        return self._post("/taxpayers", {"taxpayer_id": taxpayer_id, **body})


def create_via_form(auth, org_code="ORG01", types=("in_full",), sync_type="current_month", period=PERIOD):
    """新增下载任务 as a user does it: the form, posted with its CSRF token."""
    return auth.post("/sync-logs/new", {"org": [str(org(org_code).id)], "download_type": list(types),
                                        "sync_type": sync_type, "start": period[0].isoformat(),
                                        "end": period[1].isoformat()}, page="/sync-logs/new",
                     follow_redirects=True)


def tasks(**where) -> list[SyncTask]:
    return db.session.scalars(select(SyncTask).filter_by(**where).order_by(SyncTask.id)).all()


def later(monkeypatch, seconds: float):
    """Move the portal's clock forward (from now)."""
    from datetime import timedelta
    base = clock.now()
    monkeypatch.setattr(clock, "now", lambda: base + timedelta(seconds=seconds))
