"""A row in 下载处理中 refreshes itself in the browser until it settles (htmx polling)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from portal.sync_logs import channel_work, service
from portal.channels.base import DownloadType
from portal.models.sync import SyncType
from tests.sync_helpers import PERIOD, org, run_worker, tasks


@pytest.fixture
def fast_rows(monkeypatch):
    """Rows poll every second (the live server reads this when it starts)."""
    monkeypatch.setenv("TABLE_ROW_REFRESH_SECONDS", "1")


def test_a_row_in_progress_turns_to_success_without_a_reload(fast_rows, portal_with_sandbox, sandbox, page, login):
    sandbox.downloads(org("ORG01").tax_id, outcome="processing", mode="all")
    service.create_tasks([org("ORG01").id], SyncType.CURRENT_MONTH, [DownloadType.IN_FULL], *PERIOD,
                         actor="kaipiao1", check_permission=False)
    run_worker()
    task = tasks()[0]
    assert task.status == "processing"
    login(page, "kaipiao1")
    page.goto("/sync-logs/")
    row = page.locator(f"#sync-table-row-{task.id}")
    expect(row).to_contain_text("下载处理中")
    row.locator("input[name=ids]").check()
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    sandbox.release(org("ORG01").tax_id)
    assert channel_work.sweep() == 1
    run_worker()
    expect(row).to_contain_text("成功", timeout=10_000)
    expect(row.locator("input[name=ids]")).to_be_checked()  # the tick survived the refresh
    assert row.get_attribute("hx-get") is None and navigations == []  # settled, and no reload
