"""Ingest keys and the signed device-message batch (docs/device-protocol.md, "HTTP ingest").

A key belongs to one system (a building's gateway, a vendor's cloud) and lists the devices it may speak for:
a message for any other device is answered ``rejected``/``unknown_device`` exactly as for a device that does not
exist, so a key learns nothing of the registry beyond its own devices. Requests are signed with the shared scheme
(``api.signing``, as the provider API) over ``POST /api/v1/device-messages``; each message then goes to the intake
its kind's domain declared (``contract.DEVICE_INTAKES``), in its own transaction, and gets its own answer: the
acknowledgement a device gets over MQTT.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from callcenter.api import signing
from callcenter.api.errors import Invalid, NotFound
from callcenter.audit.services import Actor, record
from callcenter.contract import Check, DeviceIntakes
from callcenter.db.base import utcnow
from callcenter.devices.models import Device
from callcenter.ingest.models import IngestKey, IngestKeyDevice, IngestNonce
from callcenter.ingest.schemas import DeviceMessagesIn
from callcenter.logs import get_logger
from callcenter.telephony.device_topics import DeviceAnswer, message_id_of

log = get_logger(__name__)

METHOD = "POST"
PATH = "/api/v1/device-messages"
GUIDE = "docs/device-protocol.md, HTTP ingest"
CHANNEL = "http"  # the alarm's source, the reading's channel


def new_key_id() -> str:
    return f"ccik_{secrets.token_hex(8)}"


def sign_request(key_id: str, secret: str, body: bytes, now: dt.datetime | float,
                 nonce: str | None = None) -> dict[str, str]:
    """The four headers a gateway sends with ``body`` (the exact bytes it posts), signed at ``now``."""
    return signing.sign_request(METHOD, PATH, key_id, secret, body, now, nonce)


# --- keys -------------------------------------------------------------------------------------------------------


async def _devices_exist(session: AsyncSession, device_ids: list[int]) -> None:
    found = set((await session.scalars(select(Device.id).where(Device.id.in_(device_ids)))).all())
    for index, device_id in enumerate(device_ids):
        if device_id not in found:
            raise Invalid(f"no device {device_id}", field=f"device_ids.{index}", code="unknown_device")


async def get_key(session: AsyncSession, key_id: str) -> IngestKey:
    key = await session.scalar(select(IngestKey).where(IngestKey.key_id == key_id)
                               .options(selectinload(IngestKey.devices)))
    if key is None:
        raise NotFound(f"no ingest key {key_id!r}", field="key")
    return key


async def create_key(session: AsyncSession, name: str, device_ids: list[int], actor: Actor) -> IngestKey:
    """A signing key for the listed devices: the 32-byte random secret is returned to the caller once."""
    await _devices_exist(session, device_ids)
    key = IngestKey(key_id=new_key_id(), name=name, secret=secrets.token_urlsafe(32),
                    devices=[IngestKeyDevice(device_id=device_id) for device_id in device_ids])
    session.add(key)
    await session.flush()
    record(session, actor, action="ingest_key.create", target_type="ingest_key", target_id=key.key_id,
           details={"name": name, "devices": len(device_ids)})
    return await get_key(session, key.key_id)


async def list_keys(session: AsyncSession) -> list[IngestKey]:
    return list((await session.scalars(select(IngestKey).options(selectinload(IngestKey.devices))
                                       .order_by(IngestKey.id))).all())


async def set_devices(session: AsyncSession, key_id: str, device_ids: list[int], actor: Actor) -> IngestKey:
    """Replace the devices the key may submit for (a revoked key's list may still be changed: it stays revoked)."""
    key = await get_key(session, key_id)
    await _devices_exist(session, device_ids)
    before = set(key.device_ids)
    await session.execute(delete(IngestKeyDevice).where(IngestKeyDevice.ingest_key_id == key.id))
    session.add_all(IngestKeyDevice(ingest_key_id=key.id, device_id=device_id) for device_id in device_ids)
    await session.flush()
    record(session, actor, action="ingest_key.devices", target_type="ingest_key", target_id=key.key_id,
           details={"added": sorted(set(device_ids) - before), "removed": sorted(before - set(device_ids))})
    session.expire(key)
    return await get_key(session, key_id)


async def revoke_key(session: AsyncSession, key_id: str, actor: Actor) -> IngestKey:
    """Revoke at once: the next request signed with it is refused (revoked_key). Revoking again changes
    nothing."""
    key = await get_key(session, key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
        record(session, actor, action="ingest_key.revoke", target_type="ingest_key", target_id=key.key_id)
    return key


# --- verification -----------------------------------------------------------------------------------------------


async def authenticate(session: AsyncSession, headers: Mapping[str, str], body: bytes, *, now: dt.datetime,
                       max_skew: int) -> tuple[int, str, str]:
    """(the key's row id, its key id, the nonce) of a correctly signed request, or ``SignatureRejected``: the
    headers' shapes, the key (known, not revoked), the signature over the raw body, the timestamp. Reads only."""
    signed = signing.read_headers(headers)
    key = await session.scalar(select(IngestKey).where(IngestKey.key_id == signed.key_id))
    signing.check_key(signed.key_id, found=key is not None, revoked=key is not None and key.revoked_at is not None)
    assert key is not None
    signing.check_signature(signed, key.secret, METHOD, PATH, body, now=now, max_skew=max_skew, guide=GUIDE)
    return key.id, key.key_id, signed.nonce


async def claim_nonce(session: AsyncSession, key_id: str, nonce: str, *, now: dt.datetime, max_skew: int) -> None:
    await signing.claim_nonce(session, IngestNonce, key_id, nonce, now=now, max_skew=max_skew)


async def allowed_devices(session: AsyncSession, key_row_id: int, device_ids: Iterable[int]) -> set[int]:
    """Those of ``device_ids`` the key may submit for."""
    return set((await session.scalars(select(IngestKeyDevice.device_id).where(
        IngestKeyDevice.ingest_key_id == key_row_id, IngestKeyDevice.device_id.in_(set(device_ids))))).all())


# --- the batch --------------------------------------------------------------------------------------------------


def check_kinds(batch: DeviceMessagesIn, intakes: DeviceIntakes) -> None:
    """422 naming the first message whose kind no domain takes (yet): nothing of the batch is handed on."""
    for index, item in enumerate(batch.messages):
        if intakes.handler(item.kind) is None:
            taken = ", ".join(intakes.kinds) or "none"
            raise Invalid(f"kind {item.kind[:32]!r} is not taken over HTTP; taken: {taken}",
                          field=f"messages.{index}.kind", code="unknown_kind")


class DeviceIngest:
    """The ingest's settings and its counts since start (for /healthz's ``device_ingest`` check): requests
    refused by code, messages answered by kind and outcome. One per platform."""

    def __init__(self, *, max_skew: int, max_body_bytes: int, tz: dt.tzinfo) -> None:
        self.max_skew = max_skew
        self.max_body_bytes = max_body_bytes
        self.tz = tz
        self.requests = 0  # accepted: signed, well-formed, dispatched
        self.refused: collections.Counter[str] = collections.Counter()  # requests, by the error's code
        self.answered: collections.Counter[str] = collections.Counter()  # messages: "<kind>.<status or reason>"
        self.not_allowed = 0  # messages for a device the key does not list (answered unknown_device)

    def refuse(self, code: str, *, key_id: str | None, source_ip: str | None, message: str) -> None:
        """Count a refused request and log it (signature refusals are also audited, by ``api.signing``)."""
        self.refused[code] += 1
        if code not in set(signing.Rejection):  # signing.record_rejection logs those
            log.warning("device_ingest.refused", code=code, key_id=key_id, source_ip=source_ip, message=message)

    async def dispatch(self, batch: DeviceMessagesIn, intakes: DeviceIntakes, allowed: set[int], *,
                       received_at: dt.datetime) -> list[dict[str, Any]]:
        """Each message to its kind's intake (its own transaction there), in order; its answer as the device's
        acknowledgement. A device the key does not list is answered like one that does not exist."""
        answers = []
        for item in batch.messages:
            raw = json.dumps(item.message, ensure_ascii=False).encode()
            handler = intakes.handler(item.kind)
            assert handler is not None  # check_kinds ran
            if item.device_id in allowed:
                answer = await handler(item.device_id, raw, CHANNEL)
            else:
                self.not_allowed += 1
                answer = DeviceAnswer(message_id_of(raw), "rejected", reason="unknown_device")
            self.answered[f"{item.kind}.{answer.reason or answer.status}"] += 1
            answers.append(answer.document(item.kind, received_at, self.tz))
        self.requests += 1
        return answers

    async def health_checks(self) -> dict[str, Check]:
        refused = sum(self.refused.values())
        facts: dict[str, object] = {"requests": self.requests, "refused": refused, "not_allowed": self.not_allowed}
        facts |= {f"refused_{code}": count for code, count in sorted(self.refused.items())}
        facts |= {f"answered_{outcome}": count for outcome, count in sorted(self.answered.items())}
        # Refusals are the senders' fault (a misconfigured gateway, a forged request): counted, not a failure.
        return {"device_ingest": Check(True, f"{self.requests} signed device-message requests taken, {refused} "
                                             "refused since start", facts=facts)}


DEVICE_INGEST = web.AppKey("device_ingest", DeviceIngest)
