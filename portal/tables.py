"""The one filterable-table component every list uses.

A ``Table`` declares columns, filters, status tabs and bulk actions once; ``Table.page``
turns the query string into one page of rows. It stays fast at any size:

- keyset pagination by row value on (sort column, default sort column, id) — no OFFSET, so
  page 25,000 costs what page 2 costs;
- counts are exact from counters (``counted``, see portal.list_counts) when every filter in
  use is a counted dimension, and bounded by ``TABLE_COUNT_CAP`` otherwise ("1,000+", with
  the exact figure on request), never an unbounded COUNT(*) by default;
- every filter and sort maps to an index (rules declared next to each model).

Filters live in the query string (bookmarkable). Full page and htmx fragment render from
the same partial (``templates/_partials/table.html``). Bulk actions post either the ticked
ids or ``select_all`` plus the filter, which the server re-runs (``Table.selection``).

Lists must fit a 1366 px screen, so each column says whether it is essential (always
shown) or optional (shown or hidden by default); each user's choice of optional columns
is stored per table (``TablePreference``, edited through ``portal.tables_prefs``).
Markup stays in templates: a column names how its cell is shown (``link``, ``truncate``,
``badge``, ``datetime`` in table_rows.html, or ``"some/file.html:macro"``), never HTML
built in Python.

A page hands the template plain values (``Page.grid``, ``tab_links``, ``headers``,
``filter_fields``: texts, URLs, flags) computed once in Python, so the template only loops
and prints. Calling column functions, macros and URL builders from Jinja for each of a
page's ~200 cells cost more than the page's SQL.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from functools import cached_property
from typing import Any, Callable, NamedTuple
from urllib.parse import parse_qsl, urlencode

from flask import current_app, g, has_request_context, request, url_for
from flask_babel import LazyString
from flask_login import current_user
from sqlalchemy import Select, bindparam, false, func, select, tuple_
from sqlalchemy.sql.elements import False_
from sqlalchemy.sql import ColumnElement
from werkzeug.datastructures import MultiDict

from portal import i18n, table_walks
from portal.fmt import fmt
from portal.urls import MAX_ID as MAX_INT, parse_id


# Column.macro: how a cell is shown (templates/_partials/table_rows.html).
CELL_KINDS = ("link", "truncate", "badge", "datetime")

# Column.show: whether a column is always there or the user may choose it.
ESSENTIAL = "essential"  # always shown; cannot be hidden
SHOWN = "shown"          # optional, shown until the user hides it
HIDDEN = "hidden"        # optional, hidden until the user shows it

# Query-string keys that say where we are or what is ticked, not what is filtered.
PAGING_KEYS = ("after", "before", "last", "page", "count")
EXACT_COUNT = ("count", "exact")  # ?count=exact: count beyond the cap once, on request
RANGE_KINDS = ("prefix", "date_from", "date_to")  # filters that sort by their column (Table.implied_sort)
EQUALITY_KINDS = ("exact", "select", "int")        # filters an index (…, column, default sort column) serves
VOCABULARY_LIMIT = 500  # distinct texts a `vocabulary` contains-filter reads before it scans instead
PARTITION_LIMIT = 1000  # organisations a partitioned page walks one by one (beyond: one plain query)
SELECT_PAGE_KEY = "sel"  # sel=page: render this page with every row ticked (no JS needed)


def _message(label):
    """A Column/Filter/Action label is a message id written in the code (the catalogue
    extracts it with ``-k Column:2`` etc.): it becomes a lazy string here, translated when
    rendered, so templates print ``{{ c.label }}`` and never call ``_()`` on a variable."""
    return LazyString(i18n.gettext, label) if isinstance(label, str) and not isinstance(label, LazyString) else label


@dataclass
class Column:
    key: str
    label: str
    sort: ColumnElement | None = None          # NOT NULL, indexed expression to sort by
    value: Callable[[Any], Any] | None = None  # row → cell value (default: attribute `key`)
    href: Callable[[Any], str] | None = None   # row → link target
    css: str = ""
    show: str = ESSENTIAL                      # ESSENTIAL | SHOWN | HIDDEN
    macro: str | None = None                   # one of CELL_KINDS; None: the value (a link with href)
    max_chars: int = 24                        # `truncate`: characters shown before "…"
    tone: Callable[[Any], str] | None = None   # `badge`: row → ok | bad | busy | warn

    def __post_init__(self):
        self.label = _message(self.label)
        if self.show not in (ESSENTIAL, SHOWN, HIDDEN):
            raise ValueError(f"Column {self.key!r}: show must be essential, shown or hidden")
        if self.macro is not None and self.macro not in CELL_KINDS and ":" not in self.macro:
            raise ValueError(f"Column {self.key!r}: macro must be one of {CELL_KINDS} or 'file.html:name'")
        self.kind = "macro" if self.macro and ":" in self.macro else self.macro or ("link" if self.href else "text")

    @property
    def optional(self) -> bool:
        return self.show != ESSENTIAL

    def cell(self, row):
        return self.value(row) if self.value else getattr(row, self.key)

    def render(self, row) -> "Cell":
        """What the template prints for this column of `row` (escaped there)."""
        value = fmt(self.cell(row))
        if isinstance(value, LazyString):
            value = str(value)
        kind = self.kind
        if kind == "text":
            return Cell(self.css, kind, value)
        if kind == "link":
            return Cell(self.css, kind, value, self.href(row))
        if kind == "truncate":
            text = str(value)
            if len(text) > self.max_chars:
                return Cell(self.css, kind, text[:self.max_chars - 1] + "…", "", text)
            return Cell(self.css, kind, text)
        if kind == "badge":
            return Cell(self.css, kind, value, "", self.tone(row) if self.tone else "")
        if kind == "macro":  # a macro elsewhere, called as name(row, value, column)
            return Cell(self.css, kind, value, self.macro, self)
        day, _, clock_time = str(value).partition(" ")  # datetime: the date and the time kept whole
        return Cell(self.css, kind, day, "", clock_time)


class Cell(NamedTuple):
    """One cell as the template prints it: `text` (escaped), a link's `href`, and `extra`:
    the whole text of a truncated cell, a badge's tone, or a datetime's time (for a macro
    elsewhere: `href` is "file.html:name", `extra` the Column)."""
    css: str
    kind: str
    text: Any
    href: str = ""
    extra: Any = ""


class RowView(NamedTuple):
    row: Any
    id: int
    cells: list[Cell]
    selected: bool
    refresh_url: str  # a row in flight refreshes itself from here ('' otherwise)


class FilterField(NamedTuple):
    key: str
    label: Any
    kind: str      # select | date | text
    value: str
    placeholder: Any
    options: list  # select: [(value, label, selected)]


@dataclass
class Filter:
    key: str
    label: str
    expr: ColumnElement
    kind: str = "exact"  # exact | prefix | contains | select | date_from | date_to | int | flag
    # flag: `expr` is a condition applied when the value is "1" (its only choice)
    choices: list[tuple[str, str]] | None = None
    placeholder: str = ""
    options: Callable[[], list[tuple[str, str]]] | None = None  # choices known per request
    # contains: the column holds a vocabulary (the channels' messages), not free prose. The
    # search reads the distinct texts through the column's index (at most VOCABULARY_LIMIT),
    # keeps those containing the words, and filters by equality on them, which an index
    # serves at any size; beyond the limit it falls back to LIKE '%…%' (a scan).
    vocabulary: bool = False
    # Choice labels: fixed choices are lazy strings (translated); options built from data
    # (e.g. organisation names) are plain strings, shown escaped and untranslated.

    def __post_init__(self):
        self.label = _message(self.label)

    def current_choices(self):
        return self.options() if self.options else self.choices

    def clause(self, raw: str):
        raw = raw.strip()
        if not raw:
            return None
        if self.kind == "contains" and self.vocabulary:
            texts = self._texts()
            if texts is not None:
                matching = [t for t in texts if raw in t]
                return self.expr.in_(matching) if matching else false()
        if self.kind in ("prefix", "contains"):
            escaped = raw.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = escaped + "%" if self.kind == "prefix" else "%" + escaped + "%"
            like = self.expr.like(pattern, escape="\\")
            if self.kind == "prefix" and table_walks.code_point_order():
                # also as a range, which any index on the column serves (with the columns
                # before it fixed, e.g. the organisation); LIKE stays the exact test
                return like & (self.expr >= raw) & (self.expr < raw + "\U0010ffff")
            return like
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
            value = parse_id(raw) if raw != "0" else 0  # counts may be 0; nothing beyond 2^63-1
            return self.expr == value if value is not None else None
        if self.kind == "flag":
            return self.expr if raw == "1" else None
        if self.kind == "select" and self.choices and raw not in {v for v, _ in self.choices}:
            return None
        return self.expr == raw

    def _texts(self) -> list[str] | None:
        """The column's distinct texts (table_walks.distinct_values), cached for the
        request or job; None when there are more than VOCABULARY_LIMIT."""
        from portal.extensions import db

        cache = g.setdefault("filter_vocabulary", {})
        key = (self.expr.table.name, self.expr.key)
        if key not in cache:
            cache[key] = table_walks.distinct_values(db.session, self.expr, VOCABULARY_LIMIT)
        return cache[key]


@dataclass
class Action:
    """A bulk action button posting the selection to `endpoint`."""
    key: str
    label: str
    endpoint: str
    permission: str
    destructive: bool = False

    def __post_init__(self):
        self.label = _message(self.label)


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


def _decode(token: str, kinds: tuple[type | None, ...] = (None, None)) -> list | None:
    """A cursor back to its key values ([sort value, …, id]), or None for anything malformed: a cursor comes
    from the query string, so each value must have the type of its column (`kinds`, the
    columns' Python types; None: any JSON scalar) and an id the database can hold."""
    def dec(v, kind):
        if isinstance(v, dict) and len(v) == 1:
            (tag, text), = v.items()
            if not isinstance(text, str):
                return None
            if tag == "dt" and kind in (None, datetime):
                return datetime.fromisoformat(text)
            if tag == "d" and kind in (None, date):
                return date.fromisoformat(text)
            if tag == "dec" and kind in (None, Decimal):
                value = Decimal(text)
                return value if value.is_finite() else None
            return None
        if isinstance(v, bool) or v is None or isinstance(v, (dict, list)):
            return None
        if kind is int or (kind is None and isinstance(v, int)):
            return v if isinstance(v, int) and -MAX_INT <= v <= MAX_INT else None
        if kind is str or kind is None:
            return v if isinstance(v, str) else None
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        values = json.loads(raw)
        if not (isinstance(values, list) and len(values) == len(kinds)):
            return None
        decoded = [dec(v, kind) for v, kind in zip(values, kinds)]
    except (ValueError, TypeError, ArithmeticError, RecursionError):
        return None
    return decoded if None not in decoded else None


def _python_type(expr) -> type | None:
    try:
        return expr.type.python_type
    except (AttributeError, NotImplementedError):
        return None


@dataclass
class Page:
    table: "Table"
    rows: list
    args: MultiDict
    sort: str
    direction: str
    size: int
    number: int | None  # None: reached by a cursor from an unnumbered 末页 (count unknown)
    has_next: bool
    has_prev: bool
    next_cursor: str | None
    prev_cursor: str | None
    total: int
    total_capped: bool
    tab_counts: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # per-list context for the template
    columns: list[Column] = field(default_factory=list)  # shown to this user, in order
    choices: dict = field(default_factory=dict)          # this user's stored column choices
    exact: bool = False                                  # total is exact (counters, or below the cap)
    searched: bool = False   # a walk used its budget before the page filled: 继续查找 goes on from there
    scan_budget: int = 0     # rows each walk may read (filters no one index serves), else 0

    @property
    def cap(self) -> int:
        return current_app.config["TABLE_COUNT_CAP"]

    def count_label(self, n: int | None = None, capped: bool | None = None) -> str:
        """A count for a tab or a sentence: "1,234", or "1,000+" when only bounded."""
        n = self.total if n is None else n
        capped = self.total_capped if capped is None else capped
        return f"{self.cap:,}+" if capped else f"{n:,}"

    def tab_text(self, value: str, label) -> str:
        """A tab's label with its count when one is known ("失败 (1,234)"), else the label."""
        got = self.tab_counts.get(value)
        return str(label) if got is None else f"{label} ({self.count_label(*got)})"

    @property
    def total_lower_bound(self) -> bool:
        """The total is what the walks' budget found, not all there is ("已找到 N 条，尚未查完")."""
        return bool(self.scan_budget) and not self.exact and not self.total_capped

    def search_on_url(self) -> str:
        """继续查找: the next part in the direction this page was walked."""
        backward = self.args.get("before") or self.args.get("last") == "1"
        return self.prev_url() if backward else self.next_url()

    def exact_count_url(self) -> str:
        return self.current_url(**{EXACT_COUNT[0]: EXACT_COUNT[1]})

    @property
    def in_flight_count(self) -> int:
        """Rows on this page that refresh themselves."""
        return sum(1 for r in self.grid if r.refresh_url)

    @property
    def page_selected(self) -> bool:
        """sel=page: every row of this page is rendered ticked (select page without JS)."""
        return self.args.get(SELECT_PAGE_KEY) == "page"

    def filter_args(self) -> MultiDict:
        """The query string without paging or ticks: what 'select all matching' re-runs."""
        return MultiDict([(k, v) for k, v in self.args.items(multi=True)
                          if k not in PAGING_KEYS and k != SELECT_PAGE_KEY and v != ""])

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

    def current_url(self, **changes) -> str:
        """This very page (paging kept) with some keys changed, e.g. ``sel="page"``."""
        args = MultiDict([(k, v) for k, v in self.args.items(multi=True)
                          if k != SELECT_PAGE_KEY and v != ""])
        for k, v in changes.items():
            args.pop(k, None)
            if v is not None:
                args[k] = v
        return request.path + ("?" + urlencode(list(args.items(multi=True))) if args else "")

    # --- what the template prints (plain values, computed once) -------------------
    @cached_property
    def grid(self) -> list[RowView]:
        t = self.table
        refresh = t.in_flight if t.in_flight and t.row_endpoint else None
        # ticked: the whole page (sel=page), or the rows whose ids a row refresh posted back
        selected = set(self.args.getlist("ids")) if not self.page_selected else None
        out = []
        for row in self.rows:
            url = url_for(t.row_endpoint, row_id=row.id) if refresh and refresh(row) else ""
            out.append(RowView(row, row.id, [c.render(row) for c in self.columns],
                               selected is None or str(row.id) in selected, url))
        return out

    @cached_property
    def tab_links(self) -> list[tuple[str, str, bool]]:
        """(url, label with its count, active) of the 全部 tab and each status tab."""
        t = self.table
        if not t.tabs:
            return []
        current = self.args.get(t.tabs.key, "")
        tabs = [("", i18n.gettext("全部"))] + list(t.tabs.choices)
        return [(self.url(**{t.tabs.key: value or None}), self.tab_text(value, label), current == value)
                for value, label in tabs]

    @cached_property
    def headers(self) -> list[tuple[str, Any, str, str]]:
        """(css, label, sort url or '', arrow) of each shown column."""
        out = []
        for c in self.columns:
            if c.sort is None:
                out.append((c.css, c.label, "", ""))
            else:
                arrow = ("▼" if self.direction == "desc" else "▲") if self.sort == c.key else ""
                out.append((c.css, c.label, self.sort_url(c.key), arrow))
        return out

    @cached_property
    def filter_fields(self) -> list[FilterField]:
        out = []
        for f in self.table.filters:
            value = self.args.get(f.key, "")
            choices = f.current_choices()
            if choices:
                out.append(FilterField(f.key, f.label, "select", value, "",
                                       [(v, label, v == value) for v, label in choices]))
            else:
                kind = "date" if f.kind in ("date_from", "date_to") else "text"
                out.append(FilterField(f.key, f.label, kind, value, f.placeholder, []))
        return out

    def column_shown(self, column: Column) -> bool:
        return any(c.key == column.key for c in self.columns)

    def sort_url(self, key: str) -> str:
        direction = "asc" if self.sort == key and self.direction == "desc" else "desc"
        return self.url(sort=key, dir=direction)

    def next_url(self) -> str:
        return self.url(after=self.next_cursor, page=str(self.number + 1) if self.number else None)

    def prev_url(self) -> str:
        if self.number is not None and self.number <= 2:
            return self.url()
        return self.url(before=self.prev_cursor, page=str(self.number - 1) if self.number else None)

    def last_url(self) -> str:
        return self.url(last="1")


class Table:
    registry: dict[str, "Table"] = {}  # dom id → table, for the column-settings routes

    def __init__(self, dom_id: str, id_col: ColumnElement, columns: list[Column],
                 filters: list[Filter] = (), tabs: Tabs | None = None,
                 actions: list[Action] = (), default_sort: str | None = None,
                 default_dir: str = "desc", selectable: bool = True,
                 in_flight: Callable[[Any], bool] | None = None, row_endpoint: str | None = None,
                 counted=None, partition: ColumnElement | None = None):
        """`in_flight(row)` marks rows whose state is about to change by itself (e.g. 下载处理中):
        each such row refreshes itself from `row_endpoint` (GET, `row_id`) until it settles.
        `counted` (a `portal.models.counts.Counted`) makes tabs and totals exact at any size
        whenever every filter in use is one of its dimensions. `partition` (the organisation
        column, leading every index of the table) makes a page one short index walk per
        organisation (portal.table_walks)."""
        self.dom_id = dom_id
        self.counted = counted
        self.partition = partition
        self.in_flight = in_flight
        self.row_endpoint = row_endpoint
        self.id_col = id_col
        self.columns = columns
        self.filters = list(filters)
        self.tabs = tabs
        self.actions = list(actions)
        self.sortable = {c.key: c.sort for c in columns if c.sort is not None}
        self.default_sort = default_sort or next(iter(self.sortable), None)
        self.default_dir = default_dir
        self.selectable = selectable
        Table.registry[dom_id] = self

    # --- columns ----------------------------------------------------------------
    @property
    def optional_columns(self) -> list[Column]:
        return [c for c in self.columns if c.optional]

    def visible_columns(self, choices: dict | None = None) -> list[Column]:
        """Essential columns, plus optional ones the user chose (else their default)."""
        choices = choices or {}
        return [c for c in self.columns
                if not c.optional or bool(choices.get(c.key, c.show == SHOWN))]

    def clean_choices(self, shown_keys) -> dict[str, bool]:
        """A submitted set of ticked optional columns → choices to store; essential
        columns and unknown keys are not the user's to choose, so they are dropped."""
        shown_keys = set(shown_keys)
        return {c.key: c.key in shown_keys for c in self.optional_columns}

    def user_choices(self, session, user=None) -> dict:
        if not self.optional_columns:
            return {}
        if user is None and has_request_context():
            user = current_user
        if user is None or not getattr(user, "is_authenticated", False):
            return {}
        from portal.models.preference import TablePreference
        return TablePreference.choices_for(session, user.id, self.dom_id)

    # --- filtering --------------------------------------------------------------
    def split(self, args, key: tuple) -> tuple[list, list]:
        """The clauses of the filters (and tab) in use, as (served, residual): what one
        ordered walk of an index serves in `key` order — the organisation, filters on the
        sort column, or (under the default sort, no tab) one equality filter, whose index
        ends in the default sort column — and what it can only test row by row. A page with
        a residual part reads at most TABLE_SCAN_BUDGET rows (table_walks.budgeted_ids): the
        served part must be one index range in `key` order, or the walk would not be bounded."""
        tab = [self.tabs.expr == args.get(self.tabs.key)] if self.tabs and args.get(self.tabs.key) else []
        in_use = [(f, c) for f in self.filters if (c := f.clause(args.get(f.key, ""))) is not None]
        if any(isinstance(c, False_) for _, c in in_use):  # nothing can match: the plain query answers at once
            return [c for _, c in in_use] + tab, []
        served = [c for f, c in in_use if self._on_the_walk(f, key)]
        rest = [(f, c) for f, c in in_use if not self._on_the_walk(f, key)]
        # One more filter can lead the walk under the default sort, one whose index is a single
        # range in that order (an equality or a flag; not a list of texts): a counted one first
        # (the counters then bound each organisation's walk).
        counted = {col for cols in self.counted.groups.values() for col in cols} if self.counted else set()
        leads = [(getattr(f.expr, "key", None) not in counted, i) for i, (f, _) in enumerate(rest)
                 if not tab and key[0] is self.sortable.get(self.default_sort)
                 and f.kind in EQUALITY_KINDS + ("flag",)]
        if leads:
            served.append(rest.pop(min(leads)[1])[1])
        return served + tab, [c for _, c in rest]

    def _on_the_walk(self, f: Filter, key: tuple) -> bool:
        """The organisation, or a range or equality on the sort column: part of any walk's range."""
        return f.expr is self.partition or (f.expr is key[0] and f.kind in RANGE_KINDS + EQUALITY_KINDS)

    def filtered(self, stmt: Select, args, with_tab: bool = True) -> Select:
        for f in self.filters:
            clause = f.clause(args.get(f.key, ""))
            if clause is not None:
                stmt = stmt.where(clause)
        if with_tab and self.tabs and args.get(self.tabs.key):
            stmt = stmt.where(self.tabs.expr == args.get(self.tabs.key))
        return stmt

    def _exact_count(self, session, stmt: Select) -> int:
        """Uncapped count: only on request (?count=exact) when no counter can answer."""
        return session.scalar(select(func.count()).select_from(
            stmt.with_only_columns(self.id_col).order_by(None).subquery()))

    def counter_query(self, args, orgs: set[int] | None, bound: bool = False) -> dict | None:
        """The arguments of `list_counts.by_status` that count exactly the rows these
        filters select (within `orgs`; None: every organisation), or None when a filter in
        use is not a counted dimension (or a date range is combined with a group column).
        `bound`: count what the counted filters alone select instead — an upper bound that
        tells a partitioned page which organisations cannot match."""
        c = self.counted
        if c is None:
            return None
        group_cols = {col for cols in c.groups.values() for col in cols}
        keys, first, last, dated = {}, None, None, False
        for f in self.filters:
            raw = args.get(f.key, "").strip()
            if not raw or f.clause(raw) is None:
                continue
            col = getattr(f.expr, "key", None)
            if col and col == c.org and f.kind in ("int", "exact", "select"):
                value = parse_id(raw)
                orgs = set() if value is None else ({value} if orgs is None else orgs & {value})
            elif col and col == c.day and f.kind in ("date_from", "date_to"):
                day, dated = date.fromisoformat(raw), True
                if f.kind == "date_from":
                    first = max(first, day) if first else day
                else:
                    last = min(last, day) if last else day
            elif col in group_cols and f.kind in ("exact", "select"):
                keys[col] = raw
            elif not bound:
                return None
        group = None
        if keys:
            if dated and not bound:
                return None
            dated = False if bound else dated
            group = next((code for code, cols in c.groups.items() if set(keys) <= set(cols)), None)
            if group is None:
                if not bound:
                    return None
                group = next(code for code, cols in c.groups.items() if set(keys) & set(cols))
                keys = {k: v for k, v in keys.items() if k in c.groups[group]}
        return {"orgs": orgs, "group": group, "keys": keys, "first": first, "last": last, "dated": dated}

    def counts(self, session, base: Select, args, orgs: set[int] | None = None,
               parts: list | None = None, budgeted: tuple | None = None) -> tuple[int, bool, dict, bool, dict | None]:
        """(total, capped, tab counts {value: (n, capped)}, exact, rows per partition value
        in the current tab or None) for the filters in `args`. Exact from the counters when
        they can answer; otherwise bounded by TABLE_COUNT_CAP (and the total exact on
        request, ?count=exact). `parts`: the partition values the page walks. `budgeted`:
        (served stmt, residual clauses, key, budget per walk, first page) when no index
        serves the filters together — the count is then what the walks' budget found, and
        neither capped nor exact when a walk ran out (a lower bound: "已找到 N 条，尚未查完");
        on the first page the total is None: the page's own walks count it."""
        tab = args.get(self.tabs.key, "") if self.tabs else ""
        query = self.counter_query(args, orgs)
        if query is not None:
            per_status, per_part = self._counted(session, query, tab)
            everything = sum(per_status.values())
            tabs = {"": (everything, False)}
            for value, _ in (self.tabs.choices if self.tabs else ()):
                tabs[value] = (per_status.get(value, 0), False)
            total = per_status.get(tab, 0) if tab else everything
            return total, False, tabs, True, per_part
        bound = self.counter_query(args, orgs, bound=True) if self.partition is not None else None
        per_part = self._counted(session, bound, tab)[1] if bound is not None else None
        if per_part is not None and parts is not None:
            parts = [p for p in parts if per_part.get(p, 0)]  # organisations that cannot match
        # No counter can answer: the tabs show no numbers (a bounded count per tab would
        # cost one index walk each), the total is bounded, and 统计准确条数 (?count=exact)
        # counts every tab exactly with one GROUP BY.
        if args.get(EXACT_COUNT[0]) == EXACT_COUNT[1]:
            if not self.tabs:
                return self._exact_count(session, self.filtered(base, args)), False, {}, True, None
            untabbed = self.filtered(base, args, with_tab=False).with_only_columns(
                self.tabs.expr, func.count(), maintain_column_froms=True).order_by(None).group_by(self.tabs.expr)
            per_tab = {value: n for value, n in session.execute(untabbed)}
            tabs = {"": (sum(per_tab.values()), False)}
            tabs.update({value: (per_tab.get(value, 0), False) for value, _ in self.tabs.choices})
            return tabs[tab][0] if tab in tabs else 0, False, tabs, True, per_part
        cap = current_app.config["TABLE_COUNT_CAP"]
        if budgeted is not None:
            served, residual, key, budget, first_page = budgeted
            if first_page:  # the page's own walks count (Table._budgeted_rows)
                return None, False, {}, False, per_part
            n, short = table_walks.budgeted_count(session, served, residual, self.partition, parts, key, budget)
            return min(n, cap), n > cap, {}, not short and n <= cap, per_part
        n = table_walks.bounded_count(session, self.filtered(base, args), self.id_col, cap, self.partition, parts)
        return min(n, cap), n > cap, {}, n <= cap, per_part

    def _counted(self, session, query: dict, tab: str) -> tuple[dict, dict | None]:
        """({status: rows}, {organisation: rows in the current tab} or None) from the
        counters. Per organisation only where it is cheap: a date range over every
        organisation reads the all-organisations rollup instead."""
        from portal import list_counts
        per_org = self.partition is not None and not (query["dated"] and query["orgs"] is None)
        cells = list_counts.by_status(session, self.counted, per_org=per_org, **query)
        if not per_org:
            return cells, None
        per_status, per_part = {}, {}
        for (org, status), n in cells.items():
            per_status[status] = per_status.get(status, 0) + n
            if not tab or status == tab:
                per_part[org] = per_part.get(org, 0) + n
        return per_status, per_part

    def partitions(self, session, args, orgs: set[int] | None) -> list | None:
        """The partition values (organisations) a page walks: the user's, narrowed by an
        organisation filter; None for an unpartitioned table (or too many values)."""
        if self.partition is None:
            return None
        values = sorted(orgs) if orgs is not None else table_walks.distinct_values(
            session, self.partition, PARTITION_LIMIT)
        if values is None:
            return None
        for f in self.filters:
            raw = args.get(f.key, "").strip()
            if f.expr is self.partition and raw and f.clause(raw) is not None:
                wanted = parse_id(raw) if f.kind == "int" else raw
                values = [v for v in values if v == wanted or str(v) == str(wanted)]
        return values

    # --- one page ---------------------------------------------------------------
    def page(self, session, base: Select, args=None, user=None, orgs: Any = ..., counted: bool = True) -> Page:
        """One page for the query string `args`; columns follow `user`'s choices
        (default: the logged-in user). `orgs`: the organisations `base` is limited to (None:
        all), which the counters need; `counted=False` skips the counts (a row refresh)."""
        if orgs is ...:
            if self.counted is not None and counted:  # counting every organisation's rows would leak them
                raise TypeError(f"{self.dom_id}: a counted table needs orgs= (None for every organisation)")
            orgs = None
        args = MultiDict(args if args is not None else request.args)
        sizes = current_app.config["TABLE_PAGE_SIZES"]
        size = args.get("size", type=int) or current_app.config["TABLE_DEFAULT_PAGE_SIZE"]
        size = size if size in sizes else sizes[0]
        sort = args.get("sort") if args.get("sort") in self.sortable else self.implied_sort(args)
        direction = args.get("dir") if args.get("dir") in ("asc", "desc") else self.default_dir

        stmt = self.filtered(base, args)
        key = self.key(sort)
        kinds = tuple(_python_type(c) for c in key)
        after = _decode(args.get("after", ""), kinds) if args.get("after") else None
        before = _decode(args.get("before", ""), kinds) if args.get("before") else None
        last = args.get("last") == "1" and not (after or before)
        number = args.get("page", type=int)
        number = max(number, 1) if number is not None else (None if (after or before) else 1)
        forward = not (before or last)

        parts = self.partitions(session, args, orgs) if counted else None  # (a row refresh: one plain query)
        served, residual = self.split(args, key)
        budget = None
        if counted and residual:  # rows each walk may read: its share of the budget, at most a few pages
            cfg = current_app.config
            budget = max(size + 1, min(cfg["TABLE_SCAN_BUDGET"] // max(len(parts or ()), 1),
                                       cfg["TABLE_SCAN_PAGES"] * (size + 1)))
        served_stmt = base.where(*served)
        first_page = not (after or before or last)
        total, capped, tab_counts, exact, per_part = (
            self.counts(session, base, args, orgs, parts,
                        (served_stmt, residual, key, budget, first_page) if budget else None)
            if counted else (0, False, {}, False, None))
        limit = size
        if last:
            # The last page holds what is left after full pages (2,003 rows → 3 rows on
            # page 101) when the count is exact; otherwise it is the last `size` rows and
            # its number is not shown.
            limit = (total % size or size) if exact else size
            number = max((total + size - 1) // size, 1) if exact else None
        descending = (direction == "desc") == forward
        if after:
            beyond = self._beyond(key, after, direction == "desc")
        elif before:
            beyond = self._beyond(key, before, direction != "desc")
        else:
            beyond = None
        if beyond is not None:
            stmt, served_stmt = stmt.where(beyond), served_stmt.where(beyond)
        boundary = None
        if budget:
            rows, boundary, found, short = self._budgeted_rows(session, served_stmt, residual, key, descending,
                                                               limit + 1, parts, per_part, budget)
            if total is None:
                cap = current_app.config["TABLE_COUNT_CAP"]
                total, capped, exact = min(found, cap), found > cap, not short and found <= cap
        else:
            rows = self._rows(session, stmt, key, descending, limit + 1, parts, per_part)
        more = len(rows) > limit or boundary is not None
        rows = rows[:limit]
        if not forward:
            rows.reverse()

        if forward:
            has_next, has_prev = more, bool(after)
        else:
            has_next, has_prev = not last, more

        def cursor(row):
            return _encode([getattr(row, sort_key_attr(c)) for c in key])

        # A walk ran out of budget before the page was full: the rows shown are all there are
        # up to its boundary, and the next page (继续查找) starts after it.
        searched_to = _encode(list(boundary)) if boundary is not None and len(rows) < limit else None
        first = cursor(rows[0]) if rows else None
        last_cursor = cursor(rows[-1]) if rows else None
        if searched_to and forward:
            last_cursor = searched_to
        elif searched_to:
            first = searched_to
        choices = self.user_choices(session, user)
        return Page(self, rows, args, sort, direction, size, number, has_next, has_prev,
                    last_cursor, first, total, capped, tab_counts, columns=self.visible_columns(choices),
                    choices=choices, exact=exact, searched=searched_to is not None,
                    scan_budget=budget or 0)

    def _rows(self, session, stmt: Select, key: tuple, descending: bool, limit: int,
              parts: list | None, per_part: dict | None) -> list:
        """The first `limit` rows of `stmt` in `key` order. Partitioned: one walk per
        organisation, each asking for no more rows than the counters say it holds in all
        (so an organisation without matches is not walked at all, and a walk stops at its
        last match instead of searching on), merged by id. One organisation (a clerk's, or
        the organisation filter) is one walk: the rows themselves, in one statement."""
        walks = {p: limit if per_part is None else min(limit, per_part.get(p, 0)) for p in parts or ()}
        if parts is None or len(parts) == 1:
            if parts:
                stmt, limit = stmt.where(self.partition == parts[0]), walks[parts[0]]
                if not limit:
                    return []
            order = [c.desc() if descending else c.asc() for c in key]
            return list(session.scalars(stmt.order_by(*order).limit(limit)))
        ids = table_walks.merged_ids(session, stmt, self.partition, {p: n for p, n in walks.items() if n},
                                     key, descending, limit)
        return self._load(session, stmt, ids)

    def _budgeted_rows(self, session, served_stmt: Select, residual: list, key: tuple, descending: bool,
                       limit: int, parts: list | None, per_part: dict | None, budget: int) -> tuple:
        """(rows, boundary, found, short) when some filters are residual (Table.split): the
        first `limit` rows, each walk reading at most `budget` rows; where a walk stopped
        short, if one did; the matches the walks found; whether one ran out of budget."""
        if parts is not None and per_part is not None:  # organisations the counted filters rule out
            parts = [p for p in parts if per_part.get(p, 0)]
        ids, boundary, found, short = table_walks.budgeted_ids(
            session, served_stmt, residual, self.partition, parts, key, descending, limit, budget)
        return self._load(session, served_stmt, ids), boundary, found, short

    def _load(self, session, stmt: Select, ids: list) -> list:
        """The rows of `ids`, in that order."""
        if not ids:
            return []
        by_id = {row.id: row for row in session.scalars(stmt.where(self.id_col.in_(ids)))}
        return [by_id[i] for i in ids if i in by_id]

    def implied_sort(self, args) -> str:
        """The sort when none is chosen: the column of the first range or prefix filter in
        use (下载开始时间至 …, 批次号前缀), else the default. Its index then serves the
        filter and the order together: a page costs the same at any size, where ordering
        by another column would walk past every row outside the range."""
        for f in self.filters:
            if f.kind in RANGE_KINDS and f.clause(args.get(f.key, "")) is not None:
                key = next((k for k, col in self.sortable.items() if col is f.expr), None)
                if key:
                    return key
        return self.default_sort

    def key(self, sort: str) -> tuple:
        """The ordering of a sort: its column, then the default sort's column, then id. So
        one index (column, default column, id) serves both sorting by the column and
        filtering on it under the default sort."""
        cols = [self.sortable[sort], self.sortable.get(self.default_sort), self.id_col]
        unique = []
        for c in cols:
            if c is not None and not any(c is u for u in unique):
                unique.append(c)
        return tuple(unique)

    @staticmethod
    def _beyond(key, values, descending: bool):
        """Rows after the cursor, as one row-value comparison: both databases use it as a
        bound of the (sort column, id) index, so page 25,000 costs what page 2 costs."""
        if len(key) == 1:
            return key[0] < values[0] if descending else key[0] > values[0]
        ordered = tuple_(*key)
        bound = tuple_(*(bindparam(None, v, type_=col.type) for v, col in zip(values, key)))
        return ordered < bound if descending else ordered > bound

    # --- bulk selection ---------------------------------------------------------
    def selection(self, session, base: Select, form, limit: int) -> tuple[list, bool]:
        """Rows a bulk action acts on: ticked ids, or every row matching the posted filter.

        Returns (rows, too_many); at most `limit` rows are loaded, and too_many says
        the selection is larger than `limit` (so the caller can refuse it whole).
        """
        if form.get("select_all") == "1":
            stmt = self.filtered(base, MultiDict(parse_qsl(form.get("filters", ""))))
        else:
            ids = [i for i in map(parse_id, form.getlist("ids")) if i is not None]
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
