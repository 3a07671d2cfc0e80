"""Login throttling in Redis, so it holds across every web process.

An attempt is counted *before* its password is checked, in one Lua script, so concurrent
attempts cannot all slip under the limit: at most LOGIN_MAX_FAILURES password checks per
user and IP, then that user is paused *from that IP only*, for LOGIN_LOCK_SECONDS, doubled
at every further lock-out up to LOGIN_LOCK_MAX_SECONDS (a growing delay, not a hard lock:
an attacker cannot lock the user out from anyone else's network).

Per IP, a spray across many usernames is slowed the same way (LOGIN_MAX_FAILURES_PER_IP),
but a user who has logged in from that IP before is exempt from the IP limit, so an
attacker behind the office NAT cannot lock out the colleagues (or the admin) behind it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from flask import current_app

from portal.redis_conn import get_redis

# KEYS: pair count, pair lock, pair level, ip count, ip lock, ip level
# ARGV: max per pair, max per ip, window (s), first lock (ms), longest lock (ms), exempt from ip (0/1)
_RESERVE = """
local max, max_ip, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local base, cap, exempt = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] == '1'
local function lock(count_key, lock_key, level_key)
  local level = redis.call('INCR', level_key)
  redis.call('PEXPIRE', level_key, cap + window * 1000)
  local delay = math.min(base * 2 ^ (level - 1), cap)
  redis.call('SET', lock_key, '1', 'PX', math.floor(delay))
  redis.call('DEL', count_key)
  return math.floor(delay)
end
local ttl = redis.call('PTTL', KEYS[2])
if ttl > 0 then return {0, ttl} end
if not exempt then
  ttl = redis.call('PTTL', KEYS[5])
  if ttl > 0 then return {0, ttl} end
end
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], window)
if n > max then return {0, lock(KEYS[1], KEYS[2], KEYS[3])} end
if not exempt then
  local m = redis.call('INCR', KEYS[4])
  redis.call('EXPIRE', KEYS[4], window)
  if m > max_ip then
    redis.call('DECR', KEYS[1])
    return {0, lock(KEYS[4], KEYS[5], KEYS[6])}
  end
end
return {1, 0}
"""

_GIVE_BACK = "if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end"


@dataclass
class Attempt:
    allowed: bool
    wait_seconds: int = 0


def _keys(username: str, ip: str) -> dict[str, str]:
    pair = f"{username.lower()}|{ip}"
    return {"count": f"login:fail:{pair}", "lock": f"login:lock:{pair}", "level": f"login:level:{pair}",
            "ip_count": f"login:fail:ip:{ip}", "ip_lock": f"login:lock:ip:{ip}",
            "ip_level": f"login:level:ip:{ip}", "known": f"login:known:{pair}"}


def attempt(username: str, ip: str) -> Attempt:
    """Count one login attempt, or refuse it with how long to wait. Call before checking
    the password; report the outcome with `succeeded` (a failure is already counted)."""
    r, cfg, k = get_redis(), current_app.config, _keys(username, ip)
    exempt = r.exists(k["known"])
    allowed, wait_ms = r.eval(
        _RESERVE, 6, k["count"], k["lock"], k["level"], k["ip_count"], k["ip_lock"], k["ip_level"],
        cfg["LOGIN_MAX_FAILURES"], cfg["LOGIN_MAX_FAILURES_PER_IP"], cfg["LOGIN_FAILURE_WINDOW_SECONDS"],
        cfg["LOGIN_LOCK_SECONDS"] * 1000, cfg["LOGIN_LOCK_MAX_SECONDS"] * 1000, "1" if exempt else "0")
    return Attempt(bool(allowed), math.ceil(int(wait_ms) / 1000))


def succeeded(username: str, ip: str) -> None:
    """The attempt was not a failure: forget this pair's failures and remember the IP."""
    r, cfg, k = get_redis(), current_app.config, _keys(username, ip)
    exempt = r.exists(k["known"])
    pipe = r.pipeline()
    pipe.delete(k["count"], k["level"])
    if not exempt:  # give back the IP's count of this attempt (never below zero)
        pipe.eval(_GIVE_BACK, 1, k["ip_count"])
    pipe.set(k["known"], "1", ex=cfg["LOGIN_KNOWN_IP_DAYS"] * 86400)
    pipe.execute()


def wait_text(seconds: int) -> str:
    """'45 秒' or '2 分钟' (rounded up): how long a paused login waits."""
    from portal.i18n import gettext as _
    if seconds < 60:
        return _("%(n)s 秒", n=seconds)
    return _("%(n)s 分钟", n=math.ceil(seconds / 60))
