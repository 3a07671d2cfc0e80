"""Admin changes to users, organisations, grants and parameters — each audited."""
from __future__ import annotations

from portal.i18n import gettext as _
from sqlalchemy import select, delete

from portal import audit
from portal.auth.permissions import ALL_PERMISSIONS
from portal.extensions import db
from portal.models import Grant, Organization, SystemParameter, User

ORG_FIELDS = ("code", "name", "tax_id", "tax_id_override", "taxpayer_type", "channel",
              "channel_base_url", "channel_app_key", "channel_connect_timeout",
              "channel_read_timeout", "invoice_service", "active")


def save_organization(org: Organization | None, data: dict) -> Organization:
    creating = org is None
    org = org or Organization()
    changed = [f for f in ORG_FIELDS if getattr(org, f, None) != data[f]]
    for f in ORG_FIELDS:
        setattr(org, f, data[f])
    if data.get("channel_app_secret"):
        org.channel_app_secret = data["channel_app_secret"]
        changed.append("channel_app_secret")
    db.session.add(org)
    db.session.flush()
    audit.record("organization", org.id, "create" if creating else "update", org_id=org.id,
                 reason="字段：" + "、".join(changed) if changed else "")
    db.session.commit()
    return org


def save_user(user: User | None, data: dict) -> User:
    creating = user is None
    user = user or User()
    before_role = user.role
    for f in ("username", "name", "role", "active"):
        setattr(user, f, data[f])
    if data.get("password"):
        user.set_password(data["password"])
    db.session.add(user)
    db.session.flush()
    audit.record("user", user.id, "create" if creating else "update",
                 from_state=before_role or "", to_state=user.role,
                 reason="重置密码" if data.get("password") and not creating else "")
    db.session.commit()
    return user


def set_grants(user: User, wanted: set[tuple[int, str]]) -> tuple[int, int]:
    """Replace the user's grants with `wanted` (org_id, permission); returns (added, removed)."""
    wanted = {(o, p) for o, p in wanted if p in ALL_PERMISSIONS}
    current = set(db.session.execute(
        select(Grant.org_id, Grant.permission).where(Grant.user_id == user.id)).all())
    added, removed = wanted - current, current - wanted
    for org_id, perm in added:
        db.session.add(Grant(user_id=user.id, org_id=org_id, permission=perm))
    for org_id, perm in removed:
        db.session.execute(delete(Grant).where(Grant.user_id == user.id, Grant.org_id == org_id,
                                               Grant.permission == perm))
    if added or removed:
        audit.record("user", user.id, "grants",
                     reason=f"新增 {len(added)} 项：{sorted(added)[:20]}；移除 {len(removed)} 项：{sorted(removed)[:20]}")
    db.session.commit()
    return len(added), len(removed)


def set_parameter(key: str, value: str) -> None:
    row = db.session.get(SystemParameter, key)
    before = row.value if row else SystemParameter.get(key)
    if row is None:
        row = SystemParameter(key=key, value=value)
        db.session.add(row)
    row.value = value
    audit.record("system_parameter", key, "update", from_state=before, to_state=value)
    db.session.commit()


def save_plan(plan, form) -> list[str]:
    """Validate and save a schedule plan; its next run is recomputed by the dispatcher."""
    from croniter import croniter

    cron = (form.get("cron") or "").strip()
    interval = (form.get("interval_seconds") or "").strip()
    errors = []
    if cron and interval:
        errors.append(_("Cron 表达式与固定间隔只能填写一项"))
    elif cron and not croniter.is_valid(cron):
        errors.append(_("Cron 表达式“%(cron)s”不正确，例如：0 * * * *（每小时整点）", cron=cron))
    elif interval and (not interval.isdigit() or not 60 <= int(interval) <= 31 * 86400):
        errors.append(_("固定间隔应为 60 至 2678400 之间的秒数"))
    elif not cron and not interval:
        errors.append(_("请填写 Cron 表达式或固定间隔"))
    description = (form.get("description") or "").strip()
    if not description:
        errors.append(_("请填写描述"))
    if errors:
        return errors
    before = f"{plan.cron or plan.interval_seconds} {'启用' if plan.enabled else '停用'}"
    plan.description = description[:200]
    plan.cron, plan.interval_seconds = cron, int(interval) if interval else None
    plan.enabled = form.get("enabled") == "1"
    plan.next_run_at = None  # recomputed from now by the next dispatcher tick
    from portal import clock
    plan.updated_at = clock.now()
    after = f"{plan.cron or plan.interval_seconds} {'启用' if plan.enabled else '停用'}"
    audit.record("schedule_plan", plan.code, "update", from_state=before[:40], to_state=after[:40])
    db.session.commit()
    return []
