"""The one source of "now" (UTC, naive), so tests can move time for rules such as
the 3-minute retry interval."""
from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
