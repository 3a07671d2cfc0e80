"""Hostile Excel input (issue 8): bombs are refused before parsing, the parser runs in a
capped process, identifiers are never silently changed, duplicates are named, and a big
手工导入 runs as a job that never locks other writers out.

The hostile workbooks are built by hand with zipfile, exactly as an attacker would.
"""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from portal.excel import safe_read
from portal.excel.uploads import Upload
from portal.extensions import db
from portal.models import JobRun, PoolInvoice, SyncTask
from portal.models.job import JobRunItem
from tests.sync_helpers import create_via_form, org, run_worker, tasks

HEADER = ["发票代码", "发票号码", "开票日期", "销方识别号", "销方名称", "购方识别号", "购方名称",
          "金额", "税额", "价税合计", "发票状态", "发票票种"]
ROW = ["", "26110000000000000001", "2026-11-03", "9144030071526726XG", "深圳前海贸易有限公司",
       "91110000600037341L", "华东科技有限公司", 100, 13, 113, "正常", "01"]


@pytest.fixture
def env(portal_with_sandbox, sandbox, auth):
    return portal_with_sandbox


# --- building workbooks by hand -------------------------------------------------------------------
_CT = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
       'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
       'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/'
       'workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
       '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
       'officedocument.spreadsheetml.worksheet+xml"/></Types>')
_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
         '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
         'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
_WB = ('<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
       '2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
       '<sheet name="发票" sheetId="1" r:id="rId1"/></sheets></workbook>')
_WB_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')


def _sheet_start(dimension: str | None = None) -> bytes:
    return (b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
            b'spreadsheetml/2006/main">' + (f'<dimension ref="{dimension}"/>'.encode() if dimension else b"")
            + b"<sheetData>")


def _cells_xml(cells) -> bytes:
    """cells: [(ref, text)], one <row> per row number, in order."""
    rows: dict[int, list] = {}
    for ref, text in cells:
        rows.setdefault(int(re.sub(r"[A-Z]+", "", ref)), []).append((ref, text))
    return b"".join(f'<row r="{r}">'.encode() + b"".join(
        f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'.encode() for ref, text in rows[r]) + b"</row>"
        for r in sorted(rows))


def hostile_xlsx(cells, dimension=None, filler_mb: int = 0, extra_members: int = 0, path=None):
    """A workbook whose first sheet holds `cells`; `filler_mb` MB of spaces after the data
    (a highly compressible sheet, written streaming so the test itself stays small)."""
    target = path or io.BytesIO()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _CT)
        z.writestr("_rels/.rels", _RELS)
        z.writestr("xl/workbook.xml", _WB)
        z.writestr("xl/_rels/workbook.xml.rels", _WB_RELS)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(_sheet_start(dimension) + _cells_xml(cells) + b"</sheetData>")
            spaces = b" " * (1024 * 1024)
            for _ in range(filler_mb):
                sheet.write(spaces)
            sheet.write(b"</worksheet>")
        for i in range(extra_members):
            z.writestr(f"customXml/item{i}.xml", "<a/>")
    return None if path else target.getvalue()


def dense_xlsx(rows: int) -> bytes:
    """A real-looking sheet: header and `rows` full invoice rows (built directly, fast)."""
    parts = [_sheet_start(), _cells_xml([(f"{chr(65 + i)}1", h) for i, h in enumerate(HEADER)])]
    for n in range(2, rows + 2):
        cells = "".join(f'<c r="{chr(65 + i)}{n}"><v>{v}</v></c>' if isinstance(v, int) else
                        f'<c r="{chr(65 + i)}{n}" t="inlineStr"><is><t>{v}</t></is></c>'
                        for i, v in enumerate(ROW[:1] + [f"2611{n:016d}"] + ROW[2:]))
        parts.append(f'<row r="{n}">{cells}</row>'.encode())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in (("[Content_Types].xml", _CT), ("_rels/.rels", _RELS), ("xl/workbook.xml", _WB),
                           ("xl/_rels/workbook.xml.rels", _WB_RELS)):
            z.writestr(name, text)
        z.writestr("xl/worksheets/sheet1.xml", b"".join(parts) + b"</sheetData></worksheet>")
    return buf.getvalue()


def bureau_file(rows, header=None) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(header or HEADER)
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def upload(auth, data: bytes, org_code="ORG01", name="export.xlsx"):
    return auth.post("/sync-logs/import", {"org": str(org(org_code).id), "download_type": "in_full",
                                           "file": (io.BytesIO(data), name)}, page="/sync-logs/import",
                     content_type="multipart/form-data")


def import_via_job(auth, data: bytes, **kw):
    """Upload, run the job with a real worker, and return the job page."""
    r = upload(auth, data, **kw)
    assert r.status_code == 302, r.get_data(as_text=True)
    run_worker()
    return auth.client.get(r.headers["Location"])


@pytest.fixture
def parser_never_started(monkeypatch):
    """Fails the test if the parser process is ever launched: a refusal must come from
    the checks before parsing."""
    def launched(*args, **kwargs):
        raise AssertionError("the parser process was started for a file the checks should refuse")
    monkeypatch.setattr(safe_read, "parse_in_child", launched)


def nothing_written():
    return (db.session.scalar(select(func.count()).select_from(SyncTask)) == 0
            and db.session.scalar(select(func.count()).select_from(PoolInvoice)) == 0
            and db.session.scalar(select(func.count()).select_from(JobRun)) == 0
            and db.session.scalar(select(func.count()).select_from(Upload)) == 0)


def refused_in_form(auth, data: bytes) -> str:
    """Post `data`; it must come back on the form (HTTP 200) with the reason, nothing stored,
    and the web process must still answer."""
    r = upload(auth, data)
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "文件未导入，数据未作任何修改" in html
    assert nothing_written()
    assert auth.client.get("/sync-logs/import").status_code == 200
    return html


# --- 1. bombs are refused before parsing ---------------------------------------------------------
def test_cells_a1_and_xfd1048576_are_refused_before_parsing(env, auth, parser_never_started):
    auth.login("kaipiao1")
    data = hostile_xlsx([("A1", "x"), ("XFD1048576", "y")])
    assert len(data) < 2000
    html = refused_in_form(auth, data)
    assert "文件行数过多：单次最多导入 50000 行数据，当前文件有 1048575 行" in html


def test_a_z2000000_cell_is_refused_before_parsing(env, auth, parser_never_started):
    auth.login("kaipiao1")
    html = refused_in_form(auth, hostile_xlsx([("A1", "x"), ("Z2000000", "y")]))
    assert "文件行数过多：单次最多导入 50000 行数据，当前文件有 1999999 行" in html


def test_the_declared_dimension_alone_refuses_the_file(env, auth, parser_never_started):
    """A sheet may declare its extent (<dimension>) beyond the cells it holds."""
    auth.login("kaipiao1")
    html = refused_in_form(auth, hostile_xlsx([("A1", "x")], dimension="A1:Z2000000"))
    assert "文件行数过多：单次最多导入 50000 行数据，当前文件有 1999999 行" in html


def test_too_many_columns_are_refused_before_parsing(env, auth, parser_never_started):
    auth.login("kaipiao1")
    html = refused_in_form(auth, hostile_xlsx([("A1", "x"), ("BA1", "y")]))
    assert "文件列数过多：最多 50 列，当前文件用到第 53 列（BA 列）" in html


def test_cells_without_references_are_counted_by_position(env, auth, parser_never_started):
    auth.login("kaipiao1")
    row = b'<row>' + b'<c t="inlineStr"><is><t>x</t></is></c>' * 60 + b'</row>'
    data = hostile_xlsx([])
    sheet = _sheet_start() + row + b"</sheetData></worksheet>"
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            z.writestr(info.filename, sheet if info.filename.endswith("sheet1.xml") else src.read(info))
    html = refused_in_form(auth, buf.getvalue())
    assert "文件列数过多：最多 50 列，当前文件用到第 51 列（AY 列）" in html


def test_a_dense_60000_row_file_is_refused_by_the_row_limit(env, auth, parser_never_started):
    auth.login("kaipiao1")
    html = refused_in_form(auth, dense_xlsx(60000))
    assert "文件行数过多：单次最多导入 50000 行数据，当前文件有 60000 行" in html


def test_a_zip_bomb_over_the_uncompressed_limit_is_refused(env, auth, parser_never_started):
    auth.login("kaipiao1")
    env.config["IMPORT_MAX_UNCOMPRESSED_MB"] = 16
    data = hostile_xlsx([("A1", "x")], filler_mb=20)
    assert len(data) < 100_000
    html = refused_in_form(auth, data)
    assert "文件解压后过大：20 MB（最多 16 MB），请拆分后分批导入" in html


def test_a_highly_compressed_sheet_is_refused_by_its_ratio(env, auth, parser_never_started):
    auth.login("kaipiao1")
    html = refused_in_form(auth, hostile_xlsx([("A1", "x")], filler_mb=20))
    assert "文件压缩比异常（xl/worksheets/sheet1.xml 压缩比超过 100 倍），疑似压缩炸弹，已拒绝" in html


def test_a_zip_with_too_many_parts_is_refused(env, auth, parser_never_started):
    auth.login("kaipiao1")
    html = refused_in_form(auth, hostile_xlsx([("A1", "x")], extra_members=300))
    assert "文件结构异常：压缩包内有 305 个部件（最多 200 个），不是正常的 Excel 文件" in html


def test_a_file_that_is_not_a_zip_is_refused(env, auth, parser_never_started):
    auth.login("kaipiao1")
    html = refused_in_form(auth, b"not an excel file, just text")
    assert "文件无法读取：请上传 .xlsx 格式的 Excel 文件（文件损坏或不是 Excel 格式）" in html


# --- 1b. what the checks cannot foresee ends the parser process, not the worker ------------------
def test_a_parser_that_runs_out_of_memory_gives_a_message_and_the_caller_survives(app):
    """Without the checks, A1 + XFD1048576 makes python-calamine abort its process; the
    capped child dies and the caller gets a message."""
    data = hostile_xlsx([("A1", "x"), ("XFD1048576", "y")])
    with pytest.raises(safe_read.ExcelRefused) as refused:
        safe_read.parse_in_child(data, safe_read.Limits.from_config())
    assert refused.value.message == "文件无法解析：文件过大或已损坏（解析进程超出内存限制或异常退出），请检查文件后重试"


def test_a_parse_over_the_memory_limit_is_stopped(app):
    """A real workbook the checks accept, under a memory limit too small to parse it."""
    data = dense_xlsx(50000)  # parsing it takes about 100 MB
    limits = safe_read.Limits.from_config(memory_bytes=64 * 1024 * 1024)
    safe_read.check(data, limits)
    with pytest.raises(safe_read.ExcelRefused) as refused:
        safe_read.parse_in_child(data, limits)
    assert "文件无法解析：文件过大或已损坏" in refused.value.message
    assert len(safe_read.parse_in_child(data, safe_read.Limits.from_config())) == 50001


def test_a_parse_over_the_time_limit_is_stopped(app, monkeypatch, tmp_path):
    slow = tmp_path / "slow_child.py"
    slow.write_text("import time\ntime.sleep(30)\n")
    monkeypatch.setattr(safe_read, "CHILD_SCRIPT", slow)
    started = time.monotonic()
    with pytest.raises(safe_read.ExcelRefused) as refused:
        safe_read.parse_in_child(bureau_file([ROW]), safe_read.Limits.from_config(seconds=1))
    assert refused.value.message == "文件无法解析：解析超过 1 秒，文件过大或结构异常，请拆分后分批导入"
    assert time.monotonic() - started < 10


def test_a_parse_that_crashes_in_the_job_leaves_the_database_unchanged(env, auth, monkeypatch):
    """If the checks were fooled, the job reports the parser's death as a failed row."""
    auth.login("kaipiao1")
    monkeypatch.setattr(safe_read, "check", lambda data, limits=None: None)
    r = import_via_job(auth, hostile_xlsx([("A1", "x"), ("XFD1048576", "y")]))
    html = r.get_data(as_text=True)
    assert "文件无法解析：文件过大或已损坏（解析进程超出内存限制或异常退出）" in html
    assert tasks() == [] and db.session.scalar(select(func.count()).select_from(PoolInvoice)) == 0
    assert db.session.scalar(select(func.count()).select_from(Upload)) == 0


CAPPED_READER = textwrap.dedent("""
    import resource, sys
    LIMIT = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))
    from flask import Flask
    from flask_babel import Babel
    from portal.config import default_config
    from portal.excel import safe_read
    app = Flask("capped")
    app.config.update(default_config())
    Babel(app)
    with app.app_context():
        for path in sys.argv[2:]:
            data = open(path, "rb").read()
            try:
                safe_read.read_rows(data)
                print("accepted", path)
            except safe_read.ExcelRefused as exc:
                print("refused", exc.message)
        try:  # no checks at all: the capped child must die, this process must not
            safe_read.parse_in_child(open(sys.argv[2], "rb").read(), safe_read.Limits.from_config())
        except safe_read.ExcelRefused as exc:
            print("child", exc.message)
    print("peak-kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


def test_bombs_are_refused_under_a_700_mb_address_space_limit(tmp_path):
    """The web or worker process reading the bombs stays within `ulimit -v` 700 MB."""
    xfd, z2m, bomb = tmp_path / "xfd.xlsx", tmp_path / "z2m.xlsx", tmp_path / "bomb.xlsx"
    xfd.write_bytes(hostile_xlsx([("A1", "x"), ("XFD1048576", "y")]))
    z2m.write_bytes(hostile_xlsx([("A1", "x"), ("Z2000000", "y")]))
    hostile_xlsx([("A1", "x")], filler_mb=1024, path=bomb)  # 1 GiB of sheet, ~1 MB on disk
    assert bomb.stat().st_size < 2 * 1024 * 1024
    limit = 700 * 1024 * 1024
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root), "PORTAL_INSTANCE": str(tmp_path / "instance")}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", CAPPED_READER, str(limit), str(xfd), str(z2m), str(bomb)],
                          capture_output=True, text=True, env=env, timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[:4] == [
        "refused 文件行数过多：单次最多导入 50000 行数据，当前文件有 1048575 行",
        "refused 文件行数过多：单次最多导入 50000 行数据，当前文件有 1999999 行",
        "refused 文件解压后过大：1024 MB（最多 200 MB），请拆分后分批导入",
        "child 文件无法解析：文件过大或已损坏（解析进程超出内存限制或异常退出），请检查文件后重试",
    ]
    peak_kb = int(lines[4].split()[1])
    assert peak_kb * 1024 < limit
    print(f"capped reader: peak RSS {peak_kb // 1024} MB under a {limit // 2**20} MB limit, {elapsed:.2f}s")


# --- 8. identifiers are never silently changed -----------------------------------------------------
def test_a_20_digit_invoice_number_in_a_numeric_cell_is_refused_with_row_and_column(env, auth):
    auth.login("kaipiao1")
    first, second = list(ROW), list(ROW)
    first[1], second[1] = 26119800000000000001, 26119800000000000002  # numbers, as Excel keeps them
    html = import_via_job(auth, bureau_file([first, second])).get_data(as_text=True)
    for n in (2, 3):
        assert (f"第 {n} 行「发票号码」：数字单元格中的 20 位号码（26119800000000000000）超过 Excel 数字的 15 位精度，"
                "可能已被改动；请将该列设为文本格式后重新输入") in html
    assert tasks() == [] and db.session.scalar(select(func.count()).select_from(PoolInvoice)) == 0


def test_a_numeric_tax_id_or_code_with_a_fraction_is_refused(env, auth):
    auth.login("kaipiao1")
    bad = list(ROW)
    bad[0], bad[5] = 144031.5, 911100006000373412  # 发票代码 with a fraction; an 18-digit 购方识别号
    html = import_via_job(auth, bureau_file([bad])).get_data(as_text=True)
    assert "第 2 行「发票代码」：数字单元格“144031.5”不是有效号码；请将该列设为文本格式后重新输入" in html
    assert "第 2 行「购方识别号」：数字单元格中的 18 位号码" in html
    assert "第 2 行「购方识别号」：不能为空" not in html
    assert tasks() == []


def test_short_numeric_identifiers_are_read_as_their_digits(env, auth):
    auth.login("kaipiao1")
    row = list(ROW)
    row[0], row[1] = 144031900111, 12345678  # 12-digit code, 8-digit number: exact in Excel
    html = import_via_job(auth, bureau_file([row])).get_data(as_text=True)
    assert "导入完成" in html
    pooled = db.session.scalar(select(PoolInvoice))
    assert (pooled.invoice_code, pooled.invoice_no) == ("144031900111", "12345678")


def test_the_template_formats_identifier_columns_as_text(env, auth):
    auth.login("kaipiao1")
    r = auth.client.get("/sync-logs/import/template")
    ws = load_workbook(io.BytesIO(r.data)).active
    header = [c.value for c in ws[1]]
    for name in ("发票代码", "发票号码", "销方识别号", "购方识别号"):
        col = header.index(name) + 1
        letter = ws.cell(row=1, column=col).column_letter
        assert ws.column_dimensions[letter].number_format == "@", name
        assert {ws.cell(row=n, column=col).number_format for n in (2, 500, 1001)} == {"@"}, name
    assert ws.cell(row=2, column=header.index("金额") + 1).number_format == "General"
    page = auth.client.get("/sync-logs/import").get_data(as_text=True)
    assert "单个文件最多 50000 行数据。发票代码、发票号码和识别号请按文本填写" in page


# --- 9. the same invoice twice in one file -----------------------------------------------------------
def test_the_same_invoice_twice_in_a_file_is_an_error_naming_both_rows(env, auth):
    auth.login("kaipiao1")
    rows = []
    for i in range(6):
        row = list(ROW)
        row[1] = f"2611000000000000010{i}"
        rows.append(row)
    again = list(rows[1])
    again[6] = "另一家购方有限公司"  # conflicting buyer data
    rows.append(again)  # file row 8 repeats file row 3
    html = import_via_job(auth, bureau_file(rows)).get_data(as_text=True)
    assert "第 3 行与第 8 行是同一张发票（发票号码 26110000000000000101）" in html
    assert 'class="msg msg-warning">文件未导入，数据未作任何修改' in html  # not shown as a success
    assert tasks() == [] and db.session.scalar(select(func.count()).select_from(PoolInvoice)) == 0


def test_same_number_with_another_invoice_code_is_not_a_duplicate(env, auth):
    auth.login("kaipiao1")
    a, b = list(ROW), list(ROW)
    a[0], b[0] = "144031900111", "144031900112"
    html = import_via_job(auth, bureau_file([a, b])).get_data(as_text=True)
    assert "导入完成" in html and "下载 2 份，入池 2 份" in html


# --- 10. imports run as jobs -------------------------------------------------------------------------
def test_an_import_runs_as_a_job_with_the_batch_link_and_keeps_no_upload(env, auth):
    auth.login("kaipiao1")
    r = upload(auth, bureau_file([ROW]))
    job = db.session.scalar(select(JobRun))
    assert r.headers["Location"].endswith(f"/jobs/{job.id}") and job.kind == "sync.import"
    assert job.status == "queued" and tasks() == []
    assert db.session.scalar(select(func.count()).select_from(Upload)) == 1  # in the database, for any worker
    run_worker()
    page = auth.client.get(r.headers["Location"]).get_data(as_text=True)
    task = tasks()[0]
    assert f"导入完成：批次 {task.batch_no}，成功，下载 1 份，入池 1 份" in page
    assert f'href="/sync-logs/?batch_no={task.batch_no}"' in page  # 返回列表 shows the new batch
    item = db.session.scalar(select(JobRunItem).where(JobRunItem.job_id == job.id))
    assert (item.outcome, item.ref) == ("done", str(task.id))
    assert db.session.scalar(select(func.count()).select_from(Upload)) == 0


def test_an_import_while_redis_is_down_stores_nothing(env, auth, monkeypatch):
    from redis.exceptions import ConnectionError as RedisDown
    from jobs import tracked

    def redis_down(*args, **kwargs):
        raise RedisDown("Redis is down")
    monkeypatch.setattr(tracked, "enqueue", redis_down)
    auth.login("kaipiao1")
    r = upload(auth, bureau_file([ROW]))
    assert r.status_code == 200 and "后台任务服务暂不可用" in r.get_data(as_text=True)
    assert nothing_written()


def test_a_grant_withdrawn_before_the_job_runs_imports_nothing(env, auth):
    """The job checks the permission again: the person may have lost it since the upload."""
    from sqlalchemy import delete
    from portal.models import Grant, User
    auth.login("kaipiao1")
    r = upload(auth, bureau_file([ROW]))
    clerk = db.session.scalar(select(User).where(User.username == "kaipiao1"))
    db.session.execute(delete(Grant).where(Grant.user_id == clerk.id, Grant.permission == "F18012.create"))
    db.session.commit()
    run_worker(allow_failed=True)
    job = db.session.scalar(select(JobRun))
    assert (job.status, job.message) == ("failed", "没有该核算组织的新增下载任务权限，文件未导入")
    assert tasks() == [] and db.session.scalar(select(func.count()).select_from(PoolInvoice)) == 0
    assert r.status_code == 302


def test_an_import_interrupted_while_pooling_is_finished_by_retry_without_duplicates(env, auth, monkeypatch):
    """重试 of a job that died between two batches continues the same task (safe to run twice)."""
    from jobs import tracked
    from portal.sync_logs import importing
    env.config["IMPORT_BATCH_SIZE"] = 2
    real = importing._pool_batch
    calls = []

    def dies_on_the_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker lost")
        return real(*args, **kwargs)
    monkeypatch.setattr(importing, "_pool_batch", dies_on_the_second_batch)
    rows = []
    for i in range(5):
        row = list(ROW)
        row[1] = f"2611000000000000020{i}"
        rows.append(row)
    auth.login("kaipiao1")
    upload(auth, bureau_file(rows))
    run_worker(allow_failed=True)
    job = db.session.scalar(select(JobRun))
    assert job.status == "failed" and tasks()[0].status == "downloaded"
    assert db.session.scalar(select(func.count()).select_from(PoolInvoice)) == 2
    from jobs import queues
    for q in queues():  # the first run's failure is known; the retry must not fail
        for rq_id in q.failed_job_registry.get_job_ids():
            q.failed_job_registry.remove(rq_id)
    with env.test_request_context():
        again = tracked.retry(job)
    run_worker()
    task = tasks()[0]
    assert len(tasks()) == 1 and (task.status, task.invoice_count, task.success_count) == ("success", 5, 5)
    assert db.session.scalar(select(func.count()).select_from(PoolInvoice)) == 5
    assert db.session.get(JobRun, again.id).message == f"导入完成：批次 {task.batch_no}，成功，下载 5 份，入池 5 份"


def _big_file(rows: int) -> bytes:
    """A real workbook from openpyxl (write-only mode), as a bureau export looks."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("发票")
    ws.append(HEADER)
    for i in range(rows):
        ws.append(["", f"2612{i:016d}", "2026-11-03", "9144030071526726XG", "深圳前海贸易有限公司",
                   "91110000600037341L", "华东科技有限公司", 100, 13, 113, "正常", "01"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_a_50000_row_import_does_not_lock_out_a_concurrent_new_download_task(env, auth):
    """While the import pools (in batches), another clerk's 新增下载任务 succeeds and does
    not wait for the whole file. (The RQ worker needs the main thread for its signals; the
    other clerk works from a thread.)"""
    rows = 50000
    data = _big_file(rows)
    auth.login("kaipiao1")
    r = upload(auth, data)
    assert r.status_code == 302, r.get_data(as_text=True)
    job_url = r.headers["Location"]
    from tests.conftest import Auth
    other = Auth(env.test_client())
    other.login("admin")
    seen: dict = {}

    def other_clerk():
        with env.app_context():
            try:
                deadline = time.monotonic() + 120
                while _pooled() < env.config["IMPORT_BATCH_SIZE"]:  # the first batch is committed
                    if time.monotonic() > deadline:
                        seen["error"] = "no batch was committed within 120 s"
                        return
                    time.sleep(0.05)
                started = time.monotonic()
                created = create_via_form(other)
                seen["create"] = time.monotonic() - started
                seen["status"], seen["html"] = created.status_code, created.get_data(as_text=True)
                seen["pooled_then"] = _pooled()
            except BaseException as exc:  # noqa: BLE001 — reported by the test
                seen["error"] = repr(exc)

    clerk = threading.Thread(target=other_clerk)
    clerk.start()
    started = time.monotonic()
    run_worker()
    job_seconds = time.monotonic() - started
    clerk.join(120)
    assert "error" not in seen, seen.get("error")
    assert seen["status"] == 200 and "已创建，正在向税局申请下载" in seen["html"]
    assert seen["pooled_then"] < rows, "新增下载任务 waited for the whole import"
    page = auth.client.get(job_url).get_data(as_text=True)
    assert f"下载 {rows} 份，入池 {rows} 份" in page
    assert _pooled() == rows
    print(f"\n{db.engine.dialect.name}: 50,000-row import job {job_seconds:.1f}s "
          f"(the worker also ran the new download task); concurrent 新增下载任务 {seen['create']:.2f}s")


def _pooled() -> int:
    with db.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(PoolInvoice).where(PoolInvoice.invoice_no.like("2612%")))

