"""调度计划: plans stored in the database, dispatched every minute by `flask dispatch`.

Admins edit plans on the 调度计划 page; the dispatcher reads them from the database on
every tick, so an edit takes effect without restarting anything. Claiming a due plan
is a compare-and-set on its next_run_at, so two dispatchers never enqueue it twice.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from croniter import croniter
from flask import current_app
from portal.i18n import lazy_gettext as _l
from sqlalchemy import select, update

from jobs import app_job, enqueue
from portal import audit, clock
from portal.extensions import db
from portal.fmt import local_time
from portal.models import SchedulePlan


def _today_download():
    from portal.sync_logs.plans import scheduled_download
    from portal.models.sync import SyncType
    return scheduled_download(SyncType.TODAY)


def _month_download():
    from portal.sync_logs.plans import scheduled_download
    from portal.models.sync import SyncType
    return scheduled_download(SyncType.CURRENT_MONTH)


def _sweep():
    from portal import outbox
    from portal.sync_logs import channel_work
    tasks, messages = channel_work.sweep(), outbox.sweep()
    return f"已排队 {tasks} 个下载任务、{messages} 条待发送消息"


def _reap_jobs():
    from jobs import tracked
    return f"已处理 {tracked.reap()} 个中断的后台任务"


def _maintenance():
    from portal import maintenance
    return maintenance.run()


# plan.job → (label, function returning a short result text)
PLAN_JOBS = {
    "sync.today": (_l("当天进销项下载（每个已引入发票服务的组织）"), _today_download),
    "sync.current_month": (_l("当前月进销项下载（每个已引入发票服务的组织）"), _month_download),
    "sync.watchdog": (_l("下载任务巡检：申请、查询、通道作废"), _sweep),
    "jobs.reap": (_l("后台任务中断检测与过期文件清理"), _reap_jobs),
    "db.maintenance": (_l("数据库维护：合并列表计数、更新查询统计信息"), _maintenance),
}


def next_run(plan: SchedulePlan, after: datetime) -> datetime | None:
    """Next run (UTC, naive) after `after`; cron is read in the display time zone."""
    if plan.interval_seconds:
        return after + timedelta(seconds=plan.interval_seconds)
    if plan.cron:
        tz = ZoneInfo(current_app.config["DISPLAY_TZ"])
        local = after.replace(tzinfo=timezone.utc).astimezone(tz)
        nxt = croniter(plan.cron, local).get_next(datetime)
        return nxt.astimezone(timezone.utc).replace(tzinfo=None)
    return None


def dispatch_due() -> list[str]:
    """Enqueue every enabled plan that is due; returns the codes it enqueued."""
    now = clock.now()
    enqueued = []
    for plan in db.session.scalars(select(SchedulePlan).where(SchedulePlan.enabled.is_(True))).all():
        if plan.next_run_at is None:  # new or just edited: schedule, do not run now
            db.session.execute(update(SchedulePlan).where(
                SchedulePlan.id == plan.id, SchedulePlan.next_run_at.is_(None)).values(
                next_run_at=next_run(plan, now)))
            db.session.commit()
            continue
        if plan.next_run_at > now:
            continue
        was = dict(next_run_at=plan.next_run_at, last_run_at=plan.last_run_at)
        claimed = db.session.execute(update(SchedulePlan).where(
            SchedulePlan.id == plan.id, SchedulePlan.next_run_at == plan.next_run_at).values(
            next_run_at=next_run(plan, now), last_run_at=now)
            .execution_options(synchronize_session=False)).rowcount
        db.session.commit()
        if not claimed:
            continue
        try:
            enqueue(run_plan, plan.id, queue="background")
        except Exception:
            # Redis went away between the claim and the enqueue: give the run back, so the
            # next tick takes it instead of losing it.
            db.session.execute(update(SchedulePlan).where(SchedulePlan.id == plan.id).values(**was))
            db.session.commit()
            raise
        enqueued.append(plan.code)
    return enqueued


@app_job
def run_plan(plan_id: int) -> str:
    plan = db.session.get(SchedulePlan, plan_id)
    label, fn = PLAN_JOBS[plan.job]
    try:
        result = fn() or "完成"
    except Exception as exc:
        db.session.rollback()
        result = f"失败：{exc}"
        raise
    finally:
        plan = db.session.get(SchedulePlan, plan_id)
        plan.last_result = f"{local_time(clock.now())} {result}"[:500]
        audit.record("schedule_plan", plan.code, "run", reason=plan.last_result, actor=f"job:{plan.code}")
        db.session.commit()
    return result
