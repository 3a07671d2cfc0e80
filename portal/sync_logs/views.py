"""F18012 数据同步日志查询 pages: thin views over portal.sync_logs.service."""
from __future__ import annotations

import io
from datetime import date, timedelta
from urllib.parse import parse_qsl

from flask import abort, current_app, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from flask_babel import gettext as _

from portal import clock
from portal.fmt import duration
from portal.auth import permissions
from portal.auth.decorators import permission_required
from portal.channels.base import DOWNLOAD_TYPE_LABELS, REASON_MESSAGES, ChannelKind, DownloadType, ReasonCode
from portal.extensions import db
from portal.models import JobRun, Organization, SyncTask, SyncTaskInvoice
from portal.models.sync import SYNC_STATUS_LABELS, SYNC_TYPE_LABELS, SyncType
from portal import bulk
from portal.sync_logs import bp, export, importing, scope, service
from portal.tables import HIDDEN, SHOWN, Action, Column, Filter, Table, Tabs
from portal.ui import notify
from portal.views import render_list


def _status_cell(t: SyncTask) -> str:
    if not t.in_flight:
        return _(t.status_label)
    return _("%(status)s · %(what)s（已等待 %(waited)s）", status=_(t.status_label), what=t.waiting_for,
             waited=duration(t.waiting_seconds))


# The reasons a download task fails with (the 失败原因 filter), as the channels return them.
FAILURE_REASONS = [ReasonCode.LOGIN_EXPIRED, ReasonCode.BUREAU_BUSY, ReasonCode.GATEWAY_TIMEOUT,
                   ReasonCode.RATE_LIMITED, ReasonCode.UNKNOWN_ERROR, ReasonCode.TIMEOUT,
                   ReasonCode.RESPONSE_LOST, ReasonCode.CONNECTION_ERROR, ReasonCode.DOWNLOAD_APPLY_FAILED,
                   ReasonCode.DOWNLOAD_FAILED, ReasonCode.TAXPAYER_TYPE, ReasonCode.NOT_SUPPORTED,
                   ReasonCode.NOT_FOUND, ReasonCode.AUTH_FAILED, ReasonCode.INVALID_REQUEST]

SYNC_TABLE = Table(
    "sync-table", SyncTask.id,
    columns=[
        Column("batch_no", "下载批次号", sort=SyncTask.batch_no, macro="link",
               href=lambda t: url_for("sync_logs.detail", task_id=t.id)),
        Column("org", "核算组织", value=lambda t: t.org.name, macro="truncate", max_chars=8),
        Column("status", "同步状态", value=_status_cell, macro="badge", css="narrow-wrap",
               tone=lambda t: {"success": "ok", "processing": "busy", "failed": "bad",
                               "apply_failed": "bad", "voided": "", "no_data": ""}.get(t.status, "warn")),
        Column("download_type", "下载类型", value=lambda t: t.download_type_label),
        Column("start_date", "下载开始时间", sort=SyncTask.start_date),
        Column("end_date", "下载结束时间", sort=SyncTask.end_date),
        Column("success_count", "处理成功的份数", sort=SyncTask.success_count, css="num"),
        Column("invoice_count", "下载发票份数", sort=SyncTask.invoice_count, css="num"),
        Column("sync_type", "同步类型", value=lambda t: t.sync_type_label, show=HIDDEN),
        Column("error", "错误描述", macro="truncate", max_chars=10),
        Column("channel", "通道", value=lambda t: ChannelKind(t.channel).label, show=HIDDEN),
        Column("created_at", "创建时间", sort=SyncTask.created_at, macro="datetime", css="datetime"),
        Column("updated_at", "更新时间", sort=SyncTask.updated_at, macro="datetime", css="datetime",
               show=HIDDEN),
        Column("last_retry_at", "最后重试时间", macro="datetime", css="datetime", show=HIDDEN),
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
        Filter("error", "错误描述", SyncTask.error, "contains", placeholder="包含的文字"),
        Filter("reason", "失败原因", SyncTask.reason_code, "select",
               [(code.value, REASON_MESSAGES[code]) for code in FAILURE_REASONS]),
        Filter("has_failures", "有处理失败", SyncTask.success_count < SyncTask.invoice_count, "flag",
               [("1", "是")]),
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
    in_flight=lambda t: t.in_flight, row_endpoint="sync_logs.row",
)

INVOICE_TABLE = Table(
    "batch-invoices", SyncTaskInvoice.id,
    columns=[
        Column("invoice_code", "发票代码", show=HIDDEN),  # empty for 数电 invoices
        Column("invoice_no", "发票号码", sort=SyncTaskInvoice.id),
        Column("direction", "进/销项", value=lambda i: "进项" if i.direction == "in" else "销项"),
        Column("issue_date", "开票日期"),
        Column("seller_name", "销方名称", macro="truncate", max_chars=12),
        Column("buyer_name", "购方名称", macro="truncate", max_chars=12, show=SHOWN),
        Column("total", "价税合计", css="num"),
        Column("bureau_status", "税局发票状态", show=SHOWN),
        Column("pool_status", "票池状态", value=lambda i: i.pool_invoice.status if i.pool_invoice else "",
               show=SHOWN),
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
    return scope.tasks(user or current_user, permission)


def _orgs_with(permission: str) -> list[Organization]:
    return scope.orgs(current_user, permission)


def _back_url() -> str:
    filters = request.form.get("filters", "")
    return url_for("sync_logs.index") + (f"?{filters}" if filters else "")


@bp.route("/")
@permission_required("F18012.query")
def index():
    page = SYNC_TABLE.page(db.session, visible_tasks())
    return render_list("sync_logs/list.html", page, logged_out=scope.logged_out_orgs(current_user))


@bp.route("/rows/<int:row_id>")
@permission_required("F18012.query")
def row(row_id):
    """One list row, for a row in 下载处理中 refreshing itself (htmx polling)."""
    page = SYNC_TABLE.page(db.session, visible_tasks().where(SyncTask.id == row_id), request.args)
    if not page.rows:
        abort(404)
    return render_template("_partials/table_row.html", page=page, row=page.rows[0])


@bp.route("/<int:task_id>")
@permission_required("F18012.query")
def detail(task_id):
    """A batch and its invoices; each application at the channel, outbox effects, history."""
    task = db.session.scalar(visible_tasks().where(SyncTask.id == task_id)) or abort(404)
    page = INVOICE_TABLE.page(db.session, select(SyncTaskInvoice).where(SyncTaskInvoice.task_id == task.id))
    return render_list("sync_logs/detail.html", page, task=task, **service.task_story(task))


@bp.route("/orgs/<int:org_id>/login", methods=["POST"])
@permission_required("F18012.query")
def login(org_id):
    """登录: log the organisation in at the bureau again (RPA needs a person's face/SMS check)."""
    from jobs import enqueue, sync as sync_jobs
    if not permissions.can("F18012.fetch_result", org_id):
        notify(permissions.no_permission_message("F18012.fetch_result"), "error")
        return redirect(_back_url())
    org = db.session.get(Organization, org_id) or abort(404)
    try:
        enqueue(sync_jobs.login_org, org.id, current_user.username)
    except Exception:  # noqa: BLE001 — Redis down: say so, nothing was changed
        notify(_("后台任务服务暂不可用，请稍后重试；本次操作未执行"), "error")
        return redirect(_back_url())
    notify(_("已向电子税局发起登录：%(org)s。RPA 通道请在税局完成人脸或短信验证，登录成功后处理中的任务将自动继续。",
             org=org.name))
    return redirect(_back_url())


# --- bulk buttons -------------------------------------------------------------------------
def _selection(permission: str, limit: int, too_many: str | None = None, empty: str | None = None):
    """The rows a button acts on, or a redirect back with why nothing was done."""
    if not permissions.has_any(permission):
        notify(permissions.no_permission_message(permission), "error")
        return None, redirect(_back_url())
    selection = bulk.select(SYNC_TABLE, visible_tasks(), limit, too_many, empty or _("请先选择要操作的任务"))
    if selection.refusal:
        notify(selection.refusal, selection.level)
        return None, redirect(_back_url())
    return selection.rows, None


def _report(title: str, results: list[service.RowResult], done_label: str | None = None):
    done = sum(r.ok for r in results)
    notify(_("%(title)s：成功 %(done)s 条，跳过 %(skipped)s 条", title=title, done=done,
             skipped=len(results) - done), "success" if done else "warning")
    return render_template("sync_logs/result.html", title=title, results=results, back=_back_url(),
                           done_label=done_label or _("完成"))


def _skipped(plan: bulk.Plan) -> list[service.RowResult]:
    return [service.RowResult(row, False, reason) for row, reason in plan.skipped]


@bp.route("/retry", methods=["POST"])
@permission_required("F18012.query")
def retry():
    rows, refusal = _selection("F18012.retry", current_app.config["SYNC_BULK_LIMIT"])
    if refusal:
        return refusal
    plan = bulk.plan("F18012.retry", service.retry_refusal, rows)
    return _report(_("手工重试"), service.retry(plan.will_change) + _skipped(plan), _("已重新提交"))


@bp.route("/void", methods=["POST"])
@permission_required("F18012.query")
def void():
    limit = current_app.config["SYNC_VOID_LIMIT"]
    rows, refusal = _selection("F18012.void", limit,
                               _("作废任务单次最多%(n)s个，当前选择超过 %(n)s 个，未作废任何任务。", n=limit),
                               _("请先选择要作废的任务"))
    if refusal:
        return refusal
    plan = bulk.plan("F18012.void", service.void_refusal, rows)
    if request.form.get("confirmed") != "1":
        return render_template("sync_logs/confirm.html", plan=plan, selected=len(rows), form=request.form,
                               action=url_for("sync_logs.void"), back=_back_url(), verb=_("作废"))
    return _report(_("作废任务"), service.void(plan.will_change) + _skipped(plan), _("已作废"))


@bp.route("/fetch-results", methods=["POST"])
@permission_required("F18012.query")
def fetch_results():
    from jobs import enqueue, sync as sync_jobs
    rows, refusal = _selection("F18012.fetch_result", current_app.config["SYNC_BULK_LIMIT"])
    if refusal:
        return refusal
    ok, refused = service.fetchable(rows)
    if not ok:
        return _report("获取异步结果", refused)
    job = JobRun(kind="sync.fetch_results", user_id=current_user.id, total=len(ok),
                 results=[{"name": r.name, "ok": False, "message": r.message} for r in refused])
    db.session.add(job)
    db.session.commit()
    job.rq_job_id = enqueue(sync_jobs.fetch_results, job.id, [t.id for t in ok]).id
    db.session.commit()
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
    """Selected rows or every row matching the filter; big exports run as a job."""
    from jobs import enqueue, sync as sync_jobs
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
    job = JobRun(kind="sync.export", user_id=current_user.id)
    db.session.add(job)
    db.session.commit()
    job.rq_job_id = enqueue(sync_jobs.export_tasks, job.id, filters, ids, job_timeout=3600).id
    db.session.commit()
    notify(f"导出数据超过 {limit} 条，已转为后台任务，完成后可下载文件")
    return redirect(url_for("main.job_status", job_id=job.id))


# --- creating tasks ----------------------------------------------------------------------
CREATABLE_SYNC_TYPES = [t for t in SyncType if t is not SyncType.MANUAL_IMPORT]


@bp.route("/new", methods=["GET", "POST"])
@permission_required("F18012.query")
def create():
    if not permissions.has_any("F18012.create"):  # the same answer as the list's buttons
        notify(permissions.no_permission_message("F18012.create"), "error")
        return redirect(url_for("sync_logs.index"))
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
            return _report(_("新增下载任务"), results, _("已提交"))
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
