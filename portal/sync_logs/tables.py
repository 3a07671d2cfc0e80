"""The two lists of F18012: download tasks (数据同步日志) and one batch's invoices."""
from __future__ import annotations

from flask import url_for
from portal.i18n import gettext as _
from portal.i18n import lazy_gettext as _l
from flask_login import current_user

from portal.channels.base import DOWNLOAD_TYPE_LABELS, REASON_MESSAGES, ChannelKind, ReasonCode
from portal.fmt import duration
from portal.models import SyncTask, SyncTaskInvoice
from portal.models.sync import SYNC_COUNTS, SYNC_STATUS_LABELS, SYNC_TYPE_LABELS
from portal.sync_logs import scope
from portal.tables import HIDDEN, SHOWN, Action, Column, Filter, Table, Tabs


def _status_cell(t: SyncTask) -> str:
    if not t.in_flight:
        return t.status_label
    return _("%(status)s · %(what)s（已等待 %(waited)s）", status=t.status_label, what=t.waiting_for,
             waited=duration(t.waiting_seconds))


# The reasons a download task fails with (the 失败原因 filter), as the channels return them.
FAILURE_REASONS = [ReasonCode.LOGIN_EXPIRED, ReasonCode.BUREAU_BUSY, ReasonCode.GATEWAY_TIMEOUT,
                   ReasonCode.RATE_LIMITED, ReasonCode.UNKNOWN_ERROR, ReasonCode.TIMEOUT,
                   ReasonCode.RESPONSE_LOST, ReasonCode.CONNECTION_ERROR, ReasonCode.DOWNLOAD_APPLY_FAILED,
                   ReasonCode.DOWNLOAD_FAILED, ReasonCode.TAXPAYER_TYPE, ReasonCode.NOT_SUPPORTED,
                   ReasonCode.NOT_FOUND, ReasonCode.AUTH_FAILED, ReasonCode.INVALID_REQUEST]

# Fixed choices are lazy strings (translated when shown); the reasons are the channels'
# catalogued messages (marked with N_ in portal.channels.base).
REASON_CHOICES = [(code.value, _l(REASON_MESSAGES[code])) for code in FAILURE_REASONS]
YES = [("1", _l("是"))]

SYNC_TABLE = Table(
    "sync-table", SyncTask.id,
    columns=[
        Column("batch_no", "下载批次号", sort=SyncTask.batch_no, macro="link",
               href=lambda t: url_for("sync_logs.detail", task_id=t.id)),
        Column("org", "核算组织", value=lambda t: t.org.name, macro="truncate", max_chars=8),
        Column("status", "同步状态", value=_status_cell, macro="badge", css="narrow-wrap",
               tone=lambda t: {"success": "ok", "processing": "busy", "failed": "bad",
                               "apply_failed": "bad", "voided": "", "no_data": ""}.get(t.status, "warn")),
        Column("download_type", "下载类型", value=lambda t: t.download_type_label, css="narrow-wrap"),
        Column("start_date", "下载开始时间", sort=SyncTask.start_date),
        Column("end_date", "下载结束时间", sort=SyncTask.end_date),
        Column("success_count", "处理成功的份数", sort=SyncTask.success_count, css="num"),
        Column("invoice_count", "下载发票份数", sort=SyncTask.invoice_count, css="num"),
        Column("sync_type", "同步类型", value=lambda t: t.sync_type_label, show=HIDDEN),
        Column("error", "错误描述", macro="truncate", max_chars=10),
        Column("channel", "通道", value=lambda t: ChannelKind(t.channel).label, show=HIDDEN),
        Column("created_at", "创建时间", sort=SyncTask.created_at, macro="datetime", css="datetime"),
        Column("updated_at", "更新时间", sort=SyncTask.updated_at, macro="datetime", css="datetime",
               show=HIDDEN),
        Column("last_retry_at", "最后重试时间", macro="datetime", css="datetime", show=HIDDEN),
    ],
    filters=[
        Filter("batch_no", "下载批次号", SyncTask.batch_no, "prefix", placeholder=_l("批次号或前缀")),
        Filter("org", "核算组织", SyncTask.org_id, "int",
               options=lambda: [(str(o.id), o.name) for o in scope.orgs(current_user, "F18012.query")]),
        Filter("download_type", "下载类型", SyncTask.download_type, "select",
               [(k.value, v) for k, v in DOWNLOAD_TYPE_LABELS.items()]),
        Filter("sync_type", "同步类型", SyncTask.sync_type, "select",
               [(k.value, v) for k, v in SYNC_TYPE_LABELS.items()]),
        Filter("channel", "通道", SyncTask.channel, "select", [(c.value, c.label) for c in ChannelKind]),
        Filter("start_from", "下载开始时间从", SyncTask.start_date, "date_from"),
        Filter("start_to", "下载开始时间至", SyncTask.start_date, "date_to"),
        Filter("end_from", "下载结束时间从", SyncTask.end_date, "date_from"),
        Filter("end_to", "下载结束时间至", SyncTask.end_date, "date_to"),
        Filter("success_count", "处理成功的份数", SyncTask.success_count, "int"),
        Filter("invoice_count", "下载发票份数", SyncTask.invoice_count, "int"),
        Filter("error", "错误描述", SyncTask.error, "contains", placeholder=_l("包含的文字"), vocabulary=True),
        Filter("reason", "失败原因", SyncTask.reason_code, "select", REASON_CHOICES),
        Filter("has_failures", "有处理失败", SyncTask.success_count < SyncTask.invoice_count, "flag", YES),
        Filter("created_from", "创建时间从", SyncTask.created_at, "date_from"),
        Filter("created_to", "创建时间至", SyncTask.created_at, "date_to"),
    ],
    tabs=Tabs("status", SyncTask.status, [(k.value, v) for k, v in SYNC_STATUS_LABELS.items()]),
    actions=[
        Action("fetch_result", "获取异步结果", "sync_logs.fetch_results", "F18012.fetch_result"),
        Action("retry", "手工重试", "sync_logs.retry", "F18012.retry"),
        Action("void", "作废任务", "sync_logs.void", "F18012.void", destructive=True),
        Action("export", "导出", "sync_logs.export_tasks", "F18012.export"),
    ],
    default_sort="created_at",
    in_flight=lambda t: t.in_flight, row_endpoint="sync_logs.row", counted=SYNC_COUNTS,
    partition=SyncTask.org_id,
)

INVOICE_TABLE = Table(
    "batch-invoices", SyncTaskInvoice.id,
    columns=[
        Column("invoice_code", "发票代码", show=HIDDEN),  # empty for 数电 invoices
        Column("invoice_no", "发票号码", sort=SyncTaskInvoice.id),
        Column("direction", "进/销项", value=lambda i: _("进项") if i.direction == "in" else _("销项")),
        Column("issue_date", "开票日期"),
        Column("seller_name", "销方名称", macro="truncate", max_chars=12),
        Column("buyer_name", "购方名称", macro="truncate", max_chars=12, show=SHOWN),
        Column("total", "价税合计", css="num"),
        Column("bureau_status", "税局发票状态", show=SHOWN),
        Column("pool_status", "票池状态", value=lambda i: i.pool_invoice.status if i.pool_invoice else "",
               show=SHOWN),
        Column("outcome", "处理结果", value=lambda i: i.outcome_label),
        Column("failure_reason", "失败原因", css="wrap"),
    ],
    filters=[
        Filter("outcome", "处理结果", SyncTaskInvoice.outcome, "select",
               list(SyncTaskInvoice.OUTCOME_LABELS.items())),
        Filter("invoice_no", "发票号码", SyncTaskInvoice.invoice_no, "prefix"),
    ],
    default_sort="invoice_no", default_dir="asc", selectable=False,
)
