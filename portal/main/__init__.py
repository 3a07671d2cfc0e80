"""Home page, language switch, job progress."""
from flask import Blueprint, redirect, render_template, request, session, url_for, abort, send_file
from flask_login import login_required, current_user

from portal.extensions import db
from portal.models import JobRun

bp = Blueprint("main", __name__)


@bp.route("/")
@login_required
def index():
    return render_template("home.html")


@bp.route("/lang/<code>", methods=["POST"])
def set_language(code):
    if code in ("zh", "en"):
        session["lang"] = code
    target = request.form.get("next") or url_for("main.index")
    return redirect(target if target.startswith("/") and not target.startswith("//") else "/")


def _own_job(job_id: int) -> JobRun:
    job = db.session.get(JobRun, job_id)
    if job is None or (job.user_id != current_user.id and not current_user.is_admin):
        abort(404)
    return job


@bp.route("/jobs/<int:job_id>")
@login_required
def job_status(job_id):
    """Self-replacing progress block: htmx polls it until the job finishes."""
    job = _own_job(job_id)
    template = "_partials/job_status.html" if request.htmx else "job.html"
    return render_template(template, job=job)


@bp.route("/jobs/<int:job_id>/file")
@login_required
def job_file(job_id):
    job = _own_job(job_id)
    if job.status != "done" or not job.result_file:
        abort(404)
    return send_file(job.result_file, as_attachment=True,
                     download_name=job.result_file.rsplit("/", 1)[-1])
