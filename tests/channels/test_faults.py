"""Every injected fault and how the clients classify it (retry / unknown / failed)."""
from __future__ import annotations

import logging
import socket
import time

import pytest
import requests

from channel_helpers import MONDAY, invoice, wait_issue
from portal.channels import REASON_MESSAGES, DownloadType, Outcome, ReasonCode
from portal.sandbox.testing import running_sandbox

KINDS = ["rpa", "leqi", "taxctrl"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connect_error_is_retryable_because_nothing_reached_the_bureau(seller, client_for):
    client = client_for("leqi", seller, base_url=f"http://127.0.0.1:{_closed_port()}")
    result = client.issue_invoice(invoice(seller))
    assert result.outcome is Outcome.RETRYABLE
    assert result.reason_code == ReasonCode.CONNECTION_ERROR.value
    assert result.message == "无法连接通道服务"


@pytest.mark.parametrize("kind", KINDS)
def test_read_timeout_is_outcome_unknown_and_the_invoice_is_still_issued(kind, seller, client_for, admin):
    admin.fault(taxpayer_id=seller, kind="timeout", operation="issue", seconds=1.0, count=1)
    client = client_for(kind, seller, read_timeout=0.3)
    body = invoice(seller, kind)
    result = client.issue_invoice(body)
    assert result.outcome is Outcome.UNKNOWN
    assert result.reason_code == ReasonCode.TIMEOUT.value
    assert result.message == "通道响应超时，结果未知"
    time.sleep(0.9)  # the sandbox finishes its slow request
    assert wait_issue(client, body["serial_no"]).data["status"] == "issued"


def test_timeout_on_a_query_is_unknown_never_failed(seller, client_for, admin):
    admin.fault(taxpayer_id=seller, kind="timeout", operation="query_download", seconds=1.0)
    result = client_for("rpa", seller, read_timeout=0.3).query_download("any-task")
    assert result.outcome is Outcome.UNKNOWN
    assert result.reason_code == ReasonCode.TIMEOUT.value


@pytest.mark.parametrize("kind", KINDS)
def test_response_lost_after_issuing_is_outcome_unknown(kind, seller, client_for, admin):
    admin.fault(taxpayer_id=seller, kind="response_lost", operation="issue", count=1)
    client = client_for(kind, seller)
    body = invoice(seller, kind)
    result = client.issue_invoice(body)
    assert result.outcome is Outcome.UNKNOWN
    assert result.reason_code == ReasonCode.RESPONSE_LOST.value
    assert result.message == "通道连接中断，结果未知"
    assert len(admin.invoices(taxpayer_id=seller, serial_no=body["serial_no"])) == 1
    assert wait_issue(client, body["serial_no"]).data["status"] == "issued"


def test_5xx_without_a_bureau_answer_is_outcome_unknown(seller, client_for, admin):
    admin.fault(taxpayer_id=seller, kind="response_lost", mode="http_502", count=1)
    client = client_for("leqi", seller)
    body = invoice(seller)
    result = client.issue_invoice(body)
    assert result.outcome is Outcome.UNKNOWN
    assert result.reason_code == ReasonCode.UNKNOWN_ERROR.value
    assert result.message == "通道返回 HTTP 502，结果未知"
    assert len(admin.invoices(taxpayer_id=seller, serial_no=body["serial_no"])) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_login_expired_is_retryable_until_login(kind, seller, client_for, admin):
    admin.fault(taxpayer_id=seller, kind="login_expired")
    client = client_for(kind, seller)
    refused = client.issue_invoice(invoice(seller, kind))
    assert refused.outcome is Outcome.RETRYABLE
    assert refused.reason_code == ReasonCode.LOGIN_EXPIRED.value
    assert refused.message == "电子税局登录失效，请重试"
    download = client.apply_download(DownloadType.IN_FULL, MONDAY, MONDAY, "r1")
    assert download.reason_code == ReasonCode.LOGIN_EXPIRED.value
    assert client.login_status().data == {"logged_in": False, "expires_at": None}
    assert admin.invoices(taxpayer_id=seller) == []

    assert client.login().data["logged_in"] is True
    assert client.login_status().data["logged_in"] is True
    assert client.issue_invoice(invoice(seller, kind)).outcome is Outcome.SUCCESS


def test_bureau_busy_is_retryable_and_issues_nothing(seller, client_for, admin):
    admin.fault(taxpayer_id=seller, kind="bureau_busy", operation="issue", count=1)
    client = client_for("rpa", seller)
    body = invoice(seller, "rpa")
    busy = client.issue_invoice(body)
    assert busy.outcome is Outcome.RETRYABLE
    assert busy.reason_code == ReasonCode.BUREAU_BUSY.value
    assert busy.message == "税局繁忙，请稍后再试"
    assert admin.invoices(taxpayer_id=seller) == []
    assert client.issue_invoice(body).outcome is Outcome.SUCCESS  # count=1: fault used up


def test_gateway_timeout_before_processing_is_retryable(seller, client_for, admin):
    admin.fault(taxpayer_id=seller, kind="gateway_timeout", count=1)
    result = client_for("leqi", seller).issue_invoice(invoice(seller))
    assert result.outcome is Outcome.RETRYABLE
    assert result.reason_code == ReasonCode.GATEWAY_TIMEOUT.value
    assert result.message == "网关超时"
    assert admin.invoices(taxpayer_id=seller) == []


def test_unknown_error_is_outcome_unknown(seller, client_for, admin):
    admin.fault(taxpayer_id=seller, kind="unknown_error", count=1)
    result = client_for("rpa", seller).issue_invoice(invoice(seller, "rpa"))
    assert result.outcome is Outcome.UNKNOWN
    assert result.reason_code == ReasonCode.UNKNOWN_ERROR.value
    assert result.message == "未知异常"


def test_unknown_error_that_turns_into_success_later(seller, client_for, admin):
    admin.fault(taxpayer_id=seller, kind="unknown_then_success", operation="issue", delay=0.5, count=1)
    client = client_for("rpa", seller)
    body = invoice(seller, "rpa")
    result = client.issue_invoice(body)
    assert result.outcome is Outcome.UNKNOWN
    assert result.message == "未知异常"
    assert client.query_issue(body["serial_no"]).data["status"] == "pending"
    assert wait_issue(client, body["serial_no"]).data["status"] == "issued"


def test_hidden_unknown_success_is_invisible_to_query_until_it_appears(seller, client_for, admin):
    admin.fault(taxpayer_id=seller, kind="unknown_then_success", operation="issue", delay=0.6,
                hidden=True, count=1)
    client = client_for("rpa", seller)
    body = invoice(seller, "rpa")
    assert client.issue_invoice(body).outcome is Outcome.UNKNOWN
    assert client.query_issue(body["serial_no"]).data["status"] == "not_found"
    time.sleep(0.7)
    assert client.query_issue(body["serial_no"]).data["status"] == "issued"


def test_rpa_rate_limit_per_taxpayer_per_minute(seller, client_for, admin):
    admin.fault(taxpayer_id="*", kind="rate_limit", channel="rpa", operation="issue")
    client = client_for("rpa", seller)
    results = [client.issue_invoice(invoice(seller, "rpa")) for _ in range(11)]
    assert [r.outcome for r in results[:10]] == [Outcome.SUCCESS] * 10
    assert results[10].outcome is Outcome.RETRYABLE
    assert results[10].reason_code == ReasonCode.RATE_LIMITED.value
    assert results[10].message == "请求过于频繁，每分钟最多10次，请稍后再试"
    other = admin.taxpayer(taxpayer_id="91110108MA00000012")["taxpayer_id"]
    assert client_for("rpa", other).issue_invoice(invoice(other, "rpa")).ok
    assert client_for("leqi", seller).issue_invoice(invoice(seller)).ok  # only RPA is limited


def test_rate_limit_per_hour(seller, client_for, admin):
    admin.fault(taxpayer_id=seller, kind="rate_limit", channel="rpa", per_minute=100, per_hour=3)
    client = client_for("rpa", seller)
    outcomes = [client.quota().outcome for _ in range(4)]
    assert outcomes == [Outcome.SUCCESS] * 3 + [Outcome.RETRYABLE]
    assert client.quota().message == "请求过于频繁，每小时最多3次，请稍后再试"


EXPECTED = {
    ReasonCode.LOGIN_EXPIRED: Outcome.RETRYABLE, ReasonCode.BUREAU_BUSY: Outcome.RETRYABLE,
    ReasonCode.UNKNOWN_ERROR: Outcome.UNKNOWN, ReasonCode.DUPLICATE_NUMBER: Outcome.FAILED,
    ReasonCode.QUOTA_EXHAUSTED: Outcome.FAILED, ReasonCode.RED_FORM_PENDING: Outcome.FAILED,
    ReasonCode.BLUE_NOT_FOUND: Outcome.FAILED, ReasonCode.SAME_BUYER_SELLER: Outcome.FAILED,
    ReasonCode.ACCOUNT_NOT_CONFIGURED: Outcome.FAILED,
    ReasonCode.SINGLE_LIMIT_EXCEEDED: Outcome.FAILED, ReasonCode.RESULT_NOT_READY: Outcome.RETRYABLE,
    ReasonCode.FACE_CHECK_FAILED: Outcome.RETRYABLE, ReasonCode.GATEWAY_TIMEOUT: Outcome.RETRYABLE,
    ReasonCode.RATE_LIMITED: Outcome.RETRYABLE, ReasonCode.INVALID_REQUEST: Outcome.FAILED,
    ReasonCode.TAXPAYER_TYPE: Outcome.FAILED, ReasonCode.NOT_FOUND: Outcome.FAILED,
    ReasonCode.AUTH_FAILED: Outcome.FAILED, ReasonCode.DOWNLOAD_APPLY_FAILED: Outcome.FAILED,
    ReasonCode.NOT_SUPPORTED: Outcome.FAILED,
}


@pytest.mark.parametrize("reason", list(EXPECTED), ids=lambda r: r.value)
def test_each_bureau_failure_reason_is_classified(reason, seller, client_for, admin):
    admin.fault(taxpayer_id=seller, kind="fail", reason_code=reason.value, operation="issue", count=1)
    client = client_for("leqi", seller)
    body = invoice(seller)
    result = client.issue_invoice(body)
    assert result.outcome is EXPECTED[reason]
    assert result.reason_code == reason.value
    assert result.message == REASON_MESSAGES[reason]
    assert admin.invoices(taxpayer_id=seller) == []


def test_forced_failure_carries_the_bureau_message_given(seller, client_for, admin):
    admin.fault(taxpayer_id=seller, kind="fail", reason_code="duplicate_number",
                message="发票号码已存在：25110000000000000001", count=1)
    result = client_for("leqi", seller).issue_invoice(invoice(seller))
    assert (result.outcome, result.message) == (Outcome.FAILED, "发票号码已存在：25110000000000000001")


def test_global_fault_applies_to_every_taxpayer(client_for, admin):
    admin.fault(taxpayer_id="*", kind="bureau_busy")
    a = admin.taxpayer(taxpayer_id="91110108MA00000020")["taxpayer_id"]
    b = admin.taxpayer(taxpayer_id="91110108MA00000039")["taxpayer_id"]
    assert client_for("rpa", a).quota().reason_code == ReasonCode.BUREAU_BUSY.value
    assert client_for("leqi", b).login_status().reason_code == ReasonCode.BUREAU_BUSY.value


def test_fault_scoped_to_one_operation_and_channel_leaves_the_rest(seller, client_for, admin):
    admin.fault(taxpayer_id=seller, kind="bureau_busy", channel="rpa", operation="issue")
    assert client_for("rpa", seller).issue_invoice(invoice(seller, "rpa")).outcome is Outcome.RETRYABLE
    assert client_for("rpa", seller).quota().ok
    assert client_for("leqi", seller).issue_invoice(invoice(seller)).ok


def test_cleared_fault_stops_applying(seller, client_for, admin, sandbox_url):
    fault = admin.fault(taxpayer_id=seller, kind="bureau_busy")
    client = client_for("leqi", seller)
    assert client.quota().outcome is Outcome.RETRYABLE
    requests.delete(f"{sandbox_url}/_admin/faults/{fault['id']}", timeout=5)
    assert client.quota().ok


def test_faults_can_be_configured_at_start(seller, client_for):
    faults = [{"taxpayer_id": seller, "kind": "bureau_busy", "operation": "quota"}]
    with running_sandbox(FAULTS=faults) as url:
        result = client_for("leqi", seller, base_url=url).quota()
    assert result.reason_code == ReasonCode.BUREAU_BUSY.value


def test_signed_requests_are_accepted_and_bad_signatures_refused(seller, client_for, admin):
    admin.taxpayer(taxpayer_id=seller, app_key="key-1", app_secret="s3cret-value")
    good = client_for("leqi", seller, app_key="key-1", app_secret="s3cret-value")
    assert good.issue_invoice(invoice(seller)).ok
    wrong = client_for("leqi", seller, app_key="key-1", app_secret="other")
    result = wrong.issue_invoice(invoice(seller))
    assert result.outcome is Outcome.FAILED
    assert result.reason_code == ReasonCode.AUTH_FAILED.value
    assert result.message == "通道鉴权失败：签名不正确"
    unsigned = client_for("leqi", seller, app_key="key-1").quota()
    assert unsigned.reason_code == ReasonCode.AUTH_FAILED.value


def test_app_secret_never_appears_in_logs_results_or_config_repr(seller, client_for, admin, caplog):
    secret = "TOP-SECRET-9f8e7d"
    admin.taxpayer(taxpayer_id=seller, app_key="key-2", app_secret=secret)
    caplog.set_level(logging.DEBUG)
    client = client_for("rpa", seller, app_key="key-2", app_secret=secret, read_timeout=0.3)
    admin.fault(taxpayer_id=seller, kind="timeout", seconds=0.8, count=1)
    results = [client.issue_invoice(invoice(seller, "rpa")), client.quota()]
    assert secret not in caplog.text
    assert all(secret not in repr(r) for r in results)
    assert secret not in repr(client.config)
    assert secret not in str(admin.taxpayer(taxpayer_id=seller))


def test_misconfigured_base_url_fails_without_raising(seller, client_for):
    result = client_for("leqi", seller, base_url="not-a-url").quota()
    assert (result.outcome, result.reason_code) == (Outcome.FAILED, ReasonCode.INVALID_REQUEST.value)
    assert result.message == "通道地址配置错误，请检查组织的通道地址"


def test_a_sleeping_timeout_request_does_not_block_other_taxpayers(seller, client_for, admin):
    admin.fault(taxpayer_id=seller, kind="timeout", seconds=1.5, count=1)
    assert client_for("leqi", seller, read_timeout=0.2).quota().outcome is Outcome.UNKNOWN
    other = admin.taxpayer(taxpayer_id="91110108MA00000047")["taxpayer_id"]
    assert client_for("leqi", other, read_timeout=0.5).quota().ok  # served while the first sleeps
