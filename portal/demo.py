"""Demo download tasks in every 同步状态, produced the way users produce them.

`flask seed` calls `seed_download_tasks` on a fresh installation: it asks the sandbox (over
its admin API) for each outcome, creates the tasks through `service.create_tasks`, and lets
a real RQ worker apply and query them — no row is written by hand. When no sandbox answers
at SANDBOX_URL, one is started on that port for the duration, on the sandbox database
`make run` uses, so the bureau's side of every demo task is there afterwards too.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import date, timedelta
from urllib.parse import urlsplit

import requests
from flask import current_app
from sqlalchemy import select

from portal import clock
from portal.channels.base import DownloadType
from portal.extensions import db
from portal.models import Organization, SyncTask
from portal.models.sync import SyncType

ACTOR = "zhuguan"
# (org code, download type, sandbox outcome, defective invoices, what it shows)
SCENARIOS = [
    ("ORG01", DownloadType.IN_FULL, "success", 0, "成功"),
    ("ORG02", DownloadType.OUT_FULL, "success", 0, "成功"),
    ("ORG02", DownloadType.IN_FULL, "success", 2, "成功，有处理失败"),
    ("ORG04", DownloadType.IN_FULL, "success", 0, "成功（税控）"),
    ("ORG06", DownloadType.IN_FULL, "no_data", 0, "没有数据"),
    ("ORG04", DownloadType.OUT_FULL, "header_only", 0, "已下载表头"),
    ("ORG05", DownloadType.IN_FULL, "incomplete", 0, "进销项数据不全"),
    ("ORG01", DownloadType.OUT_FULL, "failed", 0, "下载失败（可手工重试）"),
    ("ORG03", DownloadType.IN_FULL, "apply_failed", 0, "进销项下载申请失败"),
    ("ORG02", DownloadType.IN_INCR, "processing", 0, "下载处理中"),
    ("ORG01", DownloadType.IN_INCR, "processing", 0, "已作废"),
]


def _period() -> tuple[date, date]:
    """Last month, whole: the sandbox has invoices on every day but Sunday."""
    first_this = clock.now().date().replace(day=1)
    end = first_this - timedelta(days=1)
    return end.replace(day=1), end


def _admin(base: str, path: str, body: dict) -> None:
    r = requests.post(f"{base}/_admin{path}", json=body, timeout=10)
    r.raise_for_status()


def _alive(base: str) -> bool:
    try:
        return requests.get(f"{base}/_admin/health", timeout=2).ok
    except requests.RequestException:
        return False


@contextmanager
def sandbox_at(base: str, database_url: str):
    """The sandbox answering at `base`: the running one, or one started here for a while."""
    if _alive(base):
        yield base
        return
    from werkzeug.serving import make_server

    from portal.sandbox import create_sandbox_app

    parts = urlsplit(base)
    app = create_sandbox_app({"SANDBOX_DATABASE_URL": database_url, "DOWNLOAD_DELAY": 0, "ISSUE_DELAY": 0})
    server = make_server(parts.hostname or "127.0.0.1", parts.port or 80, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="demo-sandbox", daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        thread.join(timeout=5)
        app.extensions["sandbox"].engine.dispose()


def _drain() -> None:
    """Run every queued job with a real RQ worker in this process."""
    from rq import SimpleWorker

    from jobs import queue
    from portal.redis_conn import get_redis

    SimpleWorker([queue("user"), queue("background")], connection=get_redis()).work(burst=True)
    db.session.expire_all()


def seed_download_tasks(sandbox_url: str, sandbox_database_url: str) -> dict[str, int]:
    """Create the demo tasks; returns how many tasks ended in each 同步状态."""
    from portal.sync_logs import service

    cfg = current_app.config
    saved = {k: cfg[k] for k in ("SYNC_POLL_DELAY_SECONDS", "SYNC_POLL_ATTEMPTS")}
    cfg.update(SYNC_POLL_DELAY_SECONDS=0, SYNC_POLL_ATTEMPTS=2)  # look at once, a few times
    start, end = _period()
    orgs = {o.code: o for o in db.session.scalars(select(Organization))}
    try:
        with sandbox_at(sandbox_url, sandbox_database_url) as base:
            for code, dtype, outcome, defective, _shows in SCENARIOS:
                _admin(base, "/downloads", {"taxpayer_id": orgs[code].tax_id, "outcome": outcome,
                                            "defective": defective, "delay": 0, "mode": "next"})
                service.create_tasks([orgs[code].id], SyncType.HISTORY_MONTH, [dtype], start, end, actor=ACTOR,
                                     check_permission=False)
                _drain()
            to_void = db.session.scalars(select(SyncTask).where(
                SyncTask.org_id == orgs["ORG01"].id, SyncTask.download_type == DownloadType.IN_INCR.value)).all()
            service.void(to_void, actor=ACTOR)
            _drain()
    finally:
        cfg.update(saved)
    counts: dict[str, int] = {}
    for status in db.session.scalars(select(SyncTask.status)):
        counts[status] = counts.get(status, 0) + 1
    return counts
