"""Channel clients (RPA, 乐企, 税控) behind one interface; ``make_client`` picks one."""
from __future__ import annotations

from .base import (DOWNLOAD_TYPE_LABELS, REASON_MESSAGES, ChannelClient, ChannelConfig,
                   ChannelKind, ChannelResult, DownloadStatus, DownloadType, Outcome,
                   ReasonCode)
from .leqi import LeqiClient
from .rpa import RpaClient
from .taxctrl import TaxCtrlClient

CLIENTS: dict[ChannelKind, type[ChannelClient]] = {
    ChannelKind.RPA: RpaClient,
    ChannelKind.LEQI: LeqiClient,
    ChannelKind.TAXCTRL: TaxCtrlClient,
}


def make_client(config: ChannelConfig) -> ChannelClient:
    """The client for an organisation's configured channel."""
    return CLIENTS[ChannelKind(config.kind)](config)


__all__ = [
    "ChannelClient", "ChannelConfig", "ChannelKind", "ChannelResult", "DownloadStatus",
    "DownloadType", "Outcome", "ReasonCode", "REASON_MESSAGES", "DOWNLOAD_TYPE_LABELS",
    "RpaClient", "LeqiClient", "TaxCtrlClient", "make_client", "CLIENTS",
]
