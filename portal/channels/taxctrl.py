"""税控 channel: a tax-control device (UKey) issuing old-style code+number invoices.

It issues blue invoices directly (no split/merge) under a per-invoice amount limit and
de-duplicates by serial number.  数电 red-confirmation forms, 查验 and 授信额度 belong to
the 数电 world and are not offered; neither is the 数电 file download.
"""
from __future__ import annotations

from datetime import date

from .base import ChannelKind, ChannelResult, DownloadType
from .http import HttpChannelClient, not_supported


class TaxCtrlClient(HttpChannelClient):
    kind = ChannelKind.TAXCTRL
    prefix = "taxctrl"

    def issue_invoice(self, invoice: dict) -> ChannelResult:
        if invoice.get("is_red"):
            return not_supported(self.kind.label)
        return super().issue_invoice(invoice)

    def verify_invoice(self, invoice_no: str, invoice_code: str = "",
                       issue_date: date | None = None, amount: str | None = None) -> ChannelResult:
        return not_supported(self.kind.label)

    def create_red_confirmation(self, blue_invoice_no: str, reason: str, lines: list[dict],
                                serial_no: str) -> ChannelResult:
        return not_supported(self.kind.label)

    def quota(self) -> ChannelResult:
        return not_supported(self.kind.label)

    def apply_download(self, download_type: DownloadType, start: date, end: date,
                       request_id: str) -> ChannelResult:
        if DownloadType(download_type) is DownloadType.IN_EINV_FILE:
            return not_supported(self.kind.label)
        return super().apply_download(download_type, start, end, request_id)
