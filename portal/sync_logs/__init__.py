"""F18012 数据同步日志查询 — 【发票服务】→【收票管理】→【发票归集管理】→【数据同步日志查询】."""
from flask import Blueprint

bp = Blueprint("sync_logs", __name__)

from portal.i18n import lazy_gettext as _l  # noqa: E402

from jobs import tracked  # noqa: E402
from portal.sync_logs import views  # noqa: E402,F401

tracked.register_kind("sync.create", _l("新增下载任务"), done_label=_l("已提交"))
tracked.register_kind("sync.retry", _l("手工重试"), done_label=_l("已重新提交"))
tracked.register_kind("sync.void", _l("作废任务"), done_label=_l("已作废"))
tracked.register_kind("sync.import", _l("手工导入"), done_label=_l("已入池"))
