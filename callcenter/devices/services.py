"""Devices: identifying who is calling (AGI), registering devices and provisioning them in Asterisk (REST)."""

from __future__ import annotations

import dataclasses
import enum
import secrets
import string
from typing import Protocol

from aiohttp import web
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import Conflict, Invalid, NotFound, Unavailable
from callcenter.audit.services import Actor, record
from callcenter.calls.models import IdentifiedBy
from callcenter.db.paging import paginate
from callcenter.devices.models import Device, DeviceKind, DeviceStatus
from callcenter.elders.models import Elder
from callcenter.logs import get_logger
from callcenter.users.models import User
from callcenter.users.passwords import sip_ha1

log = get_logger(__name__)

# A device that is retired must not speak for an elder any more; a faulty one still may (it is calling).
_IDENTIFYING_STATUSES = (DeviceStatus.ACTIVE, DeviceStatus.FAULTY)


@dataclasses.dataclass(frozen=True, slots=True)
class Identification:
    elder_id: int | None
    device_id: int | None
    method: IdentifiedBy

    @property
    def known(self) -> bool:
        return self.elder_id is not None


UNKNOWN = Identification(None, None, IdentifiedBy.NONE)


async def identify_caller(session: AsyncSession, endpoint: str, caller_number: str) -> Identification:
    """Who is on the line: the device's own SIP identity is proof; a caller ID is a strong hint."""
    if endpoint:
        device = await session.scalar(
            select(Device).where(Device.sip_username == endpoint, Device.status.in_(_IDENTIFYING_STATUSES))
        )
        if device is not None and device.elder_id is not None:
            return Identification(device.elder_id, device.id, IdentifiedBy.DEVICE)
    number = normalise_number(caller_number)
    if number:
        device = await session.scalar(
            select(Device).where(Device.phone_number == number, Device.status.in_(_IDENTIFYING_STATUSES),
                                 Device.elder_id.is_not(None))
        )
        if device is not None:
            return Identification(device.elder_id, device.id, IdentifiedBy.CALLER_ID)
        elder_ids = (await session.scalars(select(Elder.id).where(or_(Elder.phone == number)).limit(2))).all()
        # Two elders sharing a landline (a couple) cannot be told apart by number alone.
        if len(elder_ids) == 1:
            return Identification(elder_ids[0], None, IdentifiedBy.CALLER_ID)
    return UNKNOWN


def normalise_number(number: str) -> str:
    """Digits only, without the +86 / 0086 country prefix, so stored and presented numbers compare equal."""
    digits = "".join(ch for ch in number if ch.isdigit())
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) >= 11:
            digits = digits[len(prefix):]
    return digits


# -- provisioning (REST API) -------------------------------------------------------------------------------------

class Provisioner(Protocol):
    """The telephony layer's service that makes Asterisk serve the database's endpoints (AsteriskProvisioner)."""

    async def apply(self) -> None: ...


class Provisioning(enum.StrEnum):
    APPLIED = "applied"  # Asterisk serves the endpoint now
    PENDING = "pending"  # saved; Asterisk picks it up at its next successful apply or start
    NOT_NEEDED = "not_needed"


async def apply_provisioning(provisioner: Provisioner, *, reason: str, target: str) -> Provisioning:
    """Run after the commit: a failure (AMI down, render error) never loses the saved row, it is logged and
    reported as pending."""
    try:
        await provisioner.apply()
    except Exception as error:
        log.warning("provisioning.pending", reason=reason, target=target, error=f"{type(error).__name__}: {error}")
        return Provisioning.PENDING
    return Provisioning.APPLIED


# PJSIP section names used by asterisk-config/pjsip.conf.j2: an endpoint with one of these names would clash.
RESERVED_SIP_NAMES = frozenset({"global", "system", "transport-udp", "transport-tls", "endpoint-common", "auth-common",
                                "aor-common"})


async def sip_name_owner(session: AsyncSession, name: str) -> str | None:
    """Devices' sip_username and users' extension share one PJSIP endpoint namespace: who holds ``name``?"""
    if name.lower() in RESERVED_SIP_NAMES:
        return "reserved"
    if await session.scalar(select(Device.id).where(Device.sip_username == name)) is not None:
        return "device"
    if await session.scalar(select(User.id).where(User.extension == name)) is not None:
        return "user"
    return None


GENERATED_PASSWORD_LENGTH = 24
_PASSWORD_ALPHABET = string.ascii_letters + string.digits  # 62 symbols: 24 of them are ~143 bits


def generate_sip_password() -> str:
    """A device's SIP password when the operator sets none, and every device's MQTT password: 24 random letters and
    digits (``secrets``), far beyond what guessing at the ban threshold (sip_security) could reach."""
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(GENERATED_PASSWORD_LENGTH))


async def create_device(session: AsyncSession, *, elder_id: int, kind: DeviceKind, sip_username: str,
                        sip_password: str, phone: str | None, serial_number: str | None, actor: Actor,
                        password_generated: bool = False) -> Device:
    if await session.get(Elder, elder_id) is None:
        raise Invalid(f"elder_id: no elder {elder_id}", field="elder_id")
    owner = await sip_name_owner(session, sip_username)
    if owner is not None:
        raise Conflict(f"sip_username {sip_username!r} is already used by a {owner}" if owner != "reserved"
                       else f"sip_username {sip_username!r} is reserved", field="sip_username")
    if phone is not None and await session.scalar(select(Device.id).where(Device.phone_number == phone)) is not None:
        raise Conflict(f"phone {phone} belongs to another device", field="phone")
    if serial_number is not None and await session.scalar(
            select(Device.id).where(Device.serial_number == serial_number)) is not None:
        raise Conflict(f"serial_number {serial_number!r} is already registered", field="serial_number")
    device = Device(elder_id=elder_id, kind=kind, sip_username=sip_username,
                    sip_ha1=sip_ha1(sip_username, sip_password), phone_number=phone, serial_number=serial_number,
                    status=DeviceStatus.ACTIVE)
    session.add(device)
    await session.flush()
    record(session, actor, action="device.create", target_type="device", target_id=device.id,
           details={"elder_id": elder_id, "kind": kind.value, "sip_username": sip_username,
                    "sip_password": "generated" if password_generated else "set by the operator"})
    return device


async def set_sip_password(session: AsyncSession, device_id: int, sip_password: str, *, password_generated: bool,
                           actor: Actor) -> Device:
    """A new SIP password for a device (rotation, or a device reset): only its digest is kept; audited."""
    device = await get_device(session, device_id)
    device.sip_ha1 = sip_ha1(device.sip_username, sip_password)
    record(session, actor, action="device.sip_password", target_type="device", target_id=device.id,
           details={"sip_username": device.sip_username,
                    "sip_password": "generated" if password_generated else "set by the operator"})
    return device


async def get_device(session: AsyncSession, device_id: int) -> Device:
    device = await session.get(Device, device_id)
    if device is None:
        raise NotFound(f"no device {device_id}", field="id")
    return device


async def list_devices(session: AsyncSession, *, elder_id: int | None, limit: int,
                       offset: int) -> tuple[list[Device], int]:
    statement = select(Device).order_by(Device.id)
    if elder_id is not None:
        statement = statement.where(Device.elder_id == elder_id)
    return await paginate(session, statement, limit=limit, offset=offset)


# The provisioner that applies new devices and phones to Asterisk (asterisk.provisioning in the platform).
PROVISIONER = web.AppKey("provisioner", Provisioner)


# -- MQTT credentials (docs/device-protocol.md) --------------------------------------------------------------------

class MqttAccounts(Protocol):
    """Devices' accounts on the platform-managed MQTT broker (mosquitto.accounts.DeviceMqttAccounts)."""

    @property
    def managed(self) -> bool: ...

    async def set_device_password(self, device_id: int, password: str) -> str: ...


class MqttCredentials(enum.StrEnum):
    ISSUED = "issued"  # the device's MQTT username and password are in the answer, this once
    NOT_MANAGED = "not_managed"  # MQTT is off, or the broker is not the platform's: nothing issued here
    FAILED = "failed"  # the broker's password file could not be written: logged; POST …/mqtt-password again


@dataclasses.dataclass(frozen=True, slots=True)
class MqttIssue:
    outcome: MqttCredentials
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)


NOT_MANAGED_MESSAGE = ("MQTT accounts are issued only on the platform-managed Mosquitto (CC_MQTT_URL empty, mosquitto "
                       "installed); another broker's admin issues its own, and with MQTT off there is none")


async def issue_mqtt_password(session: AsyncSession, accounts: MqttAccounts, device_id: int, *, actor: Actor,
                              required: bool) -> MqttIssue:
    """A generated MQTT password for the device on the platform-managed broker (only its hash is kept there), audited
    in ``session``'s transaction; the caller shows it once. Not ``required`` (a device being registered: its SOS
    works without MQTT), a broker that is not the platform's or a failure is reported in the outcome and logged;
    ``required`` (a rotation), it is a 409 or a 503."""
    if not accounts.managed:
        if required:
            raise Conflict(NOT_MANAGED_MESSAGE, code="mqtt_not_managed")
        return MqttIssue(MqttCredentials.NOT_MANAGED)
    password = generate_sip_password()
    try:
        username = await accounts.set_device_password(device_id, password)
    except Exception as error:
        log.warning("device.mqtt_password_failed", device_id=device_id, error=f"{type(error).__name__}: {error}")
        if required:
            raise Unavailable(f"the MQTT broker's password file could not be written: {error}") from None
        return MqttIssue(MqttCredentials.FAILED)
    record(session, actor, action="device.mqtt_password", target_type="device", target_id=device_id,
           details={"mqtt_username": username, "mqtt_password": "generated"})
    return MqttIssue(MqttCredentials.ISSUED, username, password)


MQTT_ACCOUNTS = web.AppKey("mqtt_accounts", MqttAccounts)
