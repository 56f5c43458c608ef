"""Request and response schemas of the SIP bans API."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from callcenter.api.schemas import ResponseSchema


class SipBanOut(ResponseSchema):
    id: int
    address: str = Field(description="the banned source address (IPv4 or IPv6)")
    failures: int = Field(description="failed authentications counted within the window when it was banned")
    accounts: list[str] = Field(description="account names it tried (at most five)")
    first_failure_at: dt.datetime
    since: dt.datetime = Field(validation_alias="banned_at")
    until: dt.datetime = Field(validation_alias="expires_at", description="when the ban is lifted by itself")
    lifted_at: dt.datetime | None
    lifted_by: str | None = Field(description='"expiry", or the admin who lifted it')


class SipBanList(ResponseSchema):
    items: list[SipBanOut]


class SipBanLifted(SipBanOut):
    provisioning: Literal["applied", "pending"] = Field(
        description="applied: Asterisk serves the address again now; pending: AMI was unreachable, Asterisk is "
                    "updated at its next login")
