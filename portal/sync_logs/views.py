"""F18012 数据同步日志查询 pages: thin views over portal.sync_logs.service."""
from __future__ import annotations

import io
from datetime import date, timedelta
from urllib.parse import parse_qsl

from flask import abort, current_app, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from sqlalchemy import func, select

from portal.i18n import gettext as _

from portal import clock
from portal.auth import permissions
from portal.auth.decorators import permission_required
from portal.channels.base import DownloadType
from portal.extensions import db
from portal.models import Organization, SyncTask, SyncTaskInvoice
from portal.models.sync import SyncType
from portal import bulk
from portal.sync_logs import bp, export, importing, scope, service
from portal.sync_logs.tables import INVOICE_TABLE, SYNC_TABLE
from portal.ui import notify
from portal.urls import parse_id
from portal.views import render_list


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
    page = SYNC_TABLE.page(db.session, visible_tasks(), orgs=scope.org_ids(current_user))
    return render_list("sync_logs/list.html", page, logged_out=scope.logged_out_orgs(current_user))


@bp.route("/rows/<int:row_id>")
@permission_required("F18012.query")
def row(row_id):
    """One list row, for a row in 下载处理中 refreshing itself (htmx polling)."""
    page = SYNC_TABLE.page(db.session, visible_tasks().where(SyncTask.id == row_id), request.args,
                           counted=False)
    if not page.rows:
        abort(404)
    return render_template("_partials/table_rows.html", page=page)


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


def _report(kind: str, title: str, results: list[service.RowResult]):
    """Store the per-row outcomes and redirect to them, so a refresh never resubmits."""
    from jobs import tracked
    done = sum(r.ok for r in results)
    message = _("%(title)s：成功 %(done)s 条，跳过 %(skipped)s 条", title=title, done=done,
                skipped=len(results) - done)
    job = tracked.record(kind, current_user, [(r.name, "done" if r.ok else "skipped", r.message,
                                                r.task.id if r.task else None) for r in results],
                         message, subject=_("%(n)s 个任务", n=len(results)), back_url=_back_url())
    notify(message, "success" if done else "warning")
    return redirect(url_for("main.job_status", job_id=job.id))


def _skipped(plan: bulk.Plan) -> list[service.RowResult]:
    return [service.RowResult(row, False, reason) for row, reason in plan.skipped]


@bp.route("/retry", methods=["POST"])
@permission_required("F18012.query")
def retry():
    rows, refusal = _selection("F18012.retry", current_app.config["SYNC_BULK_LIMIT"])
    if refusal:
        return refusal
    plan = bulk.plan("F18012.retry", service.retry_refusal, rows)
    return _report("sync.retry", _("手工重试"), service.retry(plan.will_change) + _skipped(plan))


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
                               action=url_for("sync_logs.void"), back=_back_url())
    return _report("sync.void", _("作废任务"), service.void(plan.will_change) + _skipped(plan))


@bp.route("/fetch-results", methods=["POST"])
@permission_required("F18012.query")
def fetch_results():
    """获取异步结果 runs as a tracked job; rows refused up front are recorded as skipped."""
    from jobs import sync as sync_jobs, tracked
    rows, refusal = _selection("F18012.fetch_result", current_app.config["SYNC_BULK_LIMIT"])
    if refusal:
        return refusal
    ok, refused = service.fetchable(rows)
    if not ok:
        return _report("sync.fetch_results", _("获取异步结果"), refused)
    names = "、".join(t.batch_no for t in ok[:3])
    subject = (_("下载任务 %(names)s 等 %(n)s 个任务", names=names, n=len(ok)) if len(ok) > 3
               else _("下载任务 %(names)s", names=names))
    try:
        job = tracked.start("sync.fetch_results", current_user, sync_jobs.fetch_results, [t.id for t in ok],
                            subject=subject, back_url=_back_url(), total=len(ok),
                            items=[(r.name, "skipped", r.message) for r in refused])
    except tracked.QueueUnavailable as exc:
        notify(str(exc), "error")
        return redirect(_back_url())
    notify(_("已提交获取异步结果：%(n)s 个任务，跳过 %(skipped)s 个", n=len(ok), skipped=len(refused)) if refused
           else _("已提交获取异步结果：%(n)s 个任务", n=len(ok)))
    return redirect(url_for("main.job_status", job_id=job.id))


@bp.route("/export", methods=["POST"])
@permission_required("F18012.query")
def export_tasks():
    """Selected rows or every row matching the filter; big exports run as a tracked job."""
    from jobs import sync as sync_jobs, tracked
    if not permissions.has_any("F18012.export"):
        notify(permissions.no_permission_message("F18012.export"), "error")
        return redirect(_back_url())
    select_all = request.form.get("select_all") == "1"
    ids = None if select_all else [i for i in map(parse_id, request.form.getlist("ids")) if i is not None]
    if not select_all and not ids:
        notify(_("请先选择要导出的日志，或勾选“选择全部符合条件的”"), "warning")
        return redirect(_back_url())
    filters = request.form.get("filters", "")
    stmt = export.query(current_user, filters, ids)
    limit = current_app.config["EXPORT_SYNC_LIMIT"]
    n = db.session.scalar(select(func.count()).select_from(
        stmt.with_only_columns(SyncTask.id).order_by(None).limit(limit + 1).subquery()))
    if n <= limit:
        buffer = io.BytesIO()
        export.write_xlsx(stmt, buffer)
        buffer.seek(0)
        return send_file(buffer, as_attachment=True, download_name=export.export_filename(),
                         mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    named = {f.key: (f.label, dict(f.choices or [])) for f in SYNC_TABLE.filters}
    named["status"] = (_("同步状态"), dict(SYNC_TABLE.tabs.choices))
    shown = _("，").join(_("%(filter)s：%(value)s", filter=named[k][0], value=named[k][1].get(v, v))
                         for k, v in parse_qsl(filters) if k in named)
    subject = (_("数据同步日志：所选 %(n)s 条", n=len(ids)) if ids
               else _("数据同步日志：全部符合条件的（%(filters)s）", filters=shown or _("无筛选")))
    try:
        job = tracked.start("sync.export", current_user, sync_jobs.export_tasks, filters, ids,
                            subject=subject, back_url=_back_url(), job_timeout=3600)
    except tracked.QueueUnavailable as exc:
        notify(str(exc), "error")
        return redirect(_back_url())
    notify(_("导出数据超过 %(n)s 条，已转为后台任务，完成后可下载文件", n=limit))
    return redirect(url_for("main.job_status", job_id=job.id))


# --- creating tasks ----------------------------------------------------------------------
CREATABLE_SYNC_TYPES = [t for t in SyncType if t is not SyncType.MANUAL_IMPORT]


@bp.route("/new", methods=["GET", "POST"])
@permission_required("F18012.create", back_to="sync_logs.index")
def create():
    orgs = _orgs_with("F18012.create")
    errors, form = [], request.form
    if request.method == "POST":
        org_ids = [i for i in map(parse_id, form.getlist("org")) if i is not None]
        types = [t for t in DownloadType if t.value in form.getlist("download_type")]
        try:
            sync_type = SyncType(form.get("sync_type", ""))
            if sync_type is SyncType.MANUAL_IMPORT:
                raise ValueError
        except ValueError:
            sync_type = None
            errors.append(_("请选择同步类型"))
        try:
            start, end = date.fromisoformat(form.get("start", "")), date.fromisoformat(form.get("end", ""))
        except ValueError:
            start = end = None
            errors.append(_("请填写正确的下载开始时间和下载结束时间（按开票日期）"))
        if not org_ids:
            errors.append(_("请选择核算组织"))
        if not types:
            errors.append(_("请选择下载类型"))
        if start and end:
            if start > end:
                errors.append(_("下载开始时间不能晚于下载结束时间"))
            elif (end - start).days > 366:
                errors.append(_("下载时间范围不能超过一年"))
            elif end > clock.now().date() + timedelta(days=1):
                errors.append(_("下载结束时间不能晚于今天"))
        if not errors:
            results = service.create_tasks(org_ids, sync_type, types, start, end)
            return _report("sync.create", _("新增下载任务"), results)
    today = clock.now().date()
    return render_template("sync_logs/create.html", orgs=orgs, errors=errors, form=form,
                           sync_types=CREATABLE_SYNC_TYPES, download_types=list(DownloadType),
                           default_start=today.replace(day=1), default_end=today)


@bp.route("/import", methods=["GET", "POST"])
@permission_required("F18012.create", back_to="sync_logs.index")
def manual_import():
    """手工导入: the file is checked cheaply and stored here; a job parses, checks and pools it."""
    from jobs import imports, tracked
    from portal.excel import uploads
    orgs = _orgs_with("F18012.create")
    errors = []
    if request.method == "POST":
        org_id = parse_id(request.form.get("org"))
        org = next((o for o in orgs if o.id == org_id), None)
        try:
            dtype = DownloadType(request.form.get("download_type", ""))
        except ValueError:
            dtype = None
        upload = request.files.get("file")
        if org is None:
            errors.append(_("请选择有权限的核算组织"))
        if dtype not in importing.IMPORTABLE_TYPES:
            errors.append(_("请选择下载类型（进项-全量或销项-全量）"))
        if not upload or not upload.filename:
            errors.append(_("请选择要导入的税局导出文件（.xlsx）"))
        if not errors:
            data = upload.read()  # bounded by MAX_CONTENT_LENGTH
            errors = [e for e in [importing.check_upload(data)] if e]
        if not errors:
            batch_no = service.new_batch_no()
            stored = uploads.store(data, upload.filename, current_user)
            try:
                job = tracked.start("sync.import", current_user, imports.manual_import, stored.id, org.id,
                                    dtype.value, batch_no, subject=_("%(file)s（%(org)s，%(type)s）",
                                    file=upload.filename, org=org.name, type=dtype.label),
                                    back_url=url_for("sync_logs.index", batch_no=batch_no), job_timeout=3600)
            except tracked.QueueUnavailable as exc:
                uploads.discard(stored.id)
                errors.append(str(exc))
            else:
                notify(_("已提交导入：%(file)s，正在后台检查文件并入池", file=upload.filename))
                return redirect(url_for("main.job_status", job_id=job.id))
    return render_template("sync_logs/import.html", orgs=orgs, errors=errors, types=importing.IMPORTABLE_TYPES,
                           columns=importing.COLUMNS, max_rows=current_app.config["IMPORT_MAX_ROWS"])


@bp.route("/import/template")
@permission_required("F18012.create")
def import_template():
    return send_file(importing.template(), as_attachment=True, download_name="税局发票导出模板.xlsx",
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
