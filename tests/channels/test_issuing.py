"""Issuing over every channel against the sandbox bureau (F17008 开票过程监控)."""
from __future__ import annotations

from datetime import date

import pytest
import requests

from channel_helpers import BUYER_ID, invoice, line, wait_issue
from portal.channels import Outcome, ReasonCode


@pytest.mark.parametrize("kind", ["rpa", "leqi"])
def test_digital_invoice_is_accepted_then_issued_with_20_digit_year_prefixed_number(kind, seller, client_for):
    client = client_for(kind, seller)
    body = invoice(seller, kind)
    accepted = client.issue_invoice(body)
    assert accepted.outcome is Outcome.SUCCESS
    assert accepted.data == {"serial_no": body["serial_no"], "status": "accepted"}
    assert client.query_issue(body["serial_no"]).data["status"] == "pending"

    issued = wait_issue(client, body["serial_no"])
    assert issued.outcome is Outcome.SUCCESS and issued.data["status"] == "issued"
    number = issued.data["invoice_no"]
    assert len(number) == 20 and number.isdigit()
    assert number[:2] == f"{date.today().year % 100:02d}" and number[2:4] == "11"
    assert issued.data["invoice_code"] == ""
    assert issued.data["total"] == "113.00"


def test_taxctrl_invoice_gets_12_digit_code_and_8_digit_number(seller, client_for):
    client = client_for("taxctrl", seller)
    body = invoice(seller, "taxctrl")
    assert client.issue_invoice(body).data["status"] == "accepted"
    issued = wait_issue(client, body["serial_no"])
    assert issued.data["status"] == "issued"
    assert len(issued.data["invoice_code"]) == 12 and issued.data["invoice_code"].isdigit()
    assert len(issued.data["invoice_no"]) == 8 and issued.data["invoice_no"].isdigit()


def test_issued_invoice_pdf_is_served_at_its_own_url(seller, client_for):
    client = client_for("leqi", seller)
    body = invoice(seller)
    client.issue_invoice(body)
    issued = wait_issue(client, body["serial_no"])
    resp = requests.get(issued.data["pdf_url"], timeout=5)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/pdf"
    assert resp.content.startswith(b"%PDF")


def test_query_of_an_unknown_serial_number_says_not_found(seller, client_for):
    result = client_for("leqi", seller).query_issue("NO-SUCH-SERIAL")
    assert result.outcome is Outcome.SUCCESS
    assert result.data == {"serial_no": "NO-SUCH-SERIAL", "status": "not_found"}


def test_rpa_does_not_deduplicate_a_resent_serial_number(seller, client_for, admin):
    client = client_for("rpa", seller)
    body = invoice(seller, "rpa")
    assert client.issue_invoice(body).data["status"] == "accepted"
    assert client.issue_invoice(body).data["status"] == "accepted"
    wait_issue(client, body["serial_no"])
    rows = admin.invoices(taxpayer_id=seller, serial_no=body["serial_no"])
    assert len(rows) == 2
    assert rows[0]["invoice_no"] != rows[1]["invoice_no"]
    assert client.query_issue(body["serial_no"]).data["submissions"] == 2


@pytest.mark.parametrize("kind", ["leqi", "taxctrl"])
def test_leqi_and_taxctrl_deduplicate_by_serial_number(kind, seller, client_for, admin):
    client = client_for(kind, seller)
    body = invoice(seller, kind)
    client.issue_invoice(body)
    first = wait_issue(client, body["serial_no"])
    again = client.issue_invoice(body)
    assert again.outcome is Outcome.SUCCESS
    assert again.data["status"] == "issued"
    assert again.data["invoice_no"] == first.data["invoice_no"]
    assert len(admin.invoices(taxpayer_id=seller, serial_no=body["serial_no"])) == 1


def test_buyer_and_seller_must_differ(seller, client_for):
    result = client_for("leqi", seller).issue_invoice(invoice(seller, buyer_tax_id=seller))
    assert result.outcome is Outcome.FAILED
    assert result.reason_code == ReasonCode.SAME_BUYER_SELLER.value
    assert result.message == "购销方不能为同一家企业"


@pytest.mark.parametrize("amount, accepted", [("100.01", True), ("100.02", False)])
def test_line_unit_price_times_quantity_within_0_01_of_amount(amount, accepted, seller, client_for):
    body = invoice(seller, lines=[line(amount=amount)], tax="13.00")
    result = client_for("leqi", seller).issue_invoice(body)
    if accepted:
        assert result.outcome is Outcome.SUCCESS
    else:
        assert result.outcome is Outcome.FAILED
        assert result.reason_code == ReasonCode.INVALID_REQUEST.value
        assert result.message == "请求数据不合法：明细第1行单价×数量与金额之差超过0.01"


@pytest.mark.parametrize("tax, accepted", [("13.06", True), ("13.07", False)])
def test_line_amount_times_rate_within_0_06_of_tax(tax, accepted, seller, client_for):
    body = invoice(seller, lines=[line(tax=tax)])
    result = client_for("leqi", seller).issue_invoice(body)
    assert result.outcome is (Outcome.SUCCESS if accepted else Outcome.FAILED)
    if not accepted:
        assert result.message == "请求数据不合法：明细第1行金额×税率与税额之差超过0.06"


@pytest.mark.parametrize("total_amount, accepted", [("100.01", True), ("100.02", False)])
def test_sum_of_line_amounts_within_0_01_of_invoice_amount(total_amount, accepted, seller, client_for):
    result = client_for("leqi", seller).issue_invoice(invoice(seller, amount=total_amount))
    assert result.outcome is (Outcome.SUCCESS if accepted else Outcome.FAILED)
    if not accepted:
        assert result.message == "请求数据不合法：明细金额合计与合计金额之差超过0.01"


@pytest.mark.parametrize("count, accepted", [(25, True), (26, False)])
def test_sum_of_line_taxes_within_1_27_of_invoice_tax(count, accepted, seller, client_for):
    # every line is 0.05 off (inside the 0.06 line tolerance); 25 × 0.05 = 1.25, 26 × 0.05 = 1.30
    lines = [line(tax="13.05") for _ in range(count)]
    body = invoice(seller, lines=lines, tax=f"{13.05 * count:.2f}")
    result = client_for("leqi", seller).issue_invoice(body)
    assert result.outcome is (Outcome.SUCCESS if accepted else Outcome.FAILED)
    if not accepted:
        assert result.message == "请求数据不合法：明细金额×税率合计与合计税额之差超过1.27"


def test_unknown_tax_rate_is_refused(seller, client_for):
    result = client_for("leqi", seller).issue_invoice(
        invoice(seller, lines=[line(rate="0.17", tax="17.00")]))
    assert result.outcome is Outcome.FAILED
    assert result.message == "请求数据不合法：明细第1行税率0.17不在允许范围内"


def test_freight_special_element_needs_its_transport_fields(seller, client_for):
    client = client_for("leqi", seller)
    missing = client.issue_invoice(invoice(seller, special_code="04", special_fields={"transports": [
        {"origin": "上海", "destination": "北京", "vehicle_type": "公路", "goods_name": "纸"}]}))
    assert missing.outcome is Outcome.FAILED
    assert missing.message == "请求数据不合法：货物运输信息缺少vehicle_no"
    ok = client.issue_invoice(invoice(seller, special_code="04", special_fields={"transports": [
        {"origin": "上海", "destination": "北京", "vehicle_type": "公路", "vehicle_no": "沪A12345",
         "goods_name": "纸"}]}))
    assert ok.outcome is Outcome.SUCCESS


def test_quota_is_consumed_and_exhausted_quota_refuses(seller, client_for, admin):
    admin.taxpayer(taxpayer_id=seller, quota_total="150.00")
    client = client_for("rpa", seller)
    assert client.issue_invoice(invoice(seller, "rpa")).outcome is Outcome.SUCCESS
    assert client.quota().data == {"total": "150.00", "used": "100.00", "remaining": "50.00"}
    refused = client.issue_invoice(invoice(seller, "rpa"))
    assert refused.outcome is Outcome.FAILED
    assert refused.reason_code == ReasonCode.QUOTA_EXHAUSTED.value
    assert refused.message == "授信额度不足：剩余额度50.00元"


def test_taxctrl_single_invoice_limit(seller, client_for, admin):
    admin.taxpayer(taxpayer_id=seller, single_limit="99.99")
    result = client_for("taxctrl", seller).issue_invoice(invoice(seller, "taxctrl"))
    assert result.outcome is Outcome.FAILED
    assert result.reason_code == ReasonCode.SINGLE_LIMIT_EXCEEDED.value
    assert result.message == "开票单张金额超限：单张限额99.99元"


def test_digital_issue_needs_a_configured_account(seller, client_for, admin):
    admin.taxpayer(taxpayer_id=seller, account_configured=False)
    result = client_for("leqi", seller).issue_invoice(invoice(seller))
    assert result.outcome is Outcome.FAILED
    assert result.reason_code == ReasonCode.ACCOUNT_NOT_CONFIGURED.value
    assert result.message == "未配置数电开票账号"


def test_async_failure_is_reported_by_query(seller, client_for, admin):
    admin.fault(taxpayer_id=seller, kind="fail", operation="issue", reason_code="face_check_failed",
                phase="async", count=1)
    client = client_for("rpa", seller)
    body = invoice(seller, "rpa")
    assert client.issue_invoice(body).data["status"] == "accepted"
    result = wait_issue(client, body["serial_no"])
    assert result.data["status"] == "failed"
    assert result.data["reason_code"] == "face_check_failed"
    assert result.data["message"] == "人脸核验失败"


def _issue_blue(client, seller, kind="leqi"):
    body = invoice(seller, kind)
    client.issue_invoice(body)
    return wait_issue(client, body["serial_no"]).data


def _red(seller, blue, form_no, amount, tax, kind="leqi"):
    return invoice(seller, kind, lines=[line(amount=f"-{amount}", tax=f"-{tax}", quantity=None,
                                             unit_price=None)],
                   is_red=True, red_form_no=form_no, blue_invoice_no=blue["invoice_no"])


def test_red_confirmation_form_needs_an_existing_blue_invoice(seller, client_for):
    result = client_for("leqi", seller).create_red_confirmation(
        "25119000000000000001", "01", [], "RF-1")
    assert result.outcome is Outcome.FAILED
    assert result.reason_code == ReasonCode.BLUE_NOT_FOUND.value
    assert result.message == "红字确认单对应蓝字发票不存在"


@pytest.mark.parametrize("kind", ["rpa", "leqi"])
def test_red_invoice_with_confirmation_form_reverses_the_blue(kind, seller, client_for, admin):
    client = client_for(kind, seller)
    blue = _issue_blue(client, seller, kind)
    form = client.create_red_confirmation(blue["invoice_no"], "01", [], "RF-A")
    assert form.outcome is Outcome.SUCCESS
    assert form.data["status"] == "已确认" and len(form.data["form_no"]) == 20
    assert form.data["amount"] == "-100.00"
    red = _red(seller, blue, form.data["form_no"], "100.00", "13.00", kind)
    assert client.issue_invoice(red).outcome is Outcome.SUCCESS
    assert wait_issue(client, red["serial_no"]).data["status"] == "issued"
    [blue_row] = [r for r in admin.invoices(taxpayer_id=seller) if r["invoice_no"] == blue["invoice_no"]]
    assert blue_row["status"] == "红冲"


def test_second_form_while_one_is_in_progress_is_refused(seller, client_for):
    client = client_for("leqi", seller)
    blue = _issue_blue(client, seller)
    assert client.create_red_confirmation(blue["invoice_no"], "01", [], "RF-1").ok
    second = client.create_red_confirmation(blue["invoice_no"], "01", [], "RF-2")
    assert second.outcome is Outcome.FAILED
    assert second.reason_code == ReasonCode.RED_FORM_PENDING.value
    assert second.message.startswith("该发票存在进行中的红字确认单")


def test_red_invoice_needs_an_existing_confirmation_form(seller, client_for):
    client = client_for("leqi", seller)
    blue = _issue_blue(client, seller)
    result = client.issue_invoice(_red(seller, blue, "25119999999999999999", "100.00", "13.00"))
    assert result.outcome is Outcome.FAILED
    assert result.reason_code == ReasonCode.INVALID_REQUEST.value
    assert result.message == "请求数据不合法：红字确认单25119999999999999999不存在"


def test_cumulative_red_may_not_exceed_the_blue_invoice(seller, client_for, admin):
    client = client_for("leqi", seller)
    blue = _issue_blue(client, seller)
    partial = client.create_red_confirmation(
        blue["invoice_no"], "04", [{"amount": "-40.00", "tax_amount": "-5.20"}], "RF-P1")
    red = _red(seller, blue, partial.data["form_no"], "40.00", "5.20")
    assert client.issue_invoice(red).ok
    wait_issue(client, red["serial_no"])
    [blue_row] = [r for r in admin.invoices(taxpayer_id=seller) if r["invoice_no"] == blue["invoice_no"]]
    assert blue_row["status"] == "部分红冲"
    too_much = client.create_red_confirmation(
        blue["invoice_no"], "04", [{"amount": "-70.00", "tax_amount": "-9.10"}], "RF-P2")
    assert too_much.outcome is Outcome.FAILED
    assert too_much.message == "请求数据不合法：红冲金额须大于0且不超过蓝字发票剩余可红冲金额60.00"
    assert client.create_red_confirmation(
        blue["invoice_no"], "04", [{"amount": "-60.00", "tax_amount": "-7.80"}], "RF-P3").ok


def test_verify_on_leqi_confirms_issued_numbers_only(seller, client_for):
    client = client_for("leqi", seller)
    blue = _issue_blue(client, seller)
    found = client.verify_invoice(blue["invoice_no"], amount="100.00")
    assert found.outcome is Outcome.SUCCESS and found.data["exists"] is True
    assert found.data["invoice"]["buyer_tax_id"] == BUYER_ID
    assert client.verify_invoice("25110000000000000000").data == {"exists": False}
    mismatch = client.verify_invoice(blue["invoice_no"], amount="99.00")
    assert mismatch.data["exists"] is False and mismatch.data["message"] == "查验不一致：金额不符"


@pytest.mark.parametrize("kind", ["rpa", "leqi", "taxctrl"])
def test_login_status_reports_a_live_session(kind, seller, client_for):
    result = client_for(kind, seller).login_status()
    assert result.outcome is Outcome.SUCCESS
    assert result.data["logged_in"] is True and result.data["expires_at"]


@pytest.mark.parametrize("kind, call", [
    ("rpa", lambda c: c.verify_invoice("25110000000000000000")),
    ("taxctrl", lambda c: c.verify_invoice("12345678", "011002500401")),
    ("taxctrl", lambda c: c.create_red_confirmation("12345678", "01", [], "RF")),
    ("taxctrl", lambda c: c.quota()),
    ("taxctrl", lambda c: c.issue_invoice({"serial_no": "X", "is_red": True})),
])
def test_operations_a_channel_does_not_offer_answer_not_supported(kind, call, seller, client_for):
    result = call(client_for(kind, seller))
    assert result.outcome is Outcome.FAILED
    assert result.reason_code == ReasonCode.NOT_SUPPORTED.value
    assert result.message.startswith("该通道不支持此操作")
