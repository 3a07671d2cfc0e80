"""Benchmark: the F18012 download-task list at 10,000 vs 1,000,000 tasks.

Requirement: a page of the F18012 list over 1,000,000 tasks costs no more than 1.5× the
same page over 10,000 tasks. For each size and query this script times, as a median:

- ``admin``  — ``SYNC_TABLE.page(db.session, visible_tasks(), args)`` in a request context
  with the demo ``admin`` logged in (flask_login.login_user): page SELECT + bounded counts
  (total and the status-tab counts);
- ``clerk``  — the same call as ``kaipiao1`` (grants on ORG01/ORG02 only: ``org_id IN``);
- ``HTTP``   — ``GET /sync-logs/?…`` via the test client, logged in through the /login form
  (CSRF token, password demo1234), as admin and as the clerk;
- ``raw``    — the page SELECT that ``page()`` emitted, re-executed on the DBAPI connection.

Prints the figures, ratios and PASS/FAIL against 1.5×; always exits 0. Databases are
shared with bench/export_memory.py and reused (``--fresh`` rebuilds them). Helpers come
from bench/table_page.py. See bench/README.md, section "F18012 download tasks".
"""
from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import table_page as tp  # noqa: E402  (sets sys.path, PORTAL_INSTANCE, SECRET_KEY)

from flask_login import login_user  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from portal import clock, create_app  # noqa: E402
from portal.config import database_url  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import Organization, SyncTask, User  # noqa: E402
from portal.seed import seed_demo  # noqa: E402
from portal.sync_logs.views import SYNC_TABLE, visible_tasks  # noqa: E402

TARGET = tp.TARGET
COLUMNS = ("batch_no", "org_id", "status", "download_type", "sync_type", "start_date",
           "end_date", "success_count", "invoice_count", "error", "channel", "channel_task_id",
           "retry_count", "version", "created_by", "created_at", "updated_at", "requested_at",
           "processing_since")
USERS = ("admin", "kaipiao1")


# --- databases ------------------------------------------------------------------------
def db_url_for(size: int) -> str:
    """bench/results/sync_<size>.db, or NAME_<size> for DATABASE_URL=…/NAME."""
    base = os.environ.get("DATABASE_URL")
    if not base:
        tp.RESULTS.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{tp.RESULTS / f'sync_{size}.db'}"
    url = database_url()
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        suffix = path.suffix or ".db"
        return f"sqlite:///{path.with_name(f'{path.stem}_{size}{suffix}')}"
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{parts.path.lstrip('/') or 'portal'}_{size}"))


def bench_app(url: str, count_cap: int | None = None, csrf: bool = True):
    overrides = {"TABLE_COUNT_CAP": count_cap} if count_cap else {}
    return create_app({**overrides, "SQLALCHEMY_DATABASE_URI": url, "TESTING": True,
                       "WTF_CSRF_ENABLED": csrf, "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"})


def _task_rows(n: int, orgs: list[tuple[int, str]]):
    """The rows of portal.seed.seed_sync_tasks (same generator, same seed), as tuples."""
    from portal.channels.base import DownloadType
    from portal.models.sync import SyncStatus, SyncType

    rnd = random.Random(7)
    statuses = [s.value for s in SyncStatus]
    weights = [3, 3, 4, 5, 3, 2, 10, 68, 2]
    types, sync_types = [t.value for t in DownloadType], [t.value for t in SyncType]
    start = clock.now() - timedelta(days=730)
    stamp = clock.now().strftime("%Y%m%d")
    for k in range(n):
        org_id, channel = orgs[k % len(orgs)]
        created = start + timedelta(seconds=k * 61 % (730 * 86400))
        status = rnd.choices(statuses, weights)[0]
        count = rnd.randint(0, 300)
        yield (f"BK{stamp}{k:010d}", org_id, status, rnd.choice(types), rnd.choice(sync_types),
               created.date().replace(day=1), created.date(),
               count if status == "success" else 0, count,
               "税局繁忙，请稍后再试" if status in ("failed", "apply_failed") else "",
               channel, "", 0, 0, "seed", created, created, created,
               created if status == "processing" else None)


def bulk_insert(n: int) -> None:
    """seed_sync_tasks goes through the ORM; this writes the same rows by COPY
    (PostgreSQL) or executemany on the raw sqlite3 connection."""
    orgs = [(o.id, o.channel) for o in db.session.scalars(select(Organization).order_by(Organization.id))]
    conn = db.session.connection()
    raw = conn.connection.driver_connection
    cols = ", ".join(COLUMNS)
    if db.engine.dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f"COPY sync_tasks ({cols}) FROM STDIN") as copy:
            for row in _task_rows(n, orgs):
                copy.write_row(row)
    else:  # SQLAlchemy's SQLite storage formats, so string comparisons stay consistent
        def fmt(v):
            if hasattr(v, "hour"):
                return v.strftime("%Y-%m-%d %H:%M:%S.%f")
            return v.isoformat() if hasattr(v, "isoformat") else v
        sql = f"INSERT INTO sync_tasks ({cols}) VALUES ({', '.join('?' * len(COLUMNS))})"
        rows, cur = _task_rows(n, orgs), raw.cursor()
        while chunk := [tuple(fmt(v) for v in r) for _, r in zip(range(50_000), rows)]:
            cur.executemany(sql, chunk)
    db.session.commit()


def seed(app, size: int) -> None:
    """Migrate, add the demo orgs/users, and fill sync_tasks with `size` rows (once)."""
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()
        seed_demo(app.config["SANDBOX_URL"])
        have = db.session.scalar(select(func.count()).select_from(SyncTask)
                                 .where(SyncTask.created_by == "seed"))
        uri = app.config["SQLALCHEMY_DATABASE_URI"]
        if have == size:
            print(f"  {size:>9,} tasks: reusing {uri}")
        elif have:
            raise SystemExit(f"{uri} holds {have} seeded tasks, not {size}: rerun with --fresh")
        else:
            started = time.perf_counter()
            bulk_insert(size)
            print(f"  {size:>9,} tasks: seeded in {time.perf_counter() - started:.1f}s ({uri})")
        settle()


def settle() -> None:
    if db.engine.dialect.name == "postgresql":
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE sync_tasks"))
    else:  # statistics, and fold the seeding's WAL into the file (a big WAL slows reads)
        db.session.execute(text("ANALYZE sync_tasks"))
        db.session.commit()
        db.session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        db.session.commit()


def open_databases(sizes, fresh: bool, count_cap=None, csrf=True) -> dict:
    apps = {}
    print("databases:")
    for size in sizes:
        url = db_url_for(size)
        tp.prepare(url, fresh)
        app = bench_app(url, count_cap, csrf)
        seed(app, size)
        apps[size] = app
    return apps


def dialect_name(app) -> str:
    with app.app_context():
        name = db.engine.dialect.name
        if name == "postgresql":
            return name + " " + db.session.scalar(text("SHOW server_version"))
        import sqlite3
        return name + " " + sqlite3.sqlite_version


# --- measuring ------------------------------------------------------------------------
def median_ms(fn, runs: int, warmup: int = 2, budget: float = 3.0) -> float:
    """Median of up to `runs` calls; slow calls stop after `budget` seconds (≥ 5 samples)."""
    for _ in range(warmup):
        fn()
    samples, t_end = [], time.perf_counter() + budget
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
        if len(samples) >= 5 and t0 > t_end:
            break
    return statistics.median(samples) * 1000


def as_user(app, username: str):
    """A request context with `username` logged in (flask_login.login_user)."""
    ctx = app.test_request_context()
    ctx.push()
    login_user(db.session.scalar(select(User).where(User.username == username)))
    return ctx


def queries(app) -> list[tuple[str, dict | None]]:
    """Representative query strings, resolved against this database's data.

    Entries whose args are None are per-user (deep cursor), resolved in `deep_args`."""
    with app.app_context():
        stamp = db.session.scalar(select(SyncTask.batch_no).order_by(SyncTask.id).limit(1))[:10]
        org3 = db.session.scalar(select(Organization.id).where(Organization.code == "ORG01"))
    return [
        ("first page (+9 tab counts)", {}),
        ("status=failed", {"status": "failed"}),
        ("in_full & status=success", {"download_type": "in_full", "status": "success"}),
        # k = 1000…1999: the same 1,000 tasks at both sizes (the oldest ones)
        (f"batch_no prefix …0000001", {"batch_no": f"{stamp}0000001"}),
        ("org=ORG01", {"org": str(org3)}),
        ("page 50 via cursor", None),
        ("sort=invoice_count desc", {"sort": "invoice_count", "dir": "desc"}),
    ]


def deep_args(pages: int = 50) -> dict:
    args: dict = {}
    for number in range(2, pages + 1):
        page = SYNC_TABLE.page(db.session, visible_tasks(), args)
        args = {"after": page.next_cursor, "page": str(number)}
    db.session.rollback()
    return args


def login_client(app, username: str):
    client = app.test_client()
    with app.app_context():
        html = client.get("/login").get_data(as_text=True)
        m = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or \
            re.search(r'value="([^"]+)"[^>]*name="csrf_token"', html)
        data = {"username": username, "password": "demo1234"}
        if m:
            data["csrf_token"] = m.group(1)
        resp = client.post("/login", data=data)
        assert resp.status_code == 302, f"{username} login failed ({resp.status_code})"
    return client


def measure(app, runs: int) -> tuple[dict, dict]:
    results, statements = {}, {}
    clients = {u: login_client(app, u) for u in USERS}
    for name, args in queries(app):
        row = {}
        for user in USERS:
            ctx = as_user(app, user)
            try:
                a = deep_args() if args is None else args

                def page_call():
                    SYNC_TABLE.page(db.session, visible_tasks(), a)
                    db.session.rollback()

                visible_tasks()  # grants loaded once per request, outside the capture
                with tp.Capture(db.engine) as cap:
                    SYNC_TABLE.page(db.session, visible_tasks(), a)
                db.session.rollback()
                statement, params = cap.first
                statements[(name, user)] = (statement, params)
                row[f"page:{user}"] = median_ms(page_call, runs)
                conn = db.engine.raw_connection()

                def raw_sql():
                    cur = conn.cursor()
                    cur.execute(statement, params)
                    cur.fetchall()
                    cur.close()
                    conn.rollback()

                row[f"raw:{user}"] = median_ms(raw_sql, runs)
                conn.close()
            finally:
                ctx.pop()
            url = "/sync-logs/" + ("?" + urlencode(a) if a else "")
            client = clients[user]

            def http():
                with app.app_context():
                    r = client.get(url)
                assert r.status_code == 200, (url, r.status_code)

            row[f"http:{user}"] = median_ms(http, runs)
        results[name] = row
        print(f"  measured: {name}", flush=True)
    return results, statements


def report(small: int, large: int, rs: dict, rl: dict, title: str) -> int:
    s, l = f"@{tp._short(small)}", f"@{tp._short(large)}"
    head = (f"{'query':<27} {'layer':<12} {s:>8} {l:>8} {'ratio':>6} "
            f"{'raw' + s:>8} {'raw' + l:>8} {'ratio':>6}  ≤{TARGET}×")
    print(f"\nF18012 task list, {title}: median ms per call\n")
    print(head)
    print("-" * len(head))
    fails = total = 0
    for name in rs:
        first = True
        for layer in ("page", "http"):
            for user in USERS:
                a, b = rs[name][f"{layer}:{user}"], rl[name][f"{layer}:{user}"]
                ra, rb = rs[name][f"raw:{user}"], rl[name][f"raw:{user}"]
                ok = b / a <= TARGET
                fails += not ok
                total += 1
                label = ("page() " if layer == "page" else "HTTP ") + ("admin" if user == "admin" else "clerk")
                print(f"{name if first else '':<27} {label:<12} {a:>8.2f} {b:>8.2f} {b / a:>5.2f}× "
                      f"{ra:>8.3f} {rb:>8.3f} {rb / ra:>5.2f}×  {'PASS' if ok else 'FAIL'}")
                first = False
    print(f"\n{fails} of {total} ratios above {TARGET}× (page()/HTTP: time{l} / time{s}; "
          f"raw = the page SELECT alone on the DBAPI connection, per user).")
    return fails


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-small", type=int, default=10_000)
    ap.add_argument("--size-large", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--fresh", action="store_true", help="drop and re-seed both databases")
    ap.add_argument("--count-cap", type=int, default=None,
                    help="try another TABLE_COUNT_CAP (default: the portal's setting)")
    ap.add_argument("--explain", action="store_true",
                    help="print the query plan of each page SELECT at the large size")
    opts = ap.parse_args(argv)

    apps = open_databases((opts.size_small, opts.size_large), opts.fresh, opts.count_cap)
    results, stmts = {}, {}
    for size, app in apps.items():
        print(f"measuring {size:,} tasks…")
        results[size], stmts[size] = measure(app, opts.runs)
    app = apps[opts.size_large]
    cap = app.config["TABLE_COUNT_CAP"]
    report(opts.size_small, opts.size_large, results[opts.size_small],
           results[opts.size_large], f"{dialect_name(app)}, TABLE_COUNT_CAP={cap}")
    if opts.explain:
        explain(app, stmts[opts.size_large])
    return 0


def explain(app, statements: dict) -> None:
    with app.app_context():
        conn = db.engine.raw_connection()
        pg = db.engine.dialect.name == "postgresql"
        for (name, user), (statement, params) in statements.items():
            cur = conn.cursor()
            cur.execute(("EXPLAIN (ANALYZE, BUFFERS) " if pg else "EXPLAIN QUERY PLAN ") + statement, params)
            print(f"\n-- {name} / {user}")
            for r in cur.fetchall():
                print("  ", r[0] if pg else r[-1])
            cur.close()
            conn.rollback()
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
