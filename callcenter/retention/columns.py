"""The legal-hold columns a call and a work order (complaints included) carry.

While ``legal_hold`` is set, the retention engine deletes neither the call log nor the recordings the row
protects, whatever their age. Who set it, when and why is kept next to the flag; the audit log keeps the history.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, String, false
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import UTCDateTime


class LegalHoldColumns:
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    legal_hold_reason: Mapped[str | None] = mapped_column(String(500))
    legal_hold_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The user's name at the time, so the hold stays readable if the account goes.
    legal_hold_by: Mapped[str | None] = mapped_column(String(100))
    legal_hold_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
