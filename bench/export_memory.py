"""Benchmark: the F18012 xlsx export — time and peak memory, 10,000 vs 100,000 rows.

Requirement: exporting 100,000 download tasks streams (memory stays flat: the peak at
100k ≈ the peak at 10k) and costs about what a raw openpyxl write-only export of the same
rows costs. Variants, each run in a fresh subprocess (so peaks do not mix):

- ``portal``   — ``portal.sync_logs.export.write_xlsx(export_query(admin, "", None)
  .where(SyncTask.id <= N), tmpfile)``: the code the export button / job runs;
- ``baseline`` — one plain SQL SELECT of the same 15 columns (sync_tasks JOIN
  organizations, same order), fetched by ``fetchmany(2000)`` on the DBAPI connection
  (a server-side cursor on PostgreSQL), cells built by the same ``export._row``, written
  with ``openpyxl.Workbook(write_only=True)``.

Figures per run: wall time of the export, peak RSS (``ru_maxrss`` of the child) and its
growth over the RSS before the export started, and — in a second child with tracemalloc on
(slower, so its time is not reported) — the peak of Python allocations during the export.
Uses the SQLite database of bench/lists.py (bench/listdata.py; default: the 1,000,000-task
one; DATABASE_URL=postgresql://… for PostgreSQL). Exits 0.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PLAIN_SQL = """
SELECT t.batch_no, o.code, o.name, t.status, t.download_type, t.start_date, t.end_date,
       t.success_count, t.invoice_count, t.sync_type, t.error, t.channel,
       t.created_at, t.updated_at, t.last_retry_at
FROM sync_tasks t JOIN organizations o ON o.id = t.org_id
WHERE t.id <= {n}
ORDER BY t.created_at DESC, t.id DESC
"""


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(variant: str, rows: int, url: str, trace: bool) -> dict:
    """One export in this (fresh) process; prints a JSON line with the figures."""
    import listdata
    from sqlalchemy import select
    from portal.extensions import db
    from portal.models import SyncTask, User
    from portal.sync_logs import export
    from portal.sync_logs.export import query as export_query

    app = listdata.bench_app(url)
    out = tempfile.NamedTemporaryFile(suffix=".xlsx", delete=False)
    out.close()
    with app.app_context():
        admin = db.session.scalar(select(User).where(User.username == "admin"))
        db.session.execute(select(SyncTask.id).limit(1)).all()  # connect before measuring
        if trace:
            import tracemalloc
            tracemalloc.start()
        rss_before = _maxrss_mb()
        t0 = time.perf_counter()
        if variant == "portal":
            n = export.write_xlsx(export_query(admin, "", None).where(SyncTask.id <= rows), out.name)
        else:
            n = baseline(db, rows, out.name)
        elapsed = time.perf_counter() - t0
        traced = None
        if trace:
            traced = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
    result = {"variant": variant, "rows": n, "seconds": elapsed, "rss_before": rss_before,
              "rss_peak": _maxrss_mb(), "traced_peak": traced,
              "file_mb": os.path.getsize(out.name) / 2**20}
    os.unlink(out.name)
    return result


def baseline(db, rows: int, path: str) -> int:
    from openpyxl import Workbook
    from portal.sync_logs import export

    raw = db.engine.raw_connection()
    pg = db.engine.dialect.name == "postgresql"
    cur = raw.driver_connection.cursor(name="export") if pg else raw.cursor()
    cur.execute(PLAIN_SQL.format(n=int(rows)))
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("数据同步日志")
    ws.append(export.HEADERS)
    n = 0
    parse = (lambda v: v) if pg else (lambda v: datetime.fromisoformat(v) if v else None)
    while chunk := cur.fetchmany(2000):
        for r in chunk:
            if not pg:  # sqlite3 returns dates as text
                r = (*r[:12], parse(r[12]), parse(r[13]), parse(r[14]))
            ws.append(export._row(r))
            n += 1
    cur.close()
    raw.rollback()
    raw.close()
    wb.save(path)
    return n


def run_child(variant: str, rows: int, url: str, trace: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", variant, str(rows), url] + (["--trace"] if trace else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not line:
        print(proc.stdout[-2000:], proc.stderr[-4000:])
        raise SystemExit(f"child {variant} {rows} failed")
    return json.loads(line[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", nargs=3, metavar=("VARIANT", "ROWS", "URL"), help=argparse.SUPPRESS)
    ap.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=1_000_000,
                    help="task database to export from (as seeded by bench/lists.py)")
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--no-tracemalloc", action="store_true", help="skip the tracemalloc runs")
    ap.add_argument("--fresh", action="store_true", help="drop and re-seed the database")
    opts = ap.parse_args(argv)
    if opts.child:
        variant, rows, url = opts.child
        print(json.dumps(child(variant, int(rows), url, opts.trace)))
        return 0

    import listdata
    kind = "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    loaders = {"sync-table": listdata.load_sync_tasks, "audit-table": listdata.load_audit_rows}
    url = listdata.open_database(kind, opts.size, opts.fresh, loaders)
    title = listdata.dialect_version(listdata.bench_app(url))
    res = {}
    for rows in opts.rows:
        for variant in ("baseline", "portal"):
            r = run_child(variant, rows, url, False)
            if not opts.no_tracemalloc:
                r["traced_peak"] = run_child(variant, rows, url, True)["traced_peak"]
            res[(variant, rows)] = r
            print(f"  {variant:<8} {rows:>7,} rows: {r['seconds']:.2f}s", flush=True)

    print(f"\nF18012 export, {title}, from {opts.size:,} tasks (each run a fresh process)\n")
    head = (f"{'rows':>8} {'variant':<9} {'time s':>7} {'÷base':>6} {'peakRSS':>8} {'ΔRSS':>7} "
            f"{'÷base':>6} {'traced':>7} {'file':>6}")
    print(head + "\n" + "-" * len(head))
    for rows in opts.rows:
        b = res[("baseline", rows)]
        for variant in ("baseline", "portal"):
            r = res[(variant, rows)]
            d, bd = r["rss_peak"] - r["rss_before"], b["rss_peak"] - b["rss_before"]
            tr = f"{r['traced_peak']:>6.1f}M" if r["traced_peak"] is not None else f"{'-':>7}"
            print(f"{r['rows']:>8,} {variant:<9} {r['seconds']:>7.2f} {r['seconds'] / b['seconds']:>5.2f}× "
                  f"{r['rss_peak']:>7.1f}M {d:>6.1f}M {d / bd if bd > 0.05 else float('nan'):>5.2f}× "
                  f"{tr} {r['file_mb']:>5.1f}M")
    if len(opts.rows) >= 2:
        lo, hi = min(opts.rows), max(opts.rows)
        print()
        for variant in ("baseline", "portal"):
            a, b = res[(variant, lo)], res[(variant, hi)]
            flat = b["rss_peak"] / a["rss_peak"]
            extra = ""
            if a["traced_peak"] is not None:
                extra = f", traced {a['traced_peak']:.1f} → {b['traced_peak']:.1f} MB"
            print(f"{variant:<9} peak RSS {tp_short(lo)} → {tp_short(hi)}: {a['rss_peak']:.1f} → "
                  f"{b['rss_peak']:.1f} MB ({flat:.2f}×){extra}; time per 10k rows "
                  f"{a['seconds'] / lo * 1e4:.2f} → {b['seconds'] / hi * 1e4:.2f} s")
    print("\npeakRSS = ru_maxrss of the child; ΔRSS = peak − RSS before the export (imports, app, "
          "connection); traced = tracemalloc peak during the export (separate run).")
    return 0


def tp_short(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


if __name__ == "__main__":
    sys.exit(main())
