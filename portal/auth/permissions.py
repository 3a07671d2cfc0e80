"""Function permissions per module and button, checked per organisation on the server.

The system parameter 隐藏无权按钮 only decides whether an unauthorised button is hidden
or shown-and-refused; every action still checks each row's organisation here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from flask import g
from portal.i18n import gettext
from portal.i18n import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import bindparam, select

from portal.extensions import db
from portal.models import Grant, Organization, SystemParameter

MODULES = {
    "F18012": (_l("数据同步日志查询"), [
        ("query", _l("查询")),
        ("create", _l("新增下载任务")),
        ("fetch_result", _l("获取异步结果")),
        ("retry", _l("手工重试")),
        ("void", _l("作废任务")),
        ("export", _l("导出")),
    ]),
    "F17008": (_l("开票过程监控"), [
        ("query", _l("查询")),
        ("import", _l("导入")),
        ("issue", _l("开票")),
        ("return", _l("退回")),
        ("delete", _l("删除")),
        ("edit", _l("编辑")),
        ("export", _l("引出")),
        ("trace", _l("上查")),
        ("approval_flow", _l("查看审批流程图")),
    ]),
}

ALL_PERMISSIONS = [f"{m}.{code}" for m, (_, buttons) in MODULES.items() for code, _ in buttons]


def label(permission: str) -> str:
    module, code = permission.split(".")
    return dict(MODULES[module][1])[code]


_USER_GRANTS = select(Grant.permission, Grant.org_id).where(Grant.user_id == bindparam("uid"))


def _grants() -> dict[str, set[int]]:
    """permission → org ids for the current user, loaded once per request."""
    if "_grants" not in g:
        rows = db.session.execute(_USER_GRANTS, {"uid": current_user.id}).all()
        grants: dict[str, set[int]] = {}
        for perm, org_id in rows:
            grants.setdefault(perm, set()).add(org_id)
        g._grants = grants
    return g._grants


def org_ids_with(permission: str, user=None) -> set[int] | None:
    """Organisations where the user holds `permission`; None means every organisation."""
    user = user or current_user
    if user.is_admin:
        return None
    if user is current_user:
        return set(_grants().get(permission, ()))
    rows = db.session.scalars(
        select(Grant.org_id).where(Grant.user_id == user.id, Grant.permission == permission))
    return set(rows)


def can(permission: str, org_id: int | None, user=None) -> bool:
    ids = org_ids_with(permission, user)
    return ids is None or org_id in ids


def has_any(permission: str, user=None) -> bool:
    ids = org_ids_with(permission, user)
    return ids is None or bool(ids)


def button_visible(permission: str) -> bool:
    """Hide only when 隐藏无权按钮 is on and the user holds the permission nowhere."""
    if has_any(permission):
        return True
    if "_hide_unauthorized" not in g:  # asked once per request, not once per button
        g._hide_unauthorized = SystemParameter.flag("hide_unauthorized_buttons")
    return not g._hide_unauthorized


def no_permission_message(permission: str) -> str:
    return gettext("您没有「%(label)s」的权限，请联系管理员授权", label=label(permission))


@dataclass
class Refusal:
    row: object
    reason: str


def partition(permission: str, rows: Iterable, org_of=lambda r: r.org_id, user=None):
    """Split rows into (allowed, refused) by the user's grant on each row's organisation.

    A reason names the organisation only when the user may query it: a refusal never
    tells anyone what they may not see."""
    ids = org_ids_with(permission, user)
    visible = org_ids_with(permission.split(".")[0] + ".query", user)
    allowed, refused = [], []
    names = {}
    for row in rows:
        org_id = org_of(row)
        if ids is None or org_id in ids:
            allowed.append(row)
        elif visible is not None and org_id not in visible:
            refused.append(Refusal(row, f"无「{label(permission)}」权限（核算组织不存在或无权限）"))
        else:
            if org_id not in names:
                org = db.session.get(Organization, org_id)
                names[org_id] = org.name if org else str(org_id)
            refused.append(Refusal(row, gettext("无「%(label)s」权限（核算组织：%(org)s）", label=label(permission),
                                                 org=names[org_id])))
    return allowed, refused
