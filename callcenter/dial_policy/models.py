from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UTCDateTime, utcnow


class AllowedNumber(Base):
    """A number a supervisor allowed the centre to dial into a conference though it is nobody's contact (a
    neighbourhood committee, a hospital ward), with why; withdrawn, it is refused again."""

    __tablename__ = "allowed_numbers"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)  # digits only, as dialled
    label: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(200))
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
