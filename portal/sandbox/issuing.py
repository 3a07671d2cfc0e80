"""Issuing at the sandbox bureau: accept, settle asynchronously, red forms, 查验, quota."""
from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.channels.base import REASON_MESSAGES, ReasonCode

from .models import IssuedInvoice, RedForm, Taxpayer
from .numbering import digital_number, red_form_number, taxctrl_code_and_number
from .rules import Refusal, check_invoice, invalid, money

DEDUPLICATING = {"leqi", "taxctrl"}  # RPA does not de-duplicate serial numbers
RED_REASONS = {"01", "02", "03", "04"}  # 开票有误 / 销货退回 / 服务中止 / 销售折让


def refuse(code: ReasonCode, message: str = "") -> Refusal:
    return Refusal(code, message or REASON_MESSAGES[code])


def settle(row: IssuedInvoice, now: datetime) -> IssuedInvoice:
    """Lazily move a pending submission to its result once its time has come."""
    if row.status == "pending" and now >= row.ready_at:
        row.status = "failed" if row.reason_code else "issued"
    return row


def invoice_data(row: IssuedInvoice, root: str) -> dict:
    """The issue result as channels return it."""
    data = {"serial_no": row.serial_no, "status": row.status}
    if row.status == "issued":
        data.update(invoice_no=row.invoice_no, invoice_code=row.invoice_code,
                    issued_at=row.ready_at.isoformat(timespec="seconds"),
                    pdf_url=f"{root}files/{row.file_token}.pdf", invoice_type=row.invoice_type,
                    amount=row.amount, tax_amount=row.tax_amount, total=row.total)
    elif row.status == "failed":
        data.update(reason_code=row.reason_code, message=row.message)
    return data


def red_status(row: IssuedInvoice) -> str:
    red = Decimal(row.red_amount)
    if red <= 0:
        return "正常"
    return "红冲" if red >= Decimal(row.amount) else "部分红冲"


def invoice_record(row: IssuedInvoice, root: str) -> dict:
    """An issued invoice in the download/查验/admin shape."""
    return {
        "invoice_no": row.invoice_no, "invoice_code": row.invoice_code,
        "invoice_type": row.invoice_type, "issue_date": row.ready_at.date().isoformat(),
        "seller_tax_id": row.seller_tax_id, "seller_name": row.seller_name,
        "buyer_tax_id": row.buyer_tax_id, "buyer_name": row.buyer_name,
        "amount": row.amount, "tax_amount": row.tax_amount, "total": row.total,
        "status": "正常" if row.is_red else red_status(row),
        "is_red": row.is_red, "blue_invoice_no": row.blue_invoice_no,
        "file_url": f"{root}files/{row.file_token}.pdf",
        "lines": json.loads(row.lines_json),
    }


def submissions(s: Session, taxpayer_id: str, channel: str, serial_no: str) -> list[IssuedInvoice]:
    return list(s.scalars(select(IssuedInvoice).where(
        IssuedInvoice.taxpayer_id == taxpayer_id, IssuedInvoice.channel == channel,
        IssuedInvoice.serial_no == serial_no).order_by(IssuedInvoice.id)))


def find_issued(s: Session, invoice_no: str, now: datetime) -> IssuedInvoice | None:
    for row in s.scalars(select(IssuedInvoice).where(IssuedInvoice.invoice_no == invoice_no)):
        if settle(row, now).status == "issued":
            return row
    return None


def issue(s: Session, tp: Taxpayer, channel: str, body: dict, now: datetime, root: str,
          delay: float, hidden: bool = False, fail: tuple[str, str] | None = None) -> dict:
    """Accept one invoice; it becomes 'issued' (or 'failed' when ``fail``) after ``delay``."""
    serial = str(body.get("serial_no") or "")
    if channel in DEDUPLICATING and serial:
        existing = submissions(s, tp.taxpayer_id, channel, serial)
        if existing:
            return invoice_data(settle(existing[-1], now), root)
    if channel == "taxctrl" and body.get("is_red"):
        raise refuse(ReasonCode.NOT_SUPPORTED, "税控通道不支持开具数电红字发票")
    if channel != "taxctrl" and not tp.account_configured:
        raise refuse(ReasonCode.ACCOUNT_NOT_CONFIGURED)
    amount, tax = check_invoice(body, channel, tp.taxpayer_id)
    if channel == "taxctrl" and amount > Decimal(tp.single_limit):
        raise refuse(ReasonCode.SINGLE_LIMIT_EXCEEDED,
                     f"开票单张金额超限：单张限额{tp.single_limit}元")
    blue = form = None
    if body.get("is_red"):
        blue, form = _check_red(s, tp, body, amount, now)
    elif channel != "taxctrl" and not fail:
        remaining = Decimal(tp.quota_total) - Decimal(tp.quota_used)
        if amount > remaining:
            raise refuse(ReasonCode.QUOTA_EXHAUSTED, f"授信额度不足：剩余额度{remaining:.2f}元")
    if not fail:
        if blue is not None:
            blue.red_amount = f"{Decimal(blue.red_amount) - amount:.2f}"
            form.status = "已开具"
        if channel != "taxctrl":
            used = max(Decimal(tp.quota_used) + amount, Decimal("0"))
            tp.quota_used = f"{used:.2f}"
    row = IssuedInvoice(
        taxpayer_id=tp.taxpayer_id, channel=channel, serial_no=serial, status="pending",
        reason_code=fail[0] if fail else "", message=fail[1] if fail else "",
        ready_at=now + timedelta(seconds=delay),
        visible_at=now + timedelta(seconds=delay) if hidden else now,
        invoice_type=str(body["invoice_type"]), is_red=bool(body.get("is_red")),
        blue_invoice_no=str(body.get("blue_invoice_no") or ""),
        red_form_no=str(body.get("red_form_no") or ""),
        seller_tax_id=tp.taxpayer_id, seller_name=str(body.get("seller_name") or tp.name),
        buyer_tax_id=str(body.get("buyer_tax_id") or ""), buyer_name=str(body["buyer_name"]),
        amount=f"{amount:.2f}", tax_amount=f"{tax:.2f}", total=f"{amount + tax:.2f}",
        lines_json=json.dumps(body.get("lines") or [], ensure_ascii=False),
        payload_json=json.dumps(body, ensure_ascii=False, default=str),
        file_token=secrets.token_hex(16), created_at=now)
    s.add(row)
    s.flush()
    if channel == "taxctrl":
        row.invoice_code, row.invoice_no = taxctrl_code_and_number(
            now.date(), tp.taxpayer_id, row.invoice_type, row.id)
    else:
        row.invoice_no = digital_number(now.year, tp.taxpayer_id, channel, row.id)
    data = invoice_data(settle(row, now), root)
    if data["status"] == "pending":
        data["status"] = "accepted"
    return data


def _check_red(s: Session, tp: Taxpayer, body: dict, amount: Decimal, now: datetime):
    """A red invoice needs a confirmed form for an existing blue; cumulative red ≤ blue."""
    form = s.get(RedForm, str(body.get("red_form_no")))
    if form is None or form.taxpayer_id != tp.taxpayer_id:
        raise invalid(f"红字确认单{body.get('red_form_no')}不存在")
    if form.blue_invoice_no != str(body.get("blue_invoice_no")):
        raise invalid("红字确认单与蓝字发票号码不对应")
    if form.status != "已确认":
        raise invalid(f"红字确认单状态为{form.status}，不能开具红字发票")
    blue = find_issued(s, form.blue_invoice_no, now)
    if blue is None:
        raise refuse(ReasonCode.BLUE_NOT_FOUND)
    if blue.invoice_type != str(body.get("invoice_type")):
        raise invalid("红字发票票种须与蓝字发票一致")
    if -amount > Decimal(form.amount).copy_abs():
        raise invalid("红字发票金额超过红字确认单金额")
    if -amount > Decimal(blue.amount) - Decimal(blue.red_amount):
        raise invalid("累计红冲金额超过蓝字发票金额")
    return blue, form


def query(s: Session, tp: Taxpayer, channel: str, serial_no: str, now: datetime, root: str) -> dict:
    """The latest visible submission for a serial; RPA may have several."""
    rows = [r for r in submissions(s, tp.taxpayer_id, channel, serial_no) if r.visible_at <= now]
    if not rows:
        return {"serial_no": serial_no, "status": "not_found"}
    for row in rows:
        settle(row, now)
    data = invoice_data(rows[-1], root)
    data["submissions"] = len(rows)
    data["invoice_nos"] = [r.invoice_no for r in rows if r.status == "issued"]
    return data


def verify(s: Session, body: dict, now: datetime, root: str) -> dict:
    """查验: does the bureau know this number (and do date/amount match when given)?"""
    row = find_issued(s, str(body.get("invoice_no") or ""), now)
    if row is None or (body.get("invoice_code") or "") != row.invoice_code:
        return {"exists": False}
    record = invoice_record(row, root)
    if body.get("issue_date") and body["issue_date"] != record["issue_date"]:
        return {"exists": False, "message": "查验不一致：开票日期不符"}
    if body.get("amount") not in (None, "") and money(body["amount"], "金额") != Decimal(row.amount):
        return {"exists": False, "message": "查验不一致：金额不符"}
    return {"exists": True, "invoice": record}


def create_red_form(s: Session, tp: Taxpayer, channel: str, body: dict, now: datetime) -> dict:
    """红字发票信息确认单 for a blue invoice of this seller; at most one in progress."""
    serial = str(body.get("serial_no") or "")
    if serial:
        existing = s.scalars(select(RedForm).where(
            RedForm.taxpayer_id == tp.taxpayer_id, RedForm.serial_no == serial)).first()
        if existing:
            return _form_data(existing)
    if str(body.get("reason") or "") not in RED_REASONS:
        raise invalid("红冲原因须为01开票有误/02销货退回/03服务中止/04销售折让")
    blue = find_issued(s, str(body.get("blue_invoice_no") or ""), now)
    if blue is None or blue.is_red or tp.taxpayer_id not in (blue.seller_tax_id, blue.buyer_tax_id):
        raise refuse(ReasonCode.BLUE_NOT_FOUND)
    pending = s.scalars(select(RedForm).where(RedForm.blue_invoice_no == blue.invoice_no,
                                              RedForm.status == "已确认")).first()
    if pending:
        raise refuse(ReasonCode.RED_FORM_PENDING,
                     f"该发票存在进行中的红字确认单（{pending.form_no}）")
    remaining = Decimal(blue.amount) - Decimal(blue.red_amount)
    lines = body.get("lines") or []
    if lines:
        amount = sum((money(l.get("amount"), "红冲金额").copy_abs() for l in lines), Decimal(0))
        tax = sum((money(l.get("tax_amount", "0"), "红冲税额").copy_abs() for l in lines), Decimal(0))
    else:
        amount, tax = remaining, Decimal(blue.tax_amount) * remaining / Decimal(blue.amount)
    if amount <= 0 or amount > remaining:
        raise invalid(f"红冲金额须大于0且不超过蓝字发票剩余可红冲金额{remaining:.2f}")
    form = RedForm(form_no="", taxpayer_id=tp.taxpayer_id, channel=channel, serial_no=serial,
                   blue_invoice_no=blue.invoice_no, reason=str(body["reason"]),
                   amount=f"{-amount:.2f}", tax_amount=f"{-tax:.2f}", status="已确认",
                   created_at=now)
    count = s.query(RedForm).count()
    form.form_no = red_form_number(now.date(), tp.taxpayer_id, count + 1)
    s.add(form)
    return _form_data(form)


def _form_data(form: RedForm) -> dict:
    return {"form_no": form.form_no, "status": form.status, "blue_invoice_no": form.blue_invoice_no,
            "amount": form.amount, "tax_amount": form.tax_amount}


def quota(tp: Taxpayer) -> dict:
    total, used = Decimal(tp.quota_total), Decimal(tp.quota_used)
    return {"total": f"{total:.2f}", "used": f"{used:.2f}", "remaining": f"{total - used:.2f}"}
