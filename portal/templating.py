"""Jinja filters and globals shared by every template."""
from __future__ import annotations

from flask import request, url_for
from markupsafe import Markup
from werkzeug.routing import BuildError
from flask_wtf.csrf import generate_csrf

from portal.auth import permissions
from portal.fmt import duration, fmt


def nav_url(endpoint: str) -> str | None:
    """URL of an endpoint, or None while that module is not installed."""
    try:
        return url_for(endpoint)
    except BuildError:
        return None


def nav_link(endpoint: str, label: str, code: str = "") -> Markup:
    url = nav_url(endpoint)
    code_html = Markup(' <small class="code">{}</small>').format(code) if code else ""
    if url is None:
        return Markup('<span class="nav-item disabled">{}{}</span>').format(label, code_html)
    active = " active" if request.path.startswith(url) and url != "/" else ""
    return Markup('<a class="nav-item{}" href="{}">{}{}</a>').format(active, url, label, code_html)


def init_app(app):
    from portal import i18n
    i18n.install(app)
    app.jinja_env.filters["fmt"] = fmt
    app.jinja_env.filters["duration"] = duration
    app.jinja_env.globals.update(
        csrf_token=generate_csrf,
        can_see=permissions.button_visible,
        has_any=permissions.has_any,
        LANGUAGES=app.config["LANGUAGES"],
        nav_url=nav_url,
        nav_link=nav_link,
    )
