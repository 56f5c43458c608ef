"""Reading recordings for the REST API. Agents see only the recordings of calls they answered."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import NotFound
from callcenter.api.registry import Principal
from callcenter.calls.models import Call
from callcenter.db.paging import paginate
from callcenter.recordings.models import Recording
from callcenter.users.models import Role


def _visible(statement: Select[tuple[Recording]], principal: Principal) -> Select[tuple[Recording]]:
    statement = statement.where(Recording.deleted_at.is_(None))
    if principal.role is Role.AGENT:
        statement = statement.join(Call, Call.id == Recording.call_id).where(Call.agent_id == principal.user_id)
    return statement


async def find_recordings(session: AsyncSession, principal: Principal, *, call_id: int | None, limit: int,
                          offset: int) -> tuple[list[Recording], int]:
    """Newest first."""
    statement = _visible(select(Recording), principal).order_by(Recording.created_at.desc(), Recording.id.desc())
    if call_id is not None:
        statement = statement.where(Recording.call_id == call_id)
    return await paginate(session, statement, limit=limit, offset=offset)


async def get_recording(session: AsyncSession, principal: Principal, recording_id: int) -> Recording:
    """One the principal may see; another agent's recording is as absent as an unknown one (404)."""
    recording = await session.scalar(_visible(select(Recording), principal).where(Recording.id == recording_id))
    if recording is None:
        raise NotFound(f"no recording {recording_id}", field="id")
    return recording
