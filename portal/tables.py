"""The one filterable-table component every list uses.

A ``Table`` declares columns, filters, status tabs and bulk actions once; ``Table.page``
turns the query string into one page of rows. It stays fast at any size:

- keyset pagination on (sort column, id) — no OFFSET, so page 5,000 costs what page 1 costs;
- counts are bounded (``TABLE_COUNT_CAP``): "10000+" instead of an unbounded COUNT(*);
- every filter and sort maps to an indexed column (declared next to each model).

Filters live in the query string (bookmarkable). Full page and htmx fragment render from
the same partial (``templates/_partials/table.html``). Bulk actions post either the ticked
ids or ``select_all`` plus the filter, which the server re-runs (``Table.selection``).
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode

from flask import current_app, request
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.sql import ColumnElement
from werkzeug.datastructures import MultiDict


@dataclass
class Column:
    key: str
    label: str
    sort: ColumnElement | None = None          # NOT NULL, indexed expression to sort by
    value: Callable[[Any], Any] | None = None  # row → cell value (default: attribute `key`)
    href: Callable[[Any], str] | None = None   # row → link target
    css: str = ""

    def cell(self, row):
        return self.value(row) if self.value else getattr(row, self.key)


@dataclass
class Filter:
    key: str
    label: str
    expr: ColumnElement
    kind: str = "exact"  # exact | prefix | select | date_from | date_to | int
    choices: list[tuple[str, str]] | None = None
    placeholder: str = ""
    options: Callable[[], list[tuple[str, str]]] | None = None  # choices known per request

    def current_choices(self):
        return self.options() if self.options else self.choices

    def clause(self, raw: str):
        raw = raw.strip()
        if not raw:
            return None
        if self.kind == "prefix":
            escaped = raw.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return self.expr.like(escaped + "%", escape="\\")
        if self.kind in ("date_from", "date_to"):
            try:
                day = date.fromisoformat(raw)
            except ValueError:
                return None
            is_datetime = getattr(self.expr.type, "python_type", None) is datetime
            if self.kind == "date_from":
                return self.expr >= (datetime.combine(day, time.min) if is_datetime else day)
            return self.expr <= (datetime.combine(day, time.max) if is_datetime else day)
        if self.kind == "int":
            return self.expr == int(raw) if raw.isdigit() else None
        if self.kind == "select" and self.choices and raw not in {v for v, _ in self.choices}:
            return None
        return self.expr == raw


@dataclass
class Action:
    """A bulk action button posting the selection to `endpoint`."""
    key: str
    label: str
    endpoint: str
    permission: str
    destructive: bool = False


@dataclass
class Tabs:
    key: str  # query-string key, also a Filter key
    expr: ColumnElement
    choices: list[tuple[str, str]]


def _encode(values: list) -> str:
    def enc(v):
        if isinstance(v, datetime):
            return {"dt": v.isoformat()}
        if isinstance(v, date):
            return {"d": v.isoformat()}
        if isinstance(v, Decimal):
            return {"dec": str(v)}
        return v
    raw = json.dumps([enc(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str) -> list | None:
    def dec(v):
        if isinstance(v, dict):
            if "dt" in v:
                return datetime.fromisoformat(v["dt"])
            if "d" in v:
                return date.fromisoformat(v["d"])
            if "dec" in v:
                return Decimal(v["dec"])
        return v
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        values = json.loads(raw)
        return [dec(v) for v in values] if isinstance(values, list) and len(values) == 2 else None
    except (ValueError, TypeError):
        return None


@dataclass
class Page:
    table: "Table"
    rows: list
    args: MultiDict
    sort: str
    direction: str
    size: int
    number: int
    has_next: bool
    has_prev: bool
    next_cursor: str | None
    prev_cursor: str | None
    total: int
    total_capped: bool
    tab_counts: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # per-list context for the template

    @property
    def cap(self) -> int:
        return current_app.config["TABLE_COUNT_CAP"]

    def count_label(self, n: int | None = None, capped: bool | None = None) -> str:
        n = self.total if n is None else n
        capped = self.total_capped if capped is None else capped
        return f"{self.cap}+" if capped else str(n)

    def filter_args(self) -> MultiDict:
        """The query string without paging: what 'select all matching' re-runs."""
        return MultiDict([(k, v) for k, v in self.args.items(multi=True)
                          if k not in ("after", "before", "last", "page") and v != ""])

    def filter_query(self) -> str:
        return urlencode(list(self.filter_args().items(multi=True)))

    def url(self, **changes) -> str:
        """This list's URL with some query-string keys changed (None removes a key)."""
        args = self.filter_args()
        for k, v in changes.items():
            args.pop(k, None)
            if v is not None:
                args[k] = v
        return request.path + ("?" + urlencode(list(args.items(multi=True))) if args else "")

    def sort_url(self, key: str) -> str:
        direction = "asc" if self.sort == key and self.direction == "desc" else "desc"
        return self.url(sort=key, dir=direction)

    def next_url(self) -> str:
        return self.url(after=self.next_cursor, page=str(self.number + 1))

    def prev_url(self) -> str:
        if self.number <= 2:
            return self.url()
        return self.url(before=self.prev_cursor, page=str(self.number - 1))

    def last_url(self) -> str:
        return self.url(last="1")


class Table:
    def __init__(self, dom_id: str, id_col: ColumnElement, columns: list[Column],
                 filters: list[Filter] = (), tabs: Tabs | None = None,
                 actions: list[Action] = (), default_sort: str | None = None,
                 default_dir: str = "desc", selectable: bool = True):
        self.dom_id = dom_id
        self.id_col = id_col
        self.columns = columns
        self.filters = list(filters)
        self.tabs = tabs
        self.actions = list(actions)
        self.sortable = {c.key: c.sort for c in columns if c.sort is not None}
        self.default_sort = default_sort or next(iter(self.sortable), None)
        self.default_dir = default_dir
        self.selectable = selectable

    # --- filtering --------------------------------------------------------------
    def filtered(self, stmt: Select, args, with_tab: bool = True) -> Select:
        for f in self.filters:
            clause = f.clause(args.get(f.key, ""))
            if clause is not None:
                stmt = stmt.where(clause)
        if with_tab and self.tabs and args.get(self.tabs.key):
            stmt = stmt.where(self.tabs.expr == args.get(self.tabs.key))
        return stmt

    def _bounded_count(self, session, stmt: Select) -> tuple[int, bool]:
        cap = current_app.config["TABLE_COUNT_CAP"]
        limited = stmt.with_only_columns(self.id_col).order_by(None).limit(cap + 1).subquery()
        n = session.scalar(select(func.count()).select_from(limited))
        return min(n, cap), n > cap

    # --- one page ---------------------------------------------------------------
    def page(self, session, base: Select, args=None) -> Page:
        args = MultiDict(args if args is not None else request.args)
        sizes = current_app.config["TABLE_PAGE_SIZES"]
        size = args.get("size", type=int) or current_app.config["TABLE_DEFAULT_PAGE_SIZE"]
        size = size if size in sizes else sizes[0]
        sort = args.get("sort") if args.get("sort") in self.sortable else self.default_sort
        direction = args.get("dir") if args.get("dir") in ("asc", "desc") else self.default_dir
        number = max(args.get("page", type=int) or 1, 1)

        stmt = self.filtered(base, args)
        sort_expr = self.sortable[sort]
        key = (sort_expr, self.id_col)
        after = _decode(args.get("after", "")) if args.get("after") else None
        before = _decode(args.get("before", "")) if args.get("before") else None
        last = args.get("last") == "1"
        forward = not (before or last)
        descending = (direction == "desc") == forward
        if after:
            stmt = stmt.where(self._beyond(key, after, direction == "desc"))
        elif before:
            stmt = stmt.where(self._beyond(key, before, direction != "desc"))
        order = [c.desc() if descending else c.asc() for c in key]
        rows = list(session.scalars(stmt.order_by(*order).limit(size + 1)))
        more = len(rows) > size
        rows = rows[:size]
        if not forward:
            rows.reverse()

        if forward:
            has_next, has_prev = more, bool(after)
        else:
            has_next, has_prev = not last, more
        if last:
            total_for_last, _ = self._bounded_count(session, self.filtered(base, args))
            number = max((total_for_last + size - 1) // size, 1)

        def cursor(row):
            return _encode([getattr(row, sort_key_attr(sort_expr)), getattr(row, sort_key_attr(self.id_col))])

        total, capped = self._bounded_count(session, self.filtered(base, args))
        tab_counts = {}
        if self.tabs:
            untabbed = self.filtered(base, args, with_tab=False)
            tab_counts[""] = self._bounded_count(session, untabbed)
            for value, _ in self.tabs.choices:
                tab_counts[value] = self._bounded_count(session, untabbed.where(self.tabs.expr == value))
        return Page(self, rows, args, sort, direction, size, number, has_next, has_prev,
                    cursor(rows[-1]) if rows else None, cursor(rows[0]) if rows else None,
                    total, capped, tab_counts)

    @staticmethod
    def _beyond(key, values, descending: bool):
        col, id_col = key
        value, row_id = values
        if descending:
            return or_(col < value, and_(col == value, id_col < row_id))
        return or_(col > value, and_(col == value, id_col > row_id))

    # --- bulk selection ---------------------------------------------------------
    def selection(self, session, base: Select, form, limit: int) -> tuple[list, bool]:
        """Rows a bulk action acts on: ticked ids, or every row matching the posted filter.

        Returns (rows, too_many); at most `limit` rows are loaded, and too_many says
        the selection is larger than `limit` (so the caller can refuse it whole).
        """
        if form.get("select_all") == "1":
            stmt = self.filtered(base, MultiDict(parse_qsl(form.get("filters", ""))))
        else:
            ids = [int(i) for i in form.getlist("ids") if str(i).isdigit()]
            if not ids:
                return [], False
            if len(ids) > limit:
                return [], True
            stmt = base.where(self.id_col.in_(ids))
        rows = list(session.scalars(stmt.order_by(self.id_col).limit(limit + 1)))
        return rows[:limit], len(rows) > limit


def sort_key_attr(expr) -> str:
    """The mapped attribute name behind a column expression (for cursors)."""
    return getattr(expr, "key", None) or expr.name
