"""Login and logout."""
from flask import g, redirect, render_template, request, url_for, session
from portal.i18n import gettext
from flask_login import login_user, logout_user, login_required
from sqlalchemy import select

from portal import audit, clock
from portal.auth import bp, sessions, throttle
from portal.auth.forms import LoginForm
from portal.extensions import db, login_manager
from portal.models import User, UserSession
from portal.ui import notify
from portal.urls import safe_next


@login_manager.user_loader
def load_user(token: str):
    """Session and remember cookies carry a server-side session's token: only a live,
    unrevoked session of an active user logs anyone in."""
    return sessions.user_for(token)


bp.after_app_request(sessions.touch)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Log in; after LOGIN_MAX_FAILURES failures the user is paused from that IP (throttle)."""
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        username = form.username.data.strip()
        ip = request.remote_addr or "-"
        attempt = throttle.attempt(username, ip)  # counted before the password is checked
        if not attempt.allowed:
            error = gettext("登录失败次数过多，请 %(wait)s 后再试", wait=throttle.wait_text(attempt.wait_seconds))
        else:
            user = db.session.scalar(select(User).where(User.username == username))
            if user and user.active and user.check_password(form.password.data):
                throttle.succeeded(username, ip)
                lang = session.get("lang")
                session.clear()  # no fixation: a fresh session on login (keeping the language)
                if lang:
                    session["lang"] = lang
                sessions.start(user)
                login_user(user, remember=form.remember.data)
                session.permanent = True
                user.last_login_at = clock.now()
                audit.record("user", user.id, "login", actor=user.username)
                db.session.commit()
                return redirect(safe_next(request.args.get("next"), url_for("main.index")))
            error = gettext("用户名或密码错误")
    return render_template("auth/login.html", form=form, error=error), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    row = db.session.get(UserSession, g.get("user_session_id", ""))
    if row is not None:
        sessions.end(row, "退出登录")
        db.session.commit()
    lang = session.get("lang")
    logout_user()
    session.clear()
    if lang:
        session["lang"] = lang
    notify(gettext("已退出登录"))
    return redirect(url_for("auth.login"))
