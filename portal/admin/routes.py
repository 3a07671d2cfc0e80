"""Admin pages: organisations, users and grants, system parameters, audit trail."""
from flask import abort, g, redirect, render_template, request, url_for
from portal.i18n import gettext as _
from sqlalchemy import select

from portal.admin import bp, service
from portal.admin.forms import OrganizationForm, UserForm
from portal.auth import sessions
from portal.auth.decorators import admin_required
from portal.auth.permissions import MODULES
from portal.extensions import db
from portal.models import AuditLog, Grant, Organization, Role, SchedulePlan, SystemParameter, User, UserSession
from portal.models.system import PARAMETERS
from portal.models.audit import AUDIT_COUNTS
from portal.tables import Column, Filter, Table
from portal.ui import notify
from portal.urls import parse_id
from portal.views import render_list

ORG_TABLE = Table(
    "org-table", Organization.id,
    columns=[
        Column("code", "组织编码", sort=Organization.code,
               href=lambda o: url_for("admin.org_edit", org_id=o.id)),
        Column("name", "组织名称", sort=Organization.name),
        Column("tax_id", "纳税人识别号"),
        Column("taxpayer_type", "纳税人类型", value=lambda o: o.taxpayer_type_label),
        Column("channel", "通道", value=lambda o: o.channel_label),
        Column("invoice_service", "已引入发票服务"),
        Column("active", "启用"),
    ],
    filters=[
        Filter("code", "组织编码", Organization.code, "prefix"),
        Filter("tax_id", "纳税人识别号", Organization.tax_id, "prefix"),
    ],
    default_sort="code", default_dir="asc", selectable=False,
)

USER_TABLE = Table(
    "user-table", User.id,
    columns=[
        Column("username", "用户名", sort=User.username,
               href=lambda u: url_for("admin.user_edit", user_id=u.id)),
        Column("name", "姓名"),
        Column("role", "角色", value=lambda u: u.role_label),
        Column("active", "启用"),
        Column("grants", "授权", value=lambda u: _("设置授权"),
               href=lambda u: url_for("admin.user_grants", user_id=u.id)),
    ],
    filters=[
        Filter("username", "用户名", User.username, "prefix"),
        Filter("role", "角色", User.role, "select", [(r.value, r.label) for r in Role]),
    ],
    default_sort="username", default_dir="asc", selectable=False,
)

AUDIT_TABLE = Table(
    "audit-table", AuditLog.id,
    columns=[
        Column("at", "时间", sort=AuditLog.at),
        Column("actor", "操作人"),
        Column("object_type", "对象类型"),
        Column("object_id", "对象"),
        Column("action", "动作"),
        Column("from_state", "原状态"),
        Column("to_state", "新状态"),
        Column("reason", "原因/说明"),
    ],
    filters=[
        Filter("actor", "操作人", AuditLog.actor),
        Filter("object_type", "对象类型", AuditLog.object_type),
        Filter("object_id", "对象", AuditLog.object_id),
        Filter("action", "动作", AuditLog.action),
        Filter("org", "核算组织ID", AuditLog.org_id, "int"),
        Filter("from", "开始日期", AuditLog.at, "date_from"),
        Filter("to", "结束日期", AuditLog.at, "date_to"),
    ],
    default_sort="at", selectable=False, counted=AUDIT_COUNTS,
)


@bp.route("/")
@admin_required
def index():
    return redirect(url_for("admin.orgs"))


# --- organisations ------------------------------------------------------------
@bp.route("/orgs")
@admin_required
def orgs():
    page = ORG_TABLE.page(db.session, select(Organization))
    return render_list("admin/orgs.html", page)


@bp.route("/orgs/new", methods=["GET", "POST"])
@bp.route("/orgs/<int:org_id>", methods=["GET", "POST"])
@admin_required
def org_edit(org_id=None):
    org = db.session.get(Organization, org_id) if org_id else None
    if org_id and org is None:
        abort(404)
    form = OrganizationForm(obj=org)
    if form.validate_on_submit():
        clash = db.session.scalar(select(Organization).where(Organization.code == form.code.data))
        if clash is not None and clash is not org:
            form.code.errors.append(_("组织编码已存在"))
        else:
            org = service.save_organization(org, form.data)
            notify(_("已保存核算组织 %(name)s", name=org.name))
            return redirect(url_for("admin.orgs"))
    return render_template("admin/org_form.html", form=form, org=org)


# --- users and grants -----------------------------------------------------------
@bp.route("/users")
@admin_required
def users():
    page = USER_TABLE.page(db.session, select(User))
    return render_list("admin/users.html", page)


@bp.route("/users/new", methods=["GET", "POST"])
@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@admin_required
def user_edit(user_id=None):
    user = db.session.get(User, user_id) if user_id else None
    if user_id and user is None:
        abort(404)
    form = UserForm(obj=user)
    if form.validate_on_submit():
        clash = db.session.scalar(select(User).where(User.username == form.username.data))
        if clash is not None and clash is not user:
            form.username.errors.append(_("用户名已存在"))
        elif user is None and not form.password.data:
            form.password.errors.append(_("新建用户必须设置密码"))
        else:
            user = service.save_user(user, form.data)
            notify(_("已保存用户 %(name)s", name=user.username))
            return redirect(url_for("admin.users"))
    return render_template("admin/user_form.html", form=form, user=user)


@bp.route("/users/<int:user_id>/grants", methods=["GET", "POST"])
@admin_required
def user_grants(user_id):
    """The grant matrix: organisations × module buttons."""
    user = db.session.get(User, user_id) or abort(404)
    orgs = db.session.scalars(select(Organization).order_by(Organization.code)).all()
    if request.method == "POST":
        wanted = set()
        for value in request.form.getlist("grant"):
            org_id, _sep, perm = value.partition("|")
            if parse_id(org_id) in {o.id for o in orgs}:  # only organisations that exist
                wanted.add((parse_id(org_id), perm))
        added, removed = service.set_grants(user, wanted)
        notify(_("已保存授权：新增 %(added)s 项，移除 %(removed)s 项", added=added, removed=removed))
        return redirect(url_for("admin.user_grants", user_id=user.id))
    held = set(db.session.execute(
        select(Grant.org_id, Grant.permission).where(Grant.user_id == user.id)).all())
    return render_template("admin/grants.html", user=user, orgs=orgs, modules=MODULES, held=held)


# --- a user's sessions (登录会话) ---------------------------------------------------
@bp.route("/users/<int:user_id>/sessions")
@admin_required
def user_sessions(user_id):
    """Every session of the user, live first: when, where from, which browser, last seen."""
    user = db.session.get(User, user_id) or abort(404)
    rows = db.session.scalars(select(UserSession).where(UserSession.user_id == user.id).order_by(
        UserSession.revoked_at.is_not(None), UserSession.last_seen_at.desc()).limit(200)).all()
    return render_template("admin/user_sessions.html", user=user, rows=rows,
                           current=g.get("user_session_id"))


@bp.route("/users/<int:user_id>/sessions/<session_id>/end", methods=["POST"])
@admin_required
def user_session_end(user_id, session_id):
    """结束会话: that browser is logged out at its next request."""
    row = db.session.get(UserSession, session_id)
    if row is None or row.user_id != user_id:
        abort(404)
    if sessions.end(row, _("管理员结束会话")):
        db.session.commit()
        notify(_("已结束会话"))
    else:
        notify(_("该会话已结束"), "warning")
    return redirect(url_for("admin.user_sessions", user_id=user_id))


@bp.route("/users/<int:user_id>/sessions/end-all", methods=["POST"])
@admin_required
def user_sessions_end_all(user_id):
    user = db.session.get(User, user_id) or abort(404)
    n = sessions.end_all(user, _("管理员结束全部会话"))
    db.session.commit()
    notify(_("已结束 %(n)s 个会话", n=n), "success" if n else "warning")
    return redirect(url_for("admin.user_sessions", user_id=user.id))


# --- system parameters -------------------------------------------------------------
@bp.route("/params", methods=["GET", "POST"])
@admin_required
def params():
    if request.method == "POST":
        for key in PARAMETERS:
            value = "1" if request.form.get(key) == "1" else "0"
            if value != SystemParameter.get(key):
                service.set_parameter(key, value)
        notify(_("系统参数已保存"))
        return redirect(url_for("admin.params"))
    values = {k: SystemParameter.get(k) for k in PARAMETERS}
    return render_template("admin/params.html", parameters=PARAMETERS, values=values)


# --- audit trail -------------------------------------------------------------------
@bp.route("/audit")
@admin_required
def audit_log():
    page = AUDIT_TABLE.page(db.session, select(AuditLog), orgs=None)  # admins see every organisation
    return render_list("admin/audit.html", page)


# --- schedule plans (调度计划) ------------------------------------------------------------
PLAN_TABLE = Table(
    "plan-table", SchedulePlan.id,
    columns=[
        Column("code", "调度计划编码", sort=SchedulePlan.code,
               href=lambda p: url_for("admin.plan_edit", plan_id=p.id)),
        Column("description", "描述"),
        Column("schedule", "执行周期", value=lambda p: p.cron or _("每 %(n)s 秒", n=p.interval_seconds)),
        Column("enabled", "启用"),
        Column("last_run_at", "上次执行"),
        Column("next_run_at", "下次执行"),
        Column("last_result", "上次结果", css="wrap"),
    ],
    default_sort="code", default_dir="asc", selectable=False,
)


@bp.route("/plans")
@admin_required
def plans():
    page = PLAN_TABLE.page(db.session, select(SchedulePlan))
    return render_list("admin/plans.html", page)


@bp.route("/plans/<int:plan_id>", methods=["GET", "POST"])
@admin_required
def plan_edit(plan_id):
    """修改 a plan; the dispatcher picks the change up on its next tick."""
    plan = db.session.get(SchedulePlan, plan_id) or abort(404)
    errors = []
    if request.method == "POST":
        errors = service.save_plan(plan, request.form)
        if not errors:
            notify(_("已保存调度计划 %(code)s，下次执行时间将按新的周期计算", code=plan.code))
            return redirect(url_for("admin.plans"))
    return render_template("admin/plan_form.html", plan=plan, errors=errors, form=request.form)
