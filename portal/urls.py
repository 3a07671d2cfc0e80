"""Safe redirects and bounded ids: the one place that judges a `next` or an id from a request."""
from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote, urlsplit

from werkzeug.routing import IntegerConverter

# Ids and counts are INTEGER columns (32-bit signed on PostgreSQL, which raises on a
# larger bound value where SQLite just finds nothing): a larger id is simply not found.
MAX_ID = 2 ** 31 - 1


def parse_id(value) -> int | None:
    """A positive database id from a form or query value, or None (ASCII digits only:
    ``'²'.isdigit()`` is true but ``int('²')`` raises)."""
    value = str(value or "").strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 12:
        return None
    n = int(value)
    return n if 1 <= n <= MAX_ID else None


class IdConverter(IntegerConverter):
    """`<int:…>` in routes, bounded to 1..MAX_ID so an odd id answers 404, not 500."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f-\x9f\s\u200b-\u200f\u2028\u2029\ufeff]")


def safe_next(value: str | None, fallback: str = "/") -> str:
    """`value` if it is a path on this site, else `fallback`.

    Browsers drop tabs, newlines and other control characters inside URLs and read a
    backslash as a slash, so ``'/\\t/evil.example'`` and ``'/\\\\evil.example'`` both go
    to ``//evil.example``. So a value with any control character, whitespace or backslash
    is refused outright, and so is one that names a scheme or a host, or whose path does
    not start with exactly one slash — also once percent-decoded.
    """
    if not value or not isinstance(value, str):
        return fallback
    if _CONTROL_OR_SPACE.search(value) or "\\" in value:
        return fallback
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return fallback
    path = unicodedata.normalize("NFKC", unquote(parts.path))
    path = _CONTROL_OR_SPACE.sub("", path).replace("\\", "/")
    if not path.startswith("/") or path.startswith("//"):
        return fallback
    return value


def refuse_nul(request):
    """Before every request: a NUL character in the query string or a form is never data
    (PostgreSQL refuses it in text), so the request is answered 400 at once."""
    from flask import render_template
    values = list(request.args.values()) + (list(request.form.values()) if request.method == "POST" else [])
    if any("\x00" in v for v in values) or "\x00" in request.path:
        return render_template("error.html", code=400, message="请求包含非法字符"), 400
    return None
