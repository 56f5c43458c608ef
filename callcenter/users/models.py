from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UTCDateTime, str_enum, utcnow
from callcenter.db.sealed import Sealed

# The table the provider foreign key points at must be in the metadata wherever these models are used.
from callcenter.providers import models as _providers  # noqa: F401


class Role(enum.StrEnum):
    ADMIN = "admin"
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    PROVIDER = "provider"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(str_enum(Role, "user_role"))
    # The agent's phone: PJSIP endpoint name and digest user, password kept as HA1 only.
    extension: Mapped[str | None] = mapped_column(String(32), unique=True)
    sip_ha1: Mapped[str | None] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(16), default="zh-CN")
    # A provider-portal account sees only this provider's orders (role provider); none for centre staff.
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("service_providers.id", ondelete="CASCADE"),
                                                    index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The second factor (RFC 6238 TOTP, users.second_factor): the base32 secret once set up, enabled once a code
    # from it was confirmed. Only admins and auditors may turn it on.
    # Sealed (data keys): a copy of the database must not carry every admin's and auditor's second factor.
    totp_secret: Mapped[str | None] = mapped_column(Sealed("users.totp_secret"))
    totp_enabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)  # the last code's time step: never used twice
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SessionKind(enum.StrEnum):
    API = "api"  # a bearer token from POST /api/v1/auth/login
    PANEL = "panel"  # a browser's log-in to the panel (its page carries a bearer token of this session)


class UserSession(Base):
    """One log-in: every bearer token names its session, and a token whose session is revoked, expired or gone
    stops working on its next request (users.sessions)."""

    __tablename__ = "user_sessions"
    __table_args__ = (Index("ix_user_sessions_user_id_revoked_at", "user_id", "revoked_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random (users.sessions.new_session_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[SessionKind] = mapped_column(str_enum(SessionKind, "user_session_kind"))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # logout, revoked (by whom: the audit trail), disabled, role_changed, password_changed, password_reset
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
