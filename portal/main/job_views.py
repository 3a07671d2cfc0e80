"""我的后台任务: the job list, one job's page (self-replacing progress block), its
result file and 重试. Everything is scoped by jobs.tracked.visible_jobs: a job of
someone else answers 404, never 403, so ids reveal nothing."""
from __future__ import annotations

import os
from urllib.parse import quote

from flask import Response, abort, current_app, redirect, render_template, request, url_for
from portal.i18n import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from jobs import tracked
from portal.extensions import db
from portal.main import bp
from portal.models import User
from portal.models.job import JOB_STATUS_LABELS, JobRun, JobRunItem
from portal.tables import Column, Filter, Table
from portal.ui import notify
from portal.views import render_list


def _progress(j: JobRun) -> str:
    return f"{j.done} / {j.total or '?'}（{j.percent}%）"


def _counts(j: JobRun) -> str:
    c = getattr(j, "counts", None) or j.outcome_counts()
    return _("完成 %(d)s · 跳过 %(s)s · 失败 %(f)s", d=c["done"], s=c["skipped"], f=c["failed"])


def _columns(with_user: bool) -> list[Column]:
    cols = [
        Column("id", "编号", sort=JobRun.id, href=lambda j: url_for("main.job_status", job_id=j.id)),
        Column("kind", "任务类型", value=lambda j: j.kind_label),
        Column("subject", "操作对象", css="wrap"),
        Column("created_at", "提交时间", sort=JobRun.created_at),
        Column("started_at", "开始时间"),
        Column("finished_at", "结束时间"),
        Column("progress", "进度", value=_progress),
        Column("counts", "处理结果", value=_counts),
        Column("file", "结果文件", value=lambda j: _("下载文件") if j.file and not j.file.expired else "",
               href=lambda j: url_for("main.job_file", job_id=j.id)),
        Column("status", "状态", value=lambda j: j.status_label),
        Column("back", "来源列表", value=lambda j: _("返回列表") if j.back_url else "",
               href=lambda j: j.back_url or "#"),
    ]
    if with_user:
        cols.insert(3, Column("user", "用户", value=lambda j: j.user.name if j.user else ""))
    return cols


_FILTERS = [
    Filter("status", "状态", JobRun.status, "select", list(JOB_STATUS_LABELS.items())),
    Filter("kind", "任务类型", JobRun.kind, "select",
           options=lambda: list(tracked.KIND_LABELS.items())),
]
JOBS_TABLE = Table("jobs-table", JobRun.id, _columns(False), _FILTERS, default_sort="id", selectable=False)
ALL_JOBS_TABLE = Table("jobs-table", JobRun.id, _columns(True), _FILTERS + [
    Filter("user", "用户", JobRun.user_id, "int",
           options=lambda: [(str(u.id), u.name) for u in db.session.scalars(select(User).order_by(User.username))]),
], default_sort="id", selectable=False)


MIMETYPES = {".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".csv": "text/csv"}


def _own_job(job_id: int) -> JobRun:
    return db.session.scalar(tracked.visible_jobs(current_user).where(JobRun.id == job_id)) or abort(404)


@bp.route("/jobs/")
@login_required
def job_list():
    """我的后台任务: every job of the user (admins: everyone's, filterable by user)."""
    table = ALL_JOBS_TABLE if current_user.is_admin else JOBS_TABLE
    page = table.page(db.session, tracked.visible_jobs(current_user))
    counts = tracked.item_counts([j.id for j in page.rows])
    for j in page.rows:
        j.counts = counts[j.id]
    return render_list("jobs/list.html", page)


@bp.route("/jobs/<int:job_id>")
@login_required
def job_status(job_id):
    """后台任务 #N; htmx polls the self-replacing status block until the job finishes."""
    job = _own_job(job_id)
    limit = current_app.config["JOB_ITEMS_SHOWN"]
    items = db.session.scalars(select(JobRunItem).where(JobRunItem.job_id == job.id)
                               .order_by(JobRunItem.id).limit(limit)).all()
    template = "_partials/job_status.html" if request.htmx else "job.html"
    return render_template(template, job=job, items=items, counts=job.outcome_counts(), limit=limit)


@bp.route("/jobs/<int:job_id>/file")
@login_required
def job_file(job_id):
    """The result file, streamed slice by slice from the database; owner (or admin) only."""
    job = _own_job(job_id)
    if job.status != "done" or job.file is None:
        abort(404)
    if job.file.expired:
        hours = current_app.config["JOB_FILE_TTL_HOURS"]
        return render_template("error.html", code=410, message=_(
            "结果文件已过期（保留 %(h)s 小时），请重新执行该操作", h=hours)), 410
    f = job.file
    ext = os.path.splitext(f.filename)[1]
    headers = {"Content-Disposition": f"attachment; filename=\"job-{job.id}{ext}\"; "
                                      f"filename*=UTF-8''{quote(f.filename)}",
               "Content-Length": str(f.size)}
    return Response(tracked.file_chunks(f.id), headers=headers,
                    mimetype=MIMETYPES.get(ext, "application/octet-stream"))


@bp.route("/jobs/<int:job_id>/retry", methods=["POST"])
@login_required
def job_retry(job_id):
    """重试 a failed job: a new job with the same arguments."""
    job = _own_job(job_id)
    try:
        new = tracked.retry(job)
    except (ValueError, tracked.QueueUnavailable) as exc:
        notify(str(exc), "error")
        return redirect(url_for("main.job_status", job_id=job.id))
    notify(_("已重新提交：后台任务 #%(id)s", id=new.id))
    return redirect(url_for("main.job_status", job_id=new.id))
