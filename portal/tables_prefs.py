"""列设置: each user's choice of optional columns per table, stored in the database.

A plain GET/POST form (works with JavaScript off); the table partial embeds the same
form in a ``<details>`` and posts it with htmx, which follows the redirect back to the
list and swaps in the re-rendered table.
"""
from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request
from flask_login import current_user, login_required

from portal.extensions import db
from portal.models.preference import TablePreference
from portal.tables import Table
from portal.urls import safe_next

bp = Blueprint("table_prefs", __name__)


def _table(table_id: str) -> Table:
    return Table.registry.get(table_id) or abort(404)


@bp.route("/table-columns/<table_id>", methods=["GET", "POST"])
@login_required
def columns(table_id):
    """GET: the checkbox form alone; POST: store the ticked optional columns (or forget
    them with `reset`) and go back to the list."""
    table = _table(table_id)
    if not table.optional_columns:
        abort(404)
    back = safe_next(request.values.get("next"))
    if request.method == "POST":
        choices = None if request.form.get("reset") else table.clean_choices(request.form.getlist("cols"))
        TablePreference.save(db.session, current_user.id, table.dom_id, choices)
        return redirect(back, code=303)
    shown = table.visible_columns(TablePreference.choices_for(db.session, current_user.id, table.dom_id))
    return render_template("table_columns.html", table=table, shown={c.key for c in shown}, back=back)
