"""Scoped queries of F18012: the rows a principal may see or act on, in one place.

Every caller names its principal (a user today, an API client later); views pass
`current_user`, jobs the user who started them.
"""
from __future__ import annotations

from flask import g
from sqlalchemy import Select, bindparam, select

from portal.auth import permissions
from portal.extensions import db
from portal.models import Organization, SyncTask


def tasks(user, permission: str = "F18012.query") -> Select:
    """Tasks of the organisations where `user` holds `permission`."""
    ids = permissions.org_ids_with(permission, user)
    stmt = select(SyncTask)
    return stmt if ids is None else stmt.where(SyncTask.org_id.in_(ids or [-1]))


def org_ids(user, permission: str = "F18012.query") -> set[int] | None:
    """The organisation ids `tasks` is limited to (None: every organisation)."""
    return permissions.org_ids_with(permission, user)


_ACTIVE_ORGS = select(Organization).where(Organization.active.is_(True)).order_by(Organization.code)
_ACTIVE_ORGS_IN = _ACTIVE_ORGS.where(Organization.id.in_(bindparam("ids", expanding=True)))


def orgs(user, permission: str) -> list[Organization]:
    """Active organisations where `user` holds `permission`, by code (read once per request:
    the filter form and the login banner both ask)."""
    cache = g.setdefault("_scope_orgs", {}) if g else {}
    key = (user.id, permission)
    if key not in cache:
        ids = permissions.org_ids_with(permission, user)
        cache[key] = list(db.session.scalars(_ACTIVE_ORGS) if ids is None else
                          db.session.scalars(_ACTIVE_ORGS_IN, {"ids": sorted(ids) or [-1]}))
    return cache[key]


def logged_out_orgs(user) -> list[Organization]:
    """Organisations the user may query whose bureau login has expired (the list's banner)."""
    return [o for o in orgs(user, "F18012.query") if o.channel_login_expired_at]
