"""Small helpers shared by list views."""
from flask import render_template, request


def render_list(template: str, page, **context):
    """Full page, or only the table fragment when htmx asks for it (same partial)."""
    if request.htmx and request.headers.get("HX-Target") == page.table.dom_id:
        return render_template("_partials/table.html", page=page, **context)
    return render_template(template, page=page, **context)
