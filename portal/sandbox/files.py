"""Invoice files (PDF) at a URL per issued or downloaded invoice."""
from __future__ import annotations

import json

from flask import Blueprint, Response, abort, request
from sqlalchemy import select

from .issuing import invoice_record
from .models import IssuedInvoice, Taxpayer
from .pdf import render_invoice
from .state import current_sandbox
from .tasks import generated_file_invoice

bp = Blueprint("sandbox_files", __name__, url_prefix="/files")


def pdf_response(inv: dict) -> Response:
    return Response(render_invoice(inv), mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{inv.get("invoice_no", "invoice")}.pdf"'})


@bp.get("/<token>.pdf")
def issued_file(token):
    with current_sandbox().session() as s:
        row = s.scalars(select(IssuedInvoice).where(IssuedInvoice.file_token == token)).first()
        if row is None or row.status != "issued":
            abort(404)
        inv = invoice_record(row, request.url_root)
        inv["is_red"] = row.is_red
        inv["lines"] = json.loads(row.lines_json)
    return pdf_response(inv)


@bp.get("/generated/<taxpayer_id>/<direction>/<day>/<invoice_no>.pdf")
def generated_file(taxpayer_id, direction, day, invoice_no):
    per_day = request.args.get("per_day", type=int) or current_sandbox().config["SANDBOX_PER_DAY"]
    with current_sandbox().session() as s:
        tp = s.get(Taxpayer, taxpayer_id)
        if tp is None or direction not in ("in", "out"):
            abort(404)
        inv = generated_file_invoice(tp, direction, day, invoice_no, per_day)
    if inv is None:
        abort(404)
    return pdf_response(inv)
