"""核算组织 — accounting organisation: the unit of tax identity, channel and permission."""
from __future__ import annotations

import enum
from datetime import datetime

from portal.i18n import lazy_gettext as _l
from sqlalchemy import String, Boolean, Float, DateTime
from sqlalchemy.orm import Mapped, mapped_column

from portal.channels.base import ChannelConfig, ChannelKind
from portal.clock import now
from portal.extensions import db


class TaxpayerType(str, enum.Enum):
    GENERAL = "general"  # 一般纳税人
    SMALL = "small"      # 小规模纳税人

    @property
    def label(self) -> str:
        return {"general": _l("一般纳税人"), "small": _l("小规模纳税人")}[self.value]


class Organization(db.Model):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    tax_id: Mapped[str] = mapped_column(String(20), index=True)
    # Some early USCCs fail the check character yet are legal: an explicit override.
    tax_id_override: Mapped[bool] = mapped_column(Boolean, default=False)
    taxpayer_type: Mapped[str] = mapped_column(String(10), default=TaxpayerType.GENERAL.value)
    channel: Mapped[str] = mapped_column(String(10), default=ChannelKind.RPA.value)
    channel_base_url: Mapped[str] = mapped_column(String(300), default="")
    channel_app_key: Mapped[str] = mapped_column(String(120), default="")
    channel_app_secret: Mapped[str] = mapped_column(String(200), default="")
    channel_connect_timeout: Mapped[float] = mapped_column(Float, default=3.0)
    channel_read_timeout: Mapped[float] = mapped_column(Float, default=15.0)
    invoice_service: Mapped[bool] = mapped_column(Boolean, default=True)  # 已引入发票服务
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # 电子税局登录失效 is a property of the organisation's channel session, not of a task:
    # while set, the portal stops calling the channel for it until someone logs in.
    channel_login_expired_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)

    @property
    def taxpayer_type_label(self) -> str:
        return TaxpayerType(self.taxpayer_type).label

    @property
    def channel_label(self) -> str:
        return ChannelKind(self.channel).label

    @property
    def is_small_scale(self) -> bool:
        return self.taxpayer_type == TaxpayerType.SMALL.value

    def channel_config(self) -> ChannelConfig:
        return ChannelConfig(
            kind=ChannelKind(self.channel),
            base_url=self.channel_base_url,
            taxpayer_id=self.tax_id,
            app_key=self.channel_app_key,
            app_secret=self.channel_app_secret,
            connect_timeout=self.channel_connect_timeout,
            read_timeout=self.channel_read_timeout,
        )

    def __str__(self) -> str:
        return f"{self.code} {self.name}"
