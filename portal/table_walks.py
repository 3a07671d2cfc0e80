"""Index walks behind a list page that cost the same at any size (used by portal.tables).

A partitioned list (download tasks: by organisation) keeps every index led by the
organisation, so one organisation's rows in any sort order are one contiguous index range.
A page over several organisations walks each one's range for at most a page of rows and
merges them; a bounded count takes rows from the walks until it has enough. Neither reads
a row of an organisation the user cannot see, and neither grows with the table.

One statement shape serves any number of organisations (`_walks`): on PostgreSQL a
LATERAL join over the organisations' ids, so the statement is planned once however many
there are; on SQLite, which runs in-process, the same prepared statement once per
organisation, merged in Python (SQLite compares text by code point, as Python does).
Building a UNION of twenty subqueries cost more Python and planning than the walks.
"""
from __future__ import annotations

import heapq
import itertools
import json

from sqlalchemy import ARRAY, Integer, Select, and_, bindparam, case, func, or_, select, text, true

_CODE_POINT_ORDER: dict[str, bool] = {}


def distinct_values(session, col, limit: int) -> list | None:
    """The distinct non-null values of an indexed column in order, read by skipping through
    its index (one probe per value), or None when there are more than `limit`."""
    table, name = col.table.name, col.key
    rows = session.execute(text(
        f"WITH RECURSIVE v(t, n) AS ("
        f"SELECT (SELECT min({name}) FROM {table}), 1 "
        f"UNION ALL SELECT (SELECT min({name}) FROM {table} WHERE {name} > v.t), n + 1 "
        f"FROM v WHERE v.t IS NOT NULL AND n <= :limit) "
        f"SELECT t, n FROM v WHERE t IS NOT NULL"), {"limit": limit}).all()
    return None if any(n > limit for _, n in rows) else [t for t, _ in rows]


def _walks(session, stmt: Select, partition, limits: dict, shape, order: int = 0, descending: bool = False,
           limit: int | None = None, post=None) -> list:
    """The rows of `shape(walk, n)` for each partition value (`limits`: value → n), where
    `walk` is `stmt` narrowed to that value; merged by their first `order` columns
    (0: unordered) and cut at `limit`. `shape` must be one SELECT (no subquery in its FROM,
    which could not see the LATERAL's value); `post(rows, part)` may work on its rows per
    walk (`part`: the column of the walk's value, None where each walk is its own
    statement). `partition` None: one walk over `stmt`."""
    def finish(rows, part):
        return post(rows, part) if post else select(*rows.c)
    if partition is not None and not limits:
        return []
    dialect = session.get_bind().dialect
    if partition is not None and order and dialect.name == "sqlite":
        return _sqlite_walks(session, stmt, partition, limits, shape, order, descending, limit, finish)
    if partition is None or dialect.name != "postgresql":
        if partition is None:
            each = [list(session.execute(finish(shape(stmt, limits.get(None, limit)).subquery(), None)))]
        else:
            walk = finish(shape(stmt.where(partition == bindparam("walk_value")), bindparam("walk_n")).subquery(), None)
            each, taken = [], 0
            for v, n in limits.items():
                if not order and limit is not None:  # unordered (a bounded count): stop once enough
                    if taken >= limit:
                        break
                    n = min(n, limit - taken)
                each.append(list(session.execute(walk, {"walk_value": v, "walk_n": n})))
                taken += len(each[-1])
        rows = heapq.merge(*each, key=lambda r: tuple(r[:order]), reverse=descending) if order else (
            r for rows in each for r in rows)
        out = []
        for r in rows:
            if limit is not None and len(out) >= limit:
                break
            out.append(r)
        return out
    values, ns = zip(*limits.items())
    p = func.unnest(bindparam("walk_values", list(values), type_=ARRAY(partition.type)),
                    bindparam("walk_limits", list(ns), type_=ARRAY(Integer))
                    ).table_valued("value", "n").render_derived(name="p")
    walk = shape(stmt.where(partition == p.c.value), p.c.n).lateral("w")
    joined = select(*walk.c, p.c.value.label("part")).select_from(p).join(walk, true()).subquery()
    merged = finish(joined, joined.c.part) if post else select(*list(joined.c)[:-1])
    if order:
        cols = list(merged.selected_columns)[:order]
        merged = merged.order_by(*(c.desc() if descending else c.asc() for c in cols))
    return list(session.execute(merged.limit(limit) if limit is not None else merged))


def _sqlite_walks(session, stmt: Select, partition, limits: dict, shape, order: int, descending: bool,
                  limit: int | None, finish) -> list:
    """`_walks` on SQLite in one statement: each organisation's walk is a correlated
    subquery over json_each(the organisations) whose rows come back as one JSON array (SQLite
    has no LATERAL). Twenty walks cost one statement's overhead instead of twenty. The walks
    read at most the largest of `limits` rows each (a walk's range ends at its last match, so
    a smaller limit would not stop it sooner); each is cut to its own limit here, and the
    rows kept are converted back to their columns' types (SQLite stores dates and times as
    ISO text, which sorts as the values do)."""
    p = func.json_each(bindparam("walk_values", json.dumps(list(limits)))).table_valued("value").alias("p")
    walk = finish(shape(stmt.where(partition == p.c.value), max(limits.values())).correlate(p).subquery(), None)
    dialect = session.get_bind().dialect
    convert = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in walk.selected_columns]
    rows = select(p.c.value, select(func.json_group_array(func.json_array(*walk.subquery().c)))
                  .scalar_subquery())
    each = [json.loads(found)[:limits[value]] for value, found in session.execute(rows)]
    merged = heapq.merge(*each, key=lambda r: r[:order], reverse=descending)  # stored text sorts as its values
    kept = itertools.islice(merged, limit) if limit is not None else merged
    return [tuple(f(v) if f else v for f, v in zip(convert, r)) for r in kept]


def _each(partition, values: list | None, n: int) -> tuple:
    """(partition, limits) for `_walks`: n rows from each value's walk, or from the one walk
    over the whole statement when there are no values (None)."""
    return (partition, {v: n for v in values}) if values is not None else (None, {None: n})


def _ordered(key: tuple, descending: bool) -> list:
    return [c.desc() if descending else c.asc() for c in key]


def merged_ids(session, stmt: Select, partition, walks: dict, key: tuple, descending: bool,
               limit: int) -> list:
    """Ids of the first `limit` rows of `stmt` in `key` order (its last column the id):
    one ordered walk of at most walks[value] rows per partition value, merged."""
    def shape(walk, n):
        return (walk.with_only_columns(*(c.label(f"k{i}") for i, c in enumerate(key)), maintain_column_froms=True)
                .order_by(*_ordered(key, descending)).limit(n))
    rows = _walks(session, stmt, partition, walks, shape, len(key), descending, limit)
    return [r[len(key) - 1] for r in rows]


def bounded_count(session, stmt: Select, id_col, cap: int, partition=None, values: list | None = None) -> int:
    """Rows of `stmt`, counted up to cap + 1 (so "more than cap" is known); with partition
    values, taken from one walk per value until enough."""
    def shape(walk, n):
        return walk.with_only_columns(id_col).order_by(None).limit(n)
    return len(_walks(session, stmt, *_each(partition, values, cap + 1), shape, limit=cap + 1))


def _budgeted_walk(key: tuple, residual: list, descending: bool, budget: int):
    """(shape, post) of walks of at most `budget` rows in `key` order: each walk's matches
    (hit = 1) and, when it used its whole budget, its last row (edge)."""
    hit = case((and_(*residual), 1), else_=0)

    def shape(walk, n):
        return (walk.with_only_columns(*(c.label(f"k{i}") for i, c in enumerate(key)), hit.label("hit"),
                                       maintain_column_froms=True)
                .order_by(*_ordered(key, descending)).limit(budget))

    def post(rows, part):
        keys = [rows.c[f"k{i}"] for i in range(len(key))]
        rn = func.row_number().over(partition_by=part, order_by=_ordered(keys, descending)) if part is not None \
            else func.row_number().over(order_by=_ordered(keys, descending))
        numbered = select(*keys, rows.c.hit, rn.label("rn")).subquery()
        return (select(*(numbered.c[f"k{i}"] for i in range(len(key))), numbered.c.hit,
                       (numbered.c.rn == budget).label("edge"))
                .where(or_(numbered.c.hit == 1, numbered.c.rn == budget)))
    return shape, post


def budgeted_ids(session, stmt: Select, residual: list, partition, values: list | None, key: tuple,
                 descending: bool, limit: int, budget: int) -> tuple[list, tuple | None, int, bool]:
    """Like merged_ids for filters no single index serves together: each walk reads at
    most `budget` rows of the index range that `stmt` selects (in `key` order) and tests
    the `residual` clauses on those rows only, so a page costs the same however rare the
    combination is. One statement returns every match within the budgets and, for each
    walk that used its whole budget, its last row.

    Returns (ids, boundary, found, short): the first `limit` matches in order that come
    before the first boundary; that boundary's key or None (rows up to it are complete, and
    the next page — a user's 继续查找 — starts after it); the matches found in all; whether
    a walk ran out of budget (then `found` is only a lower bound)."""
    shape, post = _budgeted_walk(key, residual, descending, budget)
    rows = _walks(session, stmt, *_each(partition, values, budget), shape, len(key), descending, post=post)
    ids, boundary, found, short = [], None, 0, False
    for row in rows:
        hit, edge = row[len(key)], row[len(key) + 1]
        found += hit
        if hit and boundary is None and len(ids) < limit:
            ids.append(row[len(key) - 1])
        if edge:
            short = True
            if boundary is None and len(ids) < limit:
                boundary = tuple(row[:len(key)])
    return ids, boundary, found, short


def budgeted_count(session, stmt: Select, residual: list, partition, values: list | None, key: tuple,
                   budget: int) -> tuple[int, bool]:
    """(rows matching the `residual` clauses among the first `budget` rows of each walk,
    whether a walk ran out of budget — then the figure is only a lower bound)."""
    hit = case((and_(*residual), 1), else_=0)

    def shape(walk, n):
        return walk.with_only_columns(hit.label("hit"), maintain_column_froms=True) \
            .order_by(*_ordered(key, True)).limit(budget)

    def post(rows, part):
        counts = select(func.count().label("n"), func.coalesce(func.sum(rows.c.hit), 0).label("hits"))
        return counts.group_by(part) if part is not None else counts
    rows = _walks(session, stmt, *_each(partition, values, budget), shape, post=post)
    return sum(int(r.hits) for r in rows), any(r.n >= budget for r in rows)


def code_point_order() -> bool:
    """Whether the database compares text by code point (SQLite; PostgreSQL with a C
    collation), so that a prefix is also a range. Asked once per database."""
    from portal.extensions import db

    url = str(db.engine.url)
    if url not in _CODE_POINT_ORDER:
        if db.engine.dialect.name == "sqlite":
            _CODE_POINT_ORDER[url] = True
        else:
            collation = db.session.scalar(text(
                "SELECT datcollate FROM pg_database WHERE datname = current_database()"))
            _CODE_POINT_ORDER[url] = collation in ("C", "POSIX") or str(collation).startswith("C.")
    return _CODE_POINT_ORDER[url]
