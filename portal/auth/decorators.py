from functools import wraps

from flask import abort, redirect, url_for
from portal.i18n import gettext
from flask_login import current_user, login_required

from portal.auth import permissions
from portal.ui import notify


def admin_required(view):
    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            abort(403, gettext("仅管理员可以访问此页面"))
        return view(*args, **kwargs)
    return wrapper


def permission_required(permission: str, back_to: str | None = None):
    """Page-level gate: the user must hold `permission` on at least one organisation.
    Row-level checks still happen in each action. With `back_to` (an endpoint) a user
    without it is sent there with the same message the list's buttons give, instead of
    an error page (隐藏无权按钮 off shows the button that leads here)."""
    def decorate(view):
        @wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if not permissions.has_any(permission):
                if back_to:
                    notify(permissions.no_permission_message(permission), "error")
                    return redirect(url_for(back_to))
                abort(403, permissions.no_permission_message(permission))
            return view(*args, **kwargs)
        return wrapper
    return decorate
