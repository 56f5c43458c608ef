"""A ban of one source address from SIP (``sip_bans``): made by the guard, lifted at its time or by an admin."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UTCDateTime, utcnow


class SipBan(Base):
    __tablename__ = "sip_bans"
    __table_args__ = (
        # One ban in force per address: a second one for the same address is refused by the database itself.
        Index("uq_sip_bans_address_unlifted", "address", unique=True, sqlite_where=text("lifted_at IS NULL"),
              postgresql_where=text("lifted_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(45))  # an IPv4 or IPv6 address, as ipaddress writes it
    failures: Mapped[int] = mapped_column(Integer)  # counted within the window when the ban was made
    # The account names the address tried (at most a few): a device's own name among them suggests a device with a
    # wrong password rather than a guesser.
    accounts: Mapped[list[str]] = mapped_column(JSON, default=list)
    first_failure_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    banned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    lifted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(100))  # "expiry", or the admin's username
