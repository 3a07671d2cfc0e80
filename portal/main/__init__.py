"""Home page, language switch; 我的后台任务 routes live in portal/main/jobs.py."""
from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_login import login_required

from portal.urls import safe_next

bp = Blueprint("main", __name__)


@bp.route("/")
@login_required
def index():
    return render_template("home.html")


@bp.route("/lang/<code>", methods=["POST"])
def set_language(code):
    if code in ("zh", "en"):
        session["lang"] = code
    return redirect(safe_next(request.form.get("next"), url_for("main.index")))


from portal.main import job_views  # noqa: E402,F401  (registers the job routes on bp)
