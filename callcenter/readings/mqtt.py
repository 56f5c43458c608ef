"""Readings over MQTT (docs/device-protocol.md): each message on ``cc/devices/<id>/reading`` goes to the intake, and
the device is answered on ``cc/devices/<id>/ack`` only once the intake has committed it ("stored"), or refused it
for good ("rejected", with the reason and the field to fix) — as alarms are (``alarms.mqtt``). A database failure
answers nothing: the device keeps the message and sends it again, and its message id makes the repeat harmless."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from callcenter.contract import MqttSubscription, on_mqtt
from callcenter.db.base import utcnow
from callcenter.readings.intake import ReadingIntake, ReadingRefused, RefusalReason
from callcenter.readings.models import ReadingSource
from callcenter.telephony.device_topics import (
    READING,
    DeviceAnswer,
    ack_payload,
    ack_topic,
    device_filter,
    message_id_of,
    parse_device_topic,
)
from callcenter.telephony.mqtt import MqttMessage, MqttRefusal, Publish

# The protocol's rejection reasons (docs/device-protocol.md, "Acknowledgement") for the intake's.
ACK_REASONS = {
    RefusalReason.MALFORMED: "not_json",
    RefusalReason.OVERSIZED: "payload_too_large",
    RefusalReason.INVALID_FIELD: "invalid",
    RefusalReason.FUTURE_TIME: "invalid",
    RefusalReason.TOO_OLD: "invalid",
    RefusalReason.UNKNOWN_DEVICE: "unknown_device",
    RefusalReason.DEVICE_RETIRED: "unknown_device",
}
_NAMES_FIELD = frozenset({RefusalReason.INVALID_FIELD, RefusalReason.FUTURE_TIME, RefusalReason.TOO_OLD})


async def answer(intake: ReadingIntake, device_id: int, raw: bytes, source: ReadingSource) -> DeviceAnswer:
    """The intake's verdict on one reading from ``device_id`` (authenticated by the transport) as its answer:
    ``stored`` once committed, ``rejected`` with the protocol's reason; a database failure propagates (no answer)."""
    try:
        receipt = await intake.receive_message(device_id, raw, source)
    except ReadingRefused as refused:
        return DeviceAnswer(message_id_of(raw), "rejected", reason=ACK_REASONS[refused.reason],
                            field=refused.field if refused.reason in _NAMES_FIELD else None)
    return DeviceAnswer(receipt.message_id, "stored")


class ReadingAnswers:
    """The readings' intake of device messages of kind ``reading`` for other transports
    (``contract.on_device_message``: the signed HTTP ingest); the channel names the source (``http``)."""

    def __init__(self, intake: ReadingIntake) -> None:
        self.intake = intake

    async def __call__(self, device_id: int, raw: bytes, channel: str) -> DeviceAnswer:
        return await answer(self.intake, device_id, raw, ReadingSource(channel))


class MqttReadings:
    def __init__(self, intake: ReadingIntake, tz: ZoneInfo) -> None:
        self.intake = intake
        self.tz = tz

    def subscription(self) -> MqttSubscription:
        return on_mqtt(device_filter(READING), self.on_message, on_refused=self.on_refused)

    def _answer(self, message_id: str | None, status: str, received_at: dt.datetime, *, reason: str | None = None,
                field: str | None = None) -> bytes:
        return ack_payload(READING, message_id, status, received_at, self.tz, reason=reason, field=field)

    async def on_message(self, message: MqttMessage, publish: Publish) -> None:
        parsed = parse_device_topic(message.topic)
        if parsed is None:  # the filter admits only device topics; a malformed id has no one to answer
            return
        device_id = parsed[0]
        reply = await answer(self.intake, device_id, message.payload, ReadingSource.MQTT)
        await publish(ack_topic(device_id), self._answer(reply.message_id, reply.status, message.received_at,
                                                         reason=reply.reason, field=reply.field))

    async def on_refused(self, refusal: MqttRefusal, publish: Publish) -> None:
        """Too large to be read: counted with the intake's refusals, and answered so the device stops sending it."""
        parsed = parse_device_topic(refusal.topic)
        if parsed is None:
            return
        self.intake.refused[RefusalReason.OVERSIZED] += 1
        await publish(ack_topic(parsed[0]), self._answer(None, "rejected", utcnow(), reason="payload_too_large"))
