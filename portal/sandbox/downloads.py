"""Deterministic inbound/outbound invoices per taxpayer and day, for download tasks.

The same taxpayer, direction and day always yield the same invoices (same numbers), so
the portal can de-duplicate re-downloads.  Sundays have none, so a Sunday-only range is
a natural 没有数据.
"""
from __future__ import annotations

import hashlib
import random
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from portal.channels.base import DownloadType

from .numbering import digital_number, uscc

CENT = Decimal("0.01")
COUNTERPARTIES = [
    (uscc("91110108MA01ABCD1"), "北京星辰科技有限公司"),
    (uscc("91310115MA1K3BTP2"), "上海浦江物流有限公司"),
    (uscc("91440300715267261"), "深圳前海电子有限公司"),
    (uscc("91330106MA2CDEF03"), "杭州西湖软件有限公司"),
    (uscc("91320500MA1XYW045"), "苏州工业园区精密制造有限公司"),
    (uscc("91510100MA6ABC123"), "成都天府餐饮管理有限公司"),
    (uscc("91420100MA4KLMN07"), "武汉光谷办公用品有限公司"),
    (uscc("91370200MA3PQRT08"), "青岛海湾粮油贸易有限公司"),
]
# (name, 19-digit tax code, spec, unit, rate, goods?)
PRODUCTS = [
    ("*纸制品*复印纸", "1060201010000000000", "A4 70g", "箱", "0.13", True),
    ("*计算机配套产品*显示器", "1090511030000000000", "27英寸", "台", "0.13", True),
    ("*农产品*大米", "1010101020000000000", "25kg", "袋", "0.09", True),
    ("*信息技术服务*软件维护费", "3040201000000000000", "", "", "0.06", False),
    ("*运输服务*国内货物运输", "3010102020100000000", "", "", "0.09", False),
    ("*餐饮服务*餐费", "3070401000000000000", "", "", "0.06", False),
]
CHANGED_STATUSES = ("红冲", "部分红冲", "作废")
IN_TYPES = {DownloadType.IN_FULL, DownloadType.IN_STATUS, DownloadType.IN_INCR,
            DownloadType.UNSELECTED_INIT, DownloadType.IN_EINV_FILE}


def direction_of(download_type: DownloadType) -> str:
    return "in" if download_type in IN_TYPES else "out"


def days(start: date, end: date):
    d = start
    while d <= end:
        yield d
        d += timedelta(days=1)


def _seed(taxpayer_id: str, direction: str, day: date, index: int) -> bytes:
    return hashlib.sha256(f"{taxpayer_id}|{direction}|{day.isoformat()}|{index}".encode()).digest()


def generated_invoice(taxpayer_id: str, taxpayer_name: str, direction: str, day: date,
                      index: int) -> dict:
    """One deterministic invoice, with private keys ('_changed', '_unselected') for tasks."""
    seed = _seed(taxpayer_id, direction, day, index)
    rng = random.Random(seed)
    parties = [p for p in COUNTERPARTIES if p[0] != taxpayer_id]
    other_id, other_name = rng.choice(parties)
    if direction == "in":
        seller, buyer = (other_id, other_name), (taxpayer_id, taxpayer_name)
    else:
        seller, buyer = (taxpayer_id, taxpayer_name), (other_id, other_name)
    invoice_type = "01" if rng.random() < 0.7 else "02"
    lines, amount, tax = [], Decimal("0"), Decimal("0")
    for _ in range(rng.randint(1, 3)):
        name, code, spec, unit, rate, goods = rng.choice(PRODUCTS)
        qty = Decimal(rng.randint(1, 20)) if goods else Decimal(1)
        price = Decimal(rng.randint(500, 80000)) / 100
        line_amount = (qty * price).quantize(CENT)
        line_tax = (line_amount * Decimal(rate)).quantize(CENT, ROUND_HALF_UP)
        lines.append({"name": name, "tax_code": code, "spec": spec, "unit": unit,
                      "quantity": str(qty), "unit_price": f"{price:.2f}",
                      "amount": f"{line_amount:.2f}", "tax_rate": rate,
                      "tax_amount": f"{line_tax:.2f}"})
        amount += line_amount
        tax += line_tax
    sequence = int.from_bytes(seed[:8], "big")
    return {
        "invoice_no": digital_number(day.year, seller[0], "generated", sequence),
        "invoice_code": "", "invoice_type": invoice_type, "direction": direction,
        "issue_date": day.isoformat(),
        "seller_tax_id": seller[0], "seller_name": seller[1],
        "buyer_tax_id": buyer[0], "buyer_name": buyer[1],
        "amount": f"{amount:.2f}", "tax_amount": f"{tax:.2f}", "total": f"{amount + tax:.2f}",
        "status": "正常", "lines": lines,
        "_changed": CHANGED_STATUSES[seed[9] % 3] if seed[8] % 4 == 0 else None,
        "_unselected": invoice_type == "01" and seed[10] % 3 != 0,
    }


def generated_invoices(taxpayer_id: str, taxpayer_name: str, direction: str, start: date,
                       end: date, per_day: int) -> list[dict]:
    return [generated_invoice(taxpayer_id, taxpayer_name, direction, day, i)
            for day in days(start, end) if day.weekday() != 6
            for i in range(per_day)]


def find_generated(taxpayer_id: str, taxpayer_name: str, direction: str, day: date,
                   invoice_no: str, per_day: int) -> dict | None:
    """Re-create one generated invoice from its number (for its file URL)."""
    for i in range(max(per_day, 1)):
        inv = generated_invoice(taxpayer_id, taxpayer_name, direction, day, i)
        if inv["invoice_no"] == invoice_no:
            return inv
    return None


def select_for_type(download_type: DownloadType, invoices: list[dict]) -> list[dict]:
    """What each 下载类型 delivers out of the period's invoices."""
    if download_type is DownloadType.IN_STATUS:
        out = []
        for inv in invoices:
            if inv.get("_changed"):
                out.append({**inv, "status": inv["_changed"]})
        return out
    if download_type is DownloadType.UNSELECTED_INIT:
        return [{**inv, "deduction_status": "未勾选"} for inv in invoices if inv.get("_unselected")]
    return list(invoices)


def make_defective(invoices: list[dict], count: int) -> None:
    """Spoil the first ``count`` invoices: alternately no seller tax id, or a bad total."""
    for i, inv in enumerate(invoices[:count]):
        if i % 2 == 0:
            inv["seller_tax_id"] = ""
        else:
            inv["total"] = f"{Decimal(inv['total']) + 1:.2f}"


def public(inv: dict, with_lines: bool) -> dict:
    data = {k: v for k, v in inv.items() if not k.startswith("_")}
    if not with_lines:
        data.pop("lines", None)
    return data
