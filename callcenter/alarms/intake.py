"""The alarm intake every device transport calls (MQTT now; signed HTTP and SCAIP later): socket-free.

A transport hands over the device it authenticated and the message's bytes; ``AlarmIntake.receive_message``
validates them, stores the alarm and its work order, commits, and only then returns the ``Receipt`` — the transport
acknowledges the device after that, never before (at-least-once from the device, exactly-once alarms):

- the device must be registered and not retired (``unknown_device``, ``device_retired``);
- the message must be a JSON object of at most ``MAX_MESSAGE_BYTES`` with the fields of
  ``schemas.DeviceAlarmMessage``, of their types (``malformed``, ``oversized``, ``invalid_field`` naming the field),
  its time not beyond CC_ALARM_CLOCK_SKEW_SECONDS in the future (``future_time``);
- a message id the device used before returns that message's receipt again (``duplicate``): nothing is stored;
- a repeat of the device's alarm of the same type within CC_ALARM_MERGE_SECONDS of its last one, while that alarm
  is not resolved, is counted on it (``merged``: the repeat count, the last time, the more severe severity, the
  newest position), never a second alarm;
- otherwise a new alarm with its emergency work order (``stored``).

While the database is down or stalled the device is not kept waiting, and nothing is lost: a message the intake
cannot store within CC_ALARM_INTAKE_SECONDS (retrying a locked or lost database meanwhile) is appended to the
alarms' local journal (``callcenter.journal``: fsynced before the append returns) and acknowledged ``journaled``,
which the transports answer as ``stored`` (docs/device-protocol.md: "committed to the database, or appended to the
platform's local journal"). Once anything waits in the journal, later messages go behind it, so they are stored in
the order they arrived; the journal is replayed through the same ``receive`` as soon as the database answers,
with each message's own receipt time (so merging and the clock check judge it as they would have then). A repeat
journaled twice is stored once: its message id. What cannot be judged without the database (an unknown or retired
device) is refused at the replay: logged and counted (``refused_after_journal``), as it would have been live.

A refusal raises ``AlarmRefused`` (an ``Invalid``: 422 on HTTP) with its reason and the field to blame; nothing of
the message is stored, and the refusal is counted by reason (``/healthz``'s ``alarm_intake`` check).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import enum
import functools
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.alarms.models import Alarm, AlarmMessage, AlarmSource, AlarmState
from callcenter.alarms.schemas import DeviceAlarmMessage
from callcenter.alarms.services import more_severe, raise_alarm, severity_for
from callcenter.api.errors import ApiError, Invalid
from callcenter.api.registry import parse_json_body
from callcenter.api.schemas import MAX_INT
from callcenter.audit.services import Actor
from callcenter.contract import Check
from callcenter.db.base import utcnow
from callcenter.db.retry import is_transient_or_race, with_retry
from callcenter.db.session import Database
from callcenter.devices.models import Device, DeviceStatus
from callcenter.elders.models import Elder
from callcenter.journal import Journal
from callcenter.logs import get_logger

log = get_logger(__name__)

# A whole message, extra included (the extra alone is bounded by schemas.MAX_EXTRA_BYTES).
MAX_MESSAGE_BYTES = 16 * 1024
DEVICE_SOURCES = frozenset({AlarmSource.MQTT, AlarmSource.HTTP, AlarmSource.SCAIP})
# The alarms' journal's one entry kind: a device message acknowledged while the database was away.
ALARM_MESSAGE = "alarm_message"


class RefusalReason(enum.StrEnum):
    MALFORMED = "malformed"  # not a JSON object
    OVERSIZED = "oversized"  # longer than MAX_MESSAGE_BYTES
    INVALID_FIELD = "invalid_field"  # a field missing, unknown, of the wrong type or out of its range
    FUTURE_TIME = "future_time"  # occurred_at beyond the allowed clock skew
    UNKNOWN_DEVICE = "unknown_device"
    DEVICE_RETIRED = "device_retired"


class AlarmRefused(Invalid):
    """The message was not taken: ``reason`` says why, ``field`` what to fix. Nothing was stored."""

    def __init__(self, reason: RefusalReason, message: str, *, field: str | None = None,
                 details: list[dict[str, str | None]] | None = None) -> None:
        super().__init__(message, field=field, code=f"alarm_{reason.value}", details=details)
        self.reason = reason


class ReceiptOutcome(enum.StrEnum):
    STORED = "stored"  # a new alarm
    MERGED = "merged"  # a repeat counted on an open alarm
    JOURNALED = "journaled"  # the database was away: kept in the local journal, stored in order once it answers


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceAlarm:
    """A message from an authenticated device: the transport knows the device (its credentials, its topic)."""

    device_id: int
    source: AlarmSource
    message: DeviceAlarmMessage


@dataclasses.dataclass(frozen=True, slots=True)
class Receipt:
    """What the transport acknowledges to the device: committed (or journaled) when returned. A journaled message
    has no alarm yet: ``alarm_id`` and ``alarm_number`` are None."""

    device_id: int
    message_id: str
    alarm_id: int | None
    alarm_number: str | None
    work_order_id: int | None
    outcome: ReceiptOutcome
    duplicate: bool = False  # the message was received before: this is its first receipt again


def parse_message(raw: bytes) -> DeviceAlarmMessage:
    """The message's bytes as a ``DeviceAlarmMessage``, or ``AlarmRefused`` naming the field."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise AlarmRefused(RefusalReason.OVERSIZED, f"the message is {len(raw)} bytes; at most {MAX_MESSAGE_BYTES}")
    try:
        return parse_json_body(DeviceAlarmMessage, raw)  # type: ignore[return-value]
    except RecursionError:  # nested deeper than the parser goes
        raise AlarmRefused(RefusalReason.MALFORMED, "the message is nested too deeply") from None
    except Invalid as invalid:
        named = invalid.message if invalid.field is None or invalid.message.startswith(invalid.field) \
            else f"{invalid.field}: {invalid.message}"  # the message alone says what to fix
        raise AlarmRefused(RefusalReason.INVALID_FIELD, named, field=invalid.field, details=invalid.details) from None
    except ApiError as malformed:
        raise AlarmRefused(RefusalReason.MALFORMED, malformed.message) from None


def device_actor(alarm: DeviceAlarm) -> Actor:
    """The audit log's actor for what a device's message did."""
    return Actor(None, f"device {alarm.device_id} ({alarm.source.value})")


async def _device(session: AsyncSession, device_id: int) -> Device:
    if not 1 <= device_id <= MAX_INT:
        raise AlarmRefused(RefusalReason.UNKNOWN_DEVICE, f"no device {device_id}", field="device_id")
    # Locked (PostgreSQL): one device's messages are taken one at a time, so two repeats arriving together are
    # merged, not raised twice. SQLite serialises writers anyway.
    device = await session.get(Device, device_id, with_for_update=True)
    if device is None:
        raise AlarmRefused(RefusalReason.UNKNOWN_DEVICE, f"no device {device_id}", field="device_id")
    if device.status is DeviceStatus.RETIRED:
        raise AlarmRefused(RefusalReason.DEVICE_RETIRED, f"device {device_id} is retired", field="device_id")
    return device


async def _receipt_of(session: AsyncSession, alarm: DeviceAlarm, message: AlarmMessage) -> Receipt:
    first = await session.get(Alarm, message.alarm_id)
    assert first is not None  # the message's alarm: a foreign key
    return Receipt(alarm.device_id, message.message_id, first.id, first.number, first.work_order_id,
                   ReceiptOutcome.MERGED if message.merged else ReceiptOutcome.STORED, duplicate=True)


def check_clock(message: DeviceAlarmMessage, *, now: dt.datetime, clock_skew: dt.timedelta) -> None:
    """``future_time`` for an alarm dated beyond the allowed skew ahead of ``now`` (judged without the database)."""
    if message.occurred_at > now + clock_skew:
        raise AlarmRefused(RefusalReason.FUTURE_TIME, f"occurred_at is {message.occurred_at.isoformat()}, later "
                           f"than the platform's clock allows ({int(clock_skew.total_seconds())} s ahead)",
                           field="occurred_at")


async def receive(session: AsyncSession, alarm: DeviceAlarm, *, now: dt.datetime, merge_window: dt.timedelta,
                  clock_skew: dt.timedelta, tz: ZoneInfo) -> Receipt:
    """Take one device message in the caller's transaction (see the module's docstring); ``AlarmRefused`` if it
    cannot be, with nothing added to the session."""
    if alarm.source not in DEVICE_SOURCES:
        raise ValueError(f"{alarm.source.value} is not a device transport")
    message = alarm.message
    check_clock(message, now=now, clock_skew=clock_skew)
    device = await _device(session, alarm.device_id)
    seen = await session.scalar(select(AlarmMessage).where(AlarmMessage.device_id == device.id,
                                                           AlarmMessage.message_id == message.message_id))
    if seen is not None:
        return await _receipt_of(session, alarm, seen)
    severity = severity_for(message.type, message.severity)
    location = message.position.as_location() if message.position is not None else None
    open_alarm = None
    if merge_window > dt.timedelta(0):
        open_alarm = await session.scalar(
            select(Alarm).where(Alarm.device_id == device.id, Alarm.type == message.type,
                                Alarm.state != AlarmState.RESOLVED, Alarm.last_received_at >= now - merge_window)
            .order_by(Alarm.id.desc()).limit(1).with_for_update())
    if open_alarm is not None:
        open_alarm.repeat_count += 1
        open_alarm.last_received_at = now
        open_alarm.severity = more_severe(open_alarm.severity, severity)
        if location is not None:
            open_alarm.location = location
        target, outcome = open_alarm, ReceiptOutcome.MERGED
    else:
        elder = await session.get(Elder, device.elder_id) if device.elder_id is not None else None
        target = await raise_alarm(session, alarm_type=message.type, severity=severity, source=alarm.source,
                                   elder=elder, device=device, occurred_at=message.occurred_at, location=location,
                                   payload=message.extra, actor=device_actor(alarm), now=now, tz=tz,
                                   device_message_id=message.message_id)
        outcome = ReceiptOutcome.STORED
    session.add(AlarmMessage(device_id=device.id, message_id=message.message_id, alarm_id=target.id,
                             merged=outcome is ReceiptOutcome.MERGED, received_at=now))
    await session.flush()
    return Receipt(device.id, message.message_id, target.id, target.number, target.work_order_id, outcome)


class AlarmIntake:
    """The intake as a service: its own transaction per message, committed (or journaled, with a ``journal``)
    before the receipt is returned, and the counts of what it took and refused (by reason) for /healthz. One per
    platform."""

    def __init__(self, db: Database, *, merge_window: dt.timedelta, clock_skew: dt.timedelta, tz: ZoneInfo,
                 journal: Journal | None = None, deadline: float = 3.0) -> None:
        self.db = db
        self.merge_window = merge_window
        self.clock_skew = clock_skew
        self.tz = tz
        self.journal = journal
        self.deadline = deadline  # CC_ALARM_INTAKE_SECONDS: how long a device waits before its message is journaled
        self.taken: collections.Counter[str] = collections.Counter()  # stored, merged, duplicate, journaled, replayed
        self.refused: collections.Counter[RefusalReason] = collections.Counter()
        self.refused_after_journal = 0
        self._stored_listeners: list[Callable[[Receipt], None]] = []

    def on_stored(self, listener: Callable[[Receipt], None]) -> None:
        """Call ``listener`` with each receipt of a new alarm, once it is committed (the distributor's wake-up)."""
        self._stored_listeners.append(listener)

    async def receive_message(self, device_id: int, raw: bytes, source: AlarmSource) -> Receipt:
        """A transport's message as it came (its bytes); see ``receive``."""
        try:
            message = parse_message(raw)
        except AlarmRefused as refused:
            self._refused(device_id, source, refused)
            raise
        return await self.receive(DeviceAlarm(device_id, source, message))

    async def receive(self, alarm: DeviceAlarm) -> Receipt:
        """Store the alarm (or find it stored) and commit; the receipt is the transport's go to acknowledge.
        ``AlarmRefused`` for a message that will never be taken. Without a journal a database failure propagates
        (nothing was acknowledged, the device sends it again); with one, a database that does not answer within
        the deadline gets the message journaled instead (see the module's docstring)."""
        now = utcnow()
        try:
            if self.journal is None:
                receipt = await self._store(alarm, now)
            else:
                check_clock(alarm.message, now=now, clock_skew=self.clock_skew)
                receipt = await self._store_or_journal(alarm, now, self.journal)
        except AlarmRefused as refused:
            self._refused(alarm.device_id, alarm.source, refused)
            raise
        self.taken["duplicate" if receipt.duplicate else receipt.outcome.value] += 1
        if receipt.outcome is ReceiptOutcome.STORED and not receipt.duplicate:
            self._announce(receipt)
        log.info("alarm.received", alarm=receipt.alarm_number, type=alarm.message.type.value,
                 device_id=alarm.device_id, source=alarm.source.value, outcome=receipt.outcome.value,
                 duplicate=receipt.duplicate)
        return receipt

    async def _store(self, alarm: DeviceAlarm, now: dt.datetime) -> Receipt:
        async with self.db.transaction() as session:
            return await receive(session, alarm, now=now, merge_window=self.merge_window,
                                 clock_skew=self.clock_skew, tz=self.tz)

    async def _store_or_journal(self, alarm: DeviceAlarm, now: dt.datetime, journal: Journal) -> Receipt:
        if journal.backlog:
            # The database is known to be away (or just back, with older messages still to store): behind them.
            return await self._journaled(alarm, now, journal)
        try:
            return await with_retry(functools.partial(self._store, alarm, now), deadline=self.deadline,
                                    retry_on=is_transient_or_race)
        except AlarmRefused:
            raise
        except Exception as error:
            if not isinstance(error, TimeoutError) and not is_transient_or_race(error):
                raise
            # An attempt still in flight may yet commit: the replay then finds the message id and stores nothing.
            log.error("alarm.intake_deadline", device_id=alarm.device_id, source=alarm.source.value,
                      deadline=self.deadline, error=f"{type(error).__name__}: {str(error)[-200:]}")
            return await self._journaled(alarm, now, journal)

    async def _journaled(self, alarm: DeviceAlarm, now: dt.datetime, journal: Journal) -> Receipt:
        await journal.append(ALARM_MESSAGE, {"device_id": alarm.device_id, "source": alarm.source.value,
                                             "received_at": now.isoformat(),
                                             "message": alarm.message.model_dump_json()})
        return Receipt(alarm.device_id, alarm.message.message_id, None, None, None, ReceiptOutcome.JOURNALED)

    async def replay_entry(self, kind: str, payload: dict[str, Any]) -> None:
        """One journaled message, stored as it would have been when it arrived (``callcenter.journal.Apply``). A
        database failure propagates: the journal keeps the entry and tries again."""
        if kind != ALARM_MESSAGE:
            log.error("journal.unknown_entry", journal="alarms", kind=kind)
            return
        alarm = DeviceAlarm(int(payload["device_id"]), AlarmSource(payload["source"]),
                            parse_message(str(payload["message"]).encode()))
        received_at = dt.datetime.fromisoformat(str(payload["received_at"]))
        try:
            receipt = await self._store(alarm, received_at)
        except AlarmRefused as refused:
            # Acknowledged already; what the database alone could judge (the device) refuses it now, for good.
            self.refused_after_journal += 1
            log.error("alarm.refused_after_journal", reason=refused.reason.value, field=refused.field,
                      device_id=alarm.device_id, source=alarm.source.value)
            return
        self.taken["replayed"] += 1
        if receipt.outcome is ReceiptOutcome.STORED and not receipt.duplicate:
            self._announce(receipt)
        log.warning("alarm.replayed", alarm=receipt.alarm_number, type=alarm.message.type.value,
                    device_id=alarm.device_id, source=alarm.source.value, outcome=receipt.outcome.value,
                    duplicate=receipt.duplicate)

    def _announce(self, receipt: Receipt) -> None:
        """A new alarm is committed (live, or replayed from the journal): tell the listeners (the distributor)."""
        for listener in self._stored_listeners:
            listener(receipt)

    def _refused(self, device_id: int, source: AlarmSource, refused: AlarmRefused) -> None:
        self.refused[refused.reason] += 1
        log.warning("alarm.refused", reason=refused.reason.value, field=refused.field, device_id=device_id,
                    source=source.value)

    async def health_checks(self) -> dict[str, Check]:
        refused = sum(self.refused.values())
        received = sum(self.taken.values()) - self.taken["replayed"]  # a replayed message was counted journaled
        facts: dict[str, object] = {"received": received, "stored": self.taken["stored"],
                                    "merged": self.taken["merged"], "duplicates": self.taken["duplicate"],
                                    "journaled": self.taken["journaled"], "replayed": self.taken["replayed"],
                                    "refused": refused, "refused_after_journal": self.refused_after_journal}
        facts |= {f"refused_{reason.value}": self.refused[reason] for reason in RefusalReason}
        # Refusals are the devices' fault (a misconfigured gateway, a forged message): counted, not a failure.
        return {"alarm_intake": Check(True, f"{received} alarm messages taken, {refused} refused since start",
                                      facts=facts)}


ALARM_INTAKE = web.AppKey("alarm_intake", AlarmIntake)

