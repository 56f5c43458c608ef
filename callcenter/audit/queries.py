"""Reading the audit trail: filtered, oldest first (the order things happened in)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.audit.models import AuditEntry
from callcenter.db.paging import paginate


async def find_entries(session: AsyncSession, *, action: str | None = None, actor: str | None = None,
                       target_type: str | None = None, target_id: str | None = None,
                       since: dt.datetime | None = None, until: dt.datetime | None = None, limit: int = 50,
                       offset: int = 0) -> tuple[list[AuditEntry], int]:
    statement = select(AuditEntry)
    if action:
        statement = statement.where(AuditEntry.action.startswith(action, autoescape=True) if action.endswith(".")
                                    else AuditEntry.action == action)
    if actor:
        statement = statement.where(AuditEntry.actor_label == actor)
    if target_type:
        statement = statement.where(AuditEntry.target_type == target_type)
    if target_id:
        statement = statement.where(AuditEntry.target_id == target_id)
    if since:
        statement = statement.where(AuditEntry.at >= since)
    if until:
        statement = statement.where(AuditEntry.at < until)
    return await paginate(session, statement.order_by(AuditEntry.at, AuditEntry.id), limit=limit, offset=offset)
