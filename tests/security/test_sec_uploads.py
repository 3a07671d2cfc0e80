"""Hostile and malformed files through every upload route (issue 8): the builders are those of
tests/test_imports.py, applied to each route in the declaration table that takes a file."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import PoolInvoice
from tests.security.routes import ROUTES
from tests.sync_helpers import tasks
from tests.test_imports import ROW, bureau_file, hostile_xlsx, import_via_job, refused_in_form

UPLOADS = sorted(r.endpoint for r in ROUTES if r.upload)
HOSTILE = {
    "not a zip": b"not an excel file, just text",
    "A1 + XFD1048576": hostile_xlsx([("A1", "x"), ("XFD1048576", "y")]),
    "zip bomb": hostile_xlsx([("A1", "x")], filler_mb=20),
}


def test_the_only_upload_route_today_is_the_manual_import():
    assert UPLOADS == ["sync_logs.manual_import"]


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_file_is_refused_with_a_message_and_nothing_stored(portal_with_sandbox, sandbox, auth, kind):
    auth.login("kaipiao1")
    html = refused_in_form(auth, HOSTILE[kind])
    assert "文件未导入" in html


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "sNaN", "1e999"])
def test_a_non_finite_amount_is_refused_with_row_and_column(portal_with_sandbox, sandbox, auth, value):
    """Issue 8 point 7: 金额 'NaN' gave a 500; now it is a row/column message and nothing is pooled."""
    auth.login("kaipiao1")
    row = list(ROW)
    row[7] = value  # 金额, as text
    r = import_via_job(auth, bureau_file([row]))
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert f"第 2 行「金额」：“{value}”不是有效金额" in html
    assert tasks() == [] and db.session.scalar(select(func.count()).select_from(PoolInvoice)) == 0
