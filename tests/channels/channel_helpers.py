"""Helpers shared by the channel contract tests (payloads, polling, the admin API)."""
from __future__ import annotations

import itertools
import time
import uuid
from datetime import date

import requests

from portal.sandbox.numbering import uscc

ISSUE_DELAY = 0.3
DOWNLOAD_DELAY = 0.3
BUYER_ID, BUYER_NAME = uscc("91310115MA1K3BTP2"), "上海浦江物流有限公司"
DIGITAL_TYPE = {"rpa": "01", "leqi": "01", "taxctrl": "004"}
_taxpayer_seq = itertools.count(1)


def new_taxpayer_id() -> str:
    """A fresh valid USCC per test, so tests never share bureau state."""
    return uscc(f"91110108{next(_taxpayer_seq) + 700000000:09d}")


class Admin:
    """The sandbox admin API, as tests use it."""

    def __init__(self, base: str):
        self.base = base

    def post(self, path: str, body) -> dict:
        resp = requests.post(f"{self.base}/_admin{path}", json=body, timeout=5)
        assert resp.status_code in (200, 201), resp.text
        return resp.json()

    def taxpayer(self, **body) -> dict:
        return self.post("/taxpayers", body)

    def fault(self, **spec) -> dict:
        return self.post("/faults", spec)["faults"][0]

    def downloads(self, **body) -> dict:
        return self.post("/downloads", body)

    def invoices(self, **filters) -> list[dict]:
        resp = requests.get(f"{self.base}/_admin/invoices", params=filters, timeout=5)
        return resp.json()["invoices"]


def line(amount="100.00", rate="0.13", tax="13.00", quantity="2", unit_price="50.00", **extra) -> dict:
    return {"name": "*纸制品*复印纸", "tax_code": "1060201010000000000", "spec": "A4", "unit": "箱",
            "quantity": quantity, "unit_price": unit_price, "amount": amount, "tax_rate": rate,
            "tax_amount": tax, **extra}


def invoice(seller_id: str, kind: str = "leqi", lines=None, amount=None, tax=None, **extra) -> dict:
    """A valid blue invoice payload unless a test changes something."""
    lines = lines or [line()]
    amount = amount or f"{sum(float(l['amount']) for l in lines):.2f}"
    tax = tax or f"{sum(float(l['tax_amount']) for l in lines):.2f}"
    body = {"serial_no": f"SN{uuid.uuid4().hex[:16]}", "invoice_type": DIGITAL_TYPE[kind],
            "is_red": False, "seller_tax_id": seller_id, "seller_name": "沙箱测试销售有限公司",
            "buyer_tax_id": BUYER_ID, "buyer_name": BUYER_NAME, "lines": lines,
            "amount": amount, "tax_amount": tax}
    body.update(extra)
    return body


def wait_issue(client, serial_no: str, polls: int = 60):
    """Poll query_issue until the submission is no longer pending."""
    for _ in range(polls):
        result = client.query_issue(serial_no)
        if not (result.ok and result.data["status"] == "pending"):
            return result
        time.sleep(0.1)
    return result


def wait_download(client, task_id: str, with_lines: bool = True, polls: int = 60):
    for _ in range(polls):
        result = client.query_download(task_id, with_lines)
        if not (result.ok and result.data["status"] == "processing"):
            return result
        time.sleep(0.1)
    return result


MONDAY, SUNDAY = date(2025, 11, 3), date(2025, 11, 9)
