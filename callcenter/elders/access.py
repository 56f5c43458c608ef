"""Who sees an elder's resident ID in full, and the audit of every read of an elder's file (issue 14, GB/T 35273).

* **Masked by default.** Every answer carrying one elder's file shows the resident ID masked (``masking``), for
  every role — except to an agent on a live call with that elder: a call not ended, about this elder, that this
  agent answered (``calls.agent_id``, set from AMI's ``AgentConnect`` or by the follow-up dialer). Anyone else who
  needs the full value asks for it with a stated reason (``POST /elders/{id}/reveal``), which is audited.
* **Every read audited.** Reading a file (``GET /elders/{id}``, its contacts, a reveal, the desk's screen-pop) writes
  an audit entry: who, when, from where, which elder, and why — the call or work order the reader named
  (``?call_id=`` / ``?order_id=``, checked: it must exist and be about this elder, else 422 naming the parameter),
  else the reader's own live call with the elder, else none. Details name fields, never their values.

Calls and work orders are read as tables, not models: they belong to domains loaded after this one (the layering
rule, as ``services.HISTORY`` does).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Any

from sqlalchemy import Integer, column, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import Invalid
from callcenter.audit.models import AuditEntry
from callcenter.audit.services import Actor, record
from callcenter.db.base import UTCDateTime
from callcenter.users.models import Role

# Audit actions: one prefix, so ``GET /audit?action=elder.`` lists every read and change of elders' files.
READ = "elder.read"
CONTACTS_READ = "elder.contacts.read"
REVEAL = "elder.reveal"
SCREEN_POP = "elder.screen_pop"

# A call whose end was never seen (its Hangup lost and not yet reconciled) stops counting as live after this long:
# no talk lasts it, and the full ID must not stay open to its agent for ever.
LIVE_CALL_LIMIT = dt.timedelta(hours=12)

_CALLS = table("calls", column("id", Integer), column("elder_id", Integer), column("agent_id", Integer),
               column("started_at", UTCDateTime), column("ended_at", UTCDateTime))
_ORDERS = table("work_orders", column("id", Integer), column("elder_id", Integer))


class Justification(enum.StrEnum):
    """Why a file was read, as the audit entry says."""

    CALL = "call"  # the reader named a call about this elder (?call_id=)
    ORDER = "order"  # the reader named a work order about this elder (?order_id=)
    LIVE_CALL = "live_call"  # named nothing, and is on a live call with the elder (inferred)
    NONE = "none"


@dataclasses.dataclass(frozen=True, slots=True)
class ReadGrounds:
    """What justified one read: the call and order named (checked), and the reader's own live call with the elder."""

    call_id: int | None = None
    order_id: int | None = None
    live_call_id: int | None = None

    @property
    def justified_by(self) -> Justification:
        if self.call_id is not None:
            return Justification.CALL
        if self.order_id is not None:
            return Justification.ORDER
        if self.live_call_id is not None:
            return Justification.LIVE_CALL
        return Justification.NONE

    def details(self) -> dict[str, Any]:
        details: dict[str, Any] = {"justified_by": self.justified_by.value}
        if self.call_id is not None:
            details["call_id"] = self.call_id
        if self.order_id is not None:
            details["order_id"] = self.order_id
        if self.live_call_id is not None and self.live_call_id != self.call_id:
            details["live_call_id"] = self.live_call_id
        return details


async def live_call_with(session: AsyncSession, user_id: int, elder_id: int, *, now: dt.datetime) -> int | None:
    """The newest call with ``elder_id`` that ``user_id`` answered and that has not ended, if any."""
    return await session.scalar(
        select(_CALLS.c.id).where(_CALLS.c.elder_id == elder_id, _CALLS.c.agent_id == user_id,
                                  _CALLS.c.ended_at.is_(None), _CALLS.c.started_at > now - LIVE_CALL_LIMIT)
        .order_by(_CALLS.c.started_at.desc()).limit(1))


async def _check_about(session: AsyncSession, rows: Any, row_id: int | None, elder_id: int, *, field: str,
                       noun: str) -> int | None:
    if row_id is None:
        return None
    about = await session.execute(select(rows.c.elder_id).where(rows.c.id == row_id))
    found = about.first()
    if found is None:
        raise Invalid(f"there is no {noun} {row_id}", field=field)
    if found[0] != elder_id:
        raise Invalid(f"{noun} {row_id} is not about elder {elder_id}: name a {noun} about this elder, or none",
                      field=field)
    return row_id


async def grounds_for(session: AsyncSession, user_id: int, elder_id: int, *, call_id: int | None,
                      order_id: int | None, now: dt.datetime) -> ReadGrounds:
    """The grounds of ``user_id``'s read of ``elder_id``'s file (which exists): the call and order named, each
    checked (422 naming ``call_id`` / ``order_id`` when it does not exist or is about another elder), and the
    reader's own live call with the elder."""
    return ReadGrounds(
        call_id=await _check_about(session, _CALLS, call_id, elder_id, field="call_id", noun="call"),
        order_id=await _check_about(session, _ORDERS, order_id, elder_id, field="order_id", noun="work order"),
        live_call_id=await live_call_with(session, user_id, elder_id, now=now))


def sees_id_number_in_full(role: Role, grounds: ReadGrounds) -> bool:
    """Only an agent on a live call with the elder: the one who may have to read it out to the emergency services.
    Supervisors, admins and auditors reveal it with a reason."""
    return role is Role.AGENT and grounds.live_call_id is not None


def record_read(session: AsyncSession, actor: Actor, action: str, elder_id: int, grounds: ReadGrounds,
                **details: Any) -> AuditEntry:
    """The audit entry of one read, in the reader's transaction. ``details``: names and counts, never values of
    the file (no ID numbers, no health data)."""
    return record(session, actor, action=action, target_type="elder", target_id=elder_id,
                  details={**grounds.details(), **details})
