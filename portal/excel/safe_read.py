"""Reading an uploaded workbook without letting it take the process down.

A 1.6 KB xlsx can declare a cell at XFD1048576 and make the parser allocate 512 GiB;
python-calamine aborts the whole process when such an allocation fails, so no
try/except can catch it. Two defences, both always on:

1. ``check(data)`` looks at the zip without loading the sheet: it is a zip, it has few
   members, the declared uncompressed size and every member's compression ratio are
   bounded, and the first sheet's declared ``<dimension>`` plus a streaming scan of its
   ``<row r=…>``/``<c r=…>`` references stay within the row and column limits. A bomb is
   refused here, in a fraction of a second and with bounded memory.
2. ``read_rows(data)`` runs ``check`` and then parses in a child process capped in
   address space (IMPORT_MAX_MEMORY_MB) and time (IMPORT_MAX_SECONDS); what the check
   could not foresee kills the child, and the caller gets a clear message.

Every refusal is an ``ExcelRefused`` whose text is shown to the person as it is.
"""
from __future__ import annotations

import io
import pickle
import posixpath
import re
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from defusedxml import ElementTree
from flask import current_app
from portal.i18n import gettext as _

CHILD_SCRIPT = Path(__file__).with_name("_parse_child.py")
READ_CHUNK = 1024 * 1024
MAX_TAG_BYTES = 64 * 1024        # a row or cell start tag longer than this is not a real sheet
SMALL_MEMBER_BYTES = 1024 * 1024  # below this a member's compression ratio is not checked
META_MAX_BYTES = 2 * 1024 * 1024  # workbook.xml and its rels are read whole, so they are capped

_TAG = re.compile(rb"<(/?)(?:[A-Za-z_][\w.\-]*:)?(row|c)(?=[\s/>])([^>]*)>")
_R_ATTR = re.compile(rb"""(?:^|\s)r\s*=\s*["']([A-Za-z]*)(\d*)["']""")
_DIMENSION = re.compile(rb"""<(?:[A-Za-z_][\w.\-]*:)?dimension\s[^>]*?ref\s*=\s*["']([^"']*)["']""")
_CELL_REF = re.compile(r"\$?([A-Za-z]{1,3})\$?(\d{1,7})")
_LAST_ROW = re.compile(rb"""<(?:[A-Za-z_][\w.\-]*:)?row\s[^>]*?\br\s*=\s*["'](\d+)["']""")
_SHEET_DATA = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?sheetData[\s/>]")
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError)


class ExcelRefused(Exception):
    """The upload cannot be read; the message says why, in words a person can act on."""

    @property
    def message(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Limits:
    max_rows: int            # data rows, the header row not counted
    max_columns: int
    max_members: int
    max_uncompressed: int    # bytes, all members together as declared
    max_ratio: int           # uncompressed / compressed per member (members over 1 MB)
    memory_bytes: int        # the parser process's address space
    seconds: int             # the parser process's wall-clock and CPU time

    @classmethod
    def from_config(cls, config=None, **overrides) -> "Limits":
        c = config if config is not None else current_app.config
        values = dict(max_rows=c["IMPORT_MAX_ROWS"], max_columns=c["IMPORT_MAX_COLUMNS"],
                      max_members=c["IMPORT_MAX_ZIP_MEMBERS"],
                      max_uncompressed=c["IMPORT_MAX_UNCOMPRESSED_MB"] * 1024 * 1024,
                      max_ratio=c["IMPORT_MAX_COMPRESSION_RATIO"],
                      memory_bytes=c["IMPORT_MAX_MEMORY_MB"] * 1024 * 1024, seconds=c["IMPORT_MAX_SECONDS"])
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True)
class SheetShape:
    """What the check learnt without parsing: the first sheet's extent (header included)."""
    member: str
    rows: int
    columns: int


def _unreadable() -> ExcelRefused:
    return ExcelRefused(_("文件无法读取：请上传 .xlsx 格式的 Excel 文件（文件损坏或不是 Excel 格式）"))


def _too_big(limits: Limits, rows: int, columns: int) -> ExcelRefused | None:
    if rows - 1 > limits.max_rows:
        return ExcelRefused(_("文件行数过多：单次最多导入 %(max)s 行数据，当前文件有 %(n)s 行",
                              max=limits.max_rows, n=rows - 1))
    if columns > limits.max_columns:
        return ExcelRefused(_("文件列数过多：最多 %(max)s 列，当前文件用到第 %(n)s 列（%(letters)s 列）",
                              max=limits.max_columns, n=columns, letters=column_letters(columns)))
    return None


def column_index(letters: str) -> int:
    """'A' → 1, 'XFD' → 16384."""
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n


def column_letters(n: int) -> str:
    letters = ""
    while n > 0:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


# --- 1. checks on the zip, without loading the sheet -------------------------------------------
def check(data: bytes, limits: Limits | None = None) -> SheetShape:
    """Refuse (ExcelRefused) a file that is no xlsx or whose first sheet is out of bounds."""
    limits = limits or Limits.from_config()
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        members = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        raise _unreadable() from None
    with zf:
        if len(members) > limits.max_members:
            raise ExcelRefused(_("文件结构异常：压缩包内有 %(n)s 个部件（最多 %(max)s 个），不是正常的 Excel 文件",
                                 n=len(members), max=limits.max_members))
        declared = sum(m.file_size for m in members)
        if declared > limits.max_uncompressed:
            raise ExcelRefused(_("文件解压后过大：%(size)s MB（最多 %(max)s MB），请拆分后分批导入",
                                 size=declared // (1024 * 1024), max=limits.max_uncompressed // (1024 * 1024)))
        for m in members:
            if m.file_size > SMALL_MEMBER_BYTES and m.file_size > limits.max_ratio * max(m.compress_size, 1):
                raise ExcelRefused(_("文件压缩比异常（%(name)s 压缩比超过 %(max)s 倍），疑似压缩炸弹，已拒绝",
                                     name=m.filename, max=limits.max_ratio))
        member = _first_sheet(zf)
        rows, columns = _declared_dimension(zf, member)
        refusal = _too_big(limits, rows, columns)
        if refusal:
            raise refusal
        rows, columns = _scan_extent(zf, member, limits)
        refusal = _too_big(limits, rows, columns)
        if refusal:
            raise refusal
    return SheetShape(member, rows, columns)


def _read_small(zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise _unreadable() from None
    if info.file_size > META_MAX_BYTES:
        raise _unreadable()
    try:
        return zf.read(info)
    except _ZIP_ERRORS:
        raise _unreadable() from None


def _first_sheet(zf: zipfile.ZipFile) -> str:
    """The zip member of the workbook's first sheet (the one the parser reads)."""
    names = set(zf.namelist())
    if "xl/workbook.xml" not in names:
        raise _unreadable()
    try:
        workbook = ElementTree.fromstring(_read_small(zf, "xl/workbook.xml"))
        rels = ElementTree.fromstring(_read_small(zf, "xl/_rels/workbook.xml.rels"))
    except ExcelRefused:
        raise
    except Exception:  # malformed or hostile XML (defusedxml refuses entities)
        raise _unreadable() from None
    sheet = next((el for el in workbook.iter() if el.tag.rsplit("}", 1)[-1] == "sheet"), None)
    rid = None if sheet is None else next((v for k, v in sheet.attrib.items() if k.rsplit("}", 1)[-1] == "id"
                                           and k.startswith("{")), None)
    target = next((el.get("Target") for el in rels.iter()
                   if el.tag.rsplit("}", 1)[-1] == "Relationship" and el.get("Id") == rid), None)
    if not target:
        raise ExcelRefused(_("文件中没有工作表"))
    member = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
    if member not in names:
        raise _unreadable()
    return member


def _declared_dimension(zf: zipfile.ZipFile, member: str) -> tuple[int, int]:
    """(rows, columns) the sheet's <dimension ref> declares, read from the sheet's start only."""
    head = b""
    try:
        with zf.open(member) as f:
            while len(head) < MAX_TAG_BYTES:
                chunk = f.read(8192)
                if not chunk:
                    break
                head += chunk
                if _SHEET_DATA.search(head):
                    break
    except _ZIP_ERRORS:
        raise _unreadable() from None
    m = _DIMENSION.search(head)
    if not m:
        return 0, 0
    rows = columns = 0
    for ref in _CELL_REF.finditer(m.group(1).decode("ascii", "replace")):
        columns = max(columns, column_index(ref.group(1)))
        rows = max(rows, int(ref.group(2)))
    return rows, columns


def _scan_extent(zf: zipfile.ZipFile, member: str, limits: Limits) -> tuple[int, int]:
    """The largest row and column any cell of the sheet uses, streaming; stops early when
    a limit is passed. Cells without an ``r`` attribute count by position, as parsers do."""
    max_row = max_col = 0
    row = col = 0
    tail = b""
    try:
        with zf.open(member) as f:
            while True:
                chunk = f.read(READ_CHUNK)
                buffer = tail + chunk
                if chunk:
                    cut = buffer.rfind(b"<")
                    if cut != -1 and buffer.find(b">", cut) == -1:
                        buffer, tail = buffer[:cut], buffer[cut:]
                        if len(tail) > MAX_TAG_BYTES:
                            raise _unreadable()
                    else:
                        tail = b""
                for m in _TAG.finditer(buffer):
                    closing, name, attrs = m.groups()
                    if closing:
                        continue
                    r = _R_ATTR.search(attrs)
                    if name == b"row":
                        row = int(r.group(2)) if r and r.group(2) else row + 1
                        col = 0
                        continue
                    if r and r.group(1):
                        col = column_index(r.group(1).decode())
                    else:
                        col += 1
                    cell_row = int(r.group(2)) if r and r.group(2) else row
                    max_row, max_col = max(max_row, cell_row, row), max(max_col, col)
                    if max_col > limits.max_columns:
                        return max_row, max_col
                    if max_row - 1 > limits.max_rows:  # refused: only the row count for the message
                        return _last_row(f, buffer + tail, max_row), max_col
                if not chunk:
                    break
    except _ZIP_ERRORS:
        raise _unreadable() from None
    return max_row, max_col


def _last_row(f, buffer: bytes, known: int) -> int:
    """The last row number the rest of the sheet mentions, reading it without tokenizing
    (rows come in order); bounded by the member's declared size."""
    while True:
        for m in _LAST_ROW.finditer(buffer[-MAX_TAG_BYTES:]):
            known = max(known, int(m.group(1)))
        chunk = f.read(READ_CHUNK)
        if not chunk:
            return known
        buffer = buffer[-MAX_TAG_BYTES:] + chunk


# --- 2. parsing, in a child process with a memory and time limit -------------------------------
def read_rows(data: bytes, limits: Limits | None = None) -> list[list]:
    """The first sheet's rows as plain Python values (str, int, float, bool, date, datetime,
    time, timedelta, None), after ``check``; refusals raise ExcelRefused."""
    limits = limits or Limits.from_config()
    check(data, limits)
    return parse_in_child(data, limits)


def parse_in_child(data: bytes, limits: Limits) -> list[list]:
    """Parse in a separate process capped at limits.memory_bytes and limits.seconds."""
    cmd = [sys.executable, "-I", str(CHILD_SCRIPT), str(limits.memory_bytes), str(limits.seconds)]
    try:
        done = subprocess.run(cmd, input=data, capture_output=True, timeout=limits.seconds)
    except subprocess.TimeoutExpired:
        current_app.logger.warning("excel parse: child exceeded %ss", limits.seconds)
        raise ExcelRefused(_("文件无法解析：解析超过 %(n)s 秒，文件过大或结构异常，请拆分后分批导入",
                             n=limits.seconds)) from None
    if done.returncode != 0 or not done.stdout:
        current_app.logger.warning("excel parse: child ended with %s: %s", done.returncode,
                                   done.stderr[-500:].decode("utf-8", "replace"))
        raise ExcelRefused(_("文件无法解析：文件过大或已损坏（解析进程超出内存限制或异常退出），请检查文件后重试"))
    try:
        outcome, payload = _PlainUnpickler(io.BytesIO(done.stdout)).load()
    except Exception:
        raise ExcelRefused(_("文件无法解析：文件过大或已损坏，请检查文件后重试")) from None
    if outcome != "ok":
        current_app.logger.info("excel parse refused: %s", payload)
        raise _unreadable()
    return payload


class _PlainUnpickler(pickle.Unpickler):
    """Only plain values come back from the child: no class but the datetime ones."""
    ALLOWED = {("datetime", c.__name__): c for c in (date, datetime, time, timedelta)}

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"{module}.{name} is not a plain value") from None
