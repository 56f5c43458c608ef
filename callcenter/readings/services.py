"""Storing a reading and applying the rules to it, an elder's thresholds, and reading an elder's readings. Every
function works in the caller's transaction (socket-free); the device intake is ``readings.intake``, hand entry
``readings.http``.

The rules, on every reading stored (``store_reading``), in its transaction:

- **out of range**: a value at or beyond one of its limits (the elder's own, else the default:
  ``readings.thresholds``) raises a vital-sign alarm of the bound's severity through the alarms domain
  (``alarms.services.raise_or_merge``: its emergency work order, and merged into the device's — or, by hand, the
  elder's — unresolved vital-sign alarm within CC_ALARM_MERGE_SECONDS). Its payload (sealed) names the reading,
  the measures out of range, their limits and whether those were the elder's or the default.
- **sustained trend**: ``TREND_COUNT`` of the elder's readings of one type above target within ``TREND_WINDOW``
  (up to this reading's time) raise one follow-up work order for the community doctor (the elder's contact of
  role doctor), through the orders domain (``orders.services.raise_order``). The trend stays open, raising nothing
  more, until a reading within target ends it; a later trend — counted from that reading on — raises a new order.

The audit log and the order's trail name types, counts and ids, never a value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import itertools
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.alarms.models import Alarm, AlarmSource, AlarmType
from callcenter.alarms.services import raise_or_merge
from callcenter.api.errors import Invalid
from callcenter.audit.services import Actor, record
from callcenter.devices.models import Device
from callcenter.elders.models import Contact, ContactRole, Elder
from callcenter.logs import get_logger
from callcenter.orders.models import WorkOrder, WorkOrderKind
from callcenter.orders.services import raise_order
from callcenter.orders.trail import SYSTEM
from callcenter.providers.models import ServiceType
from callcenter.readings.models import Reading, ReadingSource, ReadingTrend, ReadingType, ThresholdOverride
from callcenter.readings.thresholds import (
    LIMIT_NAMES,
    MEASURES,
    Limits,
    above_target,
    breaches,
    default_limits,
    worst,
)

log = get_logger(__name__)

TREND_COUNT = 3
TREND_WINDOW = dt.timedelta(days=7)
TREND_PAGE = 50
FOLLOW_UP_PRIORITY = 3
ALARM_SOURCE = {ReadingSource.MQTT: AlarmSource.MQTT, ReadingSource.HTTP: AlarmSource.HTTP,
                ReadingSource.MANUAL: AlarmSource.MANUAL}
# Audit actions (the ``elder.`` prefix: ``GET /audit?action=elder.`` lists every read and change of a file).
ENTERED = "elder.reading.enter"
READINGS_READ = "elder.readings.read"
THRESHOLDS_READ = "elder.thresholds.read"
THRESHOLDS_SET = "elder.thresholds.set"
THRESHOLDS_CLEARED = "elder.thresholds.clear"

Effective = dict[str, tuple[Limits, str]]  # measure → (limits, "default" or "elder")


@functools.cache
def strings(language: str = "zh-CN") -> dict[str, str]:
    """This package's catalogue (the follow-up order is written in the centre's language)."""
    return json.loads(  # type: ignore[no-any-return]
        (Path(__file__).parent / "strings" / f"readings.{language}.json").read_text("utf-8"))


@dataclasses.dataclass(frozen=True, slots=True)
class Stored:
    """A reading stored, and what its rules did."""

    reading: Reading
    alarm: Alarm | None = None
    merged: bool = False  # the alarm was an open one this reading was counted on
    follow_up: WorkOrder | None = None


def _limits(reading_type: ReadingType, birth_date: dt.date | None, today: dt.date,
            own: dict[str, Limits]) -> Effective:
    """Each measure's limits: the elder's ``own`` where a doctor set them, else the default."""
    limits: Effective = {measure: (default_limits(reading_type, measure, birth_date=birth_date, today=today),
                                   "default") for measure in MEASURES[reading_type]}
    for measure, theirs in own.items():
        limits[measure] = (theirs, "elder")
    return limits


async def effective_limits(session: AsyncSession, elder: Elder | None, reading_type: ReadingType, *,
                           today: dt.date) -> Effective:
    """Each measure's limits for ``elder``: theirs where a doctor set them, else the default."""
    own: dict[str, Limits] = {}
    if elder is not None:
        own = {row.measure: Limits.of(row.limits) for row in await session.scalars(select(ThresholdOverride).where(
            ThresholdOverride.elder_id == elder.id, ThresholdOverride.type == reading_type))}
    return _limits(reading_type, elder.birth_date if elder else None, today, own)


@dataclasses.dataclass(slots=True)
class BatchRules:
    """What the readings of one batch (``readings.intake.receive_many``) share, read once for the batch instead of
    once per reading: each elder's own limits and open trends. The elders are locked already (the batch locked
    them, in id order). A trend a reading of the batch opens or ends is kept here, so the next reading of the same
    elder and type sees it exactly as it would in a transaction of its own."""

    overrides: dict[tuple[int, ReadingType], dict[str, Limits]]
    open_trends: dict[tuple[int, ReadingType], ReadingTrend]
    today: dt.date

    def limits(self, elder_id: int | None, birth_date: dt.date | None, reading_type: ReadingType) -> Effective:
        own = self.overrides.get((elder_id, reading_type), {}) if elder_id is not None else {}
        return _limits(reading_type, birth_date, self.today, own)

    def open_trend(self, elder_id: int, reading_type: ReadingType) -> ReadingTrend | None:
        trend = self.open_trends.get((elder_id, reading_type))
        return trend if trend is not None and trend.ended_at is None else None


async def batch_rules(session: AsyncSession, elder_ids: set[int], *, today: dt.date) -> BatchRules:
    """The limits and open trends of ``elder_ids`` (locked by the caller), in two queries."""
    overrides: dict[tuple[int, ReadingType], dict[str, Limits]] = {}
    open_trends: dict[tuple[int, ReadingType], ReadingTrend] = {}
    if elder_ids:
        for row in await session.scalars(select(ThresholdOverride).where(ThresholdOverride.elder_id.in_(elder_ids))):
            overrides.setdefault((row.elder_id, row.type), {})[row.measure] = Limits.of(row.limits)
        for trend in await session.scalars(select(ReadingTrend).where(ReadingTrend.elder_id.in_(elder_ids),
                                                                      ReadingTrend.ended_at.is_(None))):
            open_trends[(trend.elder_id, trend.type)] = trend
    return BatchRules(overrides, open_trends, today)


def trend_settled(values: dict[str, Any], measured_at: dt.datetime, limits: Effective,
                  open_trend: ReadingTrend | None) -> bool:
    """The trend rule where it needs no query: nothing to do (no target, or a trend already open and this reading
    above target), or a reading back within target ending the open trend (done here). False when the reading is
    above target with no trend open: the elder's week must be counted (``_trend_rule``)."""
    above = above_target(values, limits)
    if above is None:
        return True
    if not above:
        if open_trend is not None and measured_at >= open_trend.started_at:
            # Back within target: the trend is over, and a new one counts only readings after this one.
            open_trend.ended_at = measured_at
        return True
    return open_trend is not None


async def store_reading(session: AsyncSession, *, elder: Elder | None, device: Device | None,
                        reading_type: ReadingType, measured_at: dt.datetime, values: dict[str, Any],
                        details: dict[str, Any] | None, source: ReadingSource, actor: Actor, now: dt.datetime,
                        tz: ZoneInfo, merge_window: dt.timedelta, entered_by_id: int | None = None,
                        entered_by: str | None = None, rules: BatchRules | None = None) -> Stored:
    """Store one reading (``values`` already checked: ``schemas.parse_values``) and apply the rules. ``rules``:
    the batch's (its elders already locked)."""
    if elder is not None and rules is None:
        # Row lock (PostgreSQL): one elder's readings are ruled on one at a time, so two readings completing a
        # trend together raise one order. SQLite serialises writers anyway.
        await session.get(Elder, elder.id, with_for_update=True)
    reading = Reading(elder_id=elder.id if elder else None, device_id=device.id if device else None,
                      type=reading_type, source=source, measured_at=measured_at, values=values,
                      details=details or None, received_at=now, entered_by_id=entered_by_id, entered_by=entered_by)
    session.add(reading)
    await session.flush()
    limits = rules.limits(elder.id if elder else None, elder.birth_date if elder else None, reading_type) \
        if rules is not None else await effective_limits(
        session, elder, reading_type, today=now.astimezone(tz).date())
    found = breaches(values, limits)
    alarm, merged = None, False
    if found:
        payload = {"reading": {"id": reading.id, "type": reading_type.value, "measured_at": measured_at.isoformat(),
                               "values": values, "source": source.value},
                   "breaches": [breach.as_dict() for breach in found]}
        alarm, merged = await raise_or_merge(
            session, merge_window=merge_window, alarm_type=AlarmType.VITAL_SIGN, severity=worst(found),
            source=ALARM_SOURCE[source], elder=elder, device=device, occurred_at=measured_at, location=None,
            payload=payload, actor=actor, now=now, tz=tz)
        reading.alarm_id = alarm.id
    follow_up = None
    if elder is not None:
        follow_up = await _trend_rule(session, elder, reading, limits, now=now, tz=tz, rules=rules)
    await session.flush()
    return Stored(reading, alarm, merged, follow_up)


async def _trend_rule(session: AsyncSession, elder: Elder, reading: Reading, limits: Effective, *,
                      now: dt.datetime, tz: ZoneInfo, rules: BatchRules | None) -> WorkOrder | None:
    if above_target(reading.values, limits) is None:
        return None
    open_trend = rules.open_trend(elder.id, reading.type) if rules is not None else await session.scalar(
        select(ReadingTrend).where(ReadingTrend.elder_id == elder.id, ReadingTrend.type == reading.type,
                                   ReadingTrend.ended_at.is_(None)))
    if trend_settled(reading.values, reading.measured_at, limits, open_trend):
        return None  # within target (a trend it ended is ended), or this trend has its order already
    since = reading.measured_at - TREND_WINDOW
    last_ended = await session.scalar(select(func.max(ReadingTrend.ended_at)).where(
        ReadingTrend.elder_id == elder.id, ReadingTrend.type == reading.type))
    if last_ended is not None and last_ended > since:
        since = last_ended
    # Newest first, a page at a time, stopping at TREND_COUNT: an elder whose device sends often must not make every
    # reading open (decrypt) the whole week.
    count, offset = 0, 0
    while count < TREND_COUNT:
        page = list(await session.scalars(select(Reading.values).where(
            Reading.elder_id == elder.id, Reading.type == reading.type, Reading.measured_at > since,
            Reading.measured_at <= reading.measured_at).order_by(Reading.measured_at.desc(), Reading.id.desc())
            .offset(offset).limit(TREND_PAGE)))
        count += sum(1 for values in page if above_target(values, limits))
        if len(page) < TREND_PAGE:
            break
        offset += TREND_PAGE
    if count < TREND_COUNT:
        return None
    order = await _follow_up_order(session, elder, reading.type, count, now=now, tz=tz)
    trend = ReadingTrend(elder_id=elder.id, type=reading.type, started_at=reading.measured_at,
                         readings_above=count, work_order_id=order.id)
    session.add(trend)
    if rules is not None:
        rules.open_trends[(elder.id, reading.type)] = trend
    log.info("readings.trend", elder_id=elder.id, type=reading.type.value, readings_above=count,
             work_order=order.number)
    return order


async def community_doctor(session: AsyncSession, elder_id: int) -> Contact | None:
    """The elder's community doctor: their first contact of role doctor."""
    return await session.scalar(select(Contact).where(Contact.elder_id == elder_id, Contact.role == ContactRole.DOCTOR)
                                .order_by(Contact.priority, Contact.id).limit(1))


async def _follow_up_order(session: AsyncSession, elder: Elder, reading_type: ReadingType, count: int, *,
                           now: dt.datetime, tz: ZoneInfo) -> WorkOrder:
    words = strings()
    type_name = words[f"type.{reading_type.value}"]
    doctor = await community_doctor(session, elder.id)
    description = words["follow_up.description"].format(days=TREND_WINDOW.days, count=count, type=type_name) + (
        words["follow_up.doctor"].format(name=doctor.name, phone=doctor.phone) if doctor is not None
        else words["follow_up.no_doctor"])
    return await raise_order(
        session, kind=WorkOrderKind.SERVICE_REQUEST, actor_label=SYSTEM, elder_id=elder.id,
        title=words["follow_up.title"].format(type=type_name), description=description,
        priority=FOLLOW_UP_PRIORITY, service=ServiceType.HOME_MEDICAL.value, location_text=elder.address,
        details={"rule": "reading_trend", "reading_type": reading_type.value, "readings_above_target": count,
                 "window_days": TREND_WINDOW.days,
                 "doctor_contact_id": doctor.id if doctor is not None else None}, now=now, tz=tz)


# --- reading -------------------------------------------------------------------------------------------------

async def list_readings(session: AsyncSession, elder_id: int, *, reading_type: ReadingType | None,
                        since: dt.datetime, until: dt.datetime, limit: int) -> list[Reading]:
    """The elder's readings measured in [since, until), the newest first (ix_readings_elder_id_type_measured_at;
    on PostgreSQL only the months in range are scanned)."""
    statement = select(Reading).where(Reading.elder_id == elder_id, Reading.measured_at >= since,
                                      Reading.measured_at < until)
    if reading_type is not None:
        statement = statement.where(Reading.type == reading_type)
    return list(await session.scalars(statement.order_by(Reading.measured_at.desc(), Reading.id.desc()).limit(limit)))


# --- thresholds ----------------------------------------------------------------------------------------------

async def thresholds_of(session: AsyncSession, elder: Elder, *, today: dt.date) -> list[dict[str, Any]]:
    """Every measure's limits for the elder, with where they come from (and, for theirs, who set them when)."""
    overrides = {(row.type, row.measure): row for row in await session.scalars(
        select(ThresholdOverride).where(ThresholdOverride.elder_id == elder.id))}
    items = []
    for reading_type in ReadingType:
        for measure in MEASURES[reading_type]:
            row = overrides.get((reading_type, measure))
            if row is not None:
                items.append({"type": reading_type, "measure": measure, **Limits.of(row.limits).as_dict(),
                              "source": "elder", "doctor_name": row.doctor_name, "set_by": row.set_by,
                              "set_at": row.set_at, "note": row.note})
            else:
                limits = default_limits(reading_type, measure, birth_date=elder.birth_date, today=today)
                items.append({"type": reading_type, "measure": measure, **limits.as_dict(), "source": "default"})
    return items


def _check_limits(reading_type: ReadingType, measure: str, limits: dict[str, float | None]) -> None:
    field = f"measures.{measure}"
    if measure not in MEASURES[reading_type]:
        raise Invalid(f"{field}: {reading_type.value} has no measure {measure!r} (it has "
                      f"{', '.join(MEASURES[reading_type])})", field=field)
    if all(limits[name] is None for name in LIMIT_NAMES):
        raise Invalid(f"{field}: give at least one limit (or clear the elder's thresholds for the defaults)",
                      field=field)
    # Lows below highs, critical beyond high: in the order a value passes them from low to high.
    ordered = [(name, limits[name]) for name in ("critical_low", "high_low", "target_high", "high_high",
                                                  "critical_high") if limits[name] is not None]
    for (lower_name, lower), (upper_name, upper) in itertools.pairwise(ordered):
        if lower is not None and upper is not None and lower >= upper:
            raise Invalid(f"{field}.{upper_name}: must be above {lower_name} ({lower:g})",
                          field=f"{field}.{upper_name}")


async def set_thresholds(session: AsyncSession, elder: Elder, reading_type: ReadingType,
                         measures: dict[str, dict[str, float | None]], *, doctor_contact_id: int, note: str | None,
                         actor: Actor, now: dt.datetime) -> None:
    """Set the elder's own limits for the measures given (replacing theirs for those measures), on the
    instruction of the elder's community doctor ``doctor_contact_id``; audited."""
    for measure, limits in measures.items():
        _check_limits(reading_type, measure, limits)
    doctor = await session.get(Contact, doctor_contact_id)
    if doctor is None or doctor.elder_id != elder.id or doctor.role is not ContactRole.DOCTOR:
        raise Invalid(f"contact {doctor_contact_id} is not elder {elder.id}'s doctor (a contact of role doctor)",
                      field="doctor_contact_id")
    existing = {row.measure: row for row in await session.scalars(select(ThresholdOverride).where(
        ThresholdOverride.elder_id == elder.id, ThresholdOverride.type == reading_type))}
    for measure, limits in measures.items():
        row = existing.get(measure)
        if row is None:
            row = ThresholdOverride(elder_id=elder.id, type=reading_type, measure=measure)
            session.add(row)
        row.limits, row.note = dict(limits), note
        row.doctor_contact_id, row.doctor_name = doctor.id, doctor.name
        row.set_by_id, row.set_by, row.set_at = actor.id, actor.label[:100], now
    record(session, actor, action=THRESHOLDS_SET, target_type="elder", target_id=elder.id,
           details={"type": reading_type.value, "measures": sorted(measures), "doctor_contact_id": doctor.id})
    await session.flush()


async def clear_thresholds(session: AsyncSession, elder: Elder, reading_type: ReadingType, *,
                           actor: Actor) -> int:
    """Back to the defaults for every measure of the type; audited. How many overrides went."""
    result = await session.execute(delete(ThresholdOverride).where(ThresholdOverride.elder_id == elder.id,
                                                                    ThresholdOverride.type == reading_type))
    cleared = int(result.rowcount or 0)  # type: ignore[attr-defined]
    record(session, actor, action=THRESHOLDS_CLEARED, target_type="elder", target_id=elder.id,
           details={"type": reading_type.value, "cleared": cleared})
    return cleared
