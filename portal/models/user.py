"""Users (用户), their role and their per-organisation function grants (授权)."""
from __future__ import annotations

import enum
from datetime import datetime

from portal.i18n import lazy_gettext as _l
from flask_login import UserMixin
from sqlalchemy import String, Boolean, DateTime, ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import generate_password_hash, check_password_hash

from portal.clock import now
from portal.extensions import db


class Role(str, enum.Enum):
    CLERK = "clerk"            # 开票员
    SUPERVISOR = "supervisor"  # 主管
    ADMIN = "admin"            # 管理员

    @property
    def label(self) -> str:
        return {"clerk": _l("开票员"), "supervisor": _l("主管"), "admin": _l("管理员")}[self.value]


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(20), default=Role.CLERK.value)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # bumped on password change / deactivation so old sessions stop working
    session_token: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    grants: Mapped[list["Grant"]] = relationship(back_populates="user", cascade="all, delete-orphan")

    def set_password(self, password: str) -> None:
        import secrets

        from flask import current_app
        self.password_hash = generate_password_hash(
            password, method=current_app.config.get("PASSWORD_HASH_METHOD", "scrypt"))
        self.session_token = secrets.token_hex(8)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    # the token of the server-side session this request runs in (portal/auth/sessions.py)
    session_cookie_token = None  # not a column

    def get_id(self) -> str | None:
        """What the session and remember cookies carry: the session's token, not the user id,
        so ending the session on the server ends every copy of the cookies."""
        return self.session_cookie_token

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN.value

    @property
    def role_label(self) -> str:
        return Role(self.role).label


class Grant(db.Model):
    """One function permission (e.g. ``F18012.retry``) on one organisation."""
    __tablename__ = "grants"
    __table_args__ = (UniqueConstraint("user_id", "org_id", "permission"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    permission: Mapped[str] = mapped_column(String(40))

    user: Mapped[User] = relationship(back_populates="grants")
