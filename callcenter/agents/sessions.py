"""The recorded queue sessions (``AgentSession``) and what it takes to put them back into Asterisk.

The platform's database is the one source of truth for who is logged in and who is paused: Asterisk forgets its
queue members when it restarts (``persistentmembers = no``; its own astdb copy would be a second truth that a
logout made while Asterisk was down could never correct). After every AMI login the agent service compares the
records with Asterisk's ``QueueStatus`` and sends what is missing; the functions that decide it are here, free of
I/O, so they are tested on their own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.agents.models import AgentSession
from callcenter.agents.state import WRAPUP_REASON
from callcenter.telephony.ami import AmiEvent
from callcenter.users.models import User


@dataclasses.dataclass(frozen=True)
class Member:
    """One queue member as Asterisk reports it in ``QueueStatus``."""

    paused: bool
    reason: str


MemberKey = tuple[str, str]  # (queue, interface)


def members_from_queue_status(messages: Iterable[AmiEvent | Mapping[str, str]]) -> dict[MemberKey, Member]:
    members: dict[MemberKey, Member] = {}
    for message in messages:
        if message.get("Event") != "QueueMember":
            continue
        interface = message.get("Interface") or message.get("Location") or ""
        queue = message.get("Queue", "")
        if queue and interface:
            members[(queue, interface)] = Member(paused=message.get("Paused") == "1",
                                                 reason=message.get("PausedReason", "") or "")
    return members


def restore_actions(username: str, recorded: AgentSession, members: Mapping[MemberKey, Member]) -> list[dict[str, str]]:
    """The AMI actions that bring Asterisk to the recorded session: ``QueueAdd`` (paused as recorded) for each queue
    the member is missing from, ``QueuePause`` where the member is there but paused otherwise. A wrap-up pause is
    left alone (it is transient and its own timer ends it); members that have no record are never looked at."""
    reason = recorded.pause_reason or ""
    actions: list[dict[str, str]] = []
    for queue in recorded.queues:
        member = members.get((queue, recorded.interface))
        if member is None:
            add = {"Action": "QueueAdd", "Queue": queue, "Interface": recorded.interface, "MemberName": username,
                   "StateInterface": recorded.interface, "Paused": "true" if recorded.paused else "false"}
            if recorded.paused and reason:
                add["Reason"] = reason
            actions.append(add)
        elif recorded.paused and (not member.paused or member.reason != reason):
            pause = {"Action": "QueuePause", "Queue": queue, "Interface": recorded.interface, "Paused": "true"}
            if reason:
                pause["Reason"] = reason
            actions.append(pause)
        elif not recorded.paused and member.paused and member.reason != WRAPUP_REASON:
            actions.append({"Action": "QueuePause", "Queue": queue, "Interface": recorded.interface,
                            "Paused": "false"})
    return actions


async def recorded_sessions(session: AsyncSession) -> list[tuple[str, int]]:
    """(username, user id) of every recorded session whose account is still enabled: a disabled account is never
    put back into a queue."""
    rows = await session.execute(select(User.username, User.id).join(AgentSession, AgentSession.user_id == User.id)
                                 .where(User.active.is_(True)).order_by(User.username))
    return [(username, user_id) for username, user_id in rows.all()]


async def get_session(session: AsyncSession, user_id: int) -> AgentSession | None:
    return await session.scalar(select(AgentSession).where(AgentSession.user_id == user_id))


async def save_login(session: AsyncSession, user_id: int, interface: str, queues: Sequence[str], *, paused: bool,
                     pause_reason: str | None) -> None:
    recorded = await get_session(session, user_id)
    if recorded is None:
        recorded = AgentSession(user_id=user_id)
        session.add(recorded)
    recorded.interface = interface
    recorded.queues = list(queues)
    recorded.paused = paused
    recorded.pause_reason = pause_reason if paused else None


async def save_pause(session: AsyncSession, user_id: int, *, paused: bool, pause_reason: str | None) -> bool:
    """Records a pause or its end on the agent's session; False when there is none (a member the platform did
    not log in, e.g. added on the Asterisk CLI: it stays outside the record, as it was)."""
    recorded = await get_session(session, user_id)
    if recorded is None:
        return False
    recorded.paused = paused
    recorded.pause_reason = pause_reason if paused else None
    return True


async def delete_session(session: AsyncSession, user_id: int) -> None:
    await session.execute(delete(AgentSession).where(AgentSession.user_id == user_id))
