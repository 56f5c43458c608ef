"""Reading recordings for the REST API. Agents see only the recordings of calls they answered."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import NotFound
from callcenter.api.registry import Principal
from callcenter.calls.models import Call, CallKind
from callcenter.db.paging import paginate
from callcenter.elders.models import Elder
from callcenter.orders.models import WorkOrder
from callcenter.recordings.models import Recording
from callcenter.users.models import Role, User


def _visible(statement: Select[tuple[Recording]], principal: Principal) -> Select[tuple[Recording]]:
    statement = statement.where(Recording.deleted_at.is_(None))
    if principal.role is Role.AGENT:
        statement = statement.join(Call, Call.id == Recording.call_id).where(Call.agent_id == principal.user_id)
    return statement


@dataclasses.dataclass(frozen=True, slots=True)
class RecordingSearch:
    """The library's filters; each one given narrows the result (all of them together)."""

    call_id: int | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    elder_id: int | None = None
    phone: str | None = None
    agent: str | None = None
    queue: str | None = None
    work_order_id: int | None = None
    sos: bool | None = None

    @property
    def needs_call(self) -> bool:
        return any(value is not None for value in (self.elder_id, self.phone, self.agent, self.queue,
                                                   self.work_order_id, self.sos))


async def find_recordings(session: AsyncSession, principal: Principal, search: RecordingSearch, *, limit: int,
                          offset: int) -> tuple[list[Recording], int]:
    """Newest first."""
    statement = _visible(select(Recording), principal)
    if search.needs_call and principal.role is not Role.AGENT:  # _visible joined Call already for agents
        statement = statement.join(Call, Call.id == Recording.call_id)
    if search.call_id is not None:
        statement = statement.where(Recording.call_id == search.call_id)
    if search.since is not None:
        statement = statement.where(Recording.created_at >= search.since)
    if search.until is not None:
        statement = statement.where(Recording.created_at < search.until)
    if search.elder_id is not None:
        statement = statement.where(Call.elder_id == search.elder_id)
    if search.phone is not None:
        statement = statement.where(or_(Call.caller_number == search.phone, Call.callee_number == search.phone))
    if search.agent is not None:
        statement = statement.where(Call.agent_id == select(User.id).where(User.username == search.agent)
                                    .scalar_subquery())
    if search.queue is not None:
        statement = statement.where(Call.queue == search.queue)
    if search.work_order_id is not None:
        statement = statement.where(Call.id == select(WorkOrder.call_id).where(WorkOrder.id == search.work_order_id)
                                    .scalar_subquery())
    if search.sos is not None:
        statement = statement.where((Call.kind == CallKind.SOS) if search.sos else (Call.kind != CallKind.SOS))
    statement = statement.order_by(Recording.created_at.desc(), Recording.id.desc())
    return await paginate(session, statement, limit=limit, offset=offset)


async def calls_of(session: AsyncSession, recordings: list[Recording]) -> dict[int, dict[str, object]]:
    """Call id → what the library shows of the call (kind, numbers, elder, agent, queue, start)."""
    ids = {r.call_id for r in recordings if r.call_id is not None}
    if not ids:
        return {}
    rows = (await session.execute(
        select(Call, Elder.full_name, User.username).outerjoin(Elder, Elder.id == Call.elder_id)
        .outerjoin(User, User.id == Call.agent_id).where(Call.id.in_(ids)))).all()
    return {call.id: {"kind": call.kind.value, "caller_number": call.caller_number,
                      "callee_number": call.callee_number, "elder_id": call.elder_id, "elder_name": elder_name,
                      "agent": agent, "queue": call.queue, "started_at": call.started_at}
            for call, elder_name, agent in rows}


async def elder_of(session: AsyncSession, recording: Recording) -> int | None:
    """The elder whose call ``recording`` is, if the call is known to be about one."""
    if recording.call_id is None:
        return None
    return await session.scalar(select(Call.elder_id).where(Call.id == recording.call_id))


async def get_recording(session: AsyncSession, principal: Principal, recording_id: int) -> Recording:
    """One the principal may see; another agent's recording is as absent as an unknown one (404)."""
    recording = await session.scalar(_visible(select(Recording), principal).where(Recording.id == recording_id))
    if recording is None:
        raise NotFound(f"no recording {recording_id}", field="id")
    return recording
