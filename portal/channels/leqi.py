"""乐企 channel: direct bureau API, de-duplicates by serial number, offers 查验."""
from __future__ import annotations

from .base import ChannelKind
from .http import HttpChannelClient


class LeqiClient(HttpChannelClient):
    kind = ChannelKind.LEQI
    prefix = "leqi"
