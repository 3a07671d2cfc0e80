"""Messages to the user: flashed for plain requests, toasts via HX-Trigger for htmx."""
from __future__ import annotations

import json

from flask import flash, g, request


def notify(message: str, level: str = "success") -> None:
    if getattr(request, "htmx", False):
        g.setdefault("toasts", []).append({"level": level, "message": message})
    else:
        flash(message, level)


def attach_toasts(response):
    """after_request: merge queued toasts into the HX-Trigger header."""
    toasts = g.pop("toasts", None)
    if toasts:
        trigger = json.loads(response.headers.get("HX-Trigger", "{}") or "{}")
        trigger["toast"] = toasts
        response.headers["HX-Trigger"] = json.dumps(trigger)  # ASCII: headers are latin-1
    return response
