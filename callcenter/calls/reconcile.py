"""Calls Asterisk handled while the platform was away → the call log, from Asterisk's own state and CDR trail.

When the FastAGI server or the whole platform is down (stopped, or killed with SIGKILL), the dialplan still serves
callers (the failure paths). After every AMI (re)login the reconciler catches up in two steps:

1. **Calls still in progress** (AMI CoreShowChannels): every channel of a call the log does not know, or knows
   only in part, is logged; an SOS still on the line gets its identity and its emergency order now, so its
   hang-up, seen live, ends it like any other (and an abandoned one is called back).
2. **Calls that ended meanwhile**: Asterisk writes one CDR line per channel pair to
   ``log/cdr-custom/callcenter.csv`` (asterisk-config/cdr_custom.conf.j2). The lines not yet seen are read (a
   byte offset is kept in the data dir, and moved on only once every call in them is stored: a failure mid-run
   reads them again, and every step is idempotent). A call the log misses is added, marked ``source="cdr"``; one
   it has but never saw end is completed (end, answer). Either way, an SOS that got no emergency work order gets
   one, and the call-ended hooks run (an SOS nobody answered is called back, once: calls.callbacks).
3. **Calls Asterisk died with**: open in the log, not among the live channels, ended by no CDR line (a crashed
   Asterisk writes none). They end at the moment the channels were listed, and the hooks run as above.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import functools
import io
import os
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.asterisk.runtime import AsteriskRuntime
from callcenter.calls import services, sos
from callcenter.calls.models import Call, CallKind, CallLeg, Disposition
from callcenter.calls.services import call_kind_for_extension, caller_id, final_disposition
from callcenter.calls.sos import endpoint_of
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.retry import is_transient_or_race, with_retry
from callcenter.db.session import Database
from callcenter.devices.services import identify_caller
from callcenter.logs import get_logger
from callcenter.orders.models import WorkOrder, WorkOrderKind
from callcenter.orders.services import raise_order
from callcenter.telephony.ami import AmiEvent
from callcenter.users.models import User

log = get_logger(__name__)

FIELDS = ("linkedid", "uniqueid", "channel", "dstchannel", "src", "dst", "dcontext", "disposition", "start",
          "answer", "end", "lastapp")
def cdr_file(runtime: AsteriskRuntime) -> Path:
    """The CDR trail as Asterisk writes it (in-root path)."""
    return runtime.instance_dir / "log" / "cdr-custom" / "callcenter.csv"


CONTEXT_KINDS = {"cc-sos": CallKind.SOS, "cc-hotline": CallKind.HOTLINE}
SOS_CONTEXTS = frozenset(context for context, kind in CONTEXT_KINDS.items() if kind is CallKind.SOS)
CHANNEL_STATE_UP = "6"
# One call's catch-up is retried this long on a busy or unreachable database; the offset is kept if it fails.
RETRY_SECONDS = 10.0


def _duration(value: str | None) -> float:
    """CoreShowChannel's Duration, HH:MM:SS, in seconds (0 when absent or unreadable)."""
    try:
        hours, minutes, seconds = (int(part) for part in (value or "").split(":"))
    except ValueError:
        return 0.0
    return float(hours * 3600 + minutes * 60 + seconds)


@dataclasses.dataclass(frozen=True, slots=True)
class CdrRow:
    linkedid: str
    uniqueid: str
    channel: str
    dstchannel: str
    src: str
    dst: str
    dcontext: str
    disposition: str
    start: dt.datetime | None
    answer: dt.datetime | None
    end: dt.datetime | None

    @property
    def endpoint(self) -> str:
        return endpoint_of(self.channel)


@dataclasses.dataclass(frozen=True, slots=True)
class ReconcileReport:
    rows: int
    calls_added: int
    calls_completed: int
    orders_raised: int
    calls_vanished: int = 0


def _epoch(value: str) -> dt.datetime | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds > 0 else None


def parse_rows(text: str) -> list[CdrRow]:
    rows = []
    for record in csv.reader(io.StringIO(text)):
        if len(record) < len(FIELDS):
            continue  # a torn last line is read again next time (see read_new_lines)
        values = dict(zip(FIELDS, record, strict=False))
        rows.append(CdrRow(
            linkedid=values["linkedid"], uniqueid=values["uniqueid"], channel=values["channel"],
            dstchannel=values["dstchannel"], src=values["src"], dst=values["dst"], dcontext=values["dcontext"],
            disposition=values["disposition"], start=_epoch(values["start"]), answer=_epoch(values["answer"]),
            end=_epoch(values["end"]),
        ))
    return rows


def read_new_lines(path: Path, offset_file: Path) -> tuple[str, int]:
    """Complete lines after the stored offset, and the offset just past them (to be saved with ``save_offset``
    once they are processed: the stored offset never runs ahead of the call log)."""
    offset = int(offset_file.read_text()) if offset_file.exists() else 0
    if not path.exists():
        return "", offset
    size = path.stat().st_size
    if offset > size:  # the file was rotated or recreated
        offset = 0
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    complete = data[: data.rfind(b"\n") + 1]
    return complete.decode(errors="replace"), offset + len(complete)


def save_offset(offset_file: Path, offset: int) -> None:
    """Written to a new file and renamed over the old, so a crash leaves the old offset or the new, never half."""
    offset_file.parent.mkdir(parents=True, exist_ok=True)
    partial = offset_file.with_suffix(".partial")
    with partial.open("w") as handle:
        handle.write(str(offset))
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(offset_file)


class CdrReconciler:
    def __init__(self, db: Database, settings: Settings, cdr_file: Path) -> None:
        self._db = db
        self._cdr_file = cdr_file
        self._offset_file = settings.data_dir / "state" / f"cdr-offset-{settings.asterisk_instance}"
        self._lock = asyncio.Lock()
        self._call_added: list[Callable[[Call], Awaitable[None]]] = []

    def on_call_added(self, callback: Callable[[Call], Awaitable[None]]) -> None:
        """E.g. an abandoned SOS found in the CDR still gets its callback."""
        self._call_added.append(callback)

    async def reconcile(self, live_channels: list[AmiEvent] | None = None,
                        listed_at: dt.datetime | None = None) -> ReconcileReport:
        """``live_channels``: the CoreShowChannel events of the calls Asterisk holds right now (step 1), listed at
        ``listed_at``; with them, step 3 runs too."""
        async with self._lock:
            live_orders = await self.learn_live_calls(live_channels or [])
            text, next_offset = await asyncio.to_thread(read_new_lines, self._cdr_file, self._offset_file)
            rows = parse_rows(text)
            groups: dict[str, list[CdrRow]] = defaultdict(list)
            for row in rows:
                if row.linkedid:
                    groups[row.linkedid].append(row)
            added = completed = orders = 0
            for linkedid, group in groups.items():
                outcome = await with_retry(functools.partial(self._reconcile_in_transaction, linkedid, group),
                                           deadline=RETRY_SECONDS, retry_on=is_transient_or_race, in_order=True)
                added += outcome == "added"
                completed += outcome == "completed"
                if outcome in ("added", "completed"):
                    orders += await self._ensure_sos_order(linkedid)
                    await self._notify(linkedid)
            await asyncio.to_thread(save_offset, self._offset_file, next_offset)
            vanished = 0
            if live_channels is not None and listed_at is not None:
                vanished = await self._close_vanished_calls(
                    {str(c.get("Linkedid")) for c in live_channels if c.get("Linkedid")}, listed_at)
            report = ReconcileReport(len(rows), added, completed, orders + live_orders, vanished)
            if added or completed or live_orders or vanished:
                log.warning("calls.reconciled_from_cdr", rows=report.rows, added=added, completed=completed,
                            orders_raised=report.orders_raised, vanished=vanished)
            return report

    async def _close_vanished_calls(self, live: set[str], listed_at: dt.datetime) -> int:
        """Step 3: calls the log still has open that Asterisk no longer holds and no CDR line ended — Asterisk
        died with them (a crash writes no CDR). They end now, as abandoned unless a person had answered, and the
        call-ended hooks run: an SOS nobody answered is called back."""
        async with self._db.transaction(read_only=True) as session:
            open_calls = (await session.scalars(select(Call.linkedid).where(
                Call.ended_at.is_(None), Call.started_at < listed_at))).all()
        vanished = [linkedid for linkedid in open_calls if linkedid not in live]
        for linkedid in vanished:
            async with self._db.transaction() as session:
                call = await session.scalar(select(Call).where(Call.linkedid == linkedid).with_for_update())
                if call is None or call.ended_at is not None:
                    continue
                for leg in (await session.scalars(select(CallLeg).where(CallLeg.call_id == call.id,
                                                                        CallLeg.ended_at.is_(None)))).all():
                    leg.ended_at = listed_at
                call.ended_at = listed_at
                call.disposition = final_disposition(call.answered_at is not None, call.hangup_cause)
            log.error("call.vanished", linkedid=linkedid, call_id=call.id if call else None,
                      detail="open in the log, gone from Asterisk with no CDR line (Asterisk restarted)")
            await self._notify(linkedid)
        return len(vanished)

    async def _reconcile_in_transaction(self, linkedid: str, group: list[CdrRow]) -> str:
        async with self._db.transaction() as session:
            return await self._reconcile_call(session, linkedid, group)

    async def learn_live_calls(self, channels: list[AmiEvent]) -> int:
        """Log the channels of calls in progress that the log misses; an SOS among them gets its order now (the
        platform was away when it came in). Returns the number of orders raised."""
        by_call: dict[str, list[AmiEvent]] = defaultdict(list)
        for channel in channels:
            if channel.get("Event") == "CoreShowChannel" and channel.get("Linkedid") and channel.get("Uniqueid"):
                by_call[channel["Linkedid"]].append(channel)
        raised = 0
        for linkedid, members in by_call.items():
            raised += await with_retry(functools.partial(self._learn_live_call, linkedid, members),
                                       deadline=RETRY_SECONDS, retry_on=is_transient_or_race, in_order=True)
        return raised

    async def _learn_live_call(self, linkedid: str, members: list[AmiEvent]) -> int:
        origin = next((c for c in members if c.get("Uniqueid") == linkedid), None)
        async with self._db.transaction(urgent=True) as session:
            for channel in members:
                at = utcnow() - dt.timedelta(seconds=_duration(channel.get("Duration")))
                await services.channel_created(
                    session, uniqueid=channel["Uniqueid"], linkedid=linkedid, channel=channel.get("Channel", ""),
                    caller_number=caller_id(channel.get("CallerIDNum")),
                    caller_name=caller_id(channel.get("CallerIDName")),
                    callee_number=caller_id(channel.get("Exten")), at=at)
                if channel.get("ChannelState") == CHANNEL_STATE_UP:
                    await services.channel_answered(session, uniqueid=channel["Uniqueid"], linkedid=linkedid,
                                                    channel=channel.get("Channel", ""), at=at)
                if channel.get("Application") == "Queue" and channel.get("ApplicationData"):
                    await services.entered_queue(session, linkedid=linkedid, at=at,
                                                 queue=channel["ApplicationData"].split(",", 1)[0])
            if origin is not None and origin.get("Context") in SOS_CONTEXTS:
                call, order, _, now_raised = await sos.sos_intake(
                    session, linkedid=linkedid, endpoint=endpoint_of(origin.get("Channel", "")),
                    caller_number=caller_id(origin.get("CallerIDNum")), serial=None, actor_label="reconciler")
                if now_raised:
                    log.error("sos.order_raised_for_live_call", linkedid=linkedid, call_id=call.id,
                              order=order.number, detail="the SOS came in while the platform was away")
                    return 1
        return 0

    async def _reconcile_call(self, session: AsyncSession, linkedid: str, group: list[CdrRow]) -> str:
        origin = next((row for row in group if row.uniqueid == linkedid), group[0])
        starts = [row.start for row in group if row.start]
        ends = [row.end for row in group if row.end]
        answers = [row.answer for row in group if row.dstchannel and row.disposition == "ANSWERED" and row.answer]
        answered_at = min(answers) if answers else None
        ended_at = max(ends) if ends else None
        call = await session.scalar(select(Call).where(Call.linkedid == linkedid))
        if call is not None:
            if call.ended_at is not None:
                return "known"
            call.ended_at = ended_at
            call.answered_at = call.answered_at or answered_at
            call.disposition = final_disposition(call.answered_at is not None, call.hangup_cause)
            if call.kind is not CallKind.SOS and CONTEXT_KINDS.get(origin.dcontext) is CallKind.SOS:
                # Only its first channel event was seen before the platform went away: it is an SOS all the same.
                call.kind = CallKind.SOS
            if call.elder_id is None and call.device_id is None:
                who = await identify_caller(session, origin.endpoint, origin.src)
                call.elder_id, call.device_id, call.identified_by = who.elder_id, who.device_id, who.method
            return "completed"
        who = await identify_caller(session, origin.endpoint, origin.src)
        kind = CONTEXT_KINDS.get(origin.dcontext) or call_kind_for_extension(origin.dst)
        agent_id = None
        answering = next((row for row in group if row.dstchannel and row.disposition == "ANSWERED"), None)
        if answering is not None:
            extension = endpoint_of(answering.dstchannel)
            agent_id = await session.scalar(select(User.id).where(User.extension == extension))
        call = Call(
            linkedid=linkedid, kind=kind, caller_number=origin.src or None, callee_number=origin.dst or None,
            elder_id=who.elder_id, device_id=who.device_id, identified_by=who.method, agent_id=agent_id,
            started_at=min(starts) if starts else ended_at, answered_at=answered_at, ended_at=ended_at,
            disposition=Disposition.ANSWERED if answered_at else Disposition.ABANDONED, source="cdr",
        )
        session.add(call)
        await session.flush()
        for row in group:
            known_leg = await session.scalar(select(CallLeg.id).where(CallLeg.uniqueid == row.uniqueid))
            if row.uniqueid and known_leg is None:
                session.add(CallLeg(call_id=call.id, uniqueid=row.uniqueid, channel=row.channel,
                                    caller_number=row.src or None, callee_number=row.dst or None,
                                    started_at=row.start or call.started_at, answered_at=row.answer,
                                    ended_at=row.end))
                await session.flush()
        return "added"

    async def _notify(self, linkedid: str) -> None:
        async with self._db.transaction() as session:
            call = await session.scalar(select(Call).where(Call.linkedid == linkedid))
        if call is not None:
            for callback in self._call_added:
                await callback(call)

    async def _ensure_sos_order(self, linkedid: str) -> bool:
        """An SOS the platform never saw still gets its emergency order: no emergency is lost."""
        async with self._db.transaction() as session:
            call = await session.scalar(select(Call).where(Call.linkedid == linkedid))
            if call is None or call.kind is not CallKind.SOS:
                return False
            existing = await session.scalar(select(WorkOrder.id).where(WorkOrder.call_id == call.id,
                                                                     WorkOrder.kind == WorkOrderKind.EMERGENCY))
            if existing is not None:
                return False
            await raise_order(session, kind=WorkOrderKind.EMERGENCY, actor_label="reconciler", elder_id=call.elder_id,
                              call_id=call.id, device_id=call.device_id, title="一键呼叫紧急求助（平台离线期间）",
                              details={"reconciled_from": "cdr", "disposition": call.disposition.value})
            return True
