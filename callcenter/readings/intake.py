"""The reading intake every device transport calls (MQTT now; signed HTTP later): socket-free, with the alarm
intake's delivery contract (``alarms.intake``).

A transport hands over the device it authenticated and the message's bytes — one (``ReadingIntake.receive_message``)
or a batch of what has arrived meanwhile (``receive_batch``: one transaction for all, which is what lets the intake
keep up with thousands of readings a second) — and the intake validates them, stores the readings and applies
their rules (``services.store_reading``: a vital-sign alarm, a trend's follow-up order), commits, and only then
returns each ``Receipt`` — the transport acknowledges after that:

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
from collections.abc import Callable, Sequence
from typing import cast
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import ApiError, Invalid
from callcenter.api.registry import parse_json_body
from callcenter.api.schemas import MAX_INT
from callcenter.audit.services import Actor
from callcenter.contract import Check
from callcenter.db.base import utcnow
from callcenter.db.session import Database, DatabaseBusy
from callcenter.devices.models import Device, DeviceStatus
from callcenter.elders.models import Elder
from callcenter.logs import get_logger
from callcenter.readings.models import Reading, ReadingMessage, ReadingSource, ReadingType
from callcenter.readings.schemas import DeviceReadingMessage, parse_values
from callcenter.readings.services import batch_rules, store_reading, trend_settled
from callcenter.readings.thresholds import breaches

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


# What ``receive_many`` makes of each message: its receipt (committed once the caller commits), or its refusal.
Outcome = Receipt | ReadingRefused


def _complete(outcomes: list[Outcome | None]) -> list[Outcome]:
    missing = [index for index, outcome in enumerate(outcomes) if outcome is None]
    if missing:
        raise RuntimeError(f"messages {missing} of the batch were neither taken nor refused")
    return cast(list[Outcome], outcomes)


def _duplicate(receipt: Receipt) -> Receipt:
    return dataclasses.replace(receipt, follow_up_order_id=None, duplicate=True)


async def receive_many(session: AsyncSession, items: Sequence[tuple[int, ParsedReading | ReadingRefused]],
                       source: ReadingSource, *, now: dt.datetime, clock_skew: dt.timedelta,
                       retention: dt.timedelta, merge_window: dt.timedelta, tz: ZoneInfo) -> list[Outcome]:
    """Take device messages (each: the device the transport authenticated, and the message parsed or already
    refused) in the caller's transaction, in their order; one outcome each. A refused message adds nothing.

    A batch costs a few queries whatever its size: its devices and then their elders are locked in one query each
    (in id order, so two batches cannot deadlock: PostgreSQL; SQLite serialises writers), the message ids seen
    before are looked up in one, the elders' limits and open trends in two (``services.batch_rules``), and the
    readings that raise nothing — within their limits, and settling the trend rule without a query — are inserted
    together (one multi-row INSERT … RETURNING). A reading that raises an alarm or must count the elder's week goes
    the whole way of ``services.store_reading`` in its turn, after the readings before it are inserted, so every
    rule sees what a transaction of its own would have seen."""
    if source not in DEVICE_SOURCES:
        raise ValueError(f"{source.value} is not a device transport")
    outcomes: list[Outcome | None] = [None] * len(items)
    wanted: dict[int, ParsedReading] = {}
    for index, (device_id, parsed) in enumerate(items):
        try:
            if isinstance(parsed, ReadingRefused):
                raise parsed
            check_time(parsed.message.measured_at, now=now, clock_skew=clock_skew, retention=retention)
            if not 1 <= device_id <= MAX_INT:
                raise ReadingRefused(RefusalReason.UNKNOWN_DEVICE, f"no device {device_id}", field="device_id")
        except ReadingRefused as refused:
            outcomes[index] = refused
            continue
        wanted[index] = parsed
    device_ids = sorted({items[index][0] for index in wanted})
    # Locked (PostgreSQL): one device's messages are taken one batch at a time, so a repeat arriving while its
    # first is being stored waits and finds it. Only what the batch needs is read (not the sealed columns).
    devices = {row.id: row for row in await session.execute(
        select(Device.id, Device.elder_id, Device.status).where(Device.id.in_(device_ids)).order_by(Device.id)
        .with_for_update())} if device_ids else {}
    for index in list(wanted):
        device_id = items[index][0]
        device = devices.get(device_id)
        if device is None or device.status is DeviceStatus.RETIRED:
            outcomes[index] = ReadingRefused(
                RefusalReason.UNKNOWN_DEVICE if device is None else RefusalReason.DEVICE_RETIRED,
                f"no device {device_id}" if device is None else f"device {device_id} is retired", field="device_id")
            del wanted[index]
    if not wanted:
        return _complete(outcomes)
    seen: dict[tuple[int, str], Receipt] = {}
    message_ids = {parsed.message.message_id for parsed in wanted.values()}
    earlier = list(await session.execute(
        select(ReadingMessage.device_id, ReadingMessage.message_id, ReadingMessage.reading_id,
               ReadingMessage.measured_at)
        .where(ReadingMessage.device_id.in_(device_ids), ReadingMessage.message_id.in_(message_ids))))
    if earlier:
        alarm_of = {row.id: row.alarm_id for row in await session.execute(select(Reading.id, Reading.alarm_id).where(
            Reading.id.in_({row.reading_id for row in earlier}),
            Reading.measured_at.in_({row.measured_at for row in earlier})))}
        seen = {(row.device_id, row.message_id): Receipt(row.device_id, row.message_id, row.reading_id,
                                                         alarm_of.get(row.reading_id), None, duplicate=True)
                for row in earlier}
    elder_ids = sorted({device.elder_id for device in devices.values() if device.elder_id is not None})
    # Locked as ``store_reading`` locks one: an elder's readings are ruled on one batch at a time.
    birth_dates: dict[int, dt.date | None] = {row.id: row.birth_date for row in await session.execute(
        select(Elder.id, Elder.birth_date).where(Elder.id.in_(elder_ids)).order_by(Elder.id)
        .with_for_update())} if elder_ids else {}
    rules = await batch_rules(session, set(birth_dates), today=now.astimezone(tz).date())
    plain: list[tuple[int, dict[str, object]]] = []  # readings that raise nothing, inserted together
    firsts: dict[tuple[int, str], int] = {}  # a message id repeated within the batch → its first's index
    repeats: dict[int, int] = {}

    async def insert_plain() -> None:
        if not plain:
            return
        ids = await _reading_ids(session, len(plain))
        rows = [row | {"id": reading_id} for (_, row), reading_id in zip(plain, ids, strict=True)]
        await session.execute(insert(Reading.__table__), rows)
        for (index, row), reading_id in zip(plain, ids, strict=True):
            outcomes[index] = Receipt(cast(int, row["device_id"]), wanted[index].message.message_id, reading_id,
                                      None, None)
        plain.clear()

    for index, parsed in wanted.items():
        device_id = items[index][0]
        message = parsed.message
        key = (device_id, message.message_id)
        if key in seen:
            outcomes[index] = seen[key]
            continue
        if key in firsts:
            repeats[index] = firsts[key]
            continue
        firsts[key] = index
        elder_id = devices[device_id].elder_id
        elder_id = elder_id if elder_id in birth_dates else None
        reading_type = ReadingType(message.type)
        values = dict(parsed.values)
        details = {"extra": message.extra} if message.extra else None
        limits = rules.limits(elder_id, birth_dates.get(elder_id) if elder_id else None, reading_type)
        if not breaches(values, limits) and (elder_id is None or trend_settled(
                values, message.measured_at, limits, rules.open_trend(elder_id, reading_type))):
            plain.append((index, {"elder_id": elder_id, "device_id": device_id, "type": reading_type,
                                  "source": source, "measured_at": message.measured_at, "values": values,
                                  "details": details, "received_at": now}))
            continue
        # An alarm to raise or merge, or the elder's week to count: the whole way, after the readings before it.
        await insert_plain()
        device = await session.get_one(Device, device_id)
        elder = await session.get_one(Elder, elder_id) if elder_id is not None else None
        stored = await store_reading(
            session, elder=elder, device=device, reading_type=reading_type, measured_at=message.measured_at,
            values=values, details=details, source=source, actor=Actor(None, f"device {device_id} ({source.value})"),
            now=now, tz=tz, merge_window=merge_window, rules=rules)
        outcomes[index] = Receipt(device_id, message.message_id, stored.reading.id,
                                  stored.alarm.id if stored.alarm else None,
                                  stored.follow_up.id if stored.follow_up else None)
    await insert_plain()
    for index, first in repeats.items():
        outcomes[index] = _duplicate(cast(Receipt, outcomes[first]))
    messages = [{"device_id": receipt.device_id, "message_id": receipt.message_id, "reading_id": receipt.reading_id,
                 "measured_at": wanted[index].message.measured_at, "received_at": now}
                for index in firsts.values() for receipt in [cast(Receipt, outcomes[index])]]
    if messages:
        await session.execute(insert(ReadingMessage.__table__), messages)
    await session.flush()  # the trends this batch ended
    return _complete(outcomes)


async def _reading_ids(session: AsyncSession, count: int) -> list[int]:
    """``count`` new reading ids, so a batch's readings go in as one multi-row INSERT without RETURNING (whose
    rows SQLite returns in no promised order). PostgreSQL: from the table's own sequence, as a single-row insert
    takes them. SQLite: after the highest id, as it picks a rowid itself — safe because the transaction holds
    SQLite's write lock from its start (BEGIN IMMEDIATE, ``db.session``)."""
    if session.get_bind().dialect.name == "postgresql":
        return list((await session.scalars(
            text("SELECT nextval(pg_get_serial_sequence('readings', 'id')) FROM generate_series(1, :count)"),
            {"count": count})).all())
    highest = await session.scalar(select(func.max(Reading.id))) or 0
    return list(range(highest + 1, highest + 1 + count))


def _database_failure(error: BaseException) -> bool:
    """The database could not be reached or is busy: no message of the batch was taken, and none would be one at a
    time either (an integrity error or a bug is the batch's own: it is retried one message at a time)."""
    if isinstance(error, IntegrityError):
        return False
    return isinstance(error, DBAPIError | DatabaseBusy | OSError | TimeoutError)


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
        outcome = (await self.receive_batch([(device_id, raw)], source))[0]
        if isinstance(outcome, ReadingRefused):
            raise outcome
        if outcome is None:  # a batch of one falls back to nothing: its failure has propagated already
            raise RuntimeError("unreachable: a single message's failure propagates")
        return outcome

    async def receive_batch(self, messages: Sequence[tuple[int, bytes]],
                            source: ReadingSource) -> list[Outcome | None]:
        """Messages as they came (the device each is from, its bytes), taken in one transaction: one outcome each,
        in order — the receipt (committed when returned) or the refusal. A database failure propagates: nothing
        was taken, nothing is answered, the devices send again. Any other failure of the batch (a bug, a
        constraint) is retried one message at a time, so a poison message costs only itself: its outcome is then
        None (not taken, not answered)."""
        parsed: list[tuple[int, ParsedReading | ReadingRefused]] = []
        for device_id, raw in messages:
            try:
                parsed.append((device_id, parse_message(raw)))
            except ReadingRefused as refused:
                parsed.append((device_id, refused))
        outcomes: list[Outcome | None]
        try:
            outcomes = list(await self._take(parsed, source))
        except Exception as error:
            if len(parsed) == 1 or _database_failure(error):
                raise
            log.exception("readings.batch_failed", messages=len(parsed), source=source.value)
            outcomes = []
            for one in parsed:
                try:
                    outcomes.append((await self._take([one], source))[0])
                except Exception:
                    log.exception("readings.message_failed", device_id=one[0], source=source.value)
                    outcomes.append(None)
        self._count(parsed, outcomes, source)
        return outcomes

    async def _take(self, parsed: Sequence[tuple[int, ParsedReading | ReadingRefused]],
                    source: ReadingSource) -> list[Outcome]:
        if all(isinstance(item, ReadingRefused) for _, item in parsed):
            return [cast(ReadingRefused, item) for _, item in parsed]
        # Behind every other writer (SQLite): a call or an alarm waiting for the database goes before telemetry.
        async with self.db.transaction(background=True) as session:
            return await receive_many(session, parsed, source, now=utcnow(), clock_skew=self.clock_skew,
                                      retention=self.retention, merge_window=self.merge_window, tz=self.tz)

    def _count(self, parsed: Sequence[tuple[int, ParsedReading | ReadingRefused]], outcomes: Sequence[Outcome | None],
               source: ReadingSource) -> None:
        stored = duplicates = alarms = follow_ups = 0
        for (device_id, _), outcome in zip(parsed, outcomes, strict=True):
            if isinstance(outcome, ReadingRefused):
                self.refused[outcome.reason] += 1
                log.warning("reading.refused", reason=outcome.reason.value, field=outcome.field, device_id=device_id,
                            source=source.value)
            elif isinstance(outcome, Receipt):
                if outcome.duplicate:
                    duplicates += 1
                    continue
                stored += 1
                alarms += outcome.alarm_id is not None
                follow_ups += outcome.follow_up_order_id is not None
        self.taken.update(stored=stored, duplicate=duplicates, alarms=alarms, follow_ups=follow_ups)
        if stored or duplicates:
            # One line a batch: at thousands of readings a second a line each would be the intake's main cost.
            log.info("readings.received", source=source.value, stored=stored, duplicates=duplicates, alarms=alarms,
                     follow_ups=follow_ups, devices=len({device_id for device_id, _ in parsed}))
        if alarms:
            self.alarm_committed()

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
