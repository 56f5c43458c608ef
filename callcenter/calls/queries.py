"""Reading the call log for the REST API. (``services.py`` writes it from AMI and AGI; this side only reads.)"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from callcenter.api.errors import NotFound
from callcenter.calls.models import Call, CallKind
from callcenter.db.paging import paginate


async def find_calls(session: AsyncSession, *, elder_id: int | None, since: dt.datetime | None,
                     until: dt.datetime | None, kind: CallKind | None, limit: int,
                     offset: int) -> tuple[list[Call], int]:
    """Newest first."""
    statement = select(Call).order_by(Call.started_at.desc(), Call.id.desc())
    if elder_id is not None:
        statement = statement.where(Call.elder_id == elder_id)
    if since is not None:
        statement = statement.where(Call.started_at >= since)
    if until is not None:
        statement = statement.where(Call.started_at < until)
    if kind is not None:
        statement = statement.where(Call.kind == kind)
    return await paginate(session, statement, limit=limit, offset=offset)


async def get_call(session: AsyncSession, call_id: int) -> Call:
    call = await session.scalar(select(Call).where(Call.id == call_id)
                                .options(selectinload(Call.legs), selectinload(Call.recordings)))
    if call is None:
        raise NotFound(f"no call {call_id}", field="id")
    return call
