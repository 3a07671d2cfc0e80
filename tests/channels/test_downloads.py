"""Download tasks (F18012 数据同步日志查询): every 下载类型 and every 同步状态."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import requests

from channel_helpers import MONDAY, SUNDAY, invoice, wait_download, wait_issue
from portal.channels import DownloadStatus, DownloadType, Outcome, ReasonCode

WEEK_END = MONDAY + timedelta(days=5)  # Monday..Saturday: 6 days × 3 a day
HEADER_KEYS = {"invoice_no", "invoice_code", "invoice_type", "direction", "issue_date",
               "seller_tax_id", "seller_name", "buyer_tax_id", "buyer_name", "amount",
               "tax_amount", "total", "status"}
LINE_KEYS = {"name", "tax_code", "spec", "unit", "quantity", "unit_price", "amount", "tax_rate",
             "tax_amount"}


def download(client, download_type, start=MONDAY, end=WEEK_END, request_id=None, with_lines=True):
    applied = client.apply_download(download_type, start, end,
                                    request_id or f"{download_type.value}-{start}-{end}")
    assert applied.outcome is Outcome.SUCCESS, applied
    return wait_download(client, applied.data["task_id"], with_lines)


@pytest.mark.parametrize("download_type", list(DownloadType), ids=lambda t: t.value)
def test_each_download_type_is_processing_then_downloaded(download_type, seller, client_for):
    client = client_for("rpa", seller)
    task_id = client.apply_download(download_type, MONDAY, WEEK_END, "r-1").data["task_id"]
    first = client.query_download(task_id)
    assert first.data["status"] == DownloadStatus.PROCESSING.value
    assert first.data["message"] == "下载处理中"
    result = wait_download(client, task_id)
    assert result.data["status"] == DownloadStatus.SUCCESS.value
    invoices = result.data["invoices"]
    assert invoices
    expected_direction = "out" if download_type is DownloadType.OUT_FULL else "in"
    for inv in invoices:
        assert HEADER_KEYS <= set(inv)
        assert inv["direction"] == expected_direction
        assert len(inv["invoice_no"]) == 20 and inv["invoice_code"] == ""
        assert MONDAY.isoformat() <= inv["issue_date"] <= WEEK_END.isoformat()
        assert inv["lines"] and LINE_KEYS <= set(inv["lines"][0])
        assert len(inv["lines"][0]["tax_code"]) == 19
        party = inv["buyer_tax_id"] if expected_direction == "in" else inv["seller_tax_id"]
        assert party == seller


def test_full_downloads_have_a_few_invoices_per_working_day(seller, client_for):
    result = download(client_for("leqi", seller), DownloadType.IN_FULL)
    assert len(result.data["invoices"]) == 6 * 3


def test_downloads_are_deterministic_so_redownloads_deduplicate(seller, client_for):
    client = client_for("leqi", seller)
    first = download(client, DownloadType.IN_FULL, request_id="a")
    second = download(client, DownloadType.IN_FULL, request_id="b")
    assert first.data["invoices"] == second.data["invoices"]


def test_in_status_update_changes_statuses_of_invoices_already_delivered(seller, client_for):
    client = client_for("leqi", seller)
    full = {i["invoice_no"]: i for i in download(client, DownloadType.IN_FULL).data["invoices"]}
    updates = download(client, DownloadType.IN_STATUS).data["invoices"]
    assert updates
    for inv in updates:
        assert inv["invoice_no"] in full
        assert full[inv["invoice_no"]]["status"] == "正常"
        assert inv["status"] in ("红冲", "部分红冲", "作废")


def test_unselected_init_lists_special_invoices_not_yet_selected(seller, client_for):
    invoices = download(client_for("leqi", seller), DownloadType.UNSELECTED_INIT).data["invoices"]
    assert invoices
    assert {(i["invoice_type"], i["deduction_status"]) for i in invoices} == {("01", "未勾选")}


def test_small_scale_taxpayer_cannot_download_deduction_selection(seller, client_for, admin):
    admin.taxpayer(taxpayer_id=seller, taxpayer_type="small")
    client = client_for("rpa", seller)
    result = client.apply_download(DownloadType.UNSELECTED_INIT, MONDAY, WEEK_END, "r")
    assert result.outcome is Outcome.FAILED
    assert result.reason_code == ReasonCode.TAXPAYER_TYPE.value
    assert result.message == "小规模纳税人不支持抵扣类勾选数据下载"
    assert client.apply_download(DownloadType.IN_FULL, MONDAY, WEEK_END, "r2").ok


def test_einvoice_file_download_gives_a_served_pdf_per_invoice(seller, client_for):
    invoices = download(client_for("leqi", seller), DownloadType.IN_EINV_FILE).data["invoices"]
    resp = requests.get(invoices[0]["file_url"], timeout=5)
    assert resp.status_code == 200 and resp.content.startswith(b"%PDF")


def test_query_with_header_only_omits_lines(seller, client_for):
    result = download(client_for("leqi", seller), DownloadType.IN_FULL, with_lines=False)
    assert result.data["status"] == DownloadStatus.SUCCESS.value
    assert all("lines" not in inv for inv in result.data["invoices"])


def test_range_without_invoices_has_no_data(seller, client_for):
    result = download(client_for("leqi", seller), DownloadType.IN_FULL, SUNDAY, SUNDAY)
    assert result.data["status"] == DownloadStatus.NO_DATA.value
    assert result.data["message"] == "当期没有需要同步的发票"
    assert result.data["invoices"] == []


@pytest.mark.parametrize("outcome, message", [
    ("no_data", "当期没有需要同步的发票"),
    ("header_only", "已下载发票表头，明细未下载"),
    ("incomplete", "进销项数据不全：部分发票数据缺失"),
    ("failed", "下载失败：税局数据文件生成失败"),
])
def test_forced_download_outcome(outcome, message, seller, client_for, admin):
    admin.downloads(taxpayer_id=seller, outcome=outcome)
    client = client_for("rpa", seller)
    result = download(client, DownloadType.IN_FULL)
    assert result.outcome is Outcome.SUCCESS
    assert (result.data["status"], result.data["message"]) == (outcome, message)
    invoices = result.data["invoices"]
    if outcome == "header_only":
        assert len(invoices) == 18 and all("lines" not in i for i in invoices)
    elif outcome == "incomplete":
        assert len(invoices) == 9
    else:
        assert invoices == []
    # 'next' (the default mode) applies to one task only
    assert download(client, DownloadType.IN_FULL, request_id="later").data["status"] == "success"


def test_apply_failed_refuses_the_download_request(seller, client_for, admin):
    admin.downloads(taxpayer_id=seller, outcome="apply_failed", mode="all")
    client = client_for("rpa", seller)
    for request_id in ("a", "b"):
        result = client.apply_download(DownloadType.OUT_FULL, MONDAY, WEEK_END, request_id)
        assert result.outcome is Outcome.FAILED
        assert result.reason_code == ReasonCode.DOWNLOAD_APPLY_FAILED.value
        assert result.message == "进销项下载申请失败：无法连接税局下载"


def test_forced_processing_stays_processing_until_released(seller, client_for, admin, sandbox_url):
    admin.downloads(taxpayer_id=seller, outcome="processing", mode="all")
    client = client_for("rpa", seller)
    task_id = client.apply_download(DownloadType.IN_FULL, MONDAY, WEEK_END, "p").data["task_id"]
    assert wait_download(client, task_id, polls=5).data["status"] == "processing"
    requests.delete(f"{sandbox_url}/_admin/downloads", params={"taxpayer_id": seller}, timeout=5)
    assert client.query_download(task_id).data["status"] == "success"


def test_processing_delay_is_configurable_and_zero_is_immediate(seller, client_for, admin):
    admin.downloads(taxpayer_id=seller, delay=0)
    client = client_for("leqi", seller)
    task_id = client.apply_download(DownloadType.IN_FULL, MONDAY, MONDAY, "z").data["task_id"]
    assert client.query_download(task_id).data["status"] == "success"


def test_admin_can_decide_one_task(seller, client_for, admin):
    admin.downloads(taxpayer_id=seller, outcome="processing")
    client = client_for("leqi", seller)
    task_id = client.apply_download(DownloadType.IN_FULL, MONDAY, MONDAY, "t").data["task_id"]
    admin.post(f"/download-tasks/{task_id}", {"outcome": "incomplete"})
    assert client.query_download(task_id).data["status"] == "incomplete"


def test_defective_invoices_are_counted_in_the_result(seller, client_for, admin):
    admin.downloads(taxpayer_id=seller, defective=2)
    invoices = download(client_for("leqi", seller), DownloadType.IN_FULL).data["invoices"]
    assert invoices[0]["seller_tax_id"] == ""
    second = invoices[1]
    assert float(second["total"]) != pytest.approx(float(second["amount"]) + float(second["tax_amount"]))
    assert all(i["seller_tax_id"] for i in invoices[2:])


def test_per_day_setting_raises_volume(seller, client_for, admin):
    admin.downloads(taxpayer_id=seller, per_day=20)
    result = download(client_for("leqi", seller), DownloadType.OUT_FULL, MONDAY, MONDAY)
    assert len(result.data["invoices"]) == 20


def test_same_request_id_returns_the_same_task(seller, client_for):
    client = client_for("leqi", seller)
    a = client.apply_download(DownloadType.IN_FULL, MONDAY, MONDAY, "same")
    b = client.apply_download(DownloadType.IN_FULL, MONDAY, MONDAY, "same")
    assert a.data["task_id"] == b.data["task_id"]


def test_processing_task_can_be_voided(seller, client_for):
    client = client_for("rpa", seller)
    task_id = client.apply_download(DownloadType.IN_FULL, MONDAY, WEEK_END, "v").data["task_id"]
    voided = client.void_download(task_id)
    assert voided.outcome is Outcome.SUCCESS and voided.data["status"] == "voided"
    gone = client.query_download(task_id)
    assert (gone.outcome, gone.reason_code, gone.message) == (
        Outcome.FAILED, ReasonCode.NOT_FOUND.value, "下载任务已作废")


def test_finished_task_cannot_be_voided(seller, client_for):
    client = client_for("rpa", seller)
    result = download(client, DownloadType.IN_FULL)
    refused = client.void_download(result.data["task_id"])
    assert refused.outcome is Outcome.FAILED
    assert refused.message == "请求数据不合法：仅处理中的下载任务可以作废"


def test_unknown_task_is_not_found(seller, client_for):
    result = client_for("leqi", seller).query_download("no-such-task")
    assert (result.outcome, result.reason_code) == (Outcome.FAILED, ReasonCode.NOT_FOUND.value)


def test_taxctrl_does_not_offer_einvoice_file_download(seller, client_for):
    result = client_for("taxctrl", seller).apply_download(DownloadType.IN_EINV_FILE, MONDAY, MONDAY, "x")
    assert result.reason_code == ReasonCode.NOT_SUPPORTED.value
    assert client_for("taxctrl", seller).apply_download(DownloadType.OUT_FULL, MONDAY, MONDAY, "y").ok


def test_issued_invoices_show_up_in_seller_out_and_buyer_in_downloads(seller, client_for, admin):
    buyer = admin.taxpayer(taxpayer_id="91440300MA5FUWXY1A", name="深圳购方有限公司")["taxpayer_id"]
    issuer = client_for("leqi", seller)
    body = invoice(seller, buyer_tax_id=buyer, buyer_name="深圳购方有限公司")
    issuer.issue_invoice(body)
    number = wait_issue(issuer, body["serial_no"]).data["invoice_no"]
    today = date.today()
    out = download(issuer, DownloadType.OUT_FULL, today, today).data["invoices"]
    assert number in {i["invoice_no"] for i in out}
    inbound = download(client_for("leqi", buyer), DownloadType.IN_FULL, today, today).data["invoices"]
    [mine] = [i for i in inbound if i["invoice_no"] == number]
    assert (mine["seller_tax_id"], mine["buyer_tax_id"], mine["total"]) == (seller, buyer, "113.00")
