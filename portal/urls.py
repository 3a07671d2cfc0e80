"""Safe redirects and bounded ids: the one place that judges a `next` or an id from a request."""
from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote, urlsplit

from werkzeug.routing import IntegerConverter

# Database integer columns are 64-bit signed: a larger id is simply not found (404), and
# never reaches PostgreSQL, which would raise on it.
MAX_ID = 2 ** 63 - 1


def parse_id(value) -> int | None:
    """A positive database id from a form or query value, or None (ASCII digits only:
    ``'²'.isdigit()`` is true but ``int('²')`` raises)."""
    value = str(value or "").strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 19:
        return None
    n = int(value)
    return n if 1 <= n <= MAX_ID else None


class IdConverter(IntegerConverter):
    """`<int:…>` in routes, bounded to 1..2^63-1 so an odd id answers 404, not 500."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("min", 0)
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
