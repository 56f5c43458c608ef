"""Calls Asterisk handled while the platform was away → the call log, from Asterisk's own CDR trail.

When the FastAGI server or the whole platform is down, the dialplan still serves callers (the failure paths) and
Asterisk still writes one CDR line per channel pair to ``log/cdr-custom/callcenter.csv`` (asterisk-config/
cdr_custom.conf.j2). After every AMI (re)login the reconciler reads the lines it has not seen (a byte offset is
kept in the data dir) and adds every call the log misses, marked ``source="cdr"``; a call it already has is only
completed (end, answer), never duplicated. An SOS that got no emergency work order gets one now.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import io
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.asterisk.runtime import AsteriskRuntime
from callcenter.calls.models import Call, CallKind, CallLeg, Disposition
from callcenter.calls.services import call_kind_for_extension, final_disposition
from callcenter.calls.sos import endpoint_of
from callcenter.config import Settings
from callcenter.db.session import Database
from callcenter.devices.services import identify_caller
from callcenter.logs import get_logger
from callcenter.orders.models import WorkOrder, WorkOrderKind
from callcenter.orders.services import raise_order
from callcenter.users.models import User

log = get_logger(__name__)

FIELDS = ("linkedid", "uniqueid", "channel", "dstchannel", "src", "dst", "dcontext", "disposition", "start",
          "answer", "end", "lastapp")
def cdr_file(runtime: AsteriskRuntime) -> Path:
    """The CDR trail as Asterisk writes it (in-root path)."""
    return runtime.instance_dir / "log" / "cdr-custom" / "callcenter.csv"


CONTEXT_KINDS = {"cc-sos": CallKind.SOS, "cc-hotline": CallKind.HOTLINE}


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


def read_new_lines(path: Path, offset_file: Path) -> str:
    """Complete lines after the stored offset; the offset advances only past whole lines."""
    if not path.exists():
        return ""
    offset = int(offset_file.read_text()) if offset_file.exists() else 0
    size = path.stat().st_size
    if offset > size:  # the file was rotated or recreated
        offset = 0
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    complete = data[: data.rfind(b"\n") + 1]
    offset_file.parent.mkdir(parents=True, exist_ok=True)
    offset_file.write_text(str(offset + len(complete)))
    return complete.decode(errors="replace")


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

    async def reconcile(self) -> ReconcileReport:
        async with self._lock:
            text = await asyncio.to_thread(read_new_lines, self._cdr_file, self._offset_file)
            rows = parse_rows(text)
            groups: dict[str, list[CdrRow]] = defaultdict(list)
            for row in rows:
                if row.linkedid:
                    groups[row.linkedid].append(row)
            added = completed = orders = 0
            for linkedid, group in groups.items():
                async with self._db.transaction() as session:
                    outcome = await self._reconcile_call(session, linkedid, group)
                added += outcome == "added"
                completed += outcome == "completed"
                if outcome == "added":
                    orders += await self._ensure_sos_order(linkedid)
                    await self._notify(linkedid)
            report = ReconcileReport(len(rows), added, completed, orders)
            if added or completed:
                log.warning("calls.reconciled_from_cdr", rows=report.rows, added=added, completed=completed,
                            orders_raised=orders)
            return report

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
