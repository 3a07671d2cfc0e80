"""Benchmark: one page of the filterable-table component at two database sizes.

The requirement (tables.py): a filtered page over 1,000,000 rows costs no more than 1.5×
the same page over 10,000 rows. For each size this script times, as a median of --runs:

- ``page()``  — ``AUDIT_TABLE.page(db.session, select(AuditLog), args)``: the page query
  plus its bounded counts, which is what every list view pays;
- ``HTTP``    — ``GET /admin/audit?…`` through the Flask test client, logged in as admin
  (routing, auth, the page call, template rendering);
- ``raw SQL`` — the very SELECT … ORDER BY … LIMIT that ``page()`` emitted (captured from
  the engine), re-executed on the connection without the counts and without the ORM.

It prints both times, their ratio, and PASS/FAIL against the 1.5× target. It is a report,
not a test: it always exits 0. Seeded databases are reused on later runs (``--fresh``
rebuilds them). See bench/README.md.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(ROOT))
# Keep the bench's embedded Redis and secret away from the developer's instance/ folder.
os.environ.setdefault("PORTAL_INSTANCE", str(RESULTS / "instance"))
os.environ.setdefault("SECRET_KEY", "bench-secret-key")

from sqlalchemy import create_engine, event, func, select, text  # noqa: E402

from portal import clock, create_app  # noqa: E402
from portal.admin.routes import AUDIT_TABLE  # noqa: E402
from portal.config import database_url  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import AuditLog, User  # noqa: E402
from portal.seed import seed_demo  # noqa: E402

TARGET = 1.5
COLUMNS = ("at", "actor", "object_type", "object_id", "org_id", "action",
           "from_state", "to_state", "reason")


# --- databases ------------------------------------------------------------------------
def db_url_for(size: int) -> str:
    """One database per size, derived from DATABASE_URL (or SQLite files in bench/results)."""
    base = os.environ.get("DATABASE_URL")
    if not base:
        RESULTS.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{RESULTS / f'audit_{size}.db'}"
    os.environ["DATABASE_URL"] = base
    url = database_url()  # normalises postgres:// → postgresql+psycopg://
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        suffix = path.suffix or ".db"
        return f"sqlite:///{path.with_name(f'{path.stem}_{size}{suffix}')}"
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "portal"
    return urlunsplit(parts._replace(path=f"/{name}_{size}"))


def _pg_admin(url: str, sql: str) -> None:
    """CREATE/DROP DATABASE run from the server's `postgres` database."""
    parts = urlsplit(url)
    engine = create_engine(urlunsplit(parts._replace(path="/postgres")),
                           isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(sql))
    engine.dispose()


def prepare(url: str, fresh: bool) -> None:
    """Create (or drop and re-create) the database; the schema comes from the migrations."""
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        return
    name = urlsplit(url).path.lstrip("/")
    if fresh:
        _pg_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine = create_engine(urlunsplit(urlsplit(url)._replace(path="/postgres")))
    with engine.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
    engine.dispose()
    if not exists:
        _pg_admin(url, f'CREATE DATABASE "{name}"')


def bench_app(url: str, count_cap: int | None = None):
    overrides = {"TABLE_COUNT_CAP": count_cap} if count_cap else {}
    return create_app({**overrides,
        "SQLALCHEMY_DATABASE_URI": url,
        "TESTING": True,
        "WTF_CSRF_ENABLED": False,  # the bench logs in by a plain POST
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
    })


def _audit_rows(n: int):
    """The rows of portal.seed.seed_audit_rows (same generator, same seed), as tuples."""
    rnd = random.Random(42)
    start = clock.now() - timedelta(days=365)
    actions = ["login", "create", "update", "retry", "void", "export", "issue"]
    actors = [f"user{i}" for i in range(50)] + ["job:watchdog", "job:plans"]
    for k in range(n):
        yield (start + timedelta(seconds=k * 31 % (365 * 86400)), rnd.choice(actors),
               "sync_task", str(k), rnd.randint(1, 6), rnd.choice(actions), "", "", "")


def bulk_insert(n: int) -> None:
    """seed_audit_rows goes through the ORM (~1 min per million rows); this writes the
    same rows by COPY (PostgreSQL) or executemany on the raw sqlite3 connection."""
    conn = db.session.connection()
    raw = conn.connection.driver_connection
    cols = ", ".join(COLUMNS)
    if db.engine.dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f"COPY audit_log ({cols}) FROM STDIN") as copy:
            for row in _audit_rows(n):
                copy.write_row(row)
    else:
        marks = ", ".join("?" * len(COLUMNS))
        sql = f"INSERT INTO audit_log ({cols}) VALUES ({marks})"
        rows = _audit_rows(n)
        cur = raw.cursor()
        while chunk := [(r[0].isoformat(" "), *r[1:]) for _, r in zip(range(100_000), rows)]:
            cur.executemany(sql, chunk)
    db.session.commit()


def seed(app, size: int) -> None:
    """Migrate, add the demo users, and fill audit_log up to `size` bulk rows (once)."""
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()
        seed_demo(app.config["SANDBOX_URL"])
        have = db.session.scalar(select(func.count()).select_from(AuditLog)
                                 .where(AuditLog.object_type == "sync_task"))
        if have == size:
            print(f"  {size:>9,} rows: reusing {app.config['SQLALCHEMY_DATABASE_URI']}")
            return settle()
        if have:
            raise SystemExit(f"{app.config['SQLALCHEMY_DATABASE_URI']} holds {have} bulk rows, "
                             f"not {size}: rerun with --fresh")
        started = time.perf_counter()
        bulk_insert(size)
        print(f"  {size:>9,} rows: seeded in {time.perf_counter() - started:.1f}s "
              f"({app.config['SQLALCHEMY_DATABASE_URI']})")
        settle()


def settle() -> None:
    """PostgreSQL: VACUUM ANALYZE, as autovacuum does soon after a bulk insert. It sets the
    visibility map, without which the bounded counts cannot be index-only scans."""
    if db.engine.dialect.name == "postgresql":
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE audit_log"))


# --- measuring ------------------------------------------------------------------------
def median_ms(fn, runs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def queries(app) -> list[tuple[str, dict]]:
    """Representative query strings, resolved against this database's data."""
    with app.test_request_context(), app.app_context():
        first = db.session.scalar(select(func.min(AuditLog.at))
                                  .where(AuditLog.object_type == "sync_task"))
        day = (first + timedelta(days=2)).date().isoformat()  # a whole day in both sizes
        deep: dict = {}
        for number in range(2, 51):  # follow the keyset cursor 49 times → page 50
            page = AUDIT_TABLE.page(db.session, select(AuditLog), deep)
            deep = {"after": page.next_cursor, "page": str(number)}
        db.session.rollback()
    return [
        ("first page, time desc", {}),
        ("actor=user7 & action=void", {"actor": "user7", "action": "void"}),
        ("actor=user7", {"actor": "user7"}),
        ("org=3", {"org": "3"}),
        ("one day (from=to)", {"from": day, "to": day}),
        ("page 50 via cursor", deep),
    ]


class Capture:
    """Records the first statement the engine executes (the page query)."""

    def __init__(self, engine):
        self.engine, self.first = engine, None

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self.hook)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self.hook)

    def hook(self, conn, cursor, statement, parameters, context, executemany):
        if self.first is None:
            self.first = (statement, parameters)


def measure(app, size: int, runs: int) -> dict:
    results = {}
    client = app.test_client()
    with app.app_context():
        resp = client.post("/login", data={"username": "admin", "password": "demo1234"})
        assert resp.status_code == 302, f"admin login failed ({resp.status_code})"
    for name, args in queries(app):
        with app.test_request_context(), app.app_context():
            def page_call():
                AUDIT_TABLE.page(db.session, select(AuditLog), args)
                db.session.rollback()  # a fresh transaction per call, as per request

            with Capture(db.engine) as cap:
                page_call()
            statement, params = cap.first
            page_ms = median_ms(page_call, runs)

            conn = db.engine.raw_connection()  # DBAPI connection: no ORM, no SQLAlchemy

            def raw_sql():
                cur = conn.cursor()
                cur.execute(statement, params)
                cur.fetchall()
                cur.close()
                conn.rollback()

            raw_ms = median_ms(raw_sql, runs)
            conn.close()

        url = "/admin/audit" + ("?" + urlencode(args) if args else "")

        def http():
            with app.app_context():
                r = client.get(url)
            assert r.status_code == 200, (url, r.status_code)

        http_ms = median_ms(http, runs)
        results[name] = {"page": page_ms, "raw": raw_ms, "http": http_ms}
    return results


def report(small: int, large: int, rs: dict, rl: dict, dialect: str) -> None:
    s, l = f"@{_short(small)}", f"@{_short(large)}"
    head = (f"{'query':<27} {'layer':<7} {s:>9} {l:>9} {'ratio':>6} "
            f"{'rawSQL' + l:>11} {'÷raw':>6}  target ≤{TARGET}×")
    print(f"\nTable component, {dialect}: median ms per call\n")
    print(head)
    print("-" * len(head))
    fails = 0
    for name in rs:
        for layer in ("page", "http"):
            a, b = rs[name][layer], rl[name][layer]
            ratio = b / a
            ok = ratio <= TARGET
            fails += not ok
            raw = rl[name]["raw"]
            label = "page()" if layer == "page" else "HTTP"
            print(f"{name if layer == 'page' else '':<27} {label:<7} {a:>9.2f} {b:>9.2f} "
                  f"{ratio:>5.2f}× {raw:>11.3f} {b / raw:>5.1f}×  {'PASS' if ok else 'FAIL'}")
    print(f"\n{fails} of {2 * len(rs)} ratios above {TARGET}×. 'rawSQL' is the page SELECT alone "
          f"at {_short(large)} rows; '÷raw' = time{l} / rawSQL{l}.")


def _short(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-small", type=int, default=10_000)
    ap.add_argument("--size-large", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--fresh", action="store_true", help="drop and re-seed both databases")
    ap.add_argument("--count-cap", type=int, default=None,
                    help="try another TABLE_COUNT_CAP (default: the portal's setting)")
    opts = ap.parse_args(argv)

    results, dialect = {}, "?"
    print("databases:")
    for size in (opts.size_small, opts.size_large):
        url = db_url_for(size)
        prepare(url, opts.fresh)
        app = bench_app(url, opts.count_cap)
        seed(app, size)
        results[size] = app
    for size, app in results.items():
        with app.app_context():
            dialect = db.engine.dialect.name
            if dialect == "postgresql":
                dialect += " " + db.session.scalar(text("SHOW server_version"))
            else:
                import sqlite3
                dialect += " " + sqlite3.sqlite_version
        results[size] = measure(app, size, opts.runs)
    cap = app.config["TABLE_COUNT_CAP"]
    report(opts.size_small, opts.size_large, results[opts.size_small],
           results[opts.size_large], f"{dialect}, TABLE_COUNT_CAP={cap}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
