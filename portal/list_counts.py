"""Exact list counts at any size, from counters the database keeps itself.

A counted table declares its dimensions once (`Counted`, next to its model): the
organisation, the status, a few low-cardinality columns in groups, and one date. Triggers
(installed by the migrations from `ddl`) append +1/−1 rows to ``list_counts`` in the same
transaction as every insert, delete and change of a dimension — whatever wrote the row: the
workflow core's transition, an import, raw SQL — so the counts cannot drift from the table.

The journal is insert-only, so concurrent writers never wait on one another's counter rows
(no hot rows, no deadlocks). `compact` (run by the maintenance plan) folds each touched cell
back into one row; a read sums whatever is there, folded or not, so it is exact either way.

Cells written per row change:
- one total (``t``): (organisation, status), what a page without a counted filter reads
  (organisations × statuses cells, the same at any size);
- one per group: (group code, organisation, status, k1, k2), e.g. ``a`` = (download_type,
  channel): tab counts under organisation / type / channel filters;
- day and month cells (``d``, ``m``): (organisation, status, bucket), and the same for all
  organisations together (org 0): tab counts under a date range, with or without an
  organisation.
A count sums cells, and the number of cells is bounded by the dimensions (organisations ×
statuses × group values, or × days and months of the range), not by the rows: a count costs
the same over 10,000 rows as over 10,000,000.
"""
from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

from sqlalchemy import bindparam, func, or_, select, text, tuple_

from portal.models.counts import ALL_ORGS, DAY, MONTH, TOTAL, Counted, ListCount, registry



_COLS = "list, cuboid, org_id, bucket, status, k1, k2, n, folded"


def ddl(c: Counted, dialect: str) -> tuple[list[str], list[str]]:
    """(create, drop) statements of the triggers that keep `c`'s counts."""
    t = c.table
    if dialect == "postgresql":
        def rows(rel, sign):
            return _cells_of(c, rel, dialect, sign)
        insert = (f"INSERT INTO list_counts ({_COLS}) SELECT '{t}', cuboid, org_id, bucket, status, k1, k2, "
                  "sum(n), false FROM ({}) x "
                  "GROUP BY cuboid, org_id, bucket, status, k1, k2 HAVING sum(n) <> 0;")
        body = (f"IF TG_OP = 'INSERT' THEN {insert.format(rows('new_rows', 1))} "
                f"ELSIF TG_OP = 'DELETE' THEN {insert.format(rows('old_rows', -1))} "
                f"ELSE {insert.format(rows('old_rows', -1) + ' UNION ALL ' + rows('new_rows', 1))} END IF;")
        return ([f"CREATE OR REPLACE FUNCTION list_counts_{t}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                 f"BEGIN {body} RETURN NULL; END $$",
                 f"CREATE TRIGGER list_counts_{t}_ins AFTER INSERT ON {t} REFERENCING NEW TABLE AS new_rows "
                 f"FOR EACH STATEMENT EXECUTE FUNCTION list_counts_{t}()",
                 f"CREATE TRIGGER list_counts_{t}_upd AFTER UPDATE ON {t} REFERENCING OLD TABLE AS old_rows "
                 f"NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION list_counts_{t}()",
                 f"CREATE TRIGGER list_counts_{t}_del AFTER DELETE ON {t} REFERENCING OLD TABLE AS old_rows "
                 f"FOR EACH STATEMENT EXECUTE FUNCTION list_counts_{t}()"],
                [f"DROP TRIGGER IF EXISTS list_counts_{t}_{op} ON {t}" for op in ("ins", "upd", "del")]
                + [f"DROP FUNCTION IF EXISTS list_counts_{t}()"])

    def values(ref, sign):
        return ", ".join(f"('{t}', {', '.join(cell)}, {sign}, 0)" for cell in c.cells(ref, dialect))
    changed = " OR ".join(f"OLD.{col} IS NOT NEW.{col}" for col in c.columns)
    return ([f"CREATE TRIGGER list_counts_{t}_ins AFTER INSERT ON {t} BEGIN "
             f"INSERT INTO list_counts ({_COLS}) VALUES {values('NEW', 1)}; END",
             f"CREATE TRIGGER list_counts_{t}_del AFTER DELETE ON {t} BEGIN "
             f"INSERT INTO list_counts ({_COLS}) VALUES {values('OLD', -1)}; END",
             f"CREATE TRIGGER list_counts_{t}_upd AFTER UPDATE OF {', '.join(c.columns)} ON {t} "
             f"WHEN {changed} BEGIN "
             f"INSERT INTO list_counts ({_COLS}) VALUES {values('OLD', -1)}, {values('NEW', 1)}; END"],
            [f"DROP TRIGGER IF EXISTS list_counts_{t}_{op}" for op in ("ins", "upd", "del")])


# --- upkeep ---------------------------------------------------------------------------------
_CELL = ("cuboid", "org_id", "bucket", "status", "k1", "k2")


def _cells_of(c: Counted, rel: str, dialect: str, sign: int | None = None) -> str:
    """One SELECT per cell over `rel` (rows r), UNION ALL, columns named as in list_counts."""
    def one(cell):
        named = [f"{expr} AS {name}" for expr, name in zip(cell, _CELL)]
        return f"SELECT {', '.join(named)}, {sign if sign is not None else 1} AS n FROM {rel} r"
    return " UNION ALL ".join(one(cell) for cell in c.cells("r", dialect))


def rebuild(session, tables: list[str] | None = None) -> None:
    """Recompute the counts of `tables` (default: every counted table) from their rows.
    A repair and bulk-load tool; idempotent. The caller commits."""
    dialect = session.get_bind().dialect.name
    true = "true" if dialect == "postgresql" else "1"
    for name in tables or list(registry):
        c = registry[name]
        if dialect == "postgresql":  # writers wait: no row is counted twice or missed
            session.execute(text(f"LOCK TABLE {c.table} IN SHARE MODE"))
        session.execute(ListCount.__table__.delete().where(ListCount.list == c.table))
        session.execute(text(
            f"INSERT INTO list_counts ({_COLS}) SELECT '{c.table}', {', '.join(_CELL)}, sum(n), {true} "
            f"FROM ({_cells_of(c, c.table, dialect)}) x GROUP BY {', '.join(_CELL)}"))


def compact(session, batch: int = 2000) -> int:
    """Fold the cells touched since the last run into one row each; returns rows folded.
    Safe alongside writers and another compaction: each journal row is deleted (and its
    value re-inserted) by exactly one DELETE … RETURNING."""
    folded = 0
    key = (ListCount.list, ListCount.cuboid, ListCount.org_id, ListCount.bucket, ListCount.status,
           ListCount.k1, ListCount.k2)
    while True:
        cells = session.execute(select(*key).where(ListCount.folded.is_(False)).distinct().limit(batch)).all()
        if not cells:
            return folded
        gone = session.execute(ListCount.__table__.delete().where(tuple_(*key).in_(cells))
                               .returning(*(ListCount.__table__.c[k.key] for k in key), ListCount.__table__.c.n)).all()
        sums: dict[tuple, int] = {}
        for *cell, n in gone:
            sums[tuple(cell)] = sums.get(tuple(cell), 0) + n
        rows = [dict(zip([k.key for k in key], cell), n=n, folded=True) for cell, n in sums.items() if n]
        if rows:  # (an empty executemany would insert one row of NULLs)
            session.execute(ListCount.__table__.insert(), rows)
        folded += len(gone)
        session.commit()


# --- reading --------------------------------------------------------------------------------
def day_ranges(first: date | None, last: date | None) -> list[tuple[str, str, str]]:
    """[first, last] (either open) as (grain, low bucket, high bucket) ranges: the whole
    months inside as month buckets, the ragged ends as day buckets."""
    first, last = first or date.min, last or date.max
    if first > last:
        return []
    lo = _month_no(first) + (first.day != 1)     # first whole month
    hi = _month_no(last) - (not _month_end(last))  # last whole month
    if lo > hi:
        return [(DAY, first.isoformat(), last.isoformat())]
    out = []
    if first.day != 1:
        out.append((DAY, first.isoformat(), (_month_day1(lo) - timedelta(days=1)).isoformat()))
    out.append((MONTH, _month_day1(lo).isoformat()[:7], _month_day1(hi).isoformat()[:7]))
    if not _month_end(last):
        out.append((DAY, _month_day1(hi + 1).isoformat(), last.isoformat()))
    return out


def _month_no(d: date) -> int:
    return d.year * 12 + d.month - 1


def _month_day1(n: int) -> date:
    return date(n // 12, n % 12 + 1, 1)


def _month_end(d: date) -> bool:
    return d == date.max or (d + timedelta(days=1)).day == 1


def by_status(session, c: Counted, *, orgs: set[int] | None = None, group: str | None = None,
              keys: dict[str, str] | None = None, first: date | None = None,
              last: date | None = None, dated: bool = False, per_org: bool = False) -> dict:
    """Rows per status (one '' key for tables without status) of `c` in `orgs` (None: all),
    with group columns equal to `keys`, or created within [first, last] when `dated`.
    `per_org`: keyed by (organisation, status) instead."""
    if orgs is not None and not orgs:
        return {}
    params = {"list": c.table}
    if dated:
        ranges = day_ranges(first, last)
        if not ranges:
            return {}
        for i, (grain, low, high) in enumerate(ranges):
            params.update({f"g{i}": grain, f"lo{i}": low, f"hi{i}": high})
        where = "in" if orgs is not None else ("each" if per_org else "rollup")
        stmt = _status_stmt(per_org, len(ranges), where, ())
    else:  # a group's cells when one of its columns is fixed; else one cell per organisation and status
        code = group if group and keys else TOTAL
        params["cuboid"] = code
        used = tuple(i for i, col in enumerate(c.groups.get(code, ())) if col in keys)
        for i in used:
            params[f"k{i}"] = keys[c.groups[code][i]]
        stmt = _status_stmt(per_org, 0, "in" if orgs is not None else "", used)
    if orgs is not None:
        params["orgs"] = sorted(orgs)
    if per_org:
        return {(org, status): int(n) for org, status, n in session.execute(stmt, params) if n}
    return {status: int(n) for status, n in session.execute(stmt, params) if n}


@lru_cache(maxsize=256)
def _status_stmt(per_org: bool, ranges: int, orgs: str, keys: tuple[int, ...]):
    """The statement of `by_status` for one shape, built once and run with its parameters
    (building it anew on every page cost more Python than the query): `ranges` date ranges
    (0: a group cuboid), organisations "in" a list, "each" (every organisation's own cells),
    "rollup" (the all-organisations cells) or "" (no condition), and the group `keys`
    (0: k1, 1: k2) that are fixed."""
    lc = ListCount
    dims = (lc.org_id, lc.status) if per_org else (lc.status,)
    stmt = select(*dims, func.sum(lc.n)).where(lc.list == bindparam("list")).group_by(*dims)
    if ranges:
        stmt = stmt.where(or_(*((lc.cuboid == bindparam(f"g{i}"))
                                & lc.bucket.between(bindparam(f"lo{i}"), bindparam(f"hi{i}")) for i in range(ranges))))
    else:
        stmt = stmt.where(lc.cuboid == bindparam("cuboid"), lc.bucket == "")
    if orgs == "in":
        stmt = stmt.where(lc.org_id.in_(bindparam("orgs", expanding=True)))
    elif orgs == "each":
        stmt = stmt.where(lc.org_id != ALL_ORGS)
    elif orgs == "rollup":
        stmt = stmt.where(lc.org_id == ALL_ORGS)
    for i in keys:
        stmt = stmt.where((lc.k1 if i == 0 else lc.k2) == bindparam(f"k{i}"))
    return stmt
