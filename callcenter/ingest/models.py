"""Ingest keys: what a gateway or a vendor cloud signs its device messages with, and the devices each may speak
for; and the nonces seen within the timestamp window (the anti-replay table of the shared signing scheme)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db.base import Base, UTCDateTime, utcnow


class IngestKey(Base):
    """A key a gateway's or vendor cloud's system signs its requests with (HMAC-SHA256, ``api.signing``). The
    secret is kept because verifying an HMAC needs it; it is shown once at creation and never returned again. The
    key may submit messages only for the devices listed in ``devices``."""

    __tablename__ = "ingest_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))  # whose system: "Acme fall-detector cloud", "building 3 gateway"
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    devices: Mapped[list[IngestKeyDevice]] = relationship(order_by="IngestKeyDevice.device_id",
                                                          cascade="all, delete-orphan")

    @property
    def device_ids(self) -> list[int]:
        return [grant.device_id for grant in self.devices]


class IngestKeyDevice(Base):
    """One device a key may submit for. A device deleted from the registry leaves every key's list with it."""

    __tablename__ = "ingest_key_devices"

    ingest_key_id: Mapped[int] = mapped_column(ForeignKey("ingest_keys.id", ondelete="CASCADE"), primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True,
                                           index=True)


class IngestNonce(Base):
    """Nonces seen within the timestamp window: a second request with the same one is a replay."""

    __tablename__ = "ingest_nonces"
    __table_args__ = (UniqueConstraint("key_id", "nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(String(40))
    nonce: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
