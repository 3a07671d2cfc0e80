"""Database upkeep the product does itself: planner statistics and count compaction.

The PostgreSQL server may run with autovacuum off, and SQLite never analyses on its own,
so nothing here may depend on a person running ANALYZE. `run` does what autovacuum's
analyse/vacuum thresholds would do, for every table of ours:

- PostgreSQL: ``VACUUM (ANALYZE)`` a table once the rows inserted, updated or deleted since
  its last analyse exceed 50 + 10 % of its rows (VACUUM also keeps the visibility map
  current, which index-only counts need);
- SQLite: ``ANALYZE`` a table once its row count differs by more than 10 % from the count
  its statistics were taken at, or has an index without statistics (a migration added
  it) — a full ANALYZE: a sampled one (``analysis_limit``)
  estimates rows per organisation from the first entries of each index, e.g. 2,001 rows
  for an organisation holding 270,000, and the planner then walks the wrong index.

It also folds the journal of list counts (`portal.list_counts.compact`). The plan
``sim_DatabaseMaintenance`` runs it every few minutes; ``flask seed`` and the end of a
bulk import run it too, so a freshly loaded database has statistics at once.
"""
from __future__ import annotations

from sqlalchemy import inspect, text

from portal.extensions import db

ANALYZE_BASE, ANALYZE_FRACTION = 50, 0.10


def run(force: bool = False) -> str:
    """Refresh stale statistics and fold the count journal; returns a short summary."""
    from portal import list_counts

    folded = list_counts.compact(db.session)
    db.session.commit()
    refreshed = refresh_statistics(force)
    return f"合并计数 {folded} 条，更新统计信息的表 {len(refreshed)} 个"


def refresh_statistics(force: bool = False) -> list[str]:
    """Analyse the tables whose statistics are missing or stale; returns their names."""
    engine = db.engine
    if engine.dialect.name == "postgresql":
        return _postgresql(engine, force)
    return _sqlite(engine, force)


def _postgresql(engine, force: bool) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT relname, n_live_tup, n_mod_since_analyze, n_ins_since_vacuum, "
            "last_analyze IS NULL AND last_autoanalyze IS NULL "
            "FROM pg_stat_user_tables WHERE schemaname = current_schema()")).all()
    stale = [name for name, live, modified, inserted, never in rows
             if force or (never and (live or modified)) or
             max(modified or 0, inserted or 0) > ANALYZE_BASE + ANALYZE_FRACTION * (live or 0)]
    if stale:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name in stale:
                conn.execute(text(f'VACUUM (ANALYZE) "{name}"'))  # names from the catalogue
    return stale


def _sqlite(engine, force: bool) -> list[str]:
    tables = [t for t in inspect(engine).get_table_names() if not t.startswith("sqlite_")]
    stale = []
    with engine.connect() as conn:
        has_stats = conn.execute(text(
            "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")).first() is not None
        analysed, indexed = {}, set()
        if has_stats:
            for tbl, idx, stat in conn.execute(text("SELECT tbl, idx, stat FROM sqlite_stat1")):
                rows = int(str(stat).split()[0]) if stat else 0  # (a partial index holds fewer)
                analysed[tbl] = max(analysed.get(tbl, 0), rows)
                indexed.add(idx)
        unanalysed = set()  # tables with an index that has no statistics, e.g. a migration added it
        for tbl, idx, sql in conn.execute(text("SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'index'")):
            if idx in indexed:
                continue
            condition = (sql or "").partition(" WHERE ")[2]  # (our schema's own text)
            if condition and conn.execute(text(f'SELECT 1 FROM "{tbl}" WHERE {condition} LIMIT 1')).first() is None:
                continue  # an empty partial index gets no statistics row
            unanalysed.add(tbl)
        for name in tables:
            count = conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar()
            before = analysed.get(name)
            if force or (count and (before is None or name in unanalysed)) or (
                    before is not None and abs(count - before) > ANALYZE_BASE + ANALYZE_FRACTION * before):
                stale.append(name)
        if stale:
            conn.execute(text("PRAGMA analysis_limit = 0"))  # exact: see the module docstring
            for name in stale:
                conn.execute(text(f'ANALYZE "{name}"'))
            conn.commit()
    return stale
