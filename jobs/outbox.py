"""RQ job of the outbox: one delivery attempt of one message."""
from __future__ import annotations

from jobs import app_job


@app_job
def deliver(message_id: int) -> str:
    from portal import outbox
    import portal.sync_logs.service  # noqa: F401  (registers the F18012 handlers)
    return outbox.deliver(message_id)
