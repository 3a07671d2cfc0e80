"""Every way a list can be filtered and sorted has its index, derived by rule — so a filter
or sortable column added to a Table without one fails here (bench/README.md, issue 9)."""
import pytest
from sqlalchemy.dialects import sqlite

from portal.admin.routes import AUDIT_TABLE
from portal.sync_logs.tables import SYNC_TABLE

EQUALITY_KINDS = ("exact", "select", "int")


def _indexes(table):
    model_table = table.id_col.table
    return [[c.name for c in ix.columns] for ix in model_table.indexes]


def _partial(table):
    return [str(ix.dialect_options["sqlite"]["where"]) for ix in table.id_col.table.indexes
            if ix.dialect_options["sqlite"]["where"] is not None]


def _leading(indexes, *cols):
    return any(ix[:len(cols)] == list(cols) for ix in indexes)


@pytest.mark.parametrize("table", [SYNC_TABLE, AUDIT_TABLE], ids=lambda t: t.dom_id)
def test_every_sort_filter_and_tab_of_a_list_has_its_index(table):
    indexes = _indexes(table)
    lead = [table.partition.key] if table.partition is not None else []  # one walk per organisation
    default = table.sortable[table.default_sort].key
    for key in table.sortable:
        order = [c.key for c in table.key(key)]
        assert _leading(indexes, *lead, *order), f"{table.dom_id}: sort {key} needs an index on {lead + order}"
        if table.tabs:
            assert _leading(indexes, *lead, table.tabs.expr.key, *order), f"{table.dom_id}: tab × sort {key}"
    for f in table.filters:
        col = getattr(f.expr, "key", None)
        if table.partition is not None and f.expr is table.partition:
            continue  # picks the walks
        if f.kind in EQUALITY_KINDS or (f.kind == "contains" and f.vocabulary):
            assert _leading(indexes, *lead, col, default), f"{table.dom_id}: filter {f.key} needs {lead + [col, default]}"
        elif f.kind in ("prefix", "date_from", "date_to"):
            assert any(c is f.expr for c in table.sortable.values()), \
                f"{table.dom_id}: filter {f.key} sorts by its column (Table.implied_sort), which must be sortable"
        elif f.kind == "contains":
            pytest.fail(f"{table.dom_id}: filter {f.key} searches prose: declare vocabulary=True or a search index")
        if f.kind == "contains" and f.vocabulary:
            assert _leading(indexes, col), f"{table.dom_id}: vocabulary {f.key} is read through an index on {col}"
        if f.kind == "flag":  # a partial index over exactly the rows the flag selects
            condition = str(f.expr.compile(dialect=sqlite.dialect())).replace(f"{f.expr.left.table.name}.", "")
            assert condition in _partial(table), f"{table.dom_id}: flag {f.key} needs an index WHERE {condition}"
