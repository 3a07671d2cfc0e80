"""Shared HTTP transport for the channel clients: signing, timeouts, classification.

Every channel speaks the same JSON envelope ``{"code", "message", "data"}`` where
``code == "0000"`` means success and any other code is a ReasonCode value.  What the
caller may do next depends only on *where* a call failed, so classification lives
here, once, instead of in each client.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from datetime import date
from urllib.parse import unquote, urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from .base import (REASON_MESSAGES, ChannelClient, ChannelConfig, ChannelResult,
                   DownloadType, Outcome, ReasonCode)

log = logging.getLogger("portal.channels")

SUCCESS_CODE = "0000"

# Refused before any work was done: the same request may be sent again later.
RETRYABLE_CODES = frozenset({
    ReasonCode.LOGIN_EXPIRED, ReasonCode.BUREAU_BUSY, ReasonCode.RATE_LIMITED,
    ReasonCode.GATEWAY_TIMEOUT, ReasonCode.RESULT_NOT_READY, ReasonCode.FACE_CHECK_FAILED,
})
# The bureau itself does not know whether the work happened.
UNKNOWN_CODES = frozenset({ReasonCode.UNKNOWN_ERROR})

_KNOWN_CODES = {c.value: c for c in ReasonCode}


def sign(secret: str, timestamp: str, nonce: str, method: str, path: str, body: bytes) -> str:
    """HMAC-SHA256 over timestamp, nonce, method, path and body: the secret never travels."""
    message = f"{timestamp}\n{nonce}\n{method.upper()}\n{path}\n".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def classify_code(code: str, message: str, http_status: int, data: dict | None = None) -> ChannelResult:
    """Turn a bureau answer into an Outcome; unknown codes on 5xx stay UNKNOWN."""
    if code == SUCCESS_CODE:
        return ChannelResult(Outcome.SUCCESS, data or {})
    reason = _KNOWN_CODES.get(code)
    if reason is None:
        if http_status >= 500:
            return ChannelResult(Outcome.UNKNOWN, data or {}, ReasonCode.UNKNOWN_ERROR.value,
                                 message or REASON_MESSAGES[ReasonCode.UNKNOWN_ERROR])
        return ChannelResult(Outcome.FAILED, data or {}, ReasonCode.INVALID_REQUEST.value,
                             message or REASON_MESSAGES[ReasonCode.INVALID_REQUEST])
    message = message or REASON_MESSAGES[reason]
    if reason in RETRYABLE_CODES:
        outcome = Outcome.RETRYABLE
    elif reason in UNKNOWN_CODES:
        outcome = Outcome.UNKNOWN
    else:
        outcome = Outcome.FAILED
    return ChannelResult(outcome, data or {}, reason.value, message)


def _nothing_sent(exc: requests.ConnectionError) -> bool:
    """True when the connection was never established, so the bureau saw nothing."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    inner = exc.args[0] if exc.args else None
    reason = getattr(inner, "reason", inner)
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def not_supported(kind_label: str) -> ChannelResult:
    return ChannelResult(Outcome.FAILED, {}, ReasonCode.NOT_SUPPORTED.value,
                         f"{REASON_MESSAGES[ReasonCode.NOT_SUPPORTED]}（{kind_label}）")


class HttpChannelClient(ChannelClient):
    """A channel reached over HTTP under ``{base_url}/{prefix}``; subclasses pick what they support."""

    prefix: str = ""

    def __init__(self, config: ChannelConfig):
        super().__init__(config)
        self._session = requests.Session()
        self._session.trust_env = False

    # --- transport -------------------------------------------------------------
    def _call(self, op: str, method: str, path: str, body: dict | None = None,
              params: dict | None = None) -> ChannelResult:
        path = f"/{self.prefix}{path}"
        url = self.config.base_url.rstrip("/") + path
        raw = b"" if body is None else json.dumps(body, ensure_ascii=False, sort_keys=True,
                                                  default=str).encode()
        timestamp, nonce = str(int(time.time() * 1000)), uuid.uuid4().hex
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "X-Taxpayer-Id": self.config.taxpayer_id,
                   "X-Timestamp": timestamp, "X-Nonce": nonce}
        if self.config.app_key:
            headers["X-App-Key"] = self.config.app_key
        if self.config.app_secret:
            headers["X-Signature"] = sign(self.config.app_secret, timestamp, nonce, method,
                                          unquote(urlsplit(url).path), raw)
        started = time.monotonic()
        try:
            resp = self._session.request(
                method, url, data=raw or None, params=params, headers=headers,
                timeout=(self.config.connect_timeout, self.config.read_timeout))
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema):
            result = ChannelResult(Outcome.FAILED, {}, ReasonCode.INVALID_REQUEST.value,
                                   "通道地址配置错误，请检查组织的通道地址")
        except requests.ConnectionError as exc:
            if _nothing_sent(exc):
                result = ChannelResult(Outcome.RETRYABLE, {}, ReasonCode.CONNECTION_ERROR.value,
                                       REASON_MESSAGES[ReasonCode.CONNECTION_ERROR])
            else:
                result = ChannelResult(Outcome.UNKNOWN, {}, ReasonCode.RESPONSE_LOST.value,
                                       REASON_MESSAGES[ReasonCode.RESPONSE_LOST])
        except requests.Timeout:
            result = ChannelResult(Outcome.UNKNOWN, {}, ReasonCode.TIMEOUT.value,
                                   REASON_MESSAGES[ReasonCode.TIMEOUT])
        except requests.RequestException:
            result = ChannelResult(Outcome.UNKNOWN, {}, ReasonCode.RESPONSE_LOST.value,
                                   REASON_MESSAGES[ReasonCode.RESPONSE_LOST])
        else:
            result = self._classify_response(resp)
        log.info("channel %s %s %s taxpayer=%s -> %s %s (%.0f ms)", self.kind.value, op, path,
                 self.config.taxpayer_id, result.outcome.value, result.reason_code or "",
                 (time.monotonic() - started) * 1000)
        return result

    @staticmethod
    def _classify_response(resp: requests.Response) -> ChannelResult:
        try:
            payload = resp.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or "code" not in payload:
            status = resp.status_code
            if status >= 500:
                return ChannelResult(Outcome.UNKNOWN, {}, ReasonCode.UNKNOWN_ERROR.value,
                                     f"通道返回 HTTP {status}，结果未知")
            if status in (408, 429):
                return ChannelResult(Outcome.RETRYABLE, {}, ReasonCode.RATE_LIMITED.value,
                                     f"通道返回 HTTP {status}，请稍后再试")
            return ChannelResult(Outcome.FAILED, {}, ReasonCode.INVALID_REQUEST.value,
                                 f"通道返回 HTTP {status}")
        return classify_code(str(payload["code"]), str(payload.get("message") or ""),
                             resp.status_code, payload.get("data") or {})

    # --- operations common to every HTTP channel -----------------------------
    def issue_invoice(self, invoice: dict) -> ChannelResult:
        return self._call("issue", "POST", "/invoices", invoice)

    def query_issue(self, serial_no: str) -> ChannelResult:
        return self._call("query_issue", "GET", f"/invoices/{requests.utils.quote(serial_no, safe='')}")

    def verify_invoice(self, invoice_no: str, invoice_code: str = "",
                       issue_date: date | None = None, amount: str | None = None) -> ChannelResult:
        return self._call("verify", "POST", "/verify", {
            "invoice_no": invoice_no, "invoice_code": invoice_code,
            "issue_date": issue_date.isoformat() if issue_date else None, "amount": amount})

    def create_red_confirmation(self, blue_invoice_no: str, reason: str, lines: list[dict],
                                serial_no: str) -> ChannelResult:
        return self._call("red_form", "POST", "/red-forms", {
            "blue_invoice_no": blue_invoice_no, "reason": reason, "lines": lines,
            "serial_no": serial_no})

    def login_status(self) -> ChannelResult:
        return self._call("login_status", "GET", "/session")

    def login(self) -> ChannelResult:
        return self._call("login", "POST", "/session")

    def quota(self) -> ChannelResult:
        return self._call("quota", "GET", "/quota")

    def apply_download(self, download_type: DownloadType, start: date, end: date,
                       request_id: str) -> ChannelResult:
        return self._call("apply_download", "POST", "/downloads", {
            "download_type": DownloadType(download_type).value, "start": start.isoformat(),
            "end": end.isoformat(), "request_id": request_id})

    def query_download(self, task_id: str, with_lines: bool = True) -> ChannelResult:
        return self._call("query_download", "GET", f"/downloads/{requests.utils.quote(task_id, safe='')}",
                          params={"lines": "1" if with_lines else "0"})

    def void_download(self, task_id: str) -> ChannelResult:
        return self._call("void_download", "POST",
                          f"/downloads/{requests.utils.quote(task_id, safe='')}/void", {})
