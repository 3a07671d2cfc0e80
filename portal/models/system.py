"""系统参数 — system parameters editable by admins."""
from portal.i18n import lazy_gettext as _l
from sqlalchemy import String, bindparam, select
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db

# key → (label, default, help)
PARAMETERS = {
    "hide_unauthorized_buttons": (
        _l("隐藏无权按钮"), "0",
        _l("开启：无权限的按钮不显示；关闭：无权限也显示按钮，操作时提示没有权限。"),
    ),
}


class SystemParameter(db.Model):
    __tablename__ = "system_parameters"

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))

    @staticmethod
    def get(key: str) -> str:
        value = db.session.scalar(_VALUE, {"key": key})
        return value if value is not None else PARAMETERS[key][1]

    @staticmethod
    def flag(key: str) -> bool:
        return SystemParameter.get(key) == "1"


_VALUE = select(SystemParameter.value).where(SystemParameter.key == bindparam("key"))
