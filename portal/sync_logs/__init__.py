"""F18012 数据同步日志查询 — 【发票服务】→【收票管理】→【发票归集管理】→【数据同步日志查询】."""
from flask import Blueprint

bp = Blueprint("sync_logs", __name__)

from portal.sync_logs import views  # noqa: E402,F401
