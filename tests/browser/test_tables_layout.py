"""The table component in a real browser at a 1366×768 screen: lists fit without a
horizontal scroll, 列设置 is remembered per user across logins, and 选择本页 works
with JavaScript off."""
from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from portal import clock
from portal.extensions import db
from portal.models import SyncTaskInvoice
from tests.sync_helpers import make_task

SCREEN = {"width": 1366, "height": 768}
CLASSIC_SCROLLBAR = 17  # headless Chromium overlays its scrollbar; Windows takes 17 px
LONG_ERRORS = [
    "税局返回：纳税人识别号与登录账号不一致，请核对核算组织的税号后重新发起下载申请（错误码 E1001）",
    "进销项数据不全：共 300 份，已下载 120 份表头，明细下载超时，请稍后点击获取异步结果或手工重试",
    "税局繁忙，请稍后再试",
    "RPA 登录已失效，请在税局电子税务局重新扫码登录后再手工重试本批次下载任务",
]
SCREENSHOT_DIR = os.environ.get("SCREENSHOT_DIR")  # set it to look at the pages afterwards


def screenshot(page, name: str):
    if SCREENSHOT_DIR:
        page.screenshot(path=os.path.join(SCREENSHOT_DIR, name), full_page=True)


def demo_tasks():
    """A list as a clerk sees it on a busy day: every org, long error texts, a task
    still waiting, retried ones."""
    orgs = ["ORG01", "ORG02", "ORG03", "ORG04", "ORG05", "ORG06"]
    statuses = ["failed", "incomplete", "apply_failed", "processing", "success", "header_only"]
    tasks = []
    for i in range(24):
        status = statuses[i % len(statuses)]
        fields = dict(error=LONG_ERRORS[i % len(LONG_ERRORS)] if status not in ("success", "processing") else "",
                      download_type=["in_full", "out_full", "in_increment"][i % 3] if i % 3 != 2 else "in_full")
        if status == "processing":
            fields["requested_at"] = clock.now() - timedelta(minutes=95)
        if i % 4 == 0:
            fields["last_retry_at"] = clock.now() - timedelta(hours=2)
            fields["retry_count"] = 3
        tasks.append(make_task(orgs[i % len(orgs)], status, **fields))
    return tasks


def assert_fits(page, selector):
    box = page.locator(selector)
    dims = box.evaluate("el => ({scroll: el.scrollWidth, client: el.clientWidth,"
                        " table: el.querySelector('table').scrollWidth})")
    assert dims["scroll"] <= dims["client"] and dims["table"] <= dims["client"], dims


def headers(page, table="#sync-table"):
    return [t.strip(" ▼▲\n") for t in page.locator(f"{table} thead th").all_inner_texts()]


@pytest.fixture
def screen(page):
    page.set_viewport_size(SCREEN)
    return page


def test_sync_log_list_fits_a_1366_screen_with_its_essential_columns(screen, login):
    tasks = demo_tasks()
    login(screen, "admin")
    screen.goto("/sync-logs/")
    expect(screen.locator("#sync-table tbody tr")).to_have_count(20)
    assert_fits(screen, "#sync-table .table-scroll")
    shown = headers(screen)
    for label in ("下载批次号", "核算组织", "同步状态", "下载类型", "下载开始时间", "下载结束时间",
                  "处理成功的份数", "下载发票份数", "错误描述", "创建时间"):
        assert label in shown, (label, shown)
    for label in ("同步类型", "通道", "更新时间", "最后重试时间"):
        assert label not in shown
    # every essential column is on the screen, not scrolled off to the right
    right = screen.locator("#sync-table .table-scroll").evaluate("el => el.getBoundingClientRect().right")
    last_th = screen.locator("#sync-table thead th").last.evaluate("el => el.getBoundingClientRect().right")
    assert last_th <= right <= SCREEN["width"]
    # the long error is shortened, its full text on hover
    cell = screen.locator("#sync-table tbody .trunc", has_text=LONG_ERRORS[0][:8]).first
    assert cell.get_attribute("title") == LONG_ERRORS[0]
    assert cell.inner_text().endswith("…") and len(cell.inner_text()) < len(LONG_ERRORS[0])
    assert len(tasks) == 24
    screenshot(screen, "sync-list-1366.png")
    # and still when the browser draws a classic (non-overlay) scrollbar
    screen.set_viewport_size({**SCREEN, "width": SCREEN["width"] - CLASSIC_SCROLLBAR})
    assert_fits(screen, "#sync-table .table-scroll")


def test_the_english_list_fits_a_1366_screen_too(screen, login):
    demo_tasks()
    login(screen, "admin")
    screen.goto("/sync-logs/")
    screen.locator("header").get_by_role("button", name="English").click()
    expect(screen.locator("h1")).to_contain_text("Data sync log")
    assert_fits(screen, "#sync-table .table-scroll")
    last_th = screen.locator("#sync-table thead th").last
    expect(last_th).to_contain_text("Created")


def test_every_optional_column_scrolls_inside_the_table_not_the_page(screen, login):
    demo_tasks()
    login(screen, "admin")
    screen.goto("/sync-logs/")
    settings = screen.locator("#sync-table details.column-settings")
    settings.locator("summary").click()
    for key in ("sync_type", "channel", "updated_at", "last_retry_at"):
        settings.locator(f"input[name=cols][value={key}]").check()
    settings.get_by_role("button", name="保存").click()
    expect(screen.locator("#sync-table thead th", has_text="最后重试时间")).to_have_count(1)
    assert len(headers(screen)) == 15  # the tick box and all 14 columns
    page_width = screen.evaluate("document.scrollingElement.scrollWidth")
    assert page_width <= SCREEN["width"]
    screenshot(screen, "sync-list-all-columns-1366.png")


def test_batch_detail_shows_the_whole_failure_reason_on_a_1366_screen(screen, login):
    task = make_task("ORG01", "incomplete", error=LONG_ERRORS[1])
    reason = ("发票状态异常：税局返回该发票已作废（红冲）且存在对应红字信息表，"
              "票池中已有同号发票，未覆盖，请人工核对后处理")
    for i in range(5):
        db.session.add(SyncTaskInvoice(task_id=task.id, direction="in", invoice_code="",
                                       invoice_no=f"2611200000000000{i:04d}", seller_name="深圳前海贸易有限公司华南分公司（代开）",
                                       buyer_name="华东科技有限公司", bureau_status="正常",
                                       outcome="failed" if i % 2 else "stored",
                                       failure_reason=reason if i % 2 else ""))
    db.session.commit()
    login(screen, "admin")
    screen.goto(f"/sync-logs/{task.id}")
    assert_fits(screen, "#batch-invoices .table-scroll")
    cell = screen.locator("#batch-invoices tbody td.wrap", has_text="发票状态异常").first
    assert cell.inner_text().strip() == reason
    box = cell.bounding_box()
    assert box["x"] + box["width"] <= SCREEN["width"]
    screenshot(screen, "batch-detail-1366.png")


def _settings(page):
    settings = page.locator("#sync-table details.column-settings")
    if settings.get_attribute("open") is None:
        settings.locator("summary").click()
    return settings


def test_hidden_and_shown_columns_are_remembered_across_logins(browser, live_server, login):
    make_task("ORG01", "failed", error=LONG_ERRORS[0])

    def fresh_login():
        context = browser.new_context(base_url=live_server, locale="zh-CN", viewport=SCREEN)
        page = context.new_page()
        login(page, "admin")
        page.goto("/sync-logs/")
        return context, page

    context, page = fresh_login()
    assert "通道" not in headers(page) and "同步类型" not in headers(page)
    page.evaluate("window.__samePage = true")
    settings = _settings(page)
    settings.locator("input[name=cols][value=channel]").check()
    settings.locator("input[name=cols][value=sync_type]").check()
    screenshot(page, "column-settings-open.png")
    settings.get_by_role("button", name="保存").click()
    expect(page.locator("#sync-table thead th", has_text="同步类型")).to_have_count(1)
    assert "通道" in headers(page)
    assert page.evaluate("window.__samePage") is True  # htmx swapped the table in place
    expect(page.locator("nav.sidenav")).to_have_count(1)  # ... with the fragment, not a page
    expect(page.locator("form.filters")).to_have_count(1)
    context.close()

    context, page = fresh_login()  # a new login (new cookies) keeps the choice
    assert "同步类型" in headers(page) and "通道" in headers(page)
    _settings(page).locator("input[name=cols][value=sync_type]").uncheck()
    _settings(page).get_by_role("button", name="保存").click()
    expect(page.locator("#sync-table thead th", has_text="同步类型")).to_have_count(0)
    context.close()

    context, page = fresh_login()
    assert "通道" in headers(page) and "同步类型" not in headers(page)
    context.close()


def test_column_settings_work_with_javascript_off(page_nojs, login):
    make_task("ORG01", "failed", error=LONG_ERRORS[0])
    login(page_nojs, "admin")
    page_nojs.goto("/sync-logs/?status=failed")
    settings = _settings(page_nojs)
    settings.locator("input[name=cols][value=channel]").check()
    with page_nojs.expect_navigation():
        settings.get_by_role("button", name="保存").click()
    assert re.search(r"/sync-logs/\?status=failed$", page_nojs.url)
    assert "通道" in headers(page_nojs) and "下载批次号" in headers(page_nojs)


def test_select_this_page_ticks_every_row_with_javascript_off(page_nojs, login):
    for _ in range(3):
        make_task("ORG01", "failed", error="税局繁忙")
    login(page_nojs, "admin")
    page_nojs.goto("/sync-logs/")
    boxes = page_nojs.locator("#sync-table tbody input[name=ids]")
    expect(boxes).to_have_count(3)
    assert not any(b.is_checked() for b in boxes.all())
    with page_nojs.expect_navigation():
        page_nojs.locator("#sync-table").get_by_role("link", name="选择本页").click()
    assert all(b.is_checked() for b in boxes.all()) and boxes.count() == 3
    assert page_nojs.locator("#sync-table input[name=filters]").input_value() == ""


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_searching_error_texts_and_ranges_as_a_clerk_would(browser, live_server, login, javascript):
    """错误描述 finds the tasks whose text contains the words; a filter the counters cannot
    answer leaves the tabs unnumbered until 统计准确条数; a date range sorts by its column."""
    from tests.browser.conftest import _context
    demo_tasks()
    context = _context(browser, live_server, javascript=javascript)
    page = context.new_page()
    page.set_viewport_size(SCREEN)
    login(page, "admin")
    page.goto("/sync-logs/")
    filters = page.locator("form.filters")
    filters.get_by_label("错误描述").fill("税局")
    filters.get_by_role("button", name="查询").click()
    expect(page.locator("#sync-table .pager .total")).to_have_text("共 12 条")  # 3 of the 4 texts contain 税局
    column = headers(page).index("错误描述") + 1
    errors = page.locator(f"#sync-table tbody td:nth-child({column}) .trunc").all()
    assert len(errors) == 12 and all("税局" in (e.get_attribute("title") or e.inner_text()) for e in errors)
    tabs = page.locator("#sync-table .tabs a").all_inner_texts()
    assert tabs[0] == "全部" and not any("(" in t for t in tabs), tabs
    page.locator("#sync-table").get_by_role("link", name="统计各状态条数").click()
    expect(page.locator("#sync-table .tabs a").first).to_have_text("全部 (12)")
    screenshot(page, f"sync-list-error-search-{'js' if javascript else 'nojs'}.png")
    page.goto("/sync-logs/?start_to=2099-01-01")
    expect(page.locator("#sync-table thead th", has_text="下载开始时间 ▼")).to_have_count(1)
    context.close()


@pytest.fixture
def small_scan_budget(monkeypatch):
    """Walks of 21 rows per organisation (the live server reads this when it starts)."""
    monkeypatch.setenv("TABLE_SCAN_BUDGET", "60")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_a_rare_combination_is_found_by_searching_on(small_scan_budget, browser, live_server, login, javascript):
    """Two filters no one index serves together: each page reads a budget of rows, says so,
    and 继续查找 goes on until every match has been shown once."""
    from sqlalchemy import select
    from portal.models import SyncTask
    from portal.seed import seed_sync_tasks
    from tests.browser.conftest import _context
    seed_sync_tasks(1203)
    truth = set(db.session.scalars(select(SyncTask.batch_no).where(
        SyncTask.sync_type == "manual_import", SyncTask.error.contains("税局"))))
    assert 5 < len(truth) < 100
    context = _context(browser, live_server, javascript=javascript)
    page = context.new_page()
    page.set_viewport_size(SCREEN)
    login(page, "admin")
    page.goto("/sync-logs/?sync_type=manual_import&error=税局")
    expect(page.locator("#sync-table .pager .total")).to_contain_text("尚未查完")
    note = page.locator("#sync-table .search-note")
    expect(note).to_contain_text("为保证速度，每页只查找一部分记录；后面可能还有符合条件的记录。")
    screenshot(page, f"sync-list-search-on-{'js' if javascript else 'nojs'}.png")
    seen, clicks = [], 0
    while True:
        seen += page.locator("#sync-table tbody td a").all_inner_texts()
        if not note.count():
            break
        before = page.url
        note.get_by_role("link", name="继续查找").click()
        page.wait_for_url(lambda url: url != before)
        expect(page.locator("#sync-table")).to_be_visible()
        clicks += 1
        assert clicks < 100
    assert set(seen) == truth and len(seen) == len(truth) and clicks >= 1
    assert_fits(page, "#sync-table .table-scroll")
    context.close()
