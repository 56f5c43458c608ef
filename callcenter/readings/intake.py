"""The reading intake every device transport calls (MQTT now; signed HTTP later): socket-free, with the alarm
intake's delivery contract (``alarms.intake``).

A transport hands over the device it authenticated and the message's bytes; ``ReadingIntake.receive_message``
validates them, stores the reading and applies its rules (``services.store_reading``: a vital-sign alarm, a trend's
follow-up order), commits, and only then returns the ``Receipt`` — the transport acknowledges after that:

- the device must be registered and not retired (``unknown_device``, ``device_retired``);
- the message must be a JSON object of at most ``MAX_MESSAGE_BYTES`` with the envelope of
  ``schemas.DeviceReadingMessage`` and its type's ``values`` (``malformed``, ``oversized``, ``invalid_field``
  naming the field, dotted: ``values.systolic_mmhg``); its time not beyond CC_ALARM_CLOCK_SKEW_SECONDS in the
  future (``future_time``) nor older than the readings' retention (``too_old``: it would be deleted at once);
- a message id the device used before returns that message's receipt again (``duplicate``): nothing is stored.

A refusal raises ``ReadingRefused`` (an ``Invalid``) with its reason and the field to blame; nothing of the message
is stored, and the refusal is counted by reason (``/healthz``'s ``reading_intake`` check).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import enum
from collections.abc import Callable
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import ApiError, Invalid
from callcenter.api.registry import parse_json_body
from callcenter.api.schemas import MAX_INT
from callcenter.audit.services import Actor
from callcenter.contract import Check
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.devices.models import Device, DeviceStatus
from callcenter.elders.models import Elder
from callcenter.logs import get_logger
from callcenter.readings.models import Reading, ReadingMessage, ReadingSource, ReadingType
from callcenter.readings.schemas import DeviceReadingMessage, parse_values
from callcenter.readings.services import store_reading

log = get_logger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024
DEVICE_SOURCES = frozenset({ReadingSource.MQTT, ReadingSource.HTTP})


class RefusalReason(enum.StrEnum):
    MALFORMED = "malformed"  # not a JSON object
    OVERSIZED = "oversized"  # longer than MAX_MESSAGE_BYTES
    INVALID_FIELD = "invalid_field"  # a field missing, unknown, of the wrong type or out of its range
    FUTURE_TIME = "future_time"  # measured_at beyond the allowed clock skew
    TOO_OLD = "too_old"  # measured_at older than the readings are kept
    UNKNOWN_DEVICE = "unknown_device"
    DEVICE_RETIRED = "device_retired"


class ReadingRefused(Invalid):
    """The message was not taken: ``reason`` says why, ``field`` what to fix. Nothing was stored."""

    def __init__(self, reason: RefusalReason, message: str, *, field: str | None = None,
                 details: list[dict[str, str | None]] | None = None) -> None:
        super().__init__(message, field=field, code=f"reading_{reason.value}", details=details)
        self.reason = reason


@dataclasses.dataclass(frozen=True, slots=True)
class ParsedReading:
    message: DeviceReadingMessage
    values: dict[str, object]  # the type's values, checked


@dataclasses.dataclass(frozen=True, slots=True)
class Receipt:
    """What the transport acknowledges to the device: committed when returned."""

    device_id: int
    message_id: str
    reading_id: int
    alarm_id: int | None
    follow_up_order_id: int | None
    duplicate: bool = False


def parse_message(raw: bytes) -> ParsedReading:
    """The message's bytes as a reading with checked values, or ``ReadingRefused`` naming the field."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ReadingRefused(RefusalReason.OVERSIZED, f"the message is {len(raw)} bytes; at most {MAX_MESSAGE_BYTES}")
    try:
        message: DeviceReadingMessage = parse_json_body(DeviceReadingMessage, raw)  # type: ignore[assignment]
        values = parse_values(message.type, message.values, message.measured_at)
    except RecursionError:
        raise ReadingRefused(RefusalReason.MALFORMED, "the message is nested too deeply") from None
    except Invalid as invalid:
        if invalid.field is None:  # the whole message is wrong: not an object
            raise ReadingRefused(RefusalReason.MALFORMED, "the message must be a JSON object") from None
        raise ReadingRefused(RefusalReason.INVALID_FIELD, invalid.message, field=invalid.field,
                             details=invalid.details) from None
    except ApiError as malformed:
        raise ReadingRefused(RefusalReason.MALFORMED, malformed.message) from None
    return ParsedReading(message, values)


def check_time(measured_at: dt.datetime, *, now: dt.datetime, clock_skew: dt.timedelta,
               retention: dt.timedelta) -> None:
    if measured_at > now + clock_skew:
        raise ReadingRefused(RefusalReason.FUTURE_TIME, f"measured_at is {measured_at.isoformat()}, later than the "
                             f"platform's clock allows ({int(clock_skew.total_seconds())} s ahead)",
                             field="measured_at")
    if measured_at < now - retention:
        raise ReadingRefused(RefusalReason.TOO_OLD, f"measured_at is {measured_at.isoformat()}, older than readings "
                             f"are kept ({retention.days} days)", field="measured_at")


async def _device(session: AsyncSession, device_id: int) -> Device:
    if not 1 <= device_id <= MAX_INT:
        raise ReadingRefused(RefusalReason.UNKNOWN_DEVICE, f"no device {device_id}", field="device_id")
    # Locked (PostgreSQL): one device's messages are taken one at a time, so a repeat arriving while its first is
    # being stored waits and finds it. SQLite serialises writers anyway.
    device = await session.get(Device, device_id, with_for_update=True)
    if device is None:
        raise ReadingRefused(RefusalReason.UNKNOWN_DEVICE, f"no device {device_id}", field="device_id")
    if device.status is DeviceStatus.RETIRED:
        raise ReadingRefused(RefusalReason.DEVICE_RETIRED, f"device {device_id} is retired", field="device_id")
    return device


async def receive(session: AsyncSession, device_id: int, source: ReadingSource, parsed: ParsedReading, *,
                  now: dt.datetime, clock_skew: dt.timedelta, retention: dt.timedelta, merge_window: dt.timedelta,
                  tz: ZoneInfo) -> Receipt:
    """Take one device message in the caller's transaction; ``ReadingRefused`` with nothing added if it cannot."""
    if source not in DEVICE_SOURCES:
        raise ValueError(f"{source.value} is not a device transport")
    message = parsed.message
    check_time(message.measured_at, now=now, clock_skew=clock_skew, retention=retention)
    device = await _device(session, device_id)
    seen = await session.get(ReadingMessage, (device.id, message.message_id))
    if seen is not None:
        first = await session.get(Reading, (seen.reading_id, seen.measured_at))
        return Receipt(device.id, seen.message_id, seen.reading_id, first.alarm_id if first else None, None,
                       duplicate=True)
    elder = await session.get(Elder, device.elder_id) if device.elder_id is not None else None
    stored = await store_reading(
        session, elder=elder, device=device, reading_type=ReadingType(message.type), measured_at=message.measured_at,
        values=dict(parsed.values), details={"extra": message.extra} if message.extra else None, source=source,
        actor=Actor(None, f"device {device.id} ({source.value})"), now=now, tz=tz, merge_window=merge_window)
    session.add(ReadingMessage(device_id=device.id, message_id=message.message_id, reading_id=stored.reading.id,
                               measured_at=message.measured_at, received_at=now))
    await session.flush()
    return Receipt(device.id, message.message_id, stored.reading.id, stored.alarm.id if stored.alarm else None,
                   stored.follow_up.id if stored.follow_up else None)


class ReadingIntake:
    """The intake as a service: its own transaction per message, committed before the receipt is returned, and
    the counts of what it took and refused (by reason) for /healthz. One per platform."""

    def __init__(self, db: Database, *, clock_skew: dt.timedelta, retention: dt.timedelta,
                 merge_window: dt.timedelta, tz: ZoneInfo) -> None:
        self.db = db
        self.clock_skew = clock_skew
        self.retention = retention
        self.merge_window = merge_window
        self.tz = tz
        self.taken: collections.Counter[str] = collections.Counter()  # stored, duplicate, alarms, follow_ups
        self.refused: collections.Counter[RefusalReason] = collections.Counter()
        self._alarm_listeners: list[Callable[[], None]] = []

    def on_alarm(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` once a message that raised (or was counted on) an alarm is committed: the alarm
        distributor's wake-up, so a platform-raised alarm is offered at once, not at the next sweep."""
        self._alarm_listeners.append(listener)

    def alarm_committed(self) -> None:
        """A reading that raised (or was counted on) an alarm was committed outside this intake (entered by hand):
        the listeners are told as for a device's."""
        for listener in self._alarm_listeners:
            listener()

    async def receive_message(self, device_id: int, raw: bytes, source: ReadingSource) -> Receipt:
        """A transport's message as it came (its bytes). ``ReadingRefused`` for a message that will never be
        taken; a database failure propagates (nothing was acknowledged, the device sends it again)."""
        try:
            parsed = parse_message(raw)
            async with self.db.transaction() as session:
                receipt = await receive(session, device_id, source, parsed, now=utcnow(), clock_skew=self.clock_skew,
                                        retention=self.retention, merge_window=self.merge_window, tz=self.tz)
        except ReadingRefused as refused:
            self.refused[refused.reason] += 1
            log.warning("reading.refused", reason=refused.reason.value, field=refused.field, device_id=device_id,
                        source=source.value)
            raise
        self.taken["duplicate" if receipt.duplicate else "stored"] += 1
        if not receipt.duplicate:
            self.taken["alarms"] += receipt.alarm_id is not None
            self.taken["follow_ups"] += receipt.follow_up_order_id is not None
        log.info("reading.received", device_id=device_id, source=source.value, reading_id=receipt.reading_id,
                 alarm=receipt.alarm_id is not None, duplicate=receipt.duplicate)
        if not receipt.duplicate and receipt.alarm_id is not None:
            self.alarm_committed()
        return receipt

    async def health_checks(self) -> dict[str, Check]:
        refused = sum(self.refused.values())
        received = self.taken["stored"] + self.taken["duplicate"]
        facts: dict[str, object] = {"received": received, "stored": self.taken["stored"],
                                    "duplicates": self.taken["duplicate"], "alarms": self.taken["alarms"],
                                    "follow_ups": self.taken["follow_ups"], "refused": refused}
        facts |= {f"refused_{reason.value}": self.refused[reason] for reason in RefusalReason}
        # Refusals are the devices' fault (a misconfigured gateway, a forged message): counted, not a failure.
        return {"reading_intake": Check(True, f"{received} reading messages taken, {refused} refused since start",
                                        facts=facts)}


READING_INTAKE = web.AppKey("reading_intake", ReadingIntake)
