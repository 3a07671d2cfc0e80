"""The sandbox bureau's own tables (plain SQLAlchemy 2, separate from the portal's db)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Taxpayer(Base):
    """A taxpayer known to the bureau: type, 授信额度, 税控 limit, channel credentials."""
    __tablename__ = "sb_taxpayer"

    taxpayer_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    taxpayer_type: Mapped[str] = mapped_column(String(10), default="general")  # general | small
    quota_total: Mapped[str] = mapped_column(String(20), default="10000000.00")
    quota_used: Mapped[str] = mapped_column(String(20), default="0.00")
    single_limit: Mapped[str] = mapped_column(String(20), default="100000.00")
    app_key: Mapped[str] = mapped_column(String(100), default="")
    app_secret: Mapped[str] = mapped_column(String(200), default="")
    account_configured: Mapped[bool] = mapped_column(Boolean, default=True)


class IssuedInvoice(Base):
    """One submission to a channel, and the invoice it became (开票结果)."""
    __tablename__ = "sb_invoice"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    taxpayer_id: Mapped[str] = mapped_column(String(20), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    serial_no: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending|issued|failed
    reason_code: Mapped[str] = mapped_column(String(40), default="")
    message: Mapped[str] = mapped_column(String(300), default="")
    ready_at: Mapped[datetime] = mapped_column(DateTime)
    visible_at: Mapped[datetime] = mapped_column(DateTime)
    invoice_no: Mapped[str] = mapped_column(String(20), index=True, default="")
    invoice_code: Mapped[str] = mapped_column(String(12), default="")
    invoice_type: Mapped[str] = mapped_column(String(4), default="02")
    is_red: Mapped[bool] = mapped_column(Boolean, default=False)
    blue_invoice_no: Mapped[str] = mapped_column(String(20), default="")
    red_form_no: Mapped[str] = mapped_column(String(20), default="")
    seller_tax_id: Mapped[str] = mapped_column(String(20), default="")
    seller_name: Mapped[str] = mapped_column(String(200), default="")
    buyer_tax_id: Mapped[str] = mapped_column(String(20), default="", index=True)
    buyer_name: Mapped[str] = mapped_column(String(200), default="")
    amount: Mapped[str] = mapped_column(String(20), default="0.00")
    tax_amount: Mapped[str] = mapped_column(String(20), default="0.00")
    total: Mapped[str] = mapped_column(String(20), default="0.00")
    red_amount: Mapped[str] = mapped_column(String(20), default="0.00")  # cumulative red (blue only)
    lines_json: Mapped[str] = mapped_column(Text, default="[]")
    payload_json: Mapped[str] = mapped_column(Text, default="{}")
    file_token: Mapped[str] = mapped_column(String(40), default="", index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class RedForm(Base):
    """红字发票信息确认单; one form is used by at most one red invoice."""
    __tablename__ = "sb_red_form"

    form_no: Mapped[str] = mapped_column(String(20), primary_key=True)
    taxpayer_id: Mapped[str] = mapped_column(String(20), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    serial_no: Mapped[str] = mapped_column(String(64), default="")
    blue_invoice_no: Mapped[str] = mapped_column(String(20), index=True)
    reason: Mapped[str] = mapped_column(String(10), default="01")
    amount: Mapped[str] = mapped_column(String(20), default="0.00")
    tax_amount: Mapped[str] = mapped_column(String(20), default="0.00")
    status: Mapped[str] = mapped_column(String(10), default="已确认")  # 已确认 | 已开具 | 已作废
    created_at: Mapped[datetime] = mapped_column(DateTime)


class DownloadTask(Base):
    """A download task applied for at the bureau (F18012 下载任务)."""
    __tablename__ = "sb_download_task"

    task_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    taxpayer_id: Mapped[str] = mapped_column(String(20), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    request_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    download_type: Mapped[str] = mapped_column(String(20))
    start: Mapped[str] = mapped_column(String(10))
    end: Mapped[str] = mapped_column(String(10))
    ready_at: Mapped[datetime] = mapped_column(DateTime)
    forced_outcome: Mapped[str] = mapped_column(String(20), default="")
    defective: Mapped[int] = mapped_column(Integer, default=0)
    per_day: Mapped[int] = mapped_column(Integer, default=3)
    voided: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime)
