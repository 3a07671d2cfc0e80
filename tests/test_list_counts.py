"""Exact list counts (portal.list_counts): the counters follow every write path, answer the
tabs, totals and select-all of the lists, stay scoped, and survive compaction and rebuild."""
from __future__ import annotations

import random
import re
import threading
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from portal import list_counts, maintenance
from portal.extensions import db
from portal.models import AuditLog, ListCount, SyncTask
from portal.models.sync import SYNC_COUNTS
from portal.sync_logs.tables import SYNC_TABLE
from tests.sync_helpers import create_via_form, make_task, org, run_worker, tasks


@pytest.fixture
def env(portal_with_sandbox, sandbox, auth):
    return portal_with_sandbox


TAB = re.compile(r'class="tab[^"]*"[^>]*>([^<(]+) \(([\d,+]+)\)</a>')


def tab_counts(html: str) -> dict[str, str]:
    """The status tabs of a list page as a user reads them: label → shown count."""
    return {label.strip(): n for label, n in TAB.findall(html)}


def by_status(*where) -> dict[str, int]:
    stmt = select(SyncTask.status, func.count()).group_by(SyncTask.status)
    for w in where:
        stmt = stmt.where(w)
    return dict(db.session.execute(stmt).all())


LABELS = {"success": "成功", "processing": "下载处理中", "failed": "下载失败", "voided": "已作废",
          "apply_failed": "进销项下载申请失败", "no_data": "没有数据", "incomplete": "进销项数据不全"}


def assert_tabs_match(html, *where):
    shown, truth = tab_counts(html), by_status(*where)
    assert shown["全部"] == f"{sum(truth.values()):,}"
    for status, label in LABELS.items():
        assert shown[label] == f"{truth.get(status, 0):,}", (label, shown, truth)


# --- the counters follow what users do ----------------------------------------------------------
def test_tab_counts_follow_tasks_created_applied_failed_and_voided_through_the_product(env, auth, sandbox):
    sandbox.downloads(org("ORG02").tax_id, outcome="failed", mode="all")
    sandbox.downloads(org("ORG03").tax_id, outcome="processing", mode="all")
    auth.login("zhuguan")
    for code in ("ORG01", "ORG02", "ORG03"):
        create_via_form(auth, code, types=("in_full", "out_full"))
    run_worker()
    stuck = tasks(status="processing")
    auth.post("/sync-logs/void", {"ids": [str(t.id) for t in stuck[:1]], "confirmed": "1"}, page="/sync-logs/")
    run_worker()
    assert {t.status for t in tasks()} >= {"success", "failed", "voided", "processing"}

    html = auth.client.get("/sync-logs/").get_data(as_text=True)
    assert_tabs_match(html)
    assert "共 6 条" in html
    o2 = org("ORG02")
    assert_tabs_match(auth.client.get(f"/sync-logs/?org={o2.id}").get_data(as_text=True), SyncTask.org_id == o2.id)
    assert_tabs_match(auth.client.get("/sync-logs/?download_type=out_full&channel=leqi").get_data(as_text=True),
                      SyncTask.download_type == "out_full", SyncTask.channel == "leqi")
    today = tasks()[0].created_at.date().isoformat()
    assert_tabs_match(auth.client.get(f"/sync-logs/?created_from={today}&created_to={today}").get_data(as_text=True))
    assert "共 0 条" in auth.client.get("/sync-logs/?created_to=2000-01-01").get_data(as_text=True)


def test_a_clerk_counts_only_the_organisations_they_may_query(env, auth):
    """kaipiao1 queries ORG01 and ORG02: other organisations' tasks are in no tab of theirs."""
    for code, status in (("ORG01", "success"), ("ORG02", "failed"), ("ORG03", "success"), ("ORG04", "failed")):
        make_task(code, status)
    auth.login("kaipiao1")
    html = auth.client.get("/sync-logs/").get_data(as_text=True)
    mine = SyncTask.org_id.in_([org("ORG01").id, org("ORG02").id])
    assert_tabs_match(html, mine)
    assert tab_counts(html)["全部"] == "2"
    # filtering on an organisation they may not query counts nothing
    assert tab_counts(auth.client.get(f"/sync-logs/?org={org('ORG03').id}").get_data(as_text=True))["全部"] == "0"


def test_a_counted_list_refuses_to_count_without_its_scope(env):
    with env.test_request_context("/"):
        with pytest.raises(TypeError, match="needs orgs="):
            SYNC_TABLE.page(db.session, select(SyncTask))


# --- beyond the cap: exact where the counters answer, worded bounds elsewhere ------------------------
@pytest.fixture
def many(env):
    """1,203 tasks through the product's seeding (the ORM), above TABLE_COUNT_CAP = 1,000."""
    from portal.seed import seed_sync_tasks
    assert env.config["TABLE_COUNT_CAP"] == 1000
    seed_sync_tasks(1203)
    return env


def test_counts_are_exact_above_the_cap_and_last_page_has_the_right_number(many, auth):
    auth.login("admin")
    html = auth.client.get("/sync-logs/?size=20").get_data(as_text=True)
    assert "共 1,203 条" in html and "选择全部符合条件的 1,203 条" in html
    assert_tabs_match(html)
    last = auth.client.get("/sync-logs/?size=20&last=1").get_data(as_text=True)
    assert "第 61 页" in last and last.count('name="ids"') == 3  # 60 full pages, then 3 rows


def test_other_filters_show_a_worded_bound_and_the_exact_figure_on_request(many, auth):
    auth.login("admin")
    html = auth.client.get("/sync-logs/?start_from=2000-01-01").get_data(as_text=True)  # not counted
    truth = db.session.scalar(select(func.count()).select_from(SyncTask))
    assert truth == 1203
    assert "超过 1,000 条" in html and "选择全部符合条件的记录（超过 1,000 条）" in html
    assert "统计准确条数" in html and "第 1 页" in html
    exact = auth.client.get("/sync-logs/?start_from=2000-01-01&count=exact").get_data(as_text=True)
    assert f"共 {truth:,} 条" in exact
    # 末页 without an exact count: the last rows, and no page number that could be wrong
    last = auth.client.get("/sync-logs/?start_from=2000-01-01&last=1&size=20").get_data(as_text=True)
    assert "第 " not in re.sub(r"<option[^>]*>.*?</option>", "", last).split('class="pager"')[1].split("每页条数")[0]


# --- every write path, including raw SQL, keeps them -------------------------------------------------
def test_counters_follow_raw_inserts_updates_and_deletes(env):
    t = make_task("ORG01", "processing")
    db.session.execute(text("UPDATE sync_tasks SET status = 'success' WHERE id = :id"), {"id": t.id})
    db.session.execute(text("UPDATE sync_tasks SET checks = checks + 1"))  # no dimension: no journal row
    make_task("ORG02", "failed", download_type="out_full")
    db.session.execute(text("DELETE FROM sync_tasks WHERE status = 'failed'"))
    db.session.commit()
    assert list_counts.by_status(db.session, SYNC_COUNTS) == {"success": 1}
    o1 = org("ORG01").id
    assert list_counts.by_status(db.session, SYNC_COUNTS, orgs={o1}, group="a", keys={"download_type": "in_full"}) \
        == {"success": 1}
    assert list_counts.by_status(db.session, SYNC_COUNTS, orgs={org("ORG02").id}) == {}


def test_a_count_without_a_counted_filter_reads_one_cell_per_organisation_and_status(env):
    """The total cells (organisation, status) answer the unfiltered page, so its count reads
    organisations × statuses cells at any size, not every combination of a group's values."""
    from sqlalchemy import event
    for i, (o, status, kind) in enumerate([("ORG01", "success", "in_full"), ("ORG01", "success", "out_full"),
                                           ("ORG01", "failed", "in_full"), ("ORG02", "success", "in_full")]):
        make_task(o, status, download_type=kind)
    db.session.commit()
    list_counts.compact(db.session)
    cells = db.session.execute(select(ListCount.org_id, ListCount.status, ListCount.n)
                               .where(ListCount.cuboid == "t")).all()
    assert sorted(cells) == sorted([(org("ORG01").id, "success", 2), (org("ORG01").id, "failed", 1),
                                    (org("ORG02").id, "success", 1)])
    cuboids = []
    listener = lambda conn, cur, statement, params, *a: cuboids.append(params)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        assert list_counts.by_status(db.session, SYNC_COUNTS) == {"success": 3, "failed": 1}
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert any("t" in (p.values() if isinstance(p, dict) else p) for p in cuboids)


def test_compaction_and_rebuild_keep_every_count(env):
    for i in range(30):
        make_task(["ORG01", "ORG02", "ORG03"][i % 3], ["processing", "success", "failed"][i % 3])
    db.session.execute(text("UPDATE sync_tasks SET status = 'voided' WHERE status = 'processing'"))
    db.session.commit()
    before = {q: list_counts.by_status(db.session, SYNC_COUNTS, **dict(q)) for q in QUERIES}
    journal = db.session.scalar(select(func.count()).select_from(ListCount))
    assert list_counts.compact(db.session) == journal
    assert db.session.scalar(select(func.count()).select_from(ListCount)) < journal
    assert list_counts.compact(db.session) == 0  # nothing left to fold
    assert {q: list_counts.by_status(db.session, SYNC_COUNTS, **dict(q)) for q in QUERIES} == before
    list_counts.rebuild(db.session)
    db.session.commit()
    assert {q: list_counts.by_status(db.session, SYNC_COUNTS, **dict(q)) for q in QUERIES} == before
    assert before[()] == by_status()


QUERIES = [(), (("group", "s"),), (("dated", True),)]  # by_status keywords, hashable


def test_two_compactions_at_once_never_count_a_row_twice(env):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: compactions cannot overlap")
    for i in range(200):
        make_task("ORG01", ["success", "failed"][i % 2])
    app = env
    errors = []

    def fold():
        try:
            with app.app_context():
                list_counts.compact(db.session, batch=7)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=fold) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    db.session.expire_all()
    assert list_counts.by_status(db.session, SYNC_COUNTS) == {"success": 100, "failed": 100}
    assert list_counts.by_status(db.session, SYNC_COUNTS, dated=True) == {"success": 100, "failed": 100}


# --- date ranges --------------------------------------------------------------------------------------
def test_day_ranges_cover_exactly_the_days_asked():
    rnd = random.Random(3)
    for _ in range(300):
        first = date(2025, 1, 1) + timedelta(days=rnd.randint(0, 800))
        last = first + timedelta(days=rnd.randint(-3, 500))
        covered = set()
        for grain, low, high in list_counts.day_ranges(first, last):
            day = date.fromisoformat(low if grain == "d" else low + "-01")
            end = date.fromisoformat(high) if grain == "d" else _month_last(high)
            while day <= end:
                covered.add(day)
                day += timedelta(days=1)
        expected = {first + timedelta(days=i) for i in range((last - first).days + 1)}
        assert covered == expected, (first, last)
    assert list_counts.day_ranges(None, None) == [("m", "0001-01", "9999-12")]


def _month_last(bucket: str) -> date:
    y, m = map(int, bucket.split("-"))
    return (date(y + (m == 12), m % 12 + 1, 1)) - timedelta(days=1)


def test_date_range_counts_equal_the_rows_in_range(env):
    rows, base = [], date(2026, 1, 1)
    for i in range(400):
        rows.append(AuditLog(at=datetime.combine(base, datetime.min.time()) + timedelta(hours=i * 7),
                             actor="a", object_type="t", object_id=str(i), org_id=1 + i % 3, action="x"))
    db.session.add_all(rows)
    db.session.commit()
    from portal.models.audit import AUDIT_COUNTS
    rnd = random.Random(5)
    for _ in range(40):
        first = base + timedelta(days=rnd.randint(-5, 120))
        last = first + timedelta(days=rnd.randint(0, 90))
        for orgs in (None, {2}, {1, 3}):
            got = list_counts.by_status(db.session, AUDIT_COUNTS, orgs=orgs, first=first, last=last, dated=True)
            stmt = select(func.count()).where(AuditLog.at >= datetime.combine(first, datetime.min.time()),
                                              AuditLog.at <= datetime.combine(last, datetime.max.time()))
            if orgs:
                stmt = stmt.where(AuditLog.org_id.in_(orgs))
            assert sum(got.values()) == db.session.scalar(stmt), (first, last, orgs)


# --- the product analyses its own tables ---------------------------------------------------------------
def test_maintenance_gives_fresh_tables_planner_statistics(many):
    maintenance.run()
    if db.engine.dialect.name == "postgresql":
        analysed = db.session.scalar(text(
            "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'sync_tasks'"))
        assert analysed
    else:
        assert db.session.scalar(text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'sync_tasks'")) > 0
    assert maintenance.refresh_statistics() == []  # nothing stale right after


def test_compacting_cells_that_cancel_out_leaves_nothing_behind(env):
    """A task created and deleted again: every cell sums to 0, so compaction writes no row
    (an empty insert must not become a row of NULLs)."""
    t = make_task("ORG01", "processing")
    db.session.delete(t)
    db.session.commit()
    assert list_counts.compact(db.session) > 0
    assert db.session.scalar(select(func.count()).select_from(ListCount)) == 0
    assert list_counts.by_status(db.session, SYNC_COUNTS) == {}


def test_maintenance_analyses_a_table_when_a_migration_adds_an_index(many):
    if db.engine.dialect.name == "postgresql":
        pytest.skip("PostgreSQL keeps statistics per column; a plain index needs none of its own")
    maintenance.run()
    try:
        db.session.execute(text("CREATE INDEX ix_test_new ON sync_tasks (checks)"))
        db.session.commit()
        assert maintenance.refresh_statistics() == ["sync_tasks"]
        assert maintenance.refresh_statistics() == []
        db.session.execute(text("CREATE INDEX ix_test_none ON sync_tasks (checks) WHERE checks < 0"))  # empty
        db.session.commit()
        assert maintenance.refresh_statistics() == []  # an empty partial index has no statistics row
        db.session.execute(text("CREATE INDEX ix_test_some ON sync_tasks (checks) WHERE id > 0"))
        db.session.commit()
        assert maintenance.refresh_statistics() == ["sync_tasks"]
        assert maintenance.refresh_statistics() == []
    finally:  # the schema is shared by the whole session (tests/test_foundation compares it)
        db.session.rollback()
        for name in ("ix_test_new", "ix_test_none", "ix_test_some"):
            db.session.execute(text(f"DROP INDEX IF EXISTS {name}"))
        db.session.commit()


# --- a page is one walk per organisation, merged ------------------------------------------------------
def _ids_on_pages(auth, query: str) -> list[int]:
    """Every row id of a list, following 下一页 from the first page."""
    ids, url = [], f"/sync-logs/?{query}&size=20"
    while url:
        html = auth.client.get(url).get_data(as_text=True)
        ids += [int(i) for i in re.findall(r'name="ids" value="(\d+)"', html)]
        nxt = re.search(r'<a class="" href="([^"]+)"[^>]*>下一页</a>', html)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
    return ids


@pytest.mark.parametrize("query, order, where", [
    ("", (SyncTask.created_at.desc(), SyncTask.id.desc()), ()),
    ("sort=success_count&dir=asc", (SyncTask.success_count, SyncTask.created_at, SyncTask.id), ()),
    ("status=success&sort=batch_no&dir=desc",
     (SyncTask.batch_no.desc(), SyncTask.created_at.desc(), SyncTask.id.desc()), (SyncTask.status == "success",)),
    ("download_type=in_full", (SyncTask.created_at.desc(), SyncTask.id.desc()), (SyncTask.download_type == "in_full",)),
    ("start_to=2099-01-01", (SyncTask.start_date.desc(), SyncTask.created_at.desc(), SyncTask.id.desc()), ()),
])
def test_pages_merged_from_each_organisations_walk_are_the_plain_order(many, auth, query, order, where):
    auth.login("admin")
    truth = list(db.session.scalars(select(SyncTask.id).where(*where).order_by(*order)))
    assert len({t.org_id for t in db.session.scalars(select(SyncTask))}) > 3  # several walks to merge
    assert _ids_on_pages(auth, query) == truth


def _walks(auth, url: str) -> int:
    """How many organisations the page's walks visit: the organisations of its one statement
    (a LATERAL join on PostgreSQL, json_each on SQLite); one organisation's walk is the
    page's rows in one statement."""
    import json
    from sqlalchemy import event
    seen = []

    def record(conn, cursor, statement, params, context, executemany):
        if " AS k0" in statement:
            values = params["walk_values"] if isinstance(params, dict) else next(
                json.loads(p) for p in params if isinstance(p, str) and p.startswith("["))
            seen.append(len(values))
        elif statement.startswith("SELECT sync_tasks.id, ") and "sync_tasks.org_id = " in statement:
            seen.append(1)
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert auth.client.get(url).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert len(seen) <= 1, "a page walks every organisation in one statement"
    return sum(seen)


def test_a_page_walks_only_the_organisations_that_can_match(many, auth):
    auth.login("admin")
    holding = {o for o, in db.session.execute(select(SyncTask.org_id).distinct())}
    assert _walks(auth, "/sync-logs/") == len(holding) > 3
    o = org("ORG01")
    assert _walks(auth, f"/sync-logs/?org={o.id}") == 1  # the organisation filter picks the walk
    same_channel = {t.org_id for t in db.session.scalars(select(SyncTask).where(SyncTask.channel == o.channel))}
    assert _walks(auth, f"/sync-logs/?channel={o.channel}") == len(same_channel) < len(holding)  # counters
    # an uncounted filter next to a counted one: the counted one still rules organisations out
    assert _walks(auth, f"/sync-logs/?channel={o.channel}&has_failures=1") <= len(same_channel)
    other = next(t.org_id for t in db.session.scalars(select(SyncTask).where(SyncTask.channel != o.channel)))
    assert _walks(auth, f"/sync-logs/?org={other}&channel={o.channel}") == 0  # nothing to walk at all


def test_a_prefix_is_also_a_range_where_text_compares_by_code_point(env):
    from portal.sync_logs.tables import SYNC_TABLE
    clause = str(next(f for f in SYNC_TABLE.filters if f.key == "batch_no").clause("DL2026"))
    assert "LIKE" in clause and ">=" in clause and "<" in clause  # (SQLite; PostgreSQL under a C collation)


def test_beyond_the_partition_limit_a_page_is_one_plain_query_in_the_same_order(many, auth, monkeypatch):
    from portal import tables
    auth.login("admin")
    holding = {o for o, in db.session.execute(select(SyncTask.org_id).distinct())}
    monkeypatch.setattr(tables, "PARTITION_LIMIT", len(holding) - 1)  # more organisations than walks allowed
    assert _walks(auth, "/sync-logs/") == 0
    truth = list(db.session.scalars(select(SyncTask.id).where(SyncTask.status == "success")
                                    .order_by(SyncTask.batch_no.desc(), SyncTask.created_at.desc(), SyncTask.id.desc())))
    assert _ids_on_pages(auth, "status=success&sort=batch_no&dir=desc") == truth
    html = auth.client.get("/sync-logs/?start_from=2000-01-01").get_data(as_text=True)
    assert "超过 1,000 条" in html  # the bounded count, above the cap, without walks


# --- filters no one index serves together: a budget per page, and 继续查找 ------------------------
def _follow(auth, url: str, link: str) -> tuple[list[int], list[str]]:
    """Every row id reached from `url` by following `link` (下一页, or 上一页 from 末页) until
    it is gone, in list order; and each page's html."""
    ids, pages = [], []
    while url:
        html = auth.client.get(url).get_data(as_text=True)
        pages.append(html)
        found = [int(i) for i in re.findall(r'name="ids" value="(\d+)"', html)]
        ids = ids + found if link == "下一页" else found + ids
        nxt = re.search(rf'<a class="" href="([^"]+)"[^>]*>{link}</a>', html)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
    return ids, pages


RARE_PAIR = "sync_type=manual_import&error=税局"  # 同步类型 leads each walk; 错误描述 is tested row by row


def _rare_pair_truth(descending=True) -> list[int]:
    order = (SyncTask.created_at, SyncTask.id)
    return list(db.session.scalars(
        select(SyncTask.id).where(SyncTask.sync_type == "manual_import", SyncTask.error.contains("税局"))
        .order_by(*(c.desc() if descending else c.asc() for c in order))))


def test_a_rare_combination_reads_a_budget_per_page_and_searching_on_finds_every_row(many, auth):
    """Each organisation's walk reads at most its share of TABLE_SCAN_BUDGET rows, so a page
    costs the same however rare the combination; the page says so, the count is worded as a
    lower bound, and 继续查找 / 下一页 go on from where the walks stopped: every match is
    reached once, in order."""
    many.config["TABLE_SCAN_BUDGET"] = 60  # → 21 rows per organisation's walk (one page + 1)
    auth.login("admin")
    truth = _rare_pair_truth()
    assert 5 < len(truth) < 200
    ids, pages = _follow(auth, f"/sync-logs/?{RARE_PAIR}&size=20", "下一页")
    assert ids == truth
    searched = [p for p in pages if "继续查找" in p]
    assert searched and "为保证速度，每页只查找一部分记录；后面可能还有符合条件的记录。" in searched[0]
    assert re.search(r"已找到 [\d,]+ 条，尚未查完", pages[0]) and "统计准确条数" in pages[0]
    assert re.search(r"选择全部符合条件的记录（已找到 [\d,]+ 条，尚未查完）", pages[0])
    assert len(pages) > 1 and all(p.count('name="ids"') < 20 for p in searched)  # found in parts, no full scan
    # the exact figure on request
    exact = auth.client.get(f"/sync-logs/?{RARE_PAIR}&count=exact").get_data(as_text=True)
    assert f"共 {len(truth):,} 条" in exact


def test_a_rare_combination_from_the_last_page_back_finds_every_row(many, auth):
    many.config["TABLE_SCAN_BUDGET"] = 60
    auth.login("admin")
    ids, pages = _follow(auth, f"/sync-logs/?{RARE_PAIR}&size=20&last=1", "上一页")
    assert ids == _rare_pair_truth() and any("继续查找" in p for p in pages)


def test_within_the_budget_the_combination_is_counted_exactly(many, auth):
    many.config.update(TABLE_SCAN_BUDGET=100_000, TABLE_SCAN_PAGES=1_000)
    auth.login("admin")
    ids, pages = _follow(auth, f"/sync-logs/?{RARE_PAIR}&size=20", "下一页")
    truth = _rare_pair_truth()
    assert ids == truth and not any("继续查找" in p for p in pages)
    assert f"共 {len(truth):,} 条" in pages[0] and f"选择全部符合条件的 {len(truth):,} 条" in pages[0]



def test_a_word_found_nowhere_next_to_another_filter_answers_at_once(many, auth):
    """错误描述 matching no message is known before any row is read: no budgeted walk, an exact 0."""
    many.config["TABLE_SCAN_BUDGET"] = 60
    auth.login("admin")
    html = auth.client.get("/sync-logs/?start_from=2000-01-01&error=无此内容").get_data(as_text=True)
    assert "共 0 条" in html and "暂无数据" in html and "继续查找" not in html


def test_a_bounded_count_stops_reading_once_it_has_enough(many):
    """bounded_count takes rows organisation by organisation and stops at cap + 1: one
    statement when the first organisation already holds enough (SQLite: one prepared walk
    each; PostgreSQL: one LATERAL statement whatever the number)."""
    from sqlalchemy import event
    from portal.table_walks import bounded_count
    orgs = sorted({o for o, in db.session.execute(select(SyncTask.org_id).distinct())})
    assert len(orgs) > 3 and db.session.scalar(select(func.count()).where(SyncTask.org_id == orgs[0])) > 11
    statements = []
    listener = lambda *a: statements.append(a[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        n = bounded_count(db.session, select(SyncTask), SyncTask.id, 10, SyncTask.org_id, orgs)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert n == 11 and len(statements) == 1


def test_one_walk_reads_at_most_a_few_pages_worth_of_rows(many):
    """The budget is shared by the walks but each reads at most TABLE_SCAN_PAGES pages' worth:
    a clerk's one organisation (or an organisation filter) does not read the whole budget
    for the first page of a rare combination; twenty organisations share it."""
    from urllib.parse import parse_qsl
    from werkzeug.datastructures import MultiDict
    many.config.update(TABLE_SCAN_BUDGET=1000, TABLE_SCAN_PAGES=2)
    o = org("ORG01")
    with many.test_request_context("/"):
        one = SYNC_TABLE.page(db.session, select(SyncTask), MultiDict([("org", str(o.id)), *parse_qsl(RARE_PAIR)]),
                              orgs=None)
        many.config["TABLE_SCAN_BUDGET"] = 60
        shared = SYNC_TABLE.page(db.session, select(SyncTask), MultiDict(parse_qsl(RARE_PAIR)), orgs=None)
    assert one.scan_budget == 2 * 21  # two pages of 20 (+1), not the whole budget
    assert shared.scan_budget == 21   # 60 shared by the organisations, at least a page each
