"""Login throttling in Redis, so it holds across every web process."""
from __future__ import annotations

from flask import current_app

from portal.redis_conn import get_redis


def _keys(username: str, ip: str) -> tuple[str, str]:
    return f"login:fail:user:{username.lower()}", f"login:fail:ip:{ip}"


def locked(username: str, ip: str) -> bool:
    r = get_redis()
    user_key, ip_key = _keys(username, ip)
    cfg = current_app.config
    user_fails = int(r.get(user_key) or 0)
    ip_fails = int(r.get(ip_key) or 0)
    return user_fails >= cfg["LOGIN_MAX_FAILURES"] or ip_fails >= cfg["LOGIN_MAX_FAILURES_PER_IP"]


def failed(username: str, ip: str) -> None:
    r = get_redis()
    ttl = current_app.config["LOGIN_LOCK_SECONDS"]
    pipe = r.pipeline()
    for key in _keys(username, ip):
        pipe.incr(key)
        pipe.expire(key, ttl)
    pipe.execute()


def succeeded(username: str, ip: str) -> None:
    get_redis().delete(_keys(username, ip)[0])
