"""Smoke flows in a real browser: login, navigation, the audit list's filter and pager,
with JavaScript on (htmx swaps the table and pushes the URL) and off (plain forms)."""
from __future__ import annotations

import re

from portal.extensions import db
from portal.models import AuditLog


def add_audit_rows(actor: str, n: int, action: str = "void"):
    """Audit rows by someone else than the logged-in admin, to filter away."""
    for i in range(n):
        db.session.add(AuditLog(actor=actor, object_type="sync_task", object_id=f"T{i:03d}",
                                action=action, from_state="", to_state="", reason=""))
    db.session.commit()


def audit_rows(page):
    return page.locator("#audit-table tbody tr")


def test_admin_logs_in_and_filters_the_audit_log_with_htmx(page, login):
    add_audit_rows("kaipiao1", 3)
    login(page)
    assert "/login" not in page.url
    nav = page.locator("nav.sidenav")
    assert "数据同步日志查询" in nav.inner_text()

    nav.get_by_role("link", name="审计日志").click()
    page.wait_for_url("**/admin/audit")
    table = page.locator("#audit-table")
    assert table.locator("tbody tr", has_text="login").filter(has_text="admin").count() == 1
    assert table.locator("tbody tr", has_text="kaipiao1").count() == 3

    page.evaluate("window.__samePage = true")  # survives an htmx swap, not a navigation
    form = page.locator("form.filters")
    form.locator("input[name=actor]").fill("admin")
    form.get_by_role("button", name="查询").click()
    page.wait_for_url(re.compile(r"/admin/audit\?.*actor=admin"))
    page.locator("#audit-table tbody tr", has_text="kaipiao1").first.wait_for(state="detached")
    assert audit_rows(page).count() == 1
    assert "login" in audit_rows(page).first.inner_text()
    assert page.evaluate("window.__samePage") is True


def test_audit_log_works_without_javascript(page_nojs, login):
    page = page_nojs
    add_audit_rows("admin", 25, action="export")
    add_audit_rows("kaipiao1", 2)
    login(page)
    assert "/login" not in page.url

    page.locator("nav.sidenav").get_by_role("link", name="审计日志").click()
    page.wait_for_url("**/admin/audit")
    assert page.locator("#audit-table tbody tr", has_text="kaipiao1").count() == 2

    form = page.locator("form.filters")
    form.locator("input[name=actor]").fill("admin")
    form.get_by_role("button", name="查询").click()
    page.wait_for_url(re.compile(r"/admin/audit\?.*actor=admin"))
    assert page.locator("#audit-table tbody tr", has_text="kaipiao1").count() == 0
    assert audit_rows(page).count() == 20  # 26 admin rows (25 + the login), 20 per page
    assert "第 1 页" in page.locator(".pager").inner_text()

    page.locator(".pager").get_by_role("link", name="下一页").click()
    page.wait_for_url(re.compile(r"page=2"))
    assert "actor=admin" in page.url and "after=" in page.url
    assert audit_rows(page).count() == 6
    assert "第 2 页" in page.locator(".pager").inner_text()
    assert page.locator("#audit-table tbody tr", has_text="kaipiao1").count() == 0


def test_wrong_password_is_refused(page, login):
    login(page, "admin", "wrong-password")
    assert "/login" in page.url
    assert "用户名或密码错误" in page.locator("[role=alert]").inner_text()


def test_clerk_cannot_open_admin_pages(page, login):
    login(page, "kaipiao2")
    assert "/login" not in page.url
    response = page.goto("/admin/orgs")
    assert response.status == 403
    assert "仅管理员可以访问此页面" in page.content()
