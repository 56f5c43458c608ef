"""Request and response schemas of the devices domain. The SIP password goes in, is kept only as its HA1
digest, and never comes back out."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from callcenter.api.schemas import Page, PageQuery, RequestSchema, ResponseSchema, RowId, Secret
from callcenter.devices.models import DeviceKind, DeviceStatus
from callcenter.elders.schemas import Phone

# Rendered into pjsip_endpoints.conf as a section name and sent as the digest user: a conservative charset.
SipUsername = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$")]
SerialNumber = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")]


class DeviceCreate(RequestSchema):
    elder_id: RowId
    kind: DeviceKind
    sip_username: SipUsername = Field(description="PJSIP endpoint name and digest user; unique across devices and "
                                                  "staff extensions")
    sip_password: Secret = Field(description="stored only as the HA1 digest")
    phone: Phone | None = Field(None, description="the device's own number (SIM), used to identify its calls")
    serial_number: SerialNumber | None = None


class DeviceOut(ResponseSchema):
    id: int
    elder_id: int | None
    kind: DeviceKind
    sip_username: str
    phone: str | None = Field(validation_alias="phone_number")
    serial_number: str | None
    status: DeviceStatus
    battery_percent: int | None
    last_heartbeat_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class DeviceCreated(DeviceOut):
    provisioning: Literal["applied", "pending"] = Field(
        description="applied: Asterisk accepts the device's registration now; pending: saved, Asterisk picks it up "
                    "at its next reload (AMI was unreachable)")


class DevicePage(Page):
    items: list[DeviceOut]


class DeviceQuery(PageQuery):
    elder_id: RowId | None = None
