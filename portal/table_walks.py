"""Index walks behind a list page that cost the same at any size (used by portal.tables).

A partitioned list (download tasks: by organisation) keeps every index led by the
organisation, so one organisation's rows in any sort order are one contiguous index range.
A page over several organisations walks each one's range for at most a page of rows and
merges them (a UNION ALL of small ordered walks, then a sort of at most organisations ×
page rows); a bounded count takes rows from the walks until it has enough. Neither reads
a row of an organisation the user cannot see, and neither grows with the table.
"""
from __future__ import annotations

from sqlalchemy import Select, func, select, text, union_all

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


def merged_ids(session, stmt: Select, partition, walks: dict, key: tuple, descending: bool,
               limit: int) -> list:
    """Ids of the first `limit` rows of `stmt` in `key` order (its last column the id):
    one ordered walk of at most walks[value] rows per partition value, merged."""
    if not walks:
        return []
    labelled = [c.label(f"k{i}") for i, c in enumerate(key)]
    order = [c.desc() if descending else c.asc() for c in key]
    parts = [stmt.where(partition == value).with_only_columns(*labelled, maintain_column_froms=True)
             .order_by(*order).limit(n).subquery() for value, n in walks.items()]
    if len(parts) == 1:
        merged = parts[0]
    else:
        merged = union_all(*(select(*p.c) for p in parts)).subquery()
    cols = [merged.c[f"k{i}"] for i in range(len(key))]
    return list(session.scalars(select(cols[-1]).order_by(*(c.desc() if descending else c.asc() for c in cols))
                                .limit(limit)))


def bounded_count(session, stmt: Select, id_col, cap: int, partition=None, values: list | None = None) -> int:
    """Rows of `stmt`, counted up to cap + 1 (so "more than cap" is known); with partition
    values, taken from one walk per value until enough."""
    if values is None:
        limited = stmt.with_only_columns(id_col).order_by(None).limit(cap + 1)
    elif not values:
        return 0
    else:
        parts = [stmt.where(partition == v).with_only_columns(id_col).order_by(None).limit(cap + 1).subquery()
                 for v in values]
        limited = union_all(*(select(*p.c) for p in parts)).limit(cap + 1) if len(parts) > 1 else select(*parts[0].c)
    return session.scalar(select(func.count()).select_from(limited.subquery()))


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
