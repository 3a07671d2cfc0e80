"""Display formatting shared by templates and exports."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import current_app


def local_time(value: datetime | None) -> str:
    """UTC (naive, as stored) → the display time zone, as text."""
    if value is None:
        return ""
    tz = ZoneInfo(current_app.config["DISPLAY_TZ"])
    return value.replace(tzinfo=timezone.utc).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
