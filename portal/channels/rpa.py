"""RPA channel: drives the bureau's web portal with a logged-in session.

The portal behind it does not de-duplicate serial numbers, so a resend after an
UNKNOWN outcome may issue a second invoice: callers must query_issue first.
"""
from __future__ import annotations

from datetime import date

from .base import ChannelKind, ChannelResult
from .http import HttpChannelClient, not_supported


class RpaClient(HttpChannelClient):
    kind = ChannelKind.RPA
    prefix = "rpa"

    def verify_invoice(self, invoice_no: str, invoice_code: str = "",
                       issue_date: date | None = None, amount: str | None = None) -> ChannelResult:
        """查验 is a 乐企 capability; the RPA portal session offers none."""
        return not_supported(self.kind.label)
