"""The table component: filters, sort, keyset paging, tabs, select-all — on the audit list."""
import re
from datetime import datetime, timedelta

from sqlalchemy import insert, select
from werkzeug.datastructures import MultiDict

from portal.admin.routes import AUDIT_TABLE
from portal.extensions import db
from portal.models import AuditLog, SyncTask
from portal.tables import HIDDEN, SHOWN, Column, Filter, Table, Tabs

T0 = datetime(2026, 1, 1)


def _rows(n=45):
    db.session.execute(insert(AuditLog), [
        dict(at=T0 + timedelta(minutes=i // 2), actor=f"user{i % 3}", object_type="t",
             object_id=str(i), org_id=1 + i % 2, action=["create", "void", "retry"][i % 3],
             from_state="", to_state="", reason="") for i in range(n)])
    db.session.commit()


def _ids(page):
    return [int(r.object_id) for r in page.rows]


def _walk(args):
    """Follow 'next' links through every page; returns all object ids in order."""
    seen, args = [], MultiDict(args)
    while True:
        page = AUDIT_TABLE.page(db.session, select(AuditLog), args, orgs=None)
        seen += _ids(page)
        if not page.has_next:
            return seen
        args = MultiDict(args)
        args["after"], args["page"] = page.next_cursor, str(page.number + 1)


def test_filter_by_exact_value(app):
    _rows()
    with app.test_request_context("/"):
        page = AUDIT_TABLE.page(db.session, select(AuditLog), {"actor": "user1", "size": "100"}, orgs=None)
        assert page.rows and all(r.actor == "user1" for r in page.rows)
        assert page.total == 15


def test_filter_by_date_range_includes_whole_end_day(app):
    _rows()
    with app.test_request_context("/"):
        page = AUDIT_TABLE.page(db.session, select(AuditLog), {"from": "2026-01-01", "to": "2026-01-01"}, orgs=None)
        assert page.total == 45
        page = AUDIT_TABLE.page(db.session, select(AuditLog), {"from": "2026-01-02"}, orgs=None)
        assert page.total == 0


def test_sort_descending_then_ascending(app):
    _rows()
    with app.test_request_context("/"):
        desc = AUDIT_TABLE.page(db.session, select(AuditLog), {"sort": "at", "dir": "desc"}, orgs=None)
        asc = AUDIT_TABLE.page(db.session, select(AuditLog), {"sort": "at", "dir": "asc"}, orgs=None)
        assert _ids(desc)[0] == 44 and _ids(asc)[0] == 0
        assert [r.at for r in desc.rows] == sorted((r.at for r in desc.rows), reverse=True)


def test_keyset_paging_visits_every_row_once_even_with_equal_sort_values(app):
    _rows()  # pairs of rows share the same timestamp
    with app.test_request_context("/"):
        for direction in ("asc", "desc"):
            seen = _walk({"sort": "at", "dir": direction, "size": "20"})
            assert sorted(seen) == list(range(45)) and len(seen) == 45


def test_previous_page_returns_the_same_rows(app):
    _rows()
    with app.test_request_context("/"):
        first = AUDIT_TABLE.page(db.session, select(AuditLog), {"size": "20"}, orgs=None)
        second = AUDIT_TABLE.page(db.session, select(AuditLog), {"size": "20", "after": first.next_cursor, "page": "2"}, orgs=None)
        back = AUDIT_TABLE.page(db.session, select(AuditLog), {"size": "20", "before": second.prev_cursor, "page": "1"}, orgs=None)
        assert _ids(back) == _ids(first)
        assert second.has_prev and second.number == 2


def test_last_page_holds_the_tail(app):
    """末页 is the page 'next' would reach: 45 rows at 20 a page → page 3 with 5 rows."""
    _rows()
    with app.test_request_context("/"):
        last = AUDIT_TABLE.page(db.session, select(AuditLog), {"size": "20", "last": "1"}, orgs=None)
        assert len(last.rows) == 5 and not last.has_next and last.has_prev
        assert _ids(last) == _walk({"size": "20"})[40:] and last.number == 3


def test_page_size_choice_and_unknown_size_falls_back(app):
    _rows()
    with app.test_request_context("/"):
        assert len(AUDIT_TABLE.page(db.session, select(AuditLog), {"size": "50"}, orgs=None).rows) == 45
        assert AUDIT_TABLE.page(db.session, select(AuditLog), {"size": "7"}, orgs=None).size == 20


def test_unknown_sort_column_is_ignored(app):
    _rows()
    with app.test_request_context("/"):
        page = AUDIT_TABLE.page(db.session, select(AuditLog), {"sort": "password_hash"}, orgs=None)
        assert page.sort == "at"


def test_tampered_cursor_is_ignored_not_an_error(app):
    _rows()
    with app.test_request_context("/"):
        page = AUDIT_TABLE.page(db.session, select(AuditLog), {"after": "!!notbase64"}, orgs=None)
        assert len(page.rows) == 20


def test_count_is_bounded_by_the_cap_when_no_counter_answers(app):
    """操作人 and 动作 are counted in different groups, so together they are bounded:
    "10+" at a cap of 10, and the exact figure on request (?count=exact)."""
    _rows()
    app.config["TABLE_COUNT_CAP"] = 10
    with app.test_request_context("/"):
        page = AUDIT_TABLE.page(db.session, select(AuditLog), {"actor": "user0", "action": "create"}, orgs=None)
        assert page.total == 10 and page.total_capped and page.count_label() == "10+"
        assert not page.exact
        exact = AUDIT_TABLE.page(db.session, select(AuditLog),
                                 {"actor": "user0", "action": "create", "count": "exact"}, orgs=None)
        assert exact.total == 15 and not exact.total_capped and exact.exact


def test_counted_filters_are_exact_beyond_the_cap(app):
    _rows()
    app.config["TABLE_COUNT_CAP"] = 10
    with app.test_request_context("/"):
        for args, n in (({}, 45), ({"actor": "user0"}, 15), ({"org": "1"}, 23), ({"action": "void"}, 15),
                        ({"from": "2026-01-01", "to": "2026-01-01"}, 45), ({"org": "2", "from": "2026-01-02"}, 0)):
            page = AUDIT_TABLE.page(db.session, select(AuditLog), args, orgs=None)
            assert (page.total, page.total_capped, page.exact) == (n, False, True), args


def test_uncounted_filters_leave_tabs_unnumbered_until_an_exact_count_is_asked(app):
    _rows()
    table = Table("t", AuditLog.id, [Column("at", "时间", sort=AuditLog.at)],
                  filters=[Filter("actor", "操作人", AuditLog.actor)],
                  tabs=Tabs("action", AuditLog.action, [("create", "新增"), ("void", "作废"), ("retry", "重试")]))
    with app.test_request_context("/"):
        page = table.page(db.session, select(AuditLog), {"actor": "user0", "action": "create"})
        assert page.tab_counts == {} and page.total == 15 and page.tab_text("void", "作废") == "作废"
        page = table.page(db.session, select(AuditLog), {"actor": "user0", "action": "create", "count": "exact"})
        assert page.tab_counts[""] == (15, False)
        assert page.tab_counts["create"] == (15, False) and page.tab_counts["void"] == (0, False)
        assert page.total == 15 and page.tab_text("create", "新增") == "新增 (15)"


def test_select_all_matching_reruns_the_filter_on_the_server(app):
    _rows()
    with app.test_request_context("/"):
        form = MultiDict({"select_all": "1", "filters": "actor=user2", "ids": "1"})
        rows, too_many = AUDIT_TABLE.selection(db.session, select(AuditLog), form, limit=100)
        assert not too_many and len(rows) == 15 and {r.actor for r in rows} == {"user2"}


def test_selection_over_the_limit_is_reported_not_truncated_silently(app):
    _rows()
    with app.test_request_context("/"):
        rows, too_many = AUDIT_TABLE.selection(db.session, select(AuditLog),
                                               MultiDict({"select_all": "1", "filters": ""}), limit=44)
        assert too_many
        ids = MultiDict([("ids", str(i)) for i in range(1, 46)])
        assert AUDIT_TABLE.selection(db.session, select(AuditLog), ids, limit=44)[1] is True


def test_selection_by_ids_ignores_rows_outside_the_base_query(app):
    _rows()
    with app.test_request_context("/"):
        base = select(AuditLog).where(AuditLog.org_id == 1)  # e.g. the user's permitted orgs
        ids = MultiDict([("ids", str(i)) for i in range(1, 11)])
        rows, _ = AUDIT_TABLE.selection(db.session, base, ids, limit=100)
        assert rows and all(r.org_id == 1 for r in rows)


def test_full_page_and_htmx_fragment_come_from_the_same_template(demo, auth, client):
    _rows()
    auth.login("admin")
    full = client.get("/admin/audit?actor=user1").get_data(as_text=True)
    frag = client.get("/admin/audit?actor=user1", headers={"HX-Request": "true", "HX-Target": "audit-table"}).get_data(as_text=True)
    assert "<html" in full and "<html" not in frag
    assert 'id="audit-table"' in frag and 'id="audit-table"' in full
    rows_full = re.findall(r"<td class=\"\">user1</td>", full)
    assert len(rows_full) == 15 and len(re.findall(r"<td class=\"\">user1</td>", frag)) == 15


def test_filter_links_keep_filters_in_the_query_string(demo, auth, client):
    _rows()
    auth.login("admin")
    html = client.get("/admin/audit?actor=user1&size=20").get_data(as_text=True)
    assert "actor=user1" in html  # sort links and pager keep the filter


# --- 末页: the exact last page -------------------------------------------------------------
def test_last_page_number_is_exact_beyond_the_count_cap(demo, auth, client):
    """2,003 rows at 20 a page: 末页 is 第 101 页 with the last 3 rows, not 第 50 页
    (the capped count of 1,000 would say 50)."""
    _rows(2003)
    auth.login("admin")
    html = client.get("/admin/audit?size=20&last=1&object_type=t").get_data(as_text=True)
    assert "第 101 页" in html
    assert len(re.findall(r'<td class="">t</td>', html)) == 3  # object_type column
    with app_request(client):
        last = AUDIT_TABLE.page(db.session, select(AuditLog), {"size": "20", "last": "1", "object_type": "t"}, orgs=None)
        assert last.number == 101 and sorted(_ids(last)) == [0, 1, 2]
        assert last.total == 2003 and not last.total_capped and last.count_label() == "2,003"
        before = AUDIT_TABLE.page(db.session, select(AuditLog),
                                  {"size": "20", "before": last.prev_cursor, "page": "100", "object_type": "t"},
                                  orgs=None)
        assert sorted(_ids(before)) == list(range(3, 23))


def app_request(client):
    return client.application.test_request_context("/")


def test_last_page_with_no_rows_is_page_one(app):
    with app.test_request_context("/"):
        last = AUDIT_TABLE.page(db.session, select(AuditLog), {"last": "1"}, orgs=None)
        assert last.rows == [] and last.number == 1 and not last.has_prev


# --- contains filter -----------------------------------------------------------------------
def _reasons(*reasons):
    db.session.execute(insert(AuditLog), [
        dict(at=T0, actor="a", object_type="t", object_id=str(i), org_id=1, action="x",
             from_state="", to_state="", reason=r) for i, r in enumerate(reasons)])
    db.session.commit()


CONTAINS = Table("contains-test", AuditLog.id, [Column("at", "时间", sort=AuditLog.at)],
                 filters=[Filter("reason", "原因", AuditLog.reason, "contains"),
                          Filter("reason_start", "原因", AuditLog.reason, "prefix")])


def test_contains_filter_matches_text_anywhere(app):
    _reasons("税局繁忙", "连接税局超时", "请到税局重新登录", "网络错误")
    with app.test_request_context("/"):
        assert CONTAINS.page(db.session, select(AuditLog), {"reason": "税局"}).total == 3
        assert CONTAINS.page(db.session, select(AuditLog), {"reason_start": "税局"}).total == 1


def test_contains_filter_treats_percent_and_underscore_literally(app):
    _reasons("完成 100% 的份数", "完成 1000 份", "code_a", "codeXa")
    with app.test_request_context("/"):
        assert _ids(CONTAINS.page(db.session, select(AuditLog), {"reason": "100%"})) == [0]
        assert _ids(CONTAINS.page(db.session, select(AuditLog), {"reason": "e_a"})) == [2]


def test_sync_log_error_filter_finds_the_text_inside_the_message(demo, auth, client):
    from tests.sync_helpers import make_task
    for error in ("税局繁忙，请稍后再试", "连接税局超时", "请在税局重新登录", "网络错误"):
        make_task("ORG01", "failed", error=error)
    auth.login("admin")
    html = client.get("/sync-logs/?error=税局").get_data(as_text=True)
    assert len(re.findall(r'name="ids"', html)) == 3
    assert "网络错误" not in html


# --- select this page without JavaScript ---------------------------------------------------
def _tasks(n):
    """n download tasks of ORG01, inserted in one statement."""
    from tests.sync_helpers import org
    o = org("ORG01")
    db.session.execute(insert(SyncTask), [
        dict(batch_no=f"DLTEST{i:06d}", org_id=o.id, status="failed", download_type="in_full",
             sync_type="current_month", start_date=T0.date(), end_date=T0.date(), channel=o.channel,
             error="税局繁忙", created_at=T0 + timedelta(minutes=i), updated_at=T0,
             requested_at=T0) for i in range(n)])
    db.session.commit()


def test_select_page_flag_ticks_every_row_of_this_page(demo, auth, client):
    _tasks(45)
    auth.login("admin")
    first = client.get("/sync-logs/?size=20").get_data(as_text=True)
    assert "选择本页" in first and not re.search(r'name="ids" value="\d+" checked', first)
    after = re.search(r'href="(/sync-logs/\?[^"]*after=[^"]*)"', first).group(1).replace("&amp;", "&")
    second = client.get(after).get_data(as_text=True)
    link = re.search(r'href="([^"]*sel=page[^"]*)"', second).group(1).replace("&amp;", "&")
    assert "after=" in link  # the same page, not page 1
    ticked = client.get(link).get_data(as_text=True)
    boxes = re.findall(r'<input type="checkbox" name="ids" value="(\d+)"( checked)?', ticked)
    assert len(boxes) == 20 and all(checked for _, checked in boxes)
    assert [v for v, _ in boxes] == [v for v, _ in re.findall(r'name="ids" value="(\d+)"()', second)]


def test_select_page_flag_stays_out_of_the_filter_and_pager(app):
    _rows()
    with app.test_request_context("/admin/audit"):
        page = AUDIT_TABLE.page(db.session, select(AuditLog), {"actor": "user1", "sel": "page"}, orgs=None)
        assert page.page_selected
        assert page.filter_query() == "actor=user1"  # what 'select all matching' re-runs
        assert "sel=" not in page.next_url() and "sel=" not in page.sort_url("at")
        assert "sel=" not in page.current_url()


def test_select_all_matching_ignores_a_leaked_select_page_flag(demo, auth, client):
    _tasks(3)
    auth.login("admin")
    html = client.get("/sync-logs/?error=税局&sel=page").get_data(as_text=True)
    assert len(re.findall(r'name="ids" value="\d+" checked', html)) == 3
    assert re.search(r'name="filters" value="error=%E7%A8%8E%E5%B1%80"', html)


# --- columns: essential, optional, per-user choices -----------------------------------------
COLS = Table("cols-test", AuditLog.id, [
    Column("at", "时间", sort=AuditLog.at),
    Column("actor", "操作人", show=SHOWN),
    Column("reason", "原因", show=HIDDEN),
])


def _keys(cols):
    return [c.key for c in cols]


def test_columns_show_essential_and_default_visible_ones():
    assert _keys(COLS.visible_columns()) == ["at", "actor"]
    assert _keys(COLS.optional_columns) == ["actor", "reason"]


def test_user_choices_hide_and_show_optional_columns_but_never_essential_ones():
    assert _keys(COLS.visible_columns({"actor": False, "reason": True})) == ["at", "reason"]
    assert _keys(COLS.visible_columns({"at": False})) == ["at", "actor"]


def test_submitted_choices_keep_only_optional_columns():
    assert COLS.clean_choices(["reason", "at", "password_hash"]) == {"actor": False, "reason": True}


def test_a_column_with_an_unknown_visibility_is_refused():
    import pytest
    with pytest.raises(ValueError):
        Column("x", "x", show="maybe")


def _headers(html):
    return re.findall(r'<th class="[^"]*">\s*(?:<a [^>]*>)?([^<▼▲]+?)\s*(?:[▼▲])?\s*(?:</a>)?\s*</th>', html)


def test_column_choice_is_stored_per_user_and_used_on_the_next_visit(demo, auth, client):
    from tests.sync_helpers import make_task
    make_task("ORG01", "failed", error="税局繁忙")
    auth.login("admin")
    headers = _headers(client.get("/sync-logs/").get_data(as_text=True))
    assert "通道" not in headers and "同步类型" not in headers and "错误描述" in headers
    r = auth.post("/table-columns/sync-table", {"cols": ["sync_type", "channel"],
                                                "next": "/sync-logs/?status=failed"}, page="/sync-logs/")
    assert r.status_code == 303 and r.headers["Location"] == "/sync-logs/?status=failed"
    headers = _headers(client.get("/sync-logs/").get_data(as_text=True))
    assert "同步类型" in headers and "通道" in headers and "下载批次号" in headers
    client.post("/logout", data={"csrf_token": auth.token()})
    auth.login("zhuguan")  # another user keeps the defaults
    headers = _headers(client.get("/sync-logs/").get_data(as_text=True))
    assert "通道" not in headers and "同步类型" not in headers


def test_restoring_default_columns_forgets_the_choice(demo, auth, client):
    from portal.models import TablePreference
    auth.login("admin")
    auth.post("/table-columns/sync-table", {"cols": ["sync_type"], "next": "/sync-logs/"}, page="/sync-logs/")
    assert db.session.scalar(select(TablePreference)) is not None
    assert "同步类型" in _headers(client.get("/sync-logs/").get_data(as_text=True))
    auth.post("/table-columns/sync-table", {"reset": "1", "next": "/sync-logs/"}, page="/sync-logs/")
    assert db.session.scalar(select(TablePreference)) is None
    assert "同步类型" not in _headers(client.get("/sync-logs/").get_data(as_text=True))


def test_essential_columns_cannot_be_hidden_by_a_crafted_post(demo, auth, client):
    from portal.models import TablePreference
    from tests.sync_helpers import make_task
    make_task("ORG01", "failed")
    auth.login("admin")
    auth.post("/table-columns/sync-table", {"cols": ["nonsense"], "next": "/sync-logs/"}, page="/sync-logs/")
    choices = db.session.scalar(select(TablePreference)).choices
    assert "batch_no" not in choices and "nonsense" not in choices
    assert "下载批次号" in _headers(client.get("/sync-logs/").get_data(as_text=True))


def test_column_settings_redirect_only_to_this_site(demo, auth, client):
    auth.login("admin")
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        r = auth.post("/table-columns/sync-table", {"cols": [], "next": evil}, page="/sync-logs/")
        assert r.status_code == 303 and r.headers["Location"] == "/", evil


def test_column_settings_of_an_unknown_table_is_not_found(demo, auth, client):
    auth.login("admin")
    assert client.get("/table-columns/no-such-table").status_code == 404
    assert client.get("/table-columns/audit-table").status_code == 404  # no optional columns


def test_column_settings_need_a_login(demo, client):
    r = client.get("/table-columns/sync-table")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_column_settings_page_works_without_javascript(demo, auth, client):
    auth.login("admin")
    html = client.get("/table-columns/sync-table?next=/sync-logs/").get_data(as_text=True)
    assert re.search(r'name="cols" value="channel" >', html)
    assert re.search(r'name="cols" value="updated_at" >', html)
    auth.post("/table-columns/sync-table", {"cols": ["channel"], "next": "/sync-logs/"}, page="/sync-logs/")
    html = client.get("/table-columns/sync-table?next=/sync-logs/").get_data(as_text=True)
    assert re.search(r'name="cols" value="channel" checked', html)
    assert 'name="cols" value="batch_no"' not in html
    assert 'name="next" value="/sync-logs/"' in html


# --- cells: macros, truncation, escaping ----------------------------------------------------
def test_long_text_is_shortened_with_the_full_text_on_hover(demo, auth, client):
    from tests.sync_helpers import make_task
    long_error = "税局返回：纳税人识别号与登录账号不一致，请核对核算组织的税号后重新发起下载申请"
    task = make_task("ORG01", "failed", error=long_error)
    auth.login("admin")
    html = client.get("/sync-logs/").get_data(as_text=True)
    assert f'title="{long_error}"' in html
    from portal.sync_logs.views import SYNC_TABLE
    keep = next(c for c in SYNC_TABLE.columns if c.key == "error").max_chars - 1
    assert f">{long_error[:keep]}…</span>" in html
    assert long_error in client.get(f"/sync-logs/{task.id}").get_data(as_text=True)


def test_cell_data_is_escaped_in_text_and_title(demo, auth, client):
    from tests.sync_helpers import make_task
    make_task("ORG01", "failed", error='<script>alert(1)</script> "quoted" 税局返回了一段很长的错误')
    auth.login("admin")
    html = client.get("/sync-logs/").get_data(as_text=True)
    assert "<script>alert" not in html
    assert 'title="&lt;script&gt;alert(1)&lt;/script&gt; &#34;quoted&#34;' in html


def test_status_badge_macro_marks_the_tone(demo, auth, client):
    from tests.sync_helpers import make_task
    make_task("ORG01", "failed", error="x")
    auth.login("admin")
    html = client.get("/sync-logs/").get_data(as_text=True)
    assert '<span class="status status-bad">下载失败</span>' in html


def test_a_column_may_name_a_macro_from_another_template(app):
    from flask import render_template_string
    from jinja2 import ChoiceLoader, DictLoader
    _reasons("风险<提示>")
    app.jinja_env.loader = ChoiceLoader([
        DictLoader({"cells_test.html": '{% macro shout(row, value, c) %}<b>{{ value }}!</b>{% endmacro %}'}),
        app.jinja_env.loader])
    table = Table("macro-test", AuditLog.id, [Column("at", "时间", sort=AuditLog.at),
                                              Column("reason", "原因", macro="cells_test.html:shout")],
                  selectable=False)
    with app.test_request_context("/"):
        page = table.page(db.session, select(AuditLog), {})
        html = render_template_string('{% include "_partials/table.html" %}', page=page)
        assert "<b>风险&lt;提示&gt;!</b>" in html


def test_a_concurrent_first_save_of_the_same_table_becomes_an_update(demo):
    """Two tabs (or a double click) saving the first choice at once: the loser of the
    unique (user, table) race updates the winner's row instead of failing."""
    from sqlalchemy import event
    from portal.models import TablePreference, User
    uid = db.session.scalar(select(User.id).where(User.username == "admin"))
    session = db.session()
    raced = []

    def other_tab_saves_first(*_):
        if not raced:
            raced.append(True)
            with db.engine.begin() as conn:
                conn.execute(insert(TablePreference).values(
                    user_id=uid, table_id="sync-table", choices={"channel": False}, updated_at=T0))

    event.listen(session, "before_flush", other_tab_saves_first)
    try:
        TablePreference.save(session, uid, "sync-table", {"channel": True})
    finally:
        event.remove(session, "before_flush", other_tab_saves_first)
    assert raced
    prefs = db.session.scalars(select(TablePreference)).all()
    assert len(prefs) == 1 and prefs[0].choices == {"channel": True}


def test_a_stray_last_flag_beside_a_cursor_is_ignored(app):
    _rows()
    with app.test_request_context("/"):
        first = AUDIT_TABLE.page(db.session, select(AuditLog), {"size": "20"}, orgs=None)
        args = {"size": "20", "after": first.next_cursor, "page": "2"}
        second = AUDIT_TABLE.page(db.session, select(AuditLog), args, orgs=None)
        stray = AUDIT_TABLE.page(db.session, select(AuditLog), {**args, "last": "1"}, orgs=None)
        assert _ids(stray) == _ids(second) and stray.number == 2


def test_a_badge_without_a_tone_has_no_tone_class(demo, auth, client):
    from tests.sync_helpers import make_task
    make_task("ORG01", "voided")
    auth.login("admin")
    html = client.get("/sync-logs/").get_data(as_text=True)
    assert '<span class="status">已作废</span>' in html


def _texts_table():
    return Table("t-texts", AuditLog.id, [Column("at", "时间", sort=AuditLog.at), Column("object_id", "对象", sort=AuditLog.object_id)],
                 filters=[Filter("oid", "对象", AuditLog.object_id, "prefix"),
                          Filter("reason", "原因", AuditLog.reason, "contains", vocabulary=True),
                          Filter("prose", "原因", AuditLog.reason, "contains")],
                 default_sort="at")


def test_a_prefix_or_range_filter_sorts_by_its_column_unless_a_sort_is_chosen(app):
    _rows()
    table = _texts_table()
    with app.test_request_context("/"):
        page = table.page(db.session, select(AuditLog), {"oid": "1"}, orgs=None)
        assert page.sort == "object_id" and [r.object_id for r in page.rows] == [str(i) for i in range(19, 9, -1)] + ["1"]
        chosen = table.page(db.session, select(AuditLog), {"oid": "1", "sort": "at", "dir": "asc"}, orgs=None)
        assert chosen.sort == "at" and [r.object_id for r in chosen.rows][:3] == ["1", "10", "11"]
        assert table.page(db.session, select(AuditLog), {}, orgs=None).sort == "at"


def test_a_vocabulary_search_filters_by_the_matching_texts(app):
    db.session.execute(insert(AuditLog), [
        dict(at=T0, actor="a", object_type="t", object_id=str(i), org_id=1, action="status",
             from_state="", to_state="", reason=["税局繁忙，请稍后再试", "登录失效", "", "税局返回：100%完成"][i % 4])
        for i in range(40)])
    db.session.commit()
    table = _texts_table()
    with app.test_request_context("/"):
        clause = table.filters[1].clause("税局")
        assert "IN" in str(clause) and "LIKE" not in str(clause)
        for raw, n in (("税局", 20), ("登录失效", 10), ("100%", 10), ("无此内容", 0), ("税局繁忙，请稍后再试", 10)):
            for key in ("reason", "prose"):  # the same rows as the plain LIKE search
                page = table.page(db.session, select(AuditLog), {key: raw, "size": "100"}, orgs=None)
                assert page.total == n, (key, raw)


def test_a_vocabulary_search_over_too_many_texts_falls_back_to_like(app, monkeypatch):
    from portal import tables
    db.session.execute(insert(AuditLog), [
        dict(at=T0, actor="a", object_type="t", object_id=str(i), org_id=1, action="status",
             from_state="", to_state="", reason=f"消息 {i}") for i in range(8)])
    db.session.commit()
    monkeypatch.setattr(tables, "VOCABULARY_LIMIT", 5)
    with app.test_request_context("/"):
        clause = _texts_table().filters[1].clause("消息 7")
        assert "LIKE" in str(clause)
        assert _texts_table().page(db.session, select(AuditLog), {"reason": "消息 7"}, orgs=None).total == 1


def test_an_unpartitioned_list_reads_a_budget_per_page_and_searches_on(app):
    """A combination no one index serves (操作人 leads the walk, 动作 is tested row by row)
    reads at most TABLE_SCAN_BUDGET rows a page; following the pages reaches every match in
    order, and the pages in between say they searched only part."""
    db.session.execute(insert(AuditLog), [
        dict(at=T0 + timedelta(minutes=i), actor=f"user{i % 3}", object_type="t", object_id=str(i), org_id=1,
             action="void" if i % 7 == 0 else "create", from_state="", to_state="", reason="") for i in range(90)])
    db.session.commit()
    app.config["TABLE_SCAN_BUDGET"] = 21
    truth = [84, 63, 42, 21, 0]  # user0 (i % 3 == 0) and void (i % 7 == 0), newest first
    with app.test_request_context("/"):
        seen, searched, args = [], 0, MultiDict({"actor": "user0", "action": "void"})
        first = AUDIT_TABLE.page(db.session, select(AuditLog), args, orgs=None)
        assert first.total_lower_bound and not first.exact
        while True:
            page = AUDIT_TABLE.page(db.session, select(AuditLog), args, orgs=None)
            seen += _ids(page)
            searched += page.searched
            if not page.has_next:
                break
            args["after"] = page.next_cursor
        assert seen == truth and searched
        app.config["TABLE_SCAN_BUDGET"] = 1000  # within the budget: complete and exact
        page = AUDIT_TABLE.page(db.session, select(AuditLog), MultiDict({"actor": "user0", "action": "void"}), orgs=None)
        assert _ids(page) == truth and page.exact and page.total == 5 and not page.searched
