"""Devices' heartbeats over MQTT (docs/device-protocol.md, *Heartbeat*): each message on ``cc/devices/<id>/heartbeat``
sets the device's ``last_heartbeat_at`` (the platform's clock: what silence is measured against) and, when it
says so, its ``battery_percent`` — what the agent's screen-pop and the alarm card show.

Heartbeats are not acknowledged (a lost one is replaced by the next): a heartbeat that is not valid JSON of the
documented fields, from a device that is not registered or is retired, or that arrives while the database cannot
write is dropped, logged and counted by reason on /healthz (``device_heartbeats``).
"""

from __future__ import annotations

import collections
import datetime as dt
from typing import Annotated

from pydantic import Field, StringConstraints

from callcenter.api.errors import ApiError, Invalid
from callcenter.api.registry import parse_json_body
from callcenter.api.schemas import Instant, RequestSchema
from callcenter.contract import Check, MqttSubscription, on_mqtt
from callcenter.db.session import Database
from callcenter.devices.models import Device, DeviceStatus
from callcenter.logs import get_logger
from callcenter.telephony.device_topics import HEARTBEAT, device_filter, parse_device_topic
from callcenter.telephony.mqtt import MqttMessage, MqttRefusal, Publish

log = get_logger(__name__)

MAX_HEARTBEAT_BYTES = 1024  # a heartbeat is a hundred bytes


class DeviceHeartbeat(RequestSchema):
    """A heartbeat as a device sends it (strict: a number in quotes is refused, an unknown field too)."""

    sent_at: Instant = Field(description="when the device sent it (ISO 8601 with an offset)")
    battery_percent: int | None = Field(None, ge=0, le=100, description="required for battery devices")
    charging: bool | None = None
    signal_dbm: int | None = Field(None, ge=-150, le=0, description="the mobile or Wi-Fi signal")
    firmware: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    message_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")] | None = None


class Heartbeats:
    """The devices' heartbeats (one per platform): stored as they come, counted for /healthz."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.counts: collections.Counter[str] = collections.Counter()  # stored, and each drop's reason

    def subscription(self) -> MqttSubscription:
        return on_mqtt(device_filter(HEARTBEAT), self.on_message, on_refused=self.on_refused)

    async def on_message(self, message: MqttMessage, _publish: Publish) -> None:
        parsed = parse_device_topic(message.topic)
        if parsed is None:
            return
        await self.receive(parsed[0], message.payload, message.received_at)

    async def on_refused(self, refusal: MqttRefusal, _publish: Publish) -> None:
        self._dropped("oversized", parse_device_topic(refusal.topic))

    async def receive(self, device_id: int, raw: bytes, received_at: dt.datetime) -> bool:
        """Store one heartbeat; False (logged, counted) when it is dropped."""
        if len(raw) > MAX_HEARTBEAT_BYTES:
            return self._dropped("oversized", (device_id, HEARTBEAT))
        try:
            heartbeat: DeviceHeartbeat = parse_json_body(DeviceHeartbeat, raw)  # type: ignore[assignment]
        except RecursionError:
            return self._dropped("malformed", (device_id, HEARTBEAT))
        except Invalid as invalid:
            return self._dropped("invalid_field", (device_id, HEARTBEAT), field=invalid.field)
        except ApiError:
            return self._dropped("malformed", (device_id, HEARTBEAT))
        try:
            async with self.db.transaction() as session:
                device = await session.get(Device, device_id) if 1 <= device_id <= 2**31 - 1 else None
                if device is None or device.status is DeviceStatus.RETIRED:
                    return self._dropped("unknown_device", (device_id, HEARTBEAT))
                device.last_heartbeat_at = received_at
                if heartbeat.battery_percent is not None:
                    device.battery_percent = heartbeat.battery_percent
        except Exception as error:  # the database: the next heartbeat will do
            return self._dropped("database", (device_id, HEARTBEAT), error=f"{type(error).__name__}")
        self.counts["stored"] += 1
        return True

    def _dropped(self, reason: str, parsed: tuple[int, str] | None, **details: str | None) -> bool:
        self.counts[f"dropped_{reason}"] += 1
        log.warning("device.heartbeat_dropped", reason=reason, device_id=parsed[0] if parsed else None, **details)
        return False

    async def health_checks(self) -> dict[str, Check]:
        dropped = sum(count for name, count in self.counts.items() if name.startswith("dropped_"))
        return {"device_heartbeats": Check(True, f"{self.counts['stored']} heartbeats stored, {dropped} dropped "
                                                 "since start", critical=False, facts=dict(self.counts))}
