"""F18012 数据同步日志查询 pages: thin views over portal.sync_logs.service."""
from __future__ import annotations

import io
from datetime import date, timedelta
from urllib.parse import parse_qsl

from flask import abort, current_app, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from portal import clock
from portal.auth import permissions
from portal.auth.decorators import permission_required
from portal.channels.base import DOWNLOAD_TYPE_LABELS, ChannelKind, DownloadType
from portal.extensions import db
from portal.models import JobRun, Organization, SyncTask, SyncTaskInvoice
from portal.models.sync import SYNC_STATUS_LABELS, SYNC_TYPE_LABELS, SyncType
from portal.sync_logs import bp, export, importing, service
from portal.tables import Action, Column, Filter, Table, Tabs
from portal.ui import notify
from portal.views import render_list


def _status_cell(t: SyncTask) -> str:
    waited = t.waiting_minutes
    return t.status_label + (f"（已等待 {waited} 分钟）" if waited is not None else "")


SYNC_TABLE = Table(
    "sync-table", SyncTask.id,
    columns=[
        Column("batch_no", "下载批次号", sort=SyncTask.batch_no,
               href=lambda t: url_for("sync_logs.detail", task_id=t.id)),
        Column("org", "核算组织", value=lambda t: t.org.name),
        Column("status", "同步状态", value=_status_cell),
        Column("download_type", "下载类型", value=lambda t: t.download_type_label),
        Column("start_date", "下载开始时间", sort=SyncTask.start_date),
        Column("end_date", "下载结束时间", sort=SyncTask.end_date),
        Column("success_count", "处理成功的份数", sort=SyncTask.success_count, css="num"),
        Column("invoice_count", "下载发票份数", sort=SyncTask.invoice_count, css="num"),
        Column("sync_type", "同步类型", value=lambda t: t.sync_type_label),
        Column("error", "错误描述", css="wrap"),
        Column("channel", "通道", value=lambda t: ChannelKind(t.channel).label),
        Column("created_at", "创建时间", sort=SyncTask.created_at),
        Column("updated_at", "更新时间", sort=SyncTask.updated_at),
        Column("last_retry_at", "最后重试时间"),
    ],
    filters=[
        Filter("batch_no", "下载批次号", SyncTask.batch_no, "prefix", placeholder="批次号或前缀"),
        Filter("org", "核算组织", SyncTask.org_id, "int",
               options=lambda: [(str(o.id), o.name) for o in _orgs_with("F18012.query")]),
        Filter("download_type", "下载类型", SyncTask.download_type, "select",
               [(k.value, v) for k, v in DOWNLOAD_TYPE_LABELS.items()]),
        Filter("sync_type", "同步类型", SyncTask.sync_type, "select",
               [(k.value, v) for k, v in SYNC_TYPE_LABELS.items()]),
        Filter("channel", "通道", SyncTask.channel, "select", [(c.value, c.label) for c in ChannelKind]),
        Filter("start_from", "下载开始时间从", SyncTask.start_date, "date_from"),
        Filter("start_to", "下载开始时间至", SyncTask.start_date, "date_to"),
        Filter("end_from", "下载结束时间从", SyncTask.end_date, "date_from"),
        Filter("end_to", "下载结束时间至", SyncTask.end_date, "date_to"),
        Filter("success_count", "处理成功的份数", SyncTask.success_count, "int"),
        Filter("invoice_count", "下载发票份数", SyncTask.invoice_count, "int"),
        Filter("error", "错误描述", SyncTask.error, "prefix", placeholder="以…开头"),
        Filter("created_from", "创建时间从", SyncTask.created_at, "date_from"),
        Filter("created_to", "创建时间至", SyncTask.created_at, "date_to"),
    ],
    tabs=Tabs("status", SyncTask.status, [(k.value, v) for k, v in SYNC_STATUS_LABELS.items()]),
    actions=[
        Action("fetch_result", "获取异步结果", "sync_logs.fetch_results", "F18012.fetch_result"),
        Action("retry", "手工重试", "sync_logs.retry", "F18012.retry"),
        Action("void", "作废任务", "sync_logs.void", "F18012.void", destructive=True),
        Action("export", "导出", "sync_logs.export_tasks", "F18012.export"),
    ],
    default_sort="created_at",
)

INVOICE_TABLE = Table(
    "batch-invoices", SyncTaskInvoice.id,
    columns=[
        Column("invoice_code", "发票代码"),
        Column("invoice_no", "发票号码", sort=SyncTaskInvoice.id),
        Column("direction", "进/销项", value=lambda i: "进项" if i.direction == "in" else "销项"),
        Column("issue_date", "开票日期"),
        Column("seller_name", "销方名称"),
        Column("buyer_name", "购方名称"),
        Column("total", "价税合计", css="num"),
        Column("bureau_status", "税局发票状态"),
        Column("pool_status", "票池状态", value=lambda i: i.pool_invoice.status if i.pool_invoice else ""),
        Column("outcome", "处理结果", value=lambda i: i.outcome_label),
        Column("failure_reason", "失败原因", css="wrap"),
    ],
    filters=[
        Filter("outcome", "处理结果", SyncTaskInvoice.outcome, "select",
               list(SyncTaskInvoice.OUTCOME_LABELS.items())),
        Filter("invoice_no", "发票号码", SyncTaskInvoice.invoice_no, "prefix"),
    ],
    default_sort="invoice_no", default_dir="asc", selectable=False,
)


def visible_tasks(permission: str = "F18012.query", user=None):
    """Tasks of the organisations where the user holds `permission`."""
    ids = permissions.org_ids_with(permission, user)
    stmt = select(SyncTask)
    return stmt if ids is None else stmt.where(SyncTask.org_id.in_(ids or [-1]))


def _orgs_with(permission: str) -> list[Organization]:
    ids = permissions.org_ids_with(permission)
    stmt = select(Organization).where(Organization.active.is_(True)).order_by(Organization.code)
    if ids is not None:
        stmt = stmt.where(Organization.id.in_(ids or [-1]))
    return list(db.session.scalars(stmt))


def _back_url() -> str:
    filters = request.form.get("filters", "")
    return url_for("sync_logs.index") + (f"?{filters}" if filters else "")


@bp.route("/")
@permission_required("F18012.query")
def index():
    page = SYNC_TABLE.page(db.session, visible_tasks())
    return render_list("sync_logs/list.html", page)


@bp.route("/<int:task_id>")
@permission_required("F18012.query")
def detail(task_id):
    """A batch and its invoices, with each invoice's pool status and failure reason."""
    task = db.session.scalar(visible_tasks().where(SyncTask.id == task_id)) or abort(404)
    page = INVOICE_TABLE.page(db.session, select(SyncTaskInvoice).where(SyncTaskInvoice.task_id == task.id))
    return render_list("sync_logs/detail.html", page, task=task)


# --- bulk buttons -------------------------------------------------------------------------
def _bulk(permission: str, limit: int, too_many_message: str | None = None,
          empty_message: str = "请先选择要操作的任务"):
    """The rows a button acts on, or a response refusing the whole request."""
    if not permissions.has_any(permission):
        notify(permissions.no_permission_message(permission), "error")
        return None, redirect(_back_url())
    rows, too_many = SYNC_TABLE.selection(db.session, visible_tasks(), request.form, limit)
    if too_many:
        notify(too_many_message or f"单次最多处理 {limit} 个任务，当前选择超过 {limit} 个，未处理任何任务。"
               "请缩小筛选范围或分批操作。", "error")
        return None, redirect(_back_url())
    if not rows:
        notify(empty_message, "warning")
        return None, redirect(_back_url())
    return rows, None


def _report(title: str, results: list[service.RowResult]):
    done = sum(r.ok for r in results)
    notify(f"{title}：成功 {done} 条，跳过 {len(results) - done} 条", "success" if done else "warning")
    return render_template("sync_logs/result.html", title=title, results=results, back=_back_url())


@bp.route("/retry", methods=["POST"])
@permission_required("F18012.query")
def retry():
    rows, refusal = _bulk("F18012.retry", current_app.config["SYNC_BULK_LIMIT"])
    return refusal or _report("手工重试", service.retry(rows))


@bp.route("/void", methods=["POST"])
@permission_required("F18012.query")
def void():
    limit = current_app.config["SYNC_VOID_LIMIT"]
    rows, refusal = _bulk("F18012.void", limit,
                          f"作废任务单次最多{limit}个，当前选择超过 {limit} 个，未作废任何任务。",
                          "请先选择要作废的任务")
    if refusal:
        return refusal
    if request.form.get("confirmed") != "1":
        return render_template("sync_logs/confirm.html", rows=rows, form=request.form,
                               action=url_for("sync_logs.void"), back=_back_url(),
                               question=f"确定作废所选的 {len(rows)} 个任务吗？作废后将同时在税局通道作废，且不可恢复。")
    return _report("作废任务", service.void(rows))


@bp.route("/fetch-results", methods=["POST"])
@permission_required("F18012.query")
def fetch_results():
    """获取异步结果 runs as a tracked job; rows refused up front are recorded as skipped."""
    from jobs import sync as sync_jobs, tracked
    rows, refusal = _bulk("F18012.fetch_result", current_app.config["SYNC_BULK_LIMIT"])
    if refusal:
        return refusal
    ok, refused = service.fetchable(rows)
    if not ok:
        return _report("获取异步结果", refused)
    names = "、".join(t.batch_no for t in ok[:3]) + (f" 等 {len(ok)} 个任务" if len(ok) > 3 else "")
    try:
        job = tracked.start("sync.fetch_results", current_user, sync_jobs.fetch_results, [t.id for t in ok],
                            subject=f"下载任务 {names}", back_url=_back_url(), total=len(ok),
                            items=[(r.name, "skipped", r.message) for r in refused])
    except tracked.QueueUnavailable as exc:
        notify(str(exc), "error")
        return redirect(_back_url())
    notify(f"已提交获取异步结果：{len(ok)} 个任务" + (f"，跳过 {len(refused)} 个" if refused else ""))
    return redirect(url_for("main.job_status", job_id=job.id))


def export_query(user, filters: str, ids: list[int] | None):
    base = visible_tasks("F18012.export", user)
    if ids:
        return base.where(SyncTask.id.in_(ids))
    return SYNC_TABLE.filtered(base, MultiDict(parse_qsl(filters)))


def count_for_export(stmt) -> int:
    return db.session.scalar(select(func.count()).select_from(
        stmt.with_only_columns(SyncTask.id).order_by(None).subquery()))


@bp.route("/export", methods=["POST"])
@permission_required("F18012.query")
def export_tasks():
    """Selected rows or every row matching the filter; big exports run as a tracked job."""
    from jobs import sync as sync_jobs, tracked
    if not permissions.has_any("F18012.export"):
        notify(permissions.no_permission_message("F18012.export"), "error")
        return redirect(_back_url())
    select_all = request.form.get("select_all") == "1"
    ids = None if select_all else [int(i) for i in request.form.getlist("ids") if i.isdigit()]
    if not select_all and not ids:
        notify("请先选择要导出的日志，或勾选“选择全部符合条件的”", "warning")
        return redirect(_back_url())
    filters = request.form.get("filters", "")
    stmt = export_query(current_user, filters, ids)
    limit = current_app.config["EXPORT_SYNC_LIMIT"]
    n = db.session.scalar(select(func.count()).select_from(
        stmt.with_only_columns(SyncTask.id).order_by(None).limit(limit + 1).subquery()))
    if n <= limit:
        buffer = io.BytesIO()
        export.write_xlsx(stmt, buffer)
        buffer.seek(0)
        return send_file(buffer, as_attachment=True, download_name=f"数据同步日志_{date.today():%Y%m%d}.xlsx",
                         mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    named = {f.key: (f.label, dict(f.choices or [])) for f in SYNC_TABLE.filters}
    named["status"] = ("同步状态", dict(SYNC_TABLE.tabs.choices))
    shown = "，".join(f"{named[k][0]}：{named[k][1].get(v, v)}" for k, v in parse_qsl(filters) if k in named)
    subject = f"数据同步日志：所选 {len(ids)} 条" if ids else f"数据同步日志：全部符合条件的（{shown or '无筛选'}）"
    try:
        job = tracked.start("sync.export", current_user, sync_jobs.export_tasks, filters, ids,
                            subject=subject, back_url=_back_url(), job_timeout=3600)
    except tracked.QueueUnavailable as exc:
        notify(str(exc), "error")
        return redirect(_back_url())
    notify(f"导出数据超过 {limit} 条，已转为后台任务，完成后可下载文件")
    return redirect(url_for("main.job_status", job_id=job.id))


# --- creating tasks ----------------------------------------------------------------------
CREATABLE_SYNC_TYPES = [t for t in SyncType if t is not SyncType.MANUAL_IMPORT]


@bp.route("/new", methods=["GET", "POST"])
@permission_required("F18012.create")
def create():
    orgs = _orgs_with("F18012.create")
    errors, form = [], request.form
    if request.method == "POST":
        org_ids = [int(i) for i in form.getlist("org") if i.isdigit()]
        types = [t for t in DownloadType if t.value in form.getlist("download_type")]
        try:
            sync_type = SyncType(form.get("sync_type", ""))
            if sync_type is SyncType.MANUAL_IMPORT:
                raise ValueError
        except ValueError:
            sync_type = None
            errors.append("请选择同步类型")
        try:
            start, end = date.fromisoformat(form.get("start", "")), date.fromisoformat(form.get("end", ""))
        except ValueError:
            start = end = None
            errors.append("请填写正确的下载开始时间和下载结束时间（按开票日期）")
        if not org_ids:
            errors.append("请选择核算组织")
        if not types:
            errors.append("请选择下载类型")
        if start and end:
            if start > end:
                errors.append("下载开始时间不能晚于下载结束时间")
            elif (end - start).days > 366:
                errors.append("下载时间范围不能超过一年")
            elif end > clock.now().date() + timedelta(days=1):
                errors.append("下载结束时间不能晚于今天")
        if not errors:
            results = service.create_tasks(org_ids, sync_type, types, start, end)
            return _report("新增下载任务", results)
    today = clock.now().date()
    return render_template("sync_logs/create.html", orgs=orgs, errors=errors, form=form,
                           sync_types=CREATABLE_SYNC_TYPES, download_types=list(DownloadType),
                           default_start=today.replace(day=1), default_end=today)


@bp.route("/import", methods=["GET", "POST"])
@permission_required("F18012.create")
def manual_import():
    """手工导入: a bureau export file becomes a task with its invoices."""
    orgs = _orgs_with("F18012.create")
    errors = []
    if request.method == "POST":
        org_id = request.form.get("org", type=int)
        org = next((o for o in orgs if o.id == org_id), None)
        try:
            dtype = DownloadType(request.form.get("download_type", ""))
        except ValueError:
            dtype = None
        upload = request.files.get("file")
        if org is None:
            errors.append("请选择有权限的核算组织")
        if dtype not in importing.IMPORTABLE_TYPES:
            errors.append("请选择下载类型（进项-全量或销项-全量）")
        if not upload or not upload.filename:
            errors.append("请选择要导入的税局导出文件（.xlsx）")
        if not errors:
            invoices, errors = importing.read_bureau_file(upload)
            if not errors:
                task = importing.import_task(org, dtype, invoices)
                notify(f"导入完成：批次 {task.batch_no}，{task.status_label}，"
                       f"下载 {task.invoice_count} 份，入池 {task.success_count} 份")
                return redirect(url_for("sync_logs.detail", task_id=task.id))
    return render_template("sync_logs/import.html", orgs=orgs, errors=errors,
                           types=importing.IMPORTABLE_TYPES, columns=importing.COLUMNS)


@bp.route("/import/template")
@permission_required("F18012.create")
def import_template():
    return send_file(importing.template(), as_attachment=True, download_name="税局发票导出模板.xlsx",
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
