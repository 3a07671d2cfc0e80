"""Display formatting shared by templates and exports."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import current_app

from portal.i18n import gettext


def fmt(value):
    """Format a cell: local time for datetimes, 2 decimals for money, '' for None."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return local_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, bool):
        return gettext("是") if value else gettext("否")
    return value


def local_time(value: datetime | None) -> str:
    """UTC (naive, as stored) → the display time zone, as text."""
    if value is None:
        return ""
    tz = ZoneInfo(current_app.config["DISPLAY_TZ"])
    return value.replace(tzinfo=timezone.utc).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: int | float | None) -> str:
    """A humane duration: 2天3小时, 3小时5分钟, 5分钟, 不到1分钟."""
    from portal.i18n import gettext as _

    if seconds is None:
        return ""
    minutes = int(seconds) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return _("%(d)s天%(h)s小时", d=days, h=hours) if hours else _("%(d)s天", d=days)
    if hours:
        return _("%(h)s小时%(m)s分钟", h=hours, m=mins) if mins else _("%(h)s小时", h=hours)
    return _("%(m)s分钟", m=mins) if mins else _("不到1分钟")
