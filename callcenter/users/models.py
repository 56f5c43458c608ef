from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UTCDateTime, str_enum, utcnow

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
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
