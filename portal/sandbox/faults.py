"""Fault injection: what the bureau does wrong, per taxpayer or for everyone ('*').

Faults are switched at run time over the admin API (or at start from config) and live
in memory: they describe the bureau's mood, not its data.
"""
from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field

from portal.channels.base import ReasonCode

OPERATIONS = ("issue", "query_issue", "verify", "red_form", "login_status", "login", "quota",
              "apply_download", "query_download", "void_download")
CHANNELS = ("rpa", "leqi", "taxctrl")
FAULT_KINDS = (
    "login_expired",         # every op answers 电子税局登录失效 until login is called
    "bureau_busy",           # 税局繁忙 (nothing done)
    "gateway_timeout",       # 网关超时 before processing (nothing done)
    "timeout",               # sleep `seconds`, then do the work and answer normally
    "response_lost",         # do the work, then drop the connection
    "unknown_error",         # answer 未知异常, nothing done
    "unknown_then_success",  # answer 未知异常 but issue the invoice after `delay` seconds
    "rate_limit",            # per taxpayer per minute/hour, like the real RPA channel
    "fail",                  # forced refusal with `reason_code` (sync, or async for issue)
)


class FaultError(ValueError):
    """An invalid fault specification from the admin API or config."""


@dataclass
class Fault:
    id: int
    taxpayer_id: str = "*"
    kind: str = "bureau_busy"
    channel: str | None = None
    operation: str | None = None
    count: int | None = None          # None = until cleared
    seconds: float = 3.0              # timeout: how long to sleep
    delay: float = 2.0                # unknown_then_success: when the invoice appears
    hidden: bool = False              # unknown_then_success: query says not_found until then
    reason_code: str = ""             # fail: a ReasonCode value
    message: str = ""                 # optional bureau text override
    phase: str = "sync"               # fail on issue: 'sync' refusal or 'async' (accepted, then failed)
    per_minute: int = 10
    per_hour: int = 500
    mode: str = "drop"                # response_lost: 'drop' the connection or answer 'http_502'
    since: float = field(default_factory=time.monotonic)

    def matches(self, taxpayer_id: str, channel: str, operation: str) -> bool:
        return (self.taxpayer_id in ("*", taxpayer_id)
                and self.channel in (None, channel)
                and self.operation in (None, operation))

    def public(self) -> dict:
        data = asdict(self)
        data.pop("since")
        return data


def parse_fault(spec: dict, fault_id: int) -> Fault:
    """Validate an admin/config fault spec into a Fault."""
    if not isinstance(spec, dict):
        raise FaultError("fault must be an object")
    kind = spec.get("kind")
    if kind not in FAULT_KINDS:
        raise FaultError(f"kind must be one of {', '.join(FAULT_KINDS)}")
    channel, operation = spec.get("channel"), spec.get("operation")
    if channel not in (None, *CHANNELS):
        raise FaultError(f"channel must be one of {', '.join(CHANNELS)}")
    if operation not in (None, *OPERATIONS):
        raise FaultError(f"operation must be one of {', '.join(OPERATIONS)}")
    reason = spec.get("reason_code", "")
    if kind == "fail" and reason not in {c.value for c in ReasonCode}:
        raise FaultError("fail needs reason_code, a ReasonCode value")
    count = spec.get("count")
    fault = Fault(
        id=fault_id, taxpayer_id=str(spec.get("taxpayer_id") or "*"), kind=kind,
        channel=channel, operation=operation, count=int(count) if count is not None else None,
        seconds=float(spec.get("seconds", 3.0)), delay=float(spec.get("delay", 2.0)),
        hidden=bool(spec.get("hidden", False)), reason_code=reason,
        message=str(spec.get("message") or ""), phase=spec.get("phase", "sync"),
        per_minute=int(spec.get("per_minute", 10)), per_hour=int(spec.get("per_hour", 500)),
        mode=spec.get("mode", "drop"))
    if fault.mode not in ("drop", "http_502"):
        raise FaultError("mode must be drop or http_502")
    if fault.phase not in ("sync", "async"):
        raise FaultError("phase must be sync or async")
    return fault


class FaultBook:
    """Thread-safe registry of active faults, login sessions and rate-limit windows."""

    def __init__(self):
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._faults: list[Fault] = []
        self._logins: dict[tuple[str, str], float] = {}
        self._windows: dict[tuple[int, str, str], deque] = {}

    def add(self, spec: dict) -> Fault:
        with self._lock:
            fault = parse_fault(spec, next(self._ids))
            self._faults.append(fault)
            return fault

    def list(self) -> list[dict]:
        with self._lock:
            return [f.public() for f in self._faults]

    def clear(self, taxpayer_id: str | None = None, kind: str | None = None,
              fault_id: int | None = None) -> int:
        with self._lock:
            keep = [f for f in self._faults
                    if not ((taxpayer_id is None or f.taxpayer_id == taxpayer_id)
                            and (kind is None or f.kind == kind)
                            and (fault_id is None or f.id == fault_id))]
            removed = len(self._faults) - len(keep)
            self._faults = keep
            return removed

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._logins.clear()
            self._windows.clear()

    # --- session -------------------------------------------------------------
    def login(self, taxpayer_id: str, channel: str) -> None:
        with self._lock:
            self._logins[(taxpayer_id, channel)] = time.monotonic()

    def login_expired(self, taxpayer_id: str, channel: str) -> bool:
        """Expired while a matching login_expired fault is newer than the last login."""
        with self._lock:
            last = self._logins.get((taxpayer_id, channel), float("-inf"))
            return any(f.kind == "login_expired" and f.taxpayer_id in ("*", taxpayer_id)
                       and f.channel in (None, channel) and f.since > last
                       for f in self._faults)

    # --- per-call faults ------------------------------------------------------
    def take(self, taxpayer_id: str, channel: str, operation: str) -> Fault | None:
        """The first matching one-shot-style fault for this call, consuming one count."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in ("login_expired", "rate_limit"):
                    continue
                if not fault.matches(taxpayer_id, channel, operation):
                    continue
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                return fault
            return None

    def rate_limited(self, taxpayer_id: str, channel: str, operation: str) -> str | None:
        """Count this call against matching rate limits; the refusal text when over."""
        now = time.monotonic()
        with self._lock:
            limits = [f for f in self._faults
                      if f.kind == "rate_limit" and f.matches(taxpayer_id, channel, operation)]
            for fault in limits:
                window = self._windows.setdefault((fault.id, taxpayer_id, channel), deque())
                while window and now - window[0] >= 3600:
                    window.popleft()
                last_minute = sum(1 for t in window if now - t < 60)
                if last_minute >= fault.per_minute:
                    return f"请求过于频繁，每分钟最多{fault.per_minute}次，请稍后再试"
                if len(window) >= fault.per_hour:
                    return f"请求过于频繁，每小时最多{fault.per_hour}次，请稍后再试"
            for fault in limits:
                self._windows[(fault.id, taxpayer_id, channel)].append(now)
            return None
