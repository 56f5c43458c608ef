"""Writing the audit trail (seed 4.2.4): one row per security-relevant or data-changing action."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.audit.models import AuditEntry


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a user (id and name at the time, so the trail stays readable if the account goes) and from
    where."""

    id: int | None
    label: str
    source_ip: str | None = None


def record(session: AsyncSession, actor: Actor, *, action: str, target_type: str | None = None,
           target_id: object = None, details: dict[str, Any] | None = None) -> AuditEntry:
    """Add an entry to the caller's transaction: it commits with the change it describes, or not at all."""
    entry = AuditEntry(action=action, actor_id=actor.id, actor_label=actor.label[:100], source_ip=actor.source_ip,
                       target_type=target_type, target_id=None if target_id is None else str(target_id),
                       details=details or {})
    session.add(entry)
    return entry
