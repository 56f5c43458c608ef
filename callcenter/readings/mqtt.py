"""Readings over MQTT (docs/device-protocol.md): the messages on ``cc/devices/<id>/reading`` go to the intake in
batches (what arrived while the intake worked on the last: ``contract.on_mqtt_batch``, at most ``MAX_BATCH``), and
each device is answered on ``cc/devices/<id>/ack`` only once the intake has committed its message ("stored"), or
refused it for good ("rejected", with the reason and the field to fix) — as alarms are (``alarms.mqtt``). A
database failure answers nothing: the devices keep their messages and send them again, and the message ids make the
repeats harmless."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from zoneinfo import ZoneInfo

from callcenter.contract import MqttSubscription, on_mqtt_batch
from callcenter.db.base import utcnow
from callcenter.logs import get_logger
from callcenter.readings.intake import ReadingIntake, ReadingRefused, Receipt, RefusalReason
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

log = get_logger(__name__)

# A batch is one transaction; SQLite's writer and the event loop are shared with the red button, so a batch is kept
# short enough (tens of milliseconds) not to hold either long. Measured (docs/performance.md): 200 stored 709/s with
# 2,000/s offered but added 175 ms p95 to an SOS's answer → queue at 5 calls/s; 50 stored 405/s, 101 ms; 100 is
# between (559/s, 122 ms).
MAX_BATCH = 100
BACKLOG_REST = 1.0  # with a backlog, the pause after a batch as a share of the batch's own time
ANSWERS_IN_FLIGHT = 4  # batches whose answers await the broker's confirmation while the intake goes on

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


def answer_of(outcome: Receipt | ReadingRefused, raw: bytes) -> DeviceAnswer:
    if isinstance(outcome, ReadingRefused):
        return DeviceAnswer(message_id_of(raw), "rejected", reason=ACK_REASONS[outcome.reason],
                            field=outcome.field if outcome.reason in _NAMES_FIELD else None)
    return DeviceAnswer(outcome.message_id, "stored")


async def answer(intake: ReadingIntake, device_id: int, raw: bytes, source: ReadingSource) -> DeviceAnswer:
    """The intake's verdict on one reading from ``device_id`` (authenticated by the transport) as its answer:
    ``stored`` once committed, ``rejected`` with the protocol's reason; a database failure propagates (no answer)."""
    try:
        receipt: Receipt | ReadingRefused = await intake.receive_message(device_id, raw, source)
    except ReadingRefused as refused:
        receipt = refused
    return answer_of(receipt, raw)


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
        self._answer_slots = asyncio.Semaphore(ANSWERS_IN_FLIGHT)
        self._answering: set[asyncio.Task[None]] = set()

    def subscription(self) -> MqttSubscription:
        return on_mqtt_batch(device_filter(READING), self.on_messages, max_batch=MAX_BATCH,
                             on_refused=self.on_refused, telemetry=True)

    def _answer(self, message_id: str | None, status: str, received_at: dt.datetime, *, reason: str | None = None,
                field: str | None = None) -> bytes:
        return ack_payload(READING, message_id, status, received_at, self.tz, reason=reason, field=field)

    async def on_messages(self, messages: list[MqttMessage], publish: Publish) -> None:
        """One batch: taken in one transaction, then every device answered (the answers go out together, each
        confirmed by the broker, while the next batch is taken; one that fails leaves its device to send again)."""
        batch = []
        for message in messages:
            parsed = parse_device_topic(message.topic)
            if parsed is not None:  # the filter admits only device topics; a malformed id has no one to answer
                batch.append((parsed[0], message))
        if not batch:
            return
        started = time.monotonic()
        outcomes = await self.intake.receive_batch([(device_id, message.payload) for device_id, message in batch],
                                                   ReadingSource.MQTT)
        took = time.monotonic() - started
        answers = []
        for (device_id, message), outcome in zip(batch, outcomes, strict=True):
            if outcome is None:  # not taken (the batch's failure, retried alone, failed again): no answer
                continue
            reply = answer_of(outcome, message.payload)
            answers.append((ack_topic(device_id), self._answer(reply.message_id, reply.status, message.received_at,
                                                               reason=reply.reason, field=reply.field)))
        # The answers go out while the next batch is taken: waiting for the broker to confirm them first would
        # leave the intake idle for a round trip per batch. Bounded: with ANSWERS_IN_FLIGHT batches of answers
        # unconfirmed, the intake waits (a broker that stops confirming slows the intake, it does not fill memory).
        await self._answer_slots.acquire()
        task = asyncio.create_task(self._send_answers(answers, publish))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)
        if len(messages) >= MAX_BATCH:
            # A full batch means a backlog: the intake would take the whole event loop and SQLite's writer. It rests
            # as long again (at most half of both for telemetry), so calls and alarms keep their turn.
            await asyncio.sleep(took * BACKLOG_REST)

    async def _send_answers(self, answers: list[tuple[str, bytes]], publish: Publish) -> None:
        try:
            results = await asyncio.gather(*(publish(topic, payload) for topic, payload in answers),
                                           return_exceptions=True)
        finally:
            self._answer_slots.release()
        failed = [result for result in results if isinstance(result, BaseException)]
        if failed:  # each such device sends its reading again; its message id makes that harmless
            log.warning("readings.answers_failed", failed=len(failed), answers=len(answers),
                        error=f"{type(failed[0]).__name__}: {failed[0]}"[:300])

    async def on_refused(self, refusal: MqttRefusal, publish: Publish) -> None:
        """Too large to be read: counted with the intake's refusals, and answered so the device stops sending it."""
        parsed = parse_device_topic(refusal.topic)
        if parsed is None:
            return
        self.intake.refused[RefusalReason.OVERSIZED] += 1
        await publish(ack_topic(parsed[0]), self._answer(None, "rejected", utcnow(), reason="payload_too_large"))
