"""The table component: filters, sort, keyset paging, tabs, select-all — on the audit list."""
import re
from datetime import datetime, timedelta

from sqlalchemy import insert, select
from werkzeug.datastructures import MultiDict

from portal.admin.routes import AUDIT_TABLE
from portal.extensions import db
from portal.models import AuditLog
from portal.tables import Column, Filter, Table, Tabs

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
        page = AUDIT_TABLE.page(db.session, select(AuditLog), args)
        seen += _ids(page)
        if not page.has_next:
            return seen
        args = MultiDict(args)
        args["after"], args["page"] = page.next_cursor, str(page.number + 1)


def test_filter_by_exact_value(app):
    _rows()
    with app.test_request_context("/"):
        page = AUDIT_TABLE.page(db.session, select(AuditLog), {"actor": "user1", "size": "100"})
        assert page.rows and all(r.actor == "user1" for r in page.rows)
        assert page.total == 15


def test_filter_by_date_range_includes_whole_end_day(app):
    _rows()
    with app.test_request_context("/"):
        page = AUDIT_TABLE.page(db.session, select(AuditLog), {"from": "2026-01-01", "to": "2026-01-01"})
        assert page.total == 45
        page = AUDIT_TABLE.page(db.session, select(AuditLog), {"from": "2026-01-02"})
        assert page.total == 0


def test_sort_descending_then_ascending(app):
    _rows()
    with app.test_request_context("/"):
        desc = AUDIT_TABLE.page(db.session, select(AuditLog), {"sort": "at", "dir": "desc"})
        asc = AUDIT_TABLE.page(db.session, select(AuditLog), {"sort": "at", "dir": "asc"})
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
        first = AUDIT_TABLE.page(db.session, select(AuditLog), {"size": "20"})
        second = AUDIT_TABLE.page(db.session, select(AuditLog), {"size": "20", "after": first.next_cursor, "page": "2"})
        back = AUDIT_TABLE.page(db.session, select(AuditLog), {"size": "20", "before": second.prev_cursor, "page": "1"})
        assert _ids(back) == _ids(first)
        assert second.has_prev and second.number == 2


def test_last_page_holds_the_tail(app):
    _rows()
    with app.test_request_context("/"):
        last = AUDIT_TABLE.page(db.session, select(AuditLog), {"size": "20", "last": "1"})
        assert len(last.rows) == 20 and not last.has_next and last.has_prev
        assert _ids(last)[-1] == 0 and last.number == 3


def test_page_size_choice_and_unknown_size_falls_back(app):
    _rows()
    with app.test_request_context("/"):
        assert len(AUDIT_TABLE.page(db.session, select(AuditLog), {"size": "50"}).rows) == 45
        assert AUDIT_TABLE.page(db.session, select(AuditLog), {"size": "7"}).size == 20


def test_unknown_sort_column_is_ignored(app):
    _rows()
    with app.test_request_context("/"):
        page = AUDIT_TABLE.page(db.session, select(AuditLog), {"sort": "password_hash"})
        assert page.sort == "at"


def test_tampered_cursor_is_ignored_not_an_error(app):
    _rows()
    with app.test_request_context("/"):
        page = AUDIT_TABLE.page(db.session, select(AuditLog), {"after": "!!notbase64"})
        assert len(page.rows) == 20


def test_count_is_bounded_by_the_cap(app):
    _rows()
    app.config["TABLE_COUNT_CAP"] = 10
    with app.test_request_context("/"):
        page = AUDIT_TABLE.page(db.session, select(AuditLog), {})
        assert page.total == 10 and page.total_capped and page.count_label() == "10+"


def test_status_tabs_count_each_value_under_the_filter(app):
    _rows()
    table = Table("t", AuditLog.id, [Column("at", "时间", sort=AuditLog.at)],
                  filters=[Filter("actor", "操作人", AuditLog.actor)],
                  tabs=Tabs("action", AuditLog.action, [("create", "新增"), ("void", "作废"), ("retry", "重试")]))
    with app.test_request_context("/"):
        page = table.page(db.session, select(AuditLog), {"actor": "user0", "action": "create"})
        assert page.tab_counts[""] == (15, False)
        assert page.tab_counts["create"] == (15, False) and page.tab_counts["void"] == (0, False)
        assert page.total == 15


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
