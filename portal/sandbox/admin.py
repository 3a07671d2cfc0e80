"""Admin API for tests, demos and benchmarks: taxpayers, faults, download control, reset."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from flask import Blueprint, abort, jsonify, request
from sqlalchemy import delete, select

from .faults import FaultError
from .issuing import invoice_data, invoice_record, settle
from .models import Base, DownloadTask, IssuedInvoice, Taxpayer
from .state import DOWNLOAD_OUTCOMES, current_sandbox

bp = Blueprint("sandbox_admin", __name__, url_prefix="/_admin")


@bp.before_request
def require_token():
    token = current_sandbox().config.get("SANDBOX_ADMIN_TOKEN")
    if token and request.headers.get("X-Admin-Token") != token:
        abort(403)


def bad(message: str, status: int = 400):
    return jsonify({"error": message}), status


def taxpayer_json(tp: Taxpayer) -> dict:
    total, used = Decimal(tp.quota_total), Decimal(tp.quota_used)
    return {"taxpayer_id": tp.taxpayer_id, "name": tp.name, "taxpayer_type": tp.taxpayer_type,
            "quota_total": tp.quota_total, "quota_used": tp.quota_used,
            "quota_remaining": f"{total - used:.2f}", "single_limit": tp.single_limit,
            "app_key": tp.app_key, "has_secret": bool(tp.app_secret),
            "account_configured": tp.account_configured}


@bp.get("/health")
def health():
    return jsonify({"ok": True})


@bp.post("/taxpayers")
def upsert_taxpayer():
    body = request.get_json(silent=True) or {}
    taxpayer_id = str(body.get("taxpayer_id") or "").strip()
    if not taxpayer_id:
        return bad("taxpayer_id is required")
    if body.get("taxpayer_type", "general") not in ("general", "small"):
        return bad("taxpayer_type must be general or small")
    sb = current_sandbox()
    with sb.session() as s:
        tp = sb.ensure_taxpayer(s, taxpayer_id)
        for key in ("name", "taxpayer_type", "app_key", "app_secret"):
            if key in body:
                setattr(tp, key, str(body[key] or ""))
        for key in ("quota_total", "quota_used", "single_limit"):
            if key in body:
                try:
                    setattr(tp, key, f"{Decimal(str(body[key])):.2f}")
                except InvalidOperation:
                    return bad(f"{key} must be an amount")
        if "account_configured" in body:
            tp.account_configured = bool(body["account_configured"])
        return jsonify(taxpayer_json(tp))


@bp.get("/taxpayers/<taxpayer_id>")
def get_taxpayer(taxpayer_id):
    with current_sandbox().session() as s:
        tp = s.get(Taxpayer, taxpayer_id)
        if tp is None:
            abort(404)
        return jsonify(taxpayer_json(tp))


@bp.get("/faults")
def list_faults():
    return jsonify({"faults": current_sandbox().faults.list()})


@bp.post("/faults")
def add_fault():
    body = request.get_json(silent=True)
    specs = body if isinstance(body, list) else [body]
    try:
        added = [current_sandbox().faults.add(spec).public() for spec in specs]
    except FaultError as exc:
        return bad(str(exc))
    return jsonify({"faults": added}), 201


@bp.delete("/faults")
def clear_faults():
    """Clear by ?taxpayer_id= and/or ?kind= (all when neither is given)."""
    removed = current_sandbox().faults.clear(request.args.get("taxpayer_id"),
                                             request.args.get("kind"))
    return jsonify({"removed": removed})


@bp.delete("/faults/<int:fault_id>")
def clear_fault(fault_id):
    return jsonify({"removed": current_sandbox().faults.clear(fault_id=fault_id)})


@bp.post("/downloads")
def set_download_control():
    """Per taxpayer: outcome (+mode next|all), delay seconds, defective count, per_day."""
    body = request.get_json(silent=True) or {}
    taxpayer_id = str(body.get("taxpayer_id") or "")
    if not taxpayer_id:
        return bad("taxpayer_id is required")
    if body.get("outcome") not in (None, *DOWNLOAD_OUTCOMES):
        return bad(f"outcome must be one of {', '.join(DOWNLOAD_OUTCOMES)}")
    if body.get("mode", "next") not in ("next", "all"):
        return bad("mode must be next or all")
    sb = current_sandbox()
    with sb.lock:
        ctl = sb.download_controls.setdefault(taxpayer_id, {})
        for key in ("outcome", "mode", "delay", "defective", "per_day"):
            if key in body:
                ctl[key] = body[key]
        return jsonify({"taxpayer_id": taxpayer_id, **ctl})


@bp.delete("/downloads")
def clear_download_control():
    sb = current_sandbox()
    with sb.session() as s:
        taxpayer_id = request.args.get("taxpayer_id")
        if taxpayer_id:
            sb.download_controls.pop(taxpayer_id, None)
        else:
            sb.download_controls.clear()
        _release_stuck(s, taxpayer_id)
    return jsonify({"ok": True})


def _release_stuck(s, taxpayer_id: str | None) -> None:
    """Tasks forced to 'processing' finish normally once the override is gone."""
    q = select(DownloadTask).where(DownloadTask.forced_outcome == "processing")
    if taxpayer_id:
        q = q.where(DownloadTask.taxpayer_id == taxpayer_id)
    for task in s.scalars(q):
        task.forced_outcome = ""


@bp.post("/download-tasks/<task_id>")
def set_task_outcome(task_id):
    """Decide one task now: {"outcome": "success"|...} (ready immediately)."""
    outcome = (request.get_json(silent=True) or {}).get("outcome", "")
    if outcome not in ("", *DOWNLOAD_OUTCOMES) or outcome == "apply_failed":
        return bad("outcome must be a task outcome")
    with current_sandbox().session() as s:
        task = s.get(DownloadTask, task_id)
        if task is None:
            abort(404)
        task.forced_outcome = "" if outcome == "success" else outcome
        task.ready_at = datetime.now()
        return jsonify({"task_id": task_id, "outcome": outcome or "natural"})


@bp.get("/invoices")
def list_invoices():
    """Submissions and invoices, filtered by taxpayer_id / serial_no / channel."""
    q = select(IssuedInvoice).order_by(IssuedInvoice.id)
    for key in ("taxpayer_id", "serial_no", "channel"):
        if request.args.get(key):
            q = q.where(getattr(IssuedInvoice, key) == request.args[key])
    now, root = datetime.now(), request.url_root
    with current_sandbox().session() as s:
        out = []
        for row in s.scalars(q):
            settle(row, now)
            result = invoice_data(row, root)
            item = {**invoice_record(row, root), "serial_no": row.serial_no,
                    "issue_status": row.status, "reason_code": result.get("reason_code", ""),
                    "message": result.get("message", ""), "channel": row.channel,
                    "taxpayer_id": row.taxpayer_id}
            out.append(item)
        return jsonify({"invoices": out})


@bp.post("/reset")
def reset():
    """Clear faults, sessions, rate windows and download overrides; {"data": true} also wipes data."""
    body = request.get_json(silent=True) or {}
    sb = current_sandbox()
    sb.faults.reset()
    with sb.session() as s:
        sb.download_controls.clear()
        if body.get("data"):  # wiping makes releasing stuck tasks moot (and would go stale)
            for table in reversed(Base.metadata.sorted_tables):
                s.execute(delete(table))
        else:
            _release_stuck(s, None)
    return jsonify({"ok": True})
