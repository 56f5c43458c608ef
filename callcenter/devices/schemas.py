"""Request and response schemas of the devices domain. The SIP password goes in, is kept only as its HA1
digest, and never comes back out."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints

from callcenter.api.schemas import Page, PageQuery, RequestSchema, ResponseSchema, RowId, no_control_characters
from callcenter.devices.models import DeviceKind, DeviceStatus
from callcenter.elders.schemas import Phone

# Rendered into pjsip_endpoints.conf as a section name and sent as the digest user: a conservative charset.
SipUsername = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$")]
SerialNumber = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")]
# A password an operator chooses for a device: at least 16 characters (the platform's own are 24, services.py).
MIN_DEVICE_PASSWORD = 16
DevicePassword = Annotated[str, StringConstraints(min_length=MIN_DEVICE_PASSWORD, max_length=128),
                           AfterValidator(no_control_characters)]


class DeviceCreate(RequestSchema):
    elder_id: RowId
    kind: DeviceKind
    sip_username: SipUsername = Field(description="PJSIP endpoint name and digest user; unique across devices and "
                                                  "staff extensions")
    sip_password: DevicePassword | None = Field(
        None, description=f"at least {MIN_DEVICE_PASSWORD} characters, stored only as the HA1 digest; leave it out "
                          "and the platform generates one (returned once as generated_sip_password)")
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
    generated_sip_password: str | None = Field(
        None, description="the SIP password the platform generated, shown this once and never again (only its HA1 "
                          "digest is kept); null when the request gave one")
    provisioning: Literal["applied", "pending"] = Field(
        description="applied: Asterisk accepts the device's registration now; pending: saved, Asterisk picks it up "
                    "at its next reload (AMI was unreachable)")
    mqtt_credentials: Literal["issued", "not_managed", "failed"] = Field(
        description="issued: the device's MQTT account on the platform-managed broker is in this answer, this once; "
                    "not_managed: MQTT is off or the broker is another's (none issued here); failed: the broker's "
                    "password file could not be written, POST /devices/{id}/mqtt-password to try again")
    mqtt_username: str | None = Field(None, description="the device's MQTT username (its id) when issued")
    generated_mqtt_password: str | None = Field(
        None, description="the device's MQTT password, generated and shown this once and never again (the broker "
                          "keeps only its hash); null unless issued")


class SipPasswordChange(RequestSchema):
    sip_password: DevicePassword | None = Field(
        None, description=f"the new password, at least {MIN_DEVICE_PASSWORD} characters; leave it out and the platform "
                          "generates one (returned once as generated_sip_password)")


class SipPasswordChanged(ResponseSchema):
    id: int
    sip_username: str
    generated_sip_password: str | None = Field(
        None, description="the SIP password the platform generated, shown this once; null when the request gave one")
    provisioning: Literal["applied", "pending"] = Field(
        description="applied: Asterisk takes only the new password now; pending: at its next reload")


class MqttPasswordIssued(ResponseSchema):
    id: int
    mqtt_username: str = Field(description="the device's MQTT username: its id")
    generated_mqtt_password: str = Field(
        description="the new MQTT password, shown this once (the broker keeps only its hash); the old one is refused "
                    "from now on")


class DevicePage(Page):
    items: list[DeviceOut]


class DeviceQuery(PageQuery):
    elder_id: RowId | None = None
