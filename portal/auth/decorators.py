from functools import wraps

from flask import abort
from flask_babel import gettext
from flask_login import current_user, login_required

from portal.auth import permissions


def admin_required(view):
    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            abort(403, gettext("仅管理员可以访问此页面"))
        return view(*args, **kwargs)
    return wrapper


def permission_required(permission: str):
    """Page-level gate: the user must hold `permission` on at least one organisation.
    Row-level checks still happen in each action."""
    def decorate(view):
        @wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            if not permissions.has_any(permission):
                abort(403, permissions.no_permission_message(permission))
            return view(*args, **kwargs)
        return wrapper
    return decorate
