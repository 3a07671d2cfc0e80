"""Fapiao Portal: create_app() wires config, extensions, blueprints and CLI."""
from __future__ import annotations

from flask import Flask, has_request_context, request, session, render_template
from portal.i18n import gettext
from portal.i18n import lazy_gettext
from flask_wtf.csrf import CSRFError

from portal.config import default_config, ROOT
from portal.extensions import db, migrate, login_manager, csrf, babel, htmx


def _locale():
    if not has_request_context():  # jobs and the CLI write in the default language
        return "zh"
    lang = session.get("lang")
    return lang if lang in ("zh", "en") else "zh"


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__, template_folder="../templates", static_folder="../static",
                instance_path=default_config()["INSTANCE_DIR"])
    app.config.update(default_config())
    if config:
        app.config.update(config)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 30}}

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True,
                     compare_type=True)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy_gettext("请先登录")
    login_manager.login_message_category = "warning"
    login_manager.session_protection = "strong"
    csrf.init_app(app)
    babel.init_app(app, locale_selector=_locale)
    htmx.init_app(app)

    with app.app_context():
        from portal import sqlite_pragmas  # noqa: F401  (connect-time pragmas)
        from portal import models  # noqa: F401

    from portal.urls import IdConverter, refuse_nul
    app.url_map.converters["int"] = IdConverter  # before any route: ids beyond MAX_ID are 404
    app.before_request(lambda: refuse_nul(request))

    from portal.auth import bp as auth_bp
    from portal.main import bp as main_bp
    from portal.admin import bp as admin_bp
    app.register_blueprint(auth_bp)
    app.register_blueprint(main_bp)
    app.register_blueprint(admin_bp, url_prefix="/admin")
    from portal.sync_logs import bp as sync_logs_bp
    app.register_blueprint(sync_logs_bp, url_prefix="/sync-logs")
    from portal.tables_prefs import bp as table_prefs_bp; app.register_blueprint(table_prefs_bp)

    from portal import templating, cli, ui
    templating.init_app(app)
    cli.init_app(app)
    app.after_request(ui.attach_toasts)

    @app.route("/favicon.ico")
    def favicon():
        """Browsers ask for /favicon.ico on every page, whatever the <link rel="icon"> says."""
        return app.send_static_file("favicon.ico")

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                    "frame-ancestors 'none'")
        return response

    @app.errorhandler(CSRFError)
    def csrf_error(e):
        return render_template("error.html", code=400,
                               message=gettext("表单已过期或来源不可信（CSRF 校验失败），请刷新页面后重试")), 400

    @app.errorhandler(403)
    def forbidden(e):
        return render_template("error.html", code=403,
                               message=getattr(e, "description", None) or gettext("没有权限")), 403

    @app.errorhandler(404)
    def not_found(e):
        return render_template("error.html", code=404, message=gettext("页面不存在")), 404

    @app.errorhandler(413)
    def too_large(e):
        mb = app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
        return render_template("error.html", code=413,
                               message=gettext("上传文件过大，最大允许 %(mb)s MB", mb=mb)), 413

    return app
