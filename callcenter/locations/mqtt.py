"""Positions over MQTT (docs/device-protocol.md): each message on ``cc/devices/<id>/position`` goes to the intake,
and the device is answered on ``cc/devices/<id>/ack`` (kind ``position``) only once the intake has committed it
("stored"), or refused it for good ("rejected", with the protocol's reason and the field to fix) — as alarms are
(``alarms.mqtt``). A database failure answers nothing: the device sends the fix again, and its message id makes
the repeat harmless."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from callcenter.alarms.intake import RefusalReason
from callcenter.alarms.models import AlarmSource
from callcenter.alarms.mqtt import ACK_REASONS
from callcenter.contract import MqttSubscription, on_mqtt
from callcenter.db.base import utcnow
from callcenter.locations.intake import PositionIntake, PositionRefused
from callcenter.telephony.device_topics import (
    POSITION,
    DeviceAnswer,
    ack_payload,
    ack_topic,
    device_filter,
    message_id_of,
    parse_device_topic,
)
from callcenter.telephony.mqtt import MqttMessage, MqttRefusal, Publish

# Refusals whose answer names the field to fix.
NAMING_THE_FIELD = frozenset({RefusalReason.INVALID_FIELD, RefusalReason.FUTURE_TIME})


async def answer(intake: PositionIntake, device_id: int, raw: bytes, source: AlarmSource) -> DeviceAnswer:
    """The intake's verdict on one position from ``device_id`` (authenticated by the transport) as its answer:
    ``stored`` once committed, ``rejected`` with the protocol's reason; a database failure propagates (no answer)."""
    try:
        receipt = await intake.receive_message(device_id, raw, source)
    except PositionRefused as refused:
        return DeviceAnswer(message_id_of(raw), "rejected", reason=ACK_REASONS[refused.reason],
                            field=refused.field if refused.reason in NAMING_THE_FIELD else None)
    return DeviceAnswer(receipt.message_id, "stored")


class PositionAnswers:
    """The positions' intake of device messages of kind ``position`` for other transports
    (``contract.on_device_message``: the signed HTTP ingest); the channel names the source (``http``)."""

    def __init__(self, intake: PositionIntake) -> None:
        self.intake = intake

    async def __call__(self, device_id: int, raw: bytes, channel: str) -> DeviceAnswer:
        return await answer(self.intake, device_id, raw, AlarmSource(channel))


class MqttPositions:
    def __init__(self, intake: PositionIntake, tz: ZoneInfo) -> None:
        self.intake = intake
        self.tz = tz

    def subscription(self) -> MqttSubscription:
        return on_mqtt(device_filter(POSITION), self.on_message, on_refused=self.on_refused)

    def _answer(self, message_id: str | None, status: str, received_at: dt.datetime, *, reason: str | None = None,
                field: str | None = None) -> bytes:
        return ack_payload(POSITION, message_id, status, received_at, self.tz, reason=reason, field=field)

    async def on_message(self, message: MqttMessage, publish: Publish) -> None:
        parsed = parse_device_topic(message.topic)
        if parsed is None:  # the filter admits only device topics; a malformed id has no one to answer
            return
        device_id = parsed[0]
        reply = await answer(self.intake, device_id, message.payload, AlarmSource.MQTT)
        await publish(ack_topic(device_id), self._answer(reply.message_id, reply.status, message.received_at,
                                                         reason=reply.reason, field=reply.field))

    async def on_refused(self, refusal: MqttRefusal, publish: Publish) -> None:
        """Too large to be read: counted with the intake's refusals, and answered so the device stops sending it."""
        parsed = parse_device_topic(refusal.topic)
        if parsed is None:
            return
        self.intake.refuse(RefusalReason.OVERSIZED)
        await publish(ack_topic(parsed[0]), self._answer(None, "rejected", utcnow(), reason="payload_too_large"))
