"""The call log: built from AMI channel events and enriched by the IVR (who the caller is, what kind of call).

AMI events and AGI requests for the same call arrive on different sockets in no guaranteed order, so every
entry point creates the call (keyed by linkedid) or the leg (keyed by uniqueid) if it does not exist yet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.calls.models import Call, CallKind, CallLeg, Disposition
from callcenter.db.base import utcnow
from callcenter.devices.services import Identification

# Q.850 causes that say something about the callee, not a caller giving up.
_BUSY_CAUSES = {17}
_NO_ANSWER_CAUSES = {18, 19, 21}
_NORMAL_CAUSES = {0, 16, 31}


Row = TypeVar("Row", Call, CallLeg)


async def _get_or_create(session: AsyncSession, model: type[Row], key: str, value: str,
                         build: Callable[[], Row]) -> Row:
    """Fetch the row whose unique ``key`` is ``value``, or insert ``build()``; safe against a concurrent insert."""
    column = getattr(model, key)
    row = await session.scalar(select(model).where(column == value))
    if row is not None:
        return row
    row = build()
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # The other socket (AMI or FastAGI) created it between our SELECT and INSERT.
        existing = await session.scalar(select(model).where(column == value))
        assert existing is not None
        return existing
    return row


async def ensure_call(session: AsyncSession, linkedid: str, *, started_at: dt.datetime | None = None,
                      caller_number: str | None = None, caller_name: str | None = None,
                      callee_number: str | None = None) -> Call:
    return await _get_or_create(session, Call, "linkedid", linkedid, lambda: Call(
        linkedid=linkedid, started_at=started_at or utcnow(), caller_number=caller_number or None,
        caller_name=caller_name or None, callee_number=callee_number or None,
    ))


async def ensure_leg(session: AsyncSession, call: Call, uniqueid: str, *, channel: str,
                     started_at: dt.datetime | None = None, caller_number: str | None = None,
                     callee_number: str | None = None) -> CallLeg:
    return await _get_or_create(session, CallLeg, "uniqueid", uniqueid, lambda: CallLeg(
        call_id=call.id, uniqueid=uniqueid, channel=channel, started_at=started_at or utcnow(),
        caller_number=caller_number or None, callee_number=callee_number or None,
    ))


async def channel_created(session: AsyncSession, *, uniqueid: str, linkedid: str, channel: str,
                          caller_number: str, caller_name: str, callee_number: str, at: dt.datetime) -> CallLeg:
    call = await ensure_call(session, linkedid, started_at=at, caller_number=caller_number, caller_name=caller_name,
                             callee_number=callee_number)
    if call.started_at > at:
        call.started_at = at
    leg = await ensure_leg(session, call, uniqueid, channel=channel, started_at=at, caller_number=caller_number,
                           callee_number=callee_number)
    if uniqueid == linkedid:
        # The originating channel defines who called whom; a later event may know the dialled number.
        call.caller_number = call.caller_number or caller_number or None
        call.callee_number = call.callee_number or callee_number or None
    return leg


async def channel_answered(session: AsyncSession, *, uniqueid: str, linkedid: str, channel: str,
                           at: dt.datetime) -> None:
    call = await ensure_call(session, linkedid, started_at=at)
    leg = await ensure_leg(session, call, uniqueid, channel=channel, started_at=at)
    leg.answered_at = leg.answered_at or at
    # The caller's own channel goes Up when Asterisk answers it for a prompt or hold music; the call counts as
    # answered only when a person (another leg: an agent, a callee) picks up. The outbound engine's calls
    # (``purpose`` set) originate the called person's own channel: its answer is that person picking up.
    if uniqueid != linkedid or call.purpose is not None:
        call.answered_at = call.answered_at or at


async def channel_hung_up(session: AsyncSession, *, uniqueid: str, linkedid: str, channel: str, cause: int | None,
                          cause_text: str | None, at: dt.datetime) -> Call:
    call = await ensure_call(session, linkedid, started_at=at)
    leg = await ensure_leg(session, call, uniqueid, channel=channel, started_at=at)
    leg.ended_at = leg.ended_at or at
    leg.hangup_cause = cause
    leg.hangup_cause_text = cause_text or None
    await session.flush()
    open_legs = await session.scalar(
        select(CallLeg.id).where(CallLeg.call_id == call.id, CallLeg.ended_at.is_(None)).limit(1)
    )
    if open_legs is None:
        call.ended_at = at
        if uniqueid == linkedid or call.hangup_cause is None:
            call.hangup_cause = cause
        call.disposition = final_disposition(call.answered_at is not None, call.hangup_cause)
    return call


def caller_id(value: str | None) -> str:
    """A caller-ID field as AMI gives it, with Asterisk's placeholders for "none" made empty."""
    return "" if not value or value in ("<unknown>", "unknown") else value


def final_disposition(answered: bool, cause: int | None) -> Disposition:
    if answered:
        return Disposition.ANSWERED
    if cause in _BUSY_CAUSES:
        return Disposition.BUSY
    if cause in _NO_ANSWER_CAUSES:
        return Disposition.NO_ANSWER
    if cause is None or cause in _NORMAL_CAUSES:
        return Disposition.ABANDONED
    return Disposition.FAILED


async def attach_identity(session: AsyncSession, *, linkedid: str, kind: CallKind,
                          identification: Identification, caller_number: str, callee_number: str) -> Call:
    """Record what the IVR learned about the caller on the call."""
    call = await ensure_call(session, linkedid, caller_number=caller_number, callee_number=callee_number)
    call.kind = kind
    call.elder_id = identification.elder_id
    call.device_id = identification.device_id
    call.identified_by = identification.method
    call.callee_number = callee_number or call.callee_number
    return call


async def agent_connected(session: AsyncSession, *, linkedid: str, queue: str, agent_id: int | None,
                          hold_seconds: float | None, at: dt.datetime) -> Call:
    """An agent answered the caller from ``queue`` after ``hold_seconds`` of waiting."""
    call = await ensure_call(session, linkedid, started_at=at)
    call.queue = queue
    call.agent_id = agent_id
    call.queue_wait_seconds = hold_seconds
    call.answered_at = call.answered_at or at
    return call


async def entered_queue(session: AsyncSession, *, linkedid: str, queue: str, at: dt.datetime) -> Call:
    call = await ensure_call(session, linkedid, started_at=at)
    # The first queue is the call's queue; SOS overflow steps are kept on the order's trail.
    call.queue = call.queue or queue
    return call


def call_kind_for_extension(extension: str, hotline_numbers: tuple[str, ...] = ("12349",)) -> CallKind:
    if extension.lower() == "sos":
        return CallKind.SOS
    if extension in hotline_numbers:
        return CallKind.HOTLINE
    return CallKind.OTHER
