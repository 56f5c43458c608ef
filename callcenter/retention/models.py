"""The retention log: one row per recording or call log that retention removed (what, when, under which rule).

It is also the engine's intent journal. A removal that takes more than one transaction (a recording's audio in
its store; an archive file) is first written here as ``pending``, then carried out, then marked ``done``; a run
that was killed midway finds its ``pending`` rows and finishes them. One row per target: nothing is removed
twice. The rows are never deleted: they outlive what they describe.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UTCDateTime, str_enum


class RetentionRule(enum.StrEnum):
    RECORDING_EXPIRED = "recording.expired"  # audio deleted from its store after CC_RECORDING_RETENTION_DAYS
    CALL_LOG_ARCHIVE = "call_log.archive"  # call log written to an archive file, then removed from the database
    CALL_LOG_PURGE = "call_log.purge"  # call log removed from the database


class RetentionStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"


class RetentionLogEntry(Base):
    __tablename__ = "retention_log"
    __table_args__ = (UniqueConstraint("target_type", "target_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(String(32), index=True)
    rule: Mapped[RetentionRule] = mapped_column(str_enum(RetentionRule, "retention_rule"), index=True)
    target_type: Mapped[str] = mapped_column(String(32))  # "recording" or "call"
    target_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[RetentionStatus] = mapped_column(str_enum(RetentionStatus, "retention_status"), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    # What was removed (serial, storage key, linkedid, times, archive file and checksum …): readable without it.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
