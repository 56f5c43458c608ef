"""What the alarms domain answers a device's alarm message, whatever carried it (MQTT, the signed HTTP ingest):
``stored`` once the intake has committed it, ``rejected`` with the protocol's reason and field once the intake has
refused it for good (docs/device-protocol.md, "Acknowledgement"). A database failure propagates: no answer, the
device (or its gateway) sends the message again, and its message id makes the repeat harmless."""

from __future__ import annotations

from callcenter.alarms.intake import AlarmIntake, AlarmRefused, RefusalReason
from callcenter.alarms.models import AlarmSource
from callcenter.telephony.device_topics import DeviceAnswer, message_id_of

# The protocol's rejection reasons (docs/device-protocol.md, "Acknowledgement") for the intake's.
ACK_REASONS = {
    RefusalReason.MALFORMED: "not_json",
    RefusalReason.OVERSIZED: "payload_too_large",
    RefusalReason.INVALID_FIELD: "invalid",
    RefusalReason.FUTURE_TIME: "invalid",
    RefusalReason.UNKNOWN_DEVICE: "unknown_device",
    RefusalReason.DEVICE_RETIRED: "unknown_device",
}
_NAMES_A_FIELD = (RefusalReason.INVALID_FIELD, RefusalReason.FUTURE_TIME)


def rejected(refused: AlarmRefused, raw: bytes) -> DeviceAnswer:
    return DeviceAnswer(message_id_of(raw), "rejected", reason=ACK_REASONS[refused.reason],
                        field=refused.field if refused.reason in _NAMES_A_FIELD else None)


async def answer(intake: AlarmIntake, device_id: int, raw: bytes, source: AlarmSource) -> DeviceAnswer:
    """The intake's verdict on one message from ``device_id`` (authenticated by the transport) as its answer."""
    try:
        receipt = await intake.receive_message(device_id, raw, source)
    except AlarmRefused as refused:
        return rejected(refused, raw)
    return DeviceAnswer(receipt.message_id, "stored")


class AlarmAnswers:
    """The alarms' intake of device messages of kind ``alarm`` for other transports
    (``contract.on_device_message``): the channel names the alarm's source (``http``, ``scaip``)."""

    def __init__(self, intake: AlarmIntake) -> None:
        self.intake = intake

    async def __call__(self, device_id: int, raw: bytes, channel: str) -> DeviceAnswer:
        return await answer(self.intake, device_id, raw, AlarmSource(channel))
