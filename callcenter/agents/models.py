"""Who is logged in to which queues, and who is paused: the platform's record, restored into Asterisk.

Asterisk keeps queue members in memory only (``persistentmembers = no``), so after it crashes or restarts its
queues are empty; the agent service puts every recorded session back as soon as AMI answers again.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UTCDateTime, utcnow


class AgentSession(Base):
    """One agent's (or supervisor's) phone in their queues, as logged in through the platform.

    Written by ``AgentService`` on login, pause and resume, deleted on logout. Wrap-up is never recorded here: it
    lasts seconds, and an agent restored after a restart must take calls, not wait out a stale wrap-up.
    """

    __tablename__ = "agent_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    interface: Mapped[str] = mapped_column(String(64))  # the member's interface, e.g. PJSIP/8101
    queues: Mapped[list[str]] = mapped_column(JSON)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    pause_reason: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
