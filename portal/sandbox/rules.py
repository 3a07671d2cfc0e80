"""Payload rules the bureau checks before it accepts an invoice (DOMAIN.md tolerances)."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from portal.channels.base import ReasonCode

CENT = Decimal("0.01")
RATES = {Decimal(r) for r in ("0", "0.01", "0.015", "0.03", "0.05", "0.06", "0.09", "0.13")}
DIGITAL_TYPES = {"01", "02"}                  # 数电专票 / 数电普票
TAXCTRL_TYPES = {"004", "007", "026", "028"}  # 税控 专票 / 普票 / 电子普票 / 电子专票
TAX_CODE = re.compile(r"^\d{19}$")
TRANSPORT_KINDS = {"铁路", "公路", "水路", "航空", "管道"}
# 特定要素: keys the sandbox expects in invoice['special_fields'].
SPECIAL_REQUIRED = {
    "03": ("site", "project_name", "cross_city"),                 # 建筑服务
    "05": ("property_cert_no", "address", "cross_city", "area_unit"),  # 不动产销售
    "06": ("property_cert_no", "address", "cross_city", "area_unit",
           "lease_start", "lease_end"),                           # 不动产租赁
}
TRANSPORT_REQUIRED = ("origin", "destination", "vehicle_type", "vehicle_no", "goods_name")


class Refusal(Exception):
    """The bureau refuses the request: a ReasonCode and its Chinese message."""

    def __init__(self, code: ReasonCode, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def invalid(message: str) -> Refusal:
    return Refusal(ReasonCode.INVALID_REQUEST, f"请求数据不合法：{message}")


def money(value, label: str) -> Decimal:
    """A 2-decimal amount; anything else is a field error."""
    try:
        d = Decimal(str(value))
    except (InvalidOperation, TypeError):
        raise invalid(f"{label}不是有效金额") from None
    if d != d.quantize(CENT):
        raise invalid(f"{label}最多两位小数")
    return d


def number(value, label: str) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, TypeError):
        raise invalid(f"{label}不是有效数字") from None


def check_lines(invoice: dict) -> tuple[Decimal, Decimal]:
    """Per-line and whole-invoice tolerances; returns (合计金额, 合计税额)."""
    lines = invoice.get("lines") or []
    if not lines:
        raise invalid("至少需要一行商品明细")
    special = invoice.get("special_code") or ""
    sum_amount = sum_expected_tax = Decimal("0")
    for i, line in enumerate(lines, 1):
        where = f"明细第{i}行"
        if not str(line.get("name") or "").strip():
            raise invalid(f"{where}商品名称不能为空")
        if not TAX_CODE.match(str(line.get("tax_code") or "")):
            raise invalid(f"{where}税收分类编码须为19位数字")
        rate = number(line.get("tax_rate"), f"{where}税率")
        if rate not in RATES:
            raise invalid(f"{where}税率{rate}不在允许范围内")
        amount = money(line.get("amount"), f"{where}金额")
        tax = money(line.get("tax_amount"), f"{where}税额")
        qty, price = line.get("quantity"), line.get("unit_price")
        if (qty in (None, "")) != (price in (None, "")):
            raise invalid(f"{where}单价和数量须同时填写或同时为空")
        if qty not in (None, ""):
            if special == "03":
                raise invalid(f"{where}建筑服务不允许填写规格型号、单位、数量、单价")
            q, p = number(qty, f"{where}数量"), number(price, f"{where}单价")
            if abs(q * p - amount) > CENT:
                raise invalid(f"{where}单价×数量与金额之差超过0.01")
        if special == "03" and (line.get("spec") or line.get("unit")):
            raise invalid(f"{where}建筑服务不允许填写规格型号、单位、数量、单价")
        if abs(amount * rate - tax) > Decimal("0.06"):
            raise invalid(f"{where}金额×税率与税额之差超过0.06")
        if special == "01":
            if not str(line["tax_code"]).startswith("107010"):
                raise invalid(f"{where}成品油发票须使用成品油税收分类编码")
            if line.get("unit") not in ("升", "吨"):
                raise invalid(f"{where}成品油单位须为升或吨")
        sum_amount += amount
        sum_expected_tax += amount * rate
    total_amount = money(invoice.get("amount"), "合计金额")
    total_tax = money(invoice.get("tax_amount"), "合计税额")
    if abs(sum_amount - total_amount) > CENT:
        raise invalid("明细金额合计与合计金额之差超过0.01")
    if abs(sum_expected_tax - total_tax) > Decimal("1.27"):
        raise invalid("明细金额×税率合计与合计税额之差超过1.27")
    if invoice.get("total") not in (None, ""):
        if abs(money(invoice["total"], "价税合计") - total_amount - total_tax) > CENT:
            raise invalid("价税合计不等于合计金额加合计税额")
    return total_amount, total_tax


def check_special(invoice: dict) -> None:
    code = invoice.get("special_code") or ""
    fields = invoice.get("special_fields") or {}
    if code == "04":
        transports = fields.get("transports") or []
        if not transports:
            raise invalid("货物运输发票须填写运输信息")
        for t in transports:
            missing = [k for k in TRANSPORT_REQUIRED if not t.get(k)]
            if missing:
                raise invalid(f"货物运输信息缺少{', '.join(missing)}")
            if t["vehicle_type"] not in TRANSPORT_KINDS:
                raise invalid("运输工具种类须为铁路/公路/水路/航空/管道")
    elif code in SPECIAL_REQUIRED:
        missing = [k for k in SPECIAL_REQUIRED[code] if fields.get(k) in (None, "")]
        if missing:
            raise invalid(f"特定要素{code}缺少{', '.join(missing)}")


def check_invoice(invoice: dict, channel: str, taxpayer_id: str) -> tuple[Decimal, Decimal]:
    """Everything checkable from the payload alone; returns (合计金额, 合计税额)."""
    serial = str(invoice.get("serial_no") or "")
    if not serial or len(serial) > 64:
        raise invalid("流水号不能为空且不超过64位")
    types = TAXCTRL_TYPES if channel == "taxctrl" else DIGITAL_TYPES
    if str(invoice.get("invoice_type") or "") not in types:
        raise invalid(f"发票票种须为{'/'.join(sorted(types))}")
    seller, buyer = str(invoice.get("seller_tax_id") or ""), str(invoice.get("buyer_tax_id") or "")
    if seller != taxpayer_id:
        raise invalid("销方税号与开票账号不一致")
    if not str(invoice.get("buyer_name") or "").strip():
        raise invalid("购方名称不能为空")
    if buyer and buyer == seller:
        raise Refusal(ReasonCode.SAME_BUYER_SELLER, "购销方不能为同一家企业")
    if invoice.get("invoice_type") in ("01", "004", "028") and not buyer:
        raise invalid("专用发票须填写购方税号")
    check_special(invoice)
    amount, tax = check_lines(invoice)
    if invoice.get("is_red"):
        if amount >= 0:
            raise invalid("红字发票金额须为负数")
        if not invoice.get("red_form_no") or not invoice.get("blue_invoice_no"):
            raise invalid("红字发票须填写红字确认单编号和蓝字发票号码")
    elif amount <= 0:
        raise invalid("蓝字发票合计金额须大于0")
    return amount, tax
