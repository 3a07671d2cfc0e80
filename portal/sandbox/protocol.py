"""The channel endpoints ``/{rpa|leqi|taxctrl}/...`` and the fault pipeline around them.

Envelope: ``{"code": "0000" | ReasonCode value, "message": 中文, "data": {...}}``.
"""
from __future__ import annotations

import hmac
import socket
import time
from datetime import datetime, timedelta

from flask import Blueprint, Response, abort, jsonify, request

from portal.channels.base import REASON_MESSAGES, ReasonCode
from portal.channels.http import SUCCESS_CODE, sign

from . import issuing, tasks
from .faults import CHANNELS
from .rules import Refusal
from .state import current_sandbox

bp = Blueprint("sandbox_channels", __name__)

HTTP_STATUS = {ReasonCode.LOGIN_EXPIRED: 401, ReasonCode.AUTH_FAILED: 401,
               ReasonCode.RATE_LIMITED: 429, ReasonCode.BUREAU_BUSY: 503,
               ReasonCode.GATEWAY_TIMEOUT: 504, ReasonCode.UNKNOWN_ERROR: 500,
               ReasonCode.NOT_FOUND: 404}


def envelope(data: dict) -> Response:
    return jsonify({"code": SUCCESS_CODE, "message": "成功", "data": data})


def error(code: ReasonCode | str, message: str = "") -> Response:
    code = ReasonCode(code)
    resp = jsonify({"code": code.value, "message": message or REASON_MESSAGES[code], "data": {}})
    resp.status_code = HTTP_STATUS.get(code, 200)
    return resp


def drop_connection(work_response: Response, mode: str) -> Response:
    """The work is done but the caller never hears: shut the socket under the response."""
    sock = request.environ.get("werkzeug.socket") if mode == "drop" else None
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return work_response
    return Response("Bad Gateway", status=502, mimetype="text/plain")


def check_signature(tp) -> Refusal | None:
    """When the taxpayer has a secret, the request must carry a valid HMAC signature."""
    if not tp.app_secret:
        return None
    if tp.app_key and request.headers.get("X-App-Key") != tp.app_key:
        return Refusal(ReasonCode.AUTH_FAILED, "通道鉴权失败：AppKey不正确")
    ts, nonce = request.headers.get("X-Timestamp", ""), request.headers.get("X-Nonce", "")
    given = request.headers.get("X-Signature", "")
    try:
        skew = abs(time.time() - int(ts) / 1000)
    except ValueError:
        skew = float("inf")
    if skew > current_sandbox().config["SANDBOX_SIGNATURE_MAX_SKEW"]:
        return Refusal(ReasonCode.AUTH_FAILED, "通道鉴权失败：请求时间戳无效")
    expected = sign(tp.app_secret, ts, nonce, request.method, request.script_root + request.path,
                    request.get_data())
    if not hmac.compare_digest(expected, given):
        return Refusal(ReasonCode.AUTH_FAILED, "通道鉴权失败：签名不正确")
    return None


def handle(channel: str, operation: str, work) -> Response:
    """Auth, session, rate limits and faults, then ``work(s, tp, now, **opts) -> dict``."""
    if channel not in CHANNELS:
        abort(404)
    sb = current_sandbox()
    taxpayer_id = request.headers.get("X-Taxpayer-Id", "").strip()
    if not taxpayer_id:
        return error(ReasonCode.INVALID_REQUEST, "请求数据不合法：缺少纳税人识别号")
    with sb.session() as s:
        tp = sb.ensure_taxpayer(s, taxpayer_id)
        refusal = check_signature(tp)
    if refusal:
        return error(refusal.code, refusal.message)
    faults = sb.faults
    if operation not in ("login", "login_status") and faults.login_expired(taxpayer_id, channel):
        return error(ReasonCode.LOGIN_EXPIRED)
    limited = faults.rate_limited(taxpayer_id, channel, operation)
    if limited:
        return error(ReasonCode.RATE_LIMITED, limited)
    fault = faults.take(taxpayer_id, channel, operation)
    opts, after = {}, None
    if fault is not None:
        if fault.kind == "bureau_busy":
            return error(ReasonCode.BUREAU_BUSY, fault.message)
        if fault.kind == "gateway_timeout":
            return error(ReasonCode.GATEWAY_TIMEOUT, fault.message)
        if fault.kind == "unknown_error":
            return error(ReasonCode.UNKNOWN_ERROR, fault.message)
        if fault.kind == "fail":
            if operation == "issue" and fault.phase == "async":
                opts["fail"] = (fault.reason_code,
                                fault.message or REASON_MESSAGES[ReasonCode(fault.reason_code)])
            else:
                return error(fault.reason_code, fault.message)
        if fault.kind == "timeout":
            time.sleep(fault.seconds)
        if fault.kind == "unknown_then_success":
            if operation == "issue":
                opts.update(delay=fault.delay, hidden=fault.hidden)
            after = "unknown"
        if fault.kind == "response_lost":
            after = "lost"
    try:
        with sb.session() as s:
            tp = sb.ensure_taxpayer(s, taxpayer_id)
            data = work(s, tp, datetime.now(), **opts)
    except Refusal as exc:
        return error(exc.code, exc.message)
    if after == "unknown":
        return error(ReasonCode.UNKNOWN_ERROR, fault.message)
    if after == "lost":
        return drop_connection(envelope(data), fault.mode)
    return envelope(data)


def root() -> str:
    return request.url_root


@bp.post("/<channel>/invoices")
def issue(channel):
    body = request.get_json(silent=True) or {}
    default_delay = current_sandbox().config["SANDBOX_ISSUE_DELAY"]

    def work(s, tp, now, delay=None, hidden=False, fail=None):
        return issuing.issue(s, tp, channel, body, now, root(),
                             default_delay if delay is None else delay, hidden, fail)
    return handle(channel, "issue", work)


@bp.get("/<channel>/invoices/<serial_no>")
def query_issue(channel, serial_no):
    return handle(channel, "query_issue",
                  lambda s, tp, now: issuing.query(s, tp, channel, serial_no, now, root()))


@bp.post("/<channel>/verify")
def verify(channel):
    if channel != "leqi":
        return error(ReasonCode.NOT_SUPPORTED)
    body = request.get_json(silent=True) or {}
    return handle(channel, "verify", lambda s, tp, now: issuing.verify(s, body, now, root()))


@bp.post("/<channel>/red-forms")
def red_form(channel):
    if channel == "taxctrl":
        return error(ReasonCode.NOT_SUPPORTED)
    body = request.get_json(silent=True) or {}
    return handle(channel, "red_form",
                  lambda s, tp, now: issuing.create_red_form(s, tp, channel, body, now))


def _session_data(logged_in: bool) -> dict:
    expires = (datetime.now() + timedelta(hours=3)).isoformat(timespec="seconds")
    return {"logged_in": logged_in, "expires_at": expires if logged_in else None}


@bp.get("/<channel>/session")
def login_status(channel):
    sb = current_sandbox()
    return handle(channel, "login_status", lambda s, tp, now: _session_data(
        not sb.faults.login_expired(tp.taxpayer_id, channel)))


@bp.post("/<channel>/session")
def login(channel):
    sb = current_sandbox()

    def work(s, tp, now):
        sb.faults.login(tp.taxpayer_id, channel)
        return _session_data(True)
    return handle(channel, "login", work)


@bp.get("/<channel>/quota")
def quota(channel):
    if channel == "taxctrl":
        return error(ReasonCode.NOT_SUPPORTED)
    return handle(channel, "quota", lambda s, tp, now: issuing.quota(tp))


@bp.post("/<channel>/downloads")
def apply_download(channel):
    sb = current_sandbox()
    body = request.get_json(silent=True) or {}

    def work(s, tp, now):
        control = sb.take_download_control(tp.taxpayer_id)
        return tasks.apply(s, tp, channel, body, now, control, sb.config["SANDBOX_DOWNLOAD_DELAY"],
                           sb.config["SANDBOX_PER_DAY"])
    return handle(channel, "apply_download", work)


@bp.get("/<channel>/downloads/<task_id>")
def query_download(channel, task_id):
    with_lines = request.args.get("lines", "1") != "0"
    return handle(channel, "query_download",
                  lambda s, tp, now: tasks.query(s, tp, task_id, with_lines, now, root()))


@bp.post("/<channel>/downloads/<task_id>/void")
def void_download(channel, task_id):
    return handle(channel, "void_download", lambda s, tp, now: tasks.void(s, tp, task_id, now))
