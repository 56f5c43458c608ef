"""Alarms over MQTT (docs/device-protocol.md): each message on ``cc/devices/<id>/alarm`` goes to the intake, and
the device is answered on ``cc/devices/<id>/ack`` only once the intake has committed it ("stored"), or refused it
for good ("rejected", with the reason and the field to fix). A database failure answers nothing: the device keeps
the message and sends it again, and its message id makes the repeat harmless."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from callcenter.alarms.answers import ACK_REASONS, answer
from callcenter.alarms.intake import AlarmIntake, RefusalReason
from callcenter.alarms.models import AlarmSource
from callcenter.contract import MqttSubscription, on_mqtt
from callcenter.db.base import utcnow
from callcenter.telephony.device_topics import ALARM, ack_payload, ack_topic, device_filter, parse_device_topic
from callcenter.telephony.mqtt import MqttMessage, MqttRefusal, Publish

__all__ = ["ACK_REASONS", "MqttAlarms"]


class MqttAlarms:
    def __init__(self, intake: AlarmIntake, tz: ZoneInfo) -> None:
        self.intake = intake
        self.tz = tz

    def subscription(self) -> MqttSubscription:
        return on_mqtt(device_filter(ALARM), self.on_message, on_refused=self.on_refused)

    def _answer(self, message_id: str | None, status: str, received_at: dt.datetime, *, reason: str | None = None,
                field: str | None = None) -> bytes:
        return ack_payload(ALARM, message_id, status, received_at, self.tz, reason=reason, field=field)

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
        self.intake.refused[RefusalReason.OVERSIZED] += 1
        await publish(ack_topic(parsed[0]), self._answer(None, "rejected", utcnow(), reason="payload_too_large"))
