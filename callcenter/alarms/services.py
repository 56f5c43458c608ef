"""Alarms at the centre: raising one with its work order, the state machine new → taken → responding → resolved,
and reading them. Every function works in the caller's transaction (socket-free); the device intake is in
``alarms.intake``.

Every state change is an audit entry (``audit.services.record``: hash-chained, in the same transaction) with who,
from which state, and the outcome; the alarm's work order gets the step on its trail (``orders.trail``), so the
order tells the alarm's story too. The trail and the audit log name no coordinates and none of the device's
details: those are sealed on the alarm row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.alarms.models import (
    DEFAULT_SEVERITY,
    SEVERITY_RANK,
    Alarm,
    AlarmOutcome,
    AlarmSeverity,
    AlarmSource,
    AlarmState,
    AlarmType,
)
from callcenter.alarms.priority import queue_priority
from callcenter.api.errors import Conflict, Invalid, NotFound
from callcenter.audit.services import Actor, record
from callcenter.db.base import utcnow
from callcenter.db.paging import paginate
from callcenter.devices.models import Device
from callcenter.elders.models import Elder
from callcenter.orders.models import WorkOrder, WorkOrderKind
from callcenter.orders.services import raise_order
from callcenter.orders.trail import record_event
from callcenter.users.models import Role

# The work order's priority (1 most urgent) by the alarm's severity.
ORDER_PRIORITY = {AlarmSeverity.CRITICAL: 1, AlarmSeverity.HIGH: 2, AlarmSeverity.MEDIUM: 3, AlarmSeverity.LOW: 4}
# Who may move an alarm on once an agent has taken it: the agent, or a supervisor (or an admin) stepping in.
STEPPING_IN = frozenset({Role.SUPERVISOR, Role.ADMIN})
# The trail actions this domain writes on the alarm's work order (orders.trail lists them).
TRAIL_TAKEN = "alarm_taken"
TRAIL_RESPONDING = "alarm_responding"
TRAIL_RESOLVED = "alarm_resolved"
# Where each transition may start from.
_SOURCES = {
    AlarmState.TAKEN: frozenset({AlarmState.NEW}),
    AlarmState.RESPONDING: frozenset({AlarmState.TAKEN}),
    AlarmState.RESOLVED: frozenset({AlarmState.TAKEN, AlarmState.RESPONDING}),
}


def alarm_number(now: dt.datetime) -> str:
    """AL-YYYYMMDD-XXXXXXXX: sortable by day, unguessable within it (like order numbers)."""
    return f"AL-{now:%Y%m%d}-{secrets.token_hex(4).upper()}"


@functools.cache
def type_labels(language: str = "zh-CN") -> dict[AlarmType, str]:
    """The alarm types in words, from this package's catalogue (the order's title is in the centre's language)."""
    catalogue = json.loads((Path(__file__).parent / "strings" / f"alarms.{language}.json").read_text("utf-8"))
    return {alarm_type: catalogue[f"type.{alarm_type.value}"] for alarm_type in AlarmType}


def severity_for(alarm_type: AlarmType, given: AlarmSeverity | None) -> AlarmSeverity:
    return given if given is not None else DEFAULT_SEVERITY[alarm_type]


def more_severe(first: AlarmSeverity, second: AlarmSeverity) -> AlarmSeverity:
    return first if SEVERITY_RANK[first] <= SEVERITY_RANK[second] else second


async def raise_alarm(session: AsyncSession, *, alarm_type: AlarmType, severity: AlarmSeverity,
                      source: AlarmSource, elder: Elder | None, device: Device | None, occurred_at: dt.datetime,
                      location: dict[str, Any] | None, payload: dict[str, Any], actor: Actor, now: dt.datetime,
                      tz: ZoneInfo, device_message_id: str | None = None) -> Alarm:
    """A new alarm and its emergency work order (priority by severity; where: the alarm's position, else the
    elder's home), audited, in the caller's transaction."""
    alarm = Alarm(number=alarm_number(now), type=alarm_type, severity=severity, state=AlarmState.NEW,
                  source=source, elder_id=elder.id if elder is not None else None,
                  device_id=device.id if device is not None else None, device_message_id=device_message_id,
                  occurred_at=occurred_at, received_at=now, last_received_at=now, repeat_count=0,
                  location=location, payload=payload, created_by_id=actor.id, version=1)
    session.add(alarm)
    await session.flush()
    latitude, longitude = ((location["latitude"], location["longitude"]) if location is not None
                           else (elder.latitude, elder.longitude) if elder is not None else (None, None))
    order = await raise_order(
        session, kind=WorkOrderKind.EMERGENCY, actor_label=actor.label, actor_id=actor.id,
        elder_id=alarm.elder_id, device_id=alarm.device_id, priority=ORDER_PRIORITY[severity],
        title=f"{type_labels()[alarm_type]}报警" + ("" if elder is not None else "（未关联老人）"),
        location_text=elder.address if elder is not None else None, latitude=latitude, longitude=longitude,
        details={"alarm": alarm.number, "type": alarm_type.value, "severity": severity.value,
                 "source": source.value}, now=now, tz=tz)
    alarm.work_order_id = order.id
    record(session, actor, action="alarm.raise", target_type="alarm", target_id=alarm.id,
           details={"number": alarm.number, "type": alarm_type.value, "severity": severity.value,
                    "source": source.value, "to_state": AlarmState.NEW.value, "elder_id": alarm.elder_id,
                    "device_id": alarm.device_id, "work_order": order.number})
    await session.flush()
    return alarm


async def raise_or_merge(session: AsyncSession, *, merge_window: dt.timedelta, alarm_type: AlarmType,
                         severity: AlarmSeverity, source: AlarmSource, elder: Elder | None, device: Device | None,
                         occurred_at: dt.datetime, location: dict[str, Any] | None, payload: dict[str, Any],
                         actor: Actor, now: dt.datetime, tz: ZoneInfo) -> tuple[Alarm, bool]:
    """For alarms another domain raises (a reading out of range): an unresolved alarm of the same type for the same
    device (or, without a device, the same elder) whose last repeat came within ``merge_window`` counts this one
    (its repeat count, last time, the more severe severity), as the device intake merges; otherwise
    ``raise_alarm``. Returns (the alarm, whether it was merged)."""
    same = (Alarm.device_id == device.id if device is not None
            else Alarm.elder_id == elder.id if elder is not None else None)
    if merge_window > dt.timedelta(0) and same is not None:
        open_alarm = await session.scalar(
            select(Alarm).where(same, Alarm.type == alarm_type, Alarm.state != AlarmState.RESOLVED,
                                Alarm.last_received_at >= now - merge_window)
            .order_by(Alarm.id.desc()).limit(1).with_for_update())
        if open_alarm is not None:
            open_alarm.repeat_count += 1
            open_alarm.last_received_at = now
            open_alarm.severity = more_severe(open_alarm.severity, severity)
            await session.flush()
            return open_alarm, True
    return await raise_alarm(session, alarm_type=alarm_type, severity=severity, source=source, elder=elder,
                             device=device, occurred_at=occurred_at, location=location, payload=payload,
                             actor=actor, now=now, tz=tz), False


async def create_manual(session: AsyncSession, *, alarm_type: AlarmType, elder_id: int, device_id: int | None,
                        severity: AlarmSeverity | None, occurred_at: dt.datetime | None,
                        location: dict[str, Any] | None, note: str | None, actor: Actor, tz: ZoneInfo,
                        clock_skew: dt.timedelta, now: dt.datetime | None = None) -> Alarm:
    """An alarm the centre's staff enter (source manual): the elder must exist, the device be theirs."""
    now = now or utcnow()
    elder = await session.get(Elder, elder_id)
    if elder is None:
        raise Invalid(f"no elder {elder_id}", field="elder_id")
    device = None
    if device_id is not None:
        device = await session.get(Device, device_id)
        if device is None:
            raise Invalid(f"no device {device_id}", field="device_id")
        if device.elder_id != elder_id:
            raise Invalid(f"device {device_id} is not elder {elder_id}'s", field="device_id")
    if occurred_at is not None and occurred_at > now + clock_skew:
        raise Invalid("the alarm's time is in the future", field="occurred_at")
    return await raise_alarm(session, alarm_type=alarm_type, severity=severity_for(alarm_type, severity),
                             source=AlarmSource.MANUAL, elder=elder, device=device,
                             occurred_at=occurred_at or now, location=location,
                             payload={"note": note} if note else {}, actor=actor, now=now, tz=tz)


# --- the state machine -----------------------------------------------------------------------------------------

async def _for_transition(session: AsyncSession, alarm_id: int, version: int, target: AlarmState) -> Alarm:
    # Row lock on PostgreSQL (SQLite serialises writers anyway): two agents taking it at once meet here.
    alarm = await session.get(Alarm, alarm_id, with_for_update=True)
    if alarm is None:
        raise NotFound(f"no alarm {alarm_id}", field="id")
    if alarm.state not in _SOURCES[target]:
        taken = f" (taken by {alarm.taken_by})" if alarm.taken_by and alarm.state is not AlarmState.NEW else ""
        raise Conflict(f"alarm {alarm.number} is {alarm.state.value}{taken}: it cannot become {target.value}",
                       field="state", code="illegal_transition")
    if alarm.version != version:
        raise Conflict(f"alarm {alarm.number} was changed by someone else (now version {alarm.version})",
                       field="version", code="stale_version")
    return alarm


def _check_holder(alarm: Alarm, actor: Actor, role: Role) -> None:
    if alarm.taken_by_id is not None and alarm.taken_by_id != actor.id and role not in STEPPING_IN:
        raise Conflict(f"alarm {alarm.number} is {alarm.taken_by}'s: they, or a supervisor, move it on",
                       field="state", code="taken_by_another")


def _audit_and_trail(session: AsyncSession, alarm: Alarm, actor: Actor, *, action: str, trail: str,
                     from_state: AlarmState, now: dt.datetime, details: dict[str, Any] | None = None) -> None:
    facts = {"number": alarm.number, "from_state": from_state.value, "to_state": alarm.state.value,
             **(details or {})}
    record(session, actor, action=action, target_type="alarm", target_id=alarm.id, details=facts)
    if alarm.work_order_id is not None:
        record_event(session, alarm.work_order_id, trail, actor_id=actor.id, actor_label=actor.label, at=now,
                     details={"alarm": alarm.number, **(details or {})})


async def take(session: AsyncSession, alarm_id: int, *, version: int, actor: Actor,
               now: dt.datetime | None = None) -> Alarm:
    """new → taken: the agent has it (the answer time runs from received_at to here)."""
    now = now or utcnow()
    alarm = await _for_transition(session, alarm_id, version, AlarmState.TAKEN)
    alarm.state, alarm.taken_at, alarm.taken_by_id, alarm.taken_by = AlarmState.TAKEN, now, actor.id, actor.label
    alarm.version += 1
    _audit_and_trail(session, alarm, actor, action="alarm.take", trail=TRAIL_TAKEN, from_state=AlarmState.NEW,
                     now=now)
    await session.flush()
    return alarm


async def respond(session: AsyncSession, alarm_id: int, *, version: int, actor: Actor, role: Role,
                  now: dt.datetime | None = None) -> Alarm:
    """taken → responding: help is on its way."""
    now = now or utcnow()
    alarm = await _for_transition(session, alarm_id, version, AlarmState.RESPONDING)
    _check_holder(alarm, actor, role)
    alarm.state, alarm.responding_at = AlarmState.RESPONDING, now
    alarm.version += 1
    _audit_and_trail(session, alarm, actor, action="alarm.respond", trail=TRAIL_RESPONDING,
                     from_state=AlarmState.TAKEN, now=now)
    await session.flush()
    return alarm


async def resolve(session: AsyncSession, alarm_id: int, *, version: int, outcome: AlarmOutcome, note: str | None,
                  actor: Actor, role: Role, now: dt.datetime | None = None) -> Alarm:
    """taken or responding → resolved, with its outcome. The work order stays as it is: it follows its own
    workflow (an emergency handled on the call is closed there, a visit goes on to its receipt)."""
    now = now or utcnow()
    alarm = await _for_transition(session, alarm_id, version, AlarmState.RESOLVED)
    _check_holder(alarm, actor, role)
    from_state = alarm.state
    alarm.state, alarm.resolved_at, alarm.resolved_by_id, alarm.resolved_by = (AlarmState.RESOLVED, now, actor.id,
                                                                               actor.label)
    alarm.outcome, alarm.outcome_note = outcome, note
    alarm.version += 1
    _audit_and_trail(session, alarm, actor, action="alarm.resolve", trail=TRAIL_RESOLVED, from_state=from_state,
                     now=now, details={"outcome": outcome.value, "note": note})
    await session.flush()
    return alarm


# --- reading ---------------------------------------------------------------------------------------------------

def _severity_order() -> Any:
    return case({severity.value: rank for severity, rank in SEVERITY_RANK.items()}, value=Alarm.severity)


async def list_alarms(session: AsyncSession, *, state: AlarmState | None, alarm_type: AlarmType | None,
                      elder_id: int | None, limit: int, offset: int) -> tuple[list[Alarm], int]:
    """Unresolved before resolved, the most severe first, then the newest."""
    statement = select(Alarm).order_by(case((Alarm.state == AlarmState.RESOLVED, 1), else_=0), _severity_order(),
                                       Alarm.received_at.desc(), Alarm.id.desc())
    if state is not None:
        statement = statement.where(Alarm.state == state)
    if alarm_type is not None:
        statement = statement.where(Alarm.type == alarm_type)
    if elder_id is not None:
        statement = statement.where(Alarm.elder_id == elder_id)
    return await paginate(session, statement, limit=limit, offset=offset)


async def get_alarm(session: AsyncSession, alarm_id: int) -> Alarm:
    alarm = await session.get(Alarm, alarm_id)
    if alarm is None:
        raise NotFound(f"no alarm {alarm_id}", field="id")
    return alarm


_SUMMARY = ("id", "number", "type", "severity", "state", "source", "elder_id", "device_id", "occurred_at",
            "received_at", "repeat_count", "last_received_at", "work_order_id", "taken_at", "taken_by",
            "responding_at", "resolved_at", "resolved_by", "outcome", "version")


def summary(alarm: Alarm) -> dict[str, Any]:
    return {**{name: getattr(alarm, name) for name in _SUMMARY},
            "queue_priority": queue_priority(alarm.type, alarm.severity)}


async def describe(session: AsyncSession, alarm: Alarm) -> dict[str, Any]:
    """Everything about one alarm: the elder, the device, its work order, where, and the device's details."""
    elder = await session.get(Elder, alarm.elder_id) if alarm.elder_id is not None else None
    device = await session.get(Device, alarm.device_id) if alarm.device_id is not None else None
    order = await session.get(WorkOrder, alarm.work_order_id) if alarm.work_order_id is not None else None
    return {**summary(alarm), "elder_name": elder.full_name if elder else None,
            "elder_address": elder.address if elder else None,
            "device_kind": device.kind.value if device else None,
            "device_serial_number": device.serial_number if device else None,
            "work_order_number": order.number if order else None, "device_message_id": alarm.device_message_id,
            "location": alarm.location, "payload": alarm.payload or {}, "outcome_note": alarm.outcome_note}


def summaries(alarms: Sequence[Alarm]) -> list[dict[str, Any]]:
    return [summary(alarm) for alarm in alarms]


@dataclasses.dataclass(frozen=True, slots=True)
class AnswerTarget:
    """A share of alarms to be taken within a time: TEC Quality's telecare targets are 97.5 % within 60 s and
    99 % within 180 s."""

    within: dt.timedelta
    share_percent: float

    @property
    def key(self) -> str:
        return f"{int(self.within.total_seconds())}s"


ANSWER_TARGETS = (AnswerTarget(dt.timedelta(seconds=60), 97.5), AnswerTarget(dt.timedelta(seconds=180), 99.0))


async def answer_times(session: AsyncSession, *, since: dt.datetime, until: dt.datetime, now: dt.datetime,
                       targets: Sequence[AnswerTarget] = ANSWER_TARGETS) -> dict[AlarmType, dict[str, Any]]:
    """Per type, of the alarms received in [since, until): how many, how many taken (answered), how many overflowed
    to the supervisors, the longest answer, and per target (``within_60s``, ``judged_60s``, …) how many were taken
    within it out of how many it judges. An alarm not taken is judged once it is older than the target at ``now``
    (then it missed it); one still ringing younger than the target has not missed it yet. The figures the
    service-level reports show."""
    rows = await session.execute(select(Alarm.type, Alarm.received_at, Alarm.taken_at, Alarm.overflowed_at)
                                 .where(Alarm.received_at >= since, Alarm.received_at < until))
    figures: dict[AlarmType, dict[str, Any]] = {}
    for alarm_type, received_at, taken_at, overflowed_at in rows:
        entry = figures.setdefault(alarm_type, {
            "alarms": 0, "answered": 0, "overflowed": 0, "longest_seconds": None,
            **{f"{kind}_{target.key}": 0 for target in targets for kind in ("within", "judged")}})
        entry["alarms"] += 1
        entry["overflowed"] += overflowed_at is not None
        waited = (taken_at or now) - received_at
        if taken_at is not None:
            entry["answered"] += 1
            entry["longest_seconds"] = max(entry["longest_seconds"] or 0.0, waited.total_seconds())
        for target in targets:
            met = taken_at is not None and waited <= target.within
            entry[f"judged_{target.key}"] += met or waited > target.within
            entry[f"within_{target.key}"] += met
    return figures
