"""F18012 数据同步日志查询 in a real browser: filter, open a batch, retry, void, export.

The live server runs the real portal against the tax-bureau sandbox (over HTTP); the
test thread runs the queued RQ jobs with a real worker between steps (``run_worker``),
so what the browser shows next comes from rows the jobs committed. The same flow runs
with JavaScript on (htmx swaps the table and pushes the URL) and off (plain forms).
"""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect
from sqlalchemy import select

from portal import clock
from portal.extensions import db
from portal.models import Organization, SyncTask, SyncTaskInvoice
from tests.sync_helpers import PERIOD, make_task, org, run_worker

LIST = re.compile(r"/sync-logs/(\?.*)?$")


@pytest.fixture(autouse=True)
def _orgs_on_the_sandbox(portal_with_sandbox, sandbox):
    """Seed the demo orgs pointing at the sandbox *before* ``live_server`` pulls in ``demo``
    (seed_demo does nothing once users exist, so the other order would leave them on the
    default SANDBOX_URL and every job would fail to connect)."""
    urls = set(db.session.scalars(select(Organization.channel_base_url)))
    assert urls == {sandbox.base}
    return portal_with_sandbox


# --- helpers -------------------------------------------------------------------------------------
def task_by_batch(batch_no: str) -> SyncTask:
    db.session.commit()  # end any read transaction: see what the server and the worker committed
    return db.session.scalar(select(SyncTask).where(SyncTask.batch_no == batch_no))


def only_task() -> SyncTask:
    db.session.commit()
    tasks = db.session.scalars(select(SyncTask)).all()
    assert len(tasks) == 1, tasks
    return tasks[0]


def table(page):
    return page.locator("#sync-table")


def row(page, batch_no: str):
    return page.locator("#sync-table tbody tr", has_text=batch_no)


def tick(page, batch_no: str):
    row(page, batch_no).locator("input[name=ids]").check()


def click_bulk(page, label: str):
    page.locator("#sync-table .toolbar").get_by_role("button", name=label, exact=True).click()


def open_list(page):
    page.locator("nav.sidenav").get_by_role("link", name="数据同步日志查询").click()
    page.wait_for_url(LIST)
    expect(page.locator("h1")).to_contain_text("数据同步日志查询")


def create_download_task(page) -> SyncTask:
    """新增下载任务 for ORG01 · 进项-全量 · 当前月进销项下载 over PERIOD, through the form."""
    page.get_by_role("link", name="新增下载任务").click()
    page.wait_for_url("**/sync-logs/new")
    form = page.locator("form.form-grid")
    form.get_by_label(re.compile(r"^\s*ORG01 ")).check()
    form.get_by_label("进项-全量", exact=True).check()
    form.get_by_label("同步类型").select_option(label="当前月进销项下载")
    form.locator("input[name=start]").fill(PERIOD[0].isoformat())
    form.locator("input[name=end]").fill(PERIOD[1].isoformat())
    form.get_by_role("button", name="创建并申请下载").click()
    expect(page.locator("h1")).to_contain_text("新增下载任务 · 处理结果")
    expect(page.locator(".result-list tbody")).to_contain_text("已创建，正在向税局申请下载")
    task = only_task()
    assert (task.status, task.download_type, task.sync_type) == ("processing", "in_full", "current_month")
    assert (task.start_date, task.end_date, task.org_id) == (PERIOD[0], PERIOD[1], org("ORG01").id)
    assert task.created_by == "zhuguan"
    expect(page.locator(".result-list tbody")).to_contain_text(task.batch_no)

    run_worker()  # apply at the sandbox, poll, store the invoices into the pool
    task = task_by_batch(task.batch_no)
    assert task.status == "success", task.error
    assert task.invoice_count > 0 and task.success_count == task.invoice_count

    page.get_by_role("link", name="返回列表").click()
    page.wait_for_url(LIST)
    expect(row(page, task.batch_no)).to_contain_text("成功")
    expect(row(page, task.batch_no)).to_contain_text("华东科技有限公司")
    expect(row(page, task.batch_no)).to_contain_text("进项-全量")
    # 同步类型 is an optional column (列设置), hidden by default: not in the row
    expect(row(page, task.batch_no)).not_to_contain_text("当前月进销项下载")
    return task


def open_batch(page, task: SyncTask):
    """Click the 下载批次号 link: the batch and its invoices, each 已入池."""
    row(page, task.batch_no).get_by_role("link", name=task.batch_no).click()
    page.wait_for_url(f"**/sync-logs/{task.id}")
    expect(page.locator("h1")).to_contain_text(f"下载批次 {task.batch_no}")
    expect(page.locator("dl.detail")).to_contain_text("成功")
    invoices = page.locator("#batch-invoices tbody tr")
    expect(invoices.first).to_contain_text("已入池")
    shown = min(task.invoice_count, 20)  # the default page size
    expect(invoices.filter(has_text="已入池")).to_have_count(shown)
    first_no = db.session.scalar(select(SyncTaskInvoice.invoice_no).where(SyncTaskInvoice.task_id == task.id)
                                 .order_by(SyncTaskInvoice.invoice_no).limit(1))
    expect(invoices.first).to_contain_text(first_no)
    expect(page.locator("#batch-invoices .pager")).to_contain_text(f"共 {task.invoice_count} 条")


def confirm_void(page, batch_no: str):
    """作废任务 → the server's confirmation page → 确认作废 → results."""
    click_bulk(page, "作废任务")
    expect(page.locator("h1")).to_contain_text("请确认")
    expect(page.locator("[role=alert]")).to_contain_text("确定作废 1 个任务吗")
    expect(page.locator("main ul")).to_contain_text(batch_no)
    assert task_by_batch(batch_no).status == "processing"  # nothing happens before confirming
    page.get_by_role("button", name=re.compile("确认作废")).click()
    expect(page.locator("h1")).to_contain_text("作废任务 · 处理结果")
    expect(page.locator(".result-list tbody tr", has_text=batch_no)).to_contain_text("已作废")
    assert task_by_batch(batch_no).status == "voided"


def export_ticked(page, batch_nos: set[str], tmp_path) -> list[list]:
    """Tick rows, click 导出: an .xlsx download holding exactly those rows."""
    for b in batch_nos:
        tick(page, b)
    with page.expect_download() as info:
        click_bulk(page, "导出")
    download = info.value
    assert download.suggested_filename.endswith(".xlsx"), download.suggested_filename
    assert download.suggested_filename.startswith("数据同步日志_")
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    sheet = [[c.value for c in r] for r in load_workbook(path).active.iter_rows()]
    assert sheet[0][:4] == ["下载批次号", "核算组织编码", "核算组织", "同步状态"]
    assert {r[0] for r in sheet[1:]} == batch_nos
    return sheet


# --- the flows ---------------------------------------------------------------------------------------
def test_sync_log_flow_with_javascript(page, login, tmp_path):
    login(page, "zhuguan")
    assert "/login" not in page.url
    open_list(page)

    # (1) a download task created through the form, downloaded by the worker
    downloaded = create_download_task(page)

    # rows for the next steps: a failure to retry, a task in progress to void, another org.
    # 销项-全量 for the failed task: the 3-minute rule keys on org + type + period, and the
    # 进项-全量 task above was requested just now.
    an_hour_ago = clock.now() - timedelta(hours=1)
    failed = make_task("ORG01", "failed", download_type="out_full", requested_at=an_hour_ago,
                       error="税局繁忙，请稍后再试")
    running = make_task("ORG01", "processing", requested_at=an_hour_ago)
    elsewhere = make_task("ORG03", "failed", requested_at=an_hour_ago)
    page.reload()
    for t in (downloaded, failed, running, elsewhere):
        expect(row(page, t.batch_no)).to_have_count(1)
    expect(table(page).locator(".tabs")).to_contain_text("全部 (4)")

    # (2) filter: the form, then a status tab — htmx swaps #sync-table and pushes the URL
    page.evaluate("window.__samePage = true")  # survives an htmx swap, not a navigation
    filters = page.locator("form.filters")
    filters.get_by_label("核算组织").select_option(label="华东科技有限公司")
    filters.get_by_role("button", name="查询").click()
    page.wait_for_url(re.compile(rf"/sync-logs/\?.*org={org('ORG01').id}"))
    expect(row(page, elsewhere.batch_no)).to_have_count(0)
    expect(table(page).locator(".tabs")).to_contain_text("全部 (3)")
    expect(table(page).locator(".tabs")).to_contain_text("下载失败 (1)")

    table(page).locator(".tabs").get_by_role("link", name=re.compile(r"^下载失败")).click()
    page.wait_for_url(re.compile(r"status=failed"))
    assert f"org={org('ORG01').id}" in page.url  # the tab keeps the form's filters
    expect(row(page, downloaded.batch_no)).to_have_count(0)
    expect(row(page, running.batch_no)).to_have_count(0)
    expect(row(page, elsewhere.batch_no)).to_have_count(0)
    expect(row(page, failed.batch_no)).to_contain_text("下载失败")
    expect(row(page, failed.batch_no)).to_contain_text("税局繁忙，请稍后再试")
    expect(table(page).locator(".tabs .tab.active")).to_contain_text("下载失败 (1)")
    assert page.evaluate("window.__samePage") is True

    # (4) 手工重试 of the failed row, from the filtered list
    tick(page, failed.batch_no)
    click_bulk(page, "手工重试")
    expect(page.locator("h1")).to_contain_text("手工重试 · 处理结果")
    expect(page.locator(".result-list tbody tr", has_text=failed.batch_no)).to_contain_text("已重新发起下载请求")
    retried = task_by_batch(failed.batch_no)
    assert retried.status == "processing" and retried.retry_count == 1 and retried.last_retry_at
    run_worker()
    assert task_by_batch(failed.batch_no).status == "success", task_by_batch(failed.batch_no).error

    page.get_by_role("link", name="返回列表").click()
    page.wait_for_url(re.compile(r"status=failed"))  # back to the same filtered list
    expect(table(page).locator("tbody")).to_contain_text("暂无数据")  # no longer 下载失败
    table(page).locator(".tabs").get_by_role("link", name=re.compile(r"^全部")).click()
    page.wait_for_url(lambda url: "status=" not in url)
    expect(row(page, failed.batch_no)).to_contain_text("成功")
    expect(row(page, failed.batch_no)).to_contain_text("销项-全量")

    # (5) 作废任务 of the task in progress, with the server's confirmation page
    tick(page, running.batch_no)
    confirm_void(page, running.batch_no)
    page.get_by_role("link", name="返回列表").click()
    page.wait_for_url(LIST)
    expect(row(page, running.batch_no)).to_contain_text("已作废")
    assert task_by_batch(downloaded.batch_no).status == "success"  # untouched by the bulk buttons

    # (3) open the batch downloaded in (1)
    open_batch(page, downloaded)
    page.get_by_role("link", name="‹ 数据同步日志查询").click()
    page.wait_for_url(LIST)

    # (6) 导出 the ticked rows
    sheet = export_ticked(page, {downloaded.batch_no, failed.batch_no}, tmp_path)
    by_batch = {r[0]: r for r in sheet[1:]}
    assert by_batch[downloaded.batch_no][3] == "成功" and by_batch[downloaded.batch_no][4] == "进项-全量"
    assert by_batch[failed.batch_no][3] == "成功" and by_batch[failed.batch_no][4] == "销项-全量"
    assert by_batch[failed.batch_no][1] == "ORG01"

    db.session.commit()
    statuses = dict(db.session.execute(select(SyncTask.batch_no, SyncTask.status)).all())
    assert statuses == {downloaded.batch_no: "success", failed.batch_no: "success",
                        running.batch_no: "voided", elsewhere.batch_no: "failed"}


def test_sync_log_flow_without_javascript(page_nojs, login, tmp_path):
    page = page_nojs
    login(page, "zhuguan")
    assert "/login" not in page.url
    open_list(page)
    downloaded = create_download_task(page)
    an_hour_ago = clock.now() - timedelta(hours=1)
    failed = make_task("ORG01", "failed", download_type="out_full", requested_at=an_hour_ago)
    running = make_task("ORG01", "processing", requested_at=an_hour_ago)
    elsewhere = make_task("ORG03", "no_data", requested_at=an_hour_ago)

    # filter with a plain GET submit of the filter form: a real navigation
    page.goto("/sync-logs/")
    page.evaluate("window.__samePage = true")
    filters = page.locator("form.filters")
    filters.get_by_label("核算组织").select_option(label="华东科技有限公司")
    filters.get_by_label("下载类型").select_option(label="销项-全量")
    with page.expect_navigation():
        filters.get_by_role("button", name="查询").click()
    assert f"org={org('ORG01').id}" in page.url and "download_type=out_full" in page.url
    assert page.evaluate("window.__samePage") is None  # a full page load, no htmx
    expect(row(page, failed.batch_no)).to_contain_text("下载失败")
    for other in (downloaded, running, elsewhere):
        expect(row(page, other.batch_no)).to_have_count(0)

    # 手工重试 from the filtered list; the worker downloads again
    tick(page, failed.batch_no)
    click_bulk(page, "手工重试")
    expect(page.locator(".result-list tbody tr", has_text=failed.batch_no)).to_contain_text("已重新发起下载请求")
    assert task_by_batch(failed.batch_no).status == "processing"
    run_worker()
    page.get_by_role("link", name="返回列表").click()
    page.wait_for_url(re.compile(r"download_type=out_full"))  # the filter survives the round trip
    expect(row(page, failed.batch_no)).to_contain_text("成功")
    assert task_by_batch(failed.batch_no).status == "success"

    # the status tab is a plain link without JavaScript
    page.locator("form.filters").get_by_role("link", name="重置").click()
    page.wait_for_url(LIST)
    page.locator("#sync-table .tabs").get_by_role("link", name=re.compile(r"^下载处理中")).click()
    page.wait_for_url(re.compile(r"status=processing"))
    expect(row(page, downloaded.batch_no)).to_have_count(0)

    # 作废任务 with the confirmation page
    tick(page, running.batch_no)
    confirm_void(page, running.batch_no)
    page.get_by_role("link", name="返回列表").click()
    page.wait_for_url(re.compile(r"status=processing"))
    expect(table(page).locator("tbody")).to_contain_text("暂无数据")

    # open the batch
    page.goto("/sync-logs/")
    open_batch(page, downloaded)
    page.get_by_role("link", name="‹ 数据同步日志查询").click()
    page.wait_for_url(LIST)

    # 导出: the form posts and the response is an attachment
    export_ticked(page, {downloaded.batch_no, running.batch_no, elsewhere.batch_no}, tmp_path)

    db.session.commit()
    statuses = dict(db.session.execute(select(SyncTask.batch_no, SyncTask.status)).all())
    assert statuses == {downloaded.batch_no: "success", failed.batch_no: "success",
                        running.batch_no: "voided", elsewhere.batch_no: "no_data"}



def test_filter_after_an_htmx_tab_and_sort_keeps_them(page, login):
    mine = make_task("ORG01", "failed")
    make_task("ORG01", "success")
    make_task("ORG03", "failed")
    login(page, "zhuguan")
    open_list(page)
    table(page).locator(".tabs").get_by_role("link", name=re.compile(r"^下载失败")).click()
    page.wait_for_url(re.compile(r"status=failed"))
    table(page).locator("thead").get_by_role("link", name=re.compile(r"^下载批次号")).click()
    page.wait_for_url(re.compile(r"sort=batch_no"))
    filters = page.locator("form.filters")
    filters.get_by_label("核算组织").select_option(label="华东科技有限公司")
    filters.get_by_role("button", name="查询").click()
    page.wait_for_url(re.compile(r"org="))
    assert "status=failed" in page.url and "sort=batch_no" in page.url, page.url
    expect(table(page).locator(".tabs .tab.active")).to_contain_text("下载失败 (1)")
    expect(table(page).locator("tbody tr")).to_have_count(1)
    expect(row(page, mine.batch_no)).to_contain_text("下载失败")
