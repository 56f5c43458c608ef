"""Agents log in and out of queues and pause, through the one AMI client; the registry follows from events.

Wrap-up (after-call work): when an agent's queue call ends (AMI ``AgentComplete``) the agent is paused in the
wrap-up queues for ``CC_WRAPUP_SECONDS`` with the reason ``wrap-up``, then resumed; "ready" (unpause) ends it
early. The pause lives in Asterisk, so the state survives a page reload; after a platform restart the remaining
time is worked out from Asterisk's LastPause.

Who is logged in and who is paused (with the reason) is recorded in the database (``agents.sessions``), the one
source of truth: after every AMI login the resync puts back what Asterisk lost in a crash or restart. Wrap-up is
not recorded; it is transient.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.agents import sessions
from callcenter.agents.state import WRAPUP_QUEUES, WRAPUP_REASON, AgentRegistry, AgentState
from callcenter.api.asterisk import send_or_raise
from callcenter.api.errors import Conflict, Invalid, NotFound, Unavailable
from callcenter.audit.models import AuditEntry
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.logs import get_logger
from callcenter.telephony.ami import AmiClient, AmiEvent
from callcenter.users.models import Role, User

log = get_logger(__name__)

# Agents answer SOS and hotline calls; supervisors on duty take SOS overflow (seed 5.1, GB/T 33358's 15 s).
QUEUES_BY_ROLE: dict[Role, tuple[str, ...]] = {
    Role.AGENT: ("emergency", "hotline"),
    Role.SUPERVISOR: ("supervisors",),
    Role.ADMIN: ("supervisors",),
}


EVENTS = ("AgentComplete",)

Record = Callable[[AsyncSession], Awaitable[object]]


class AgentService:
    def __init__(self, db: Database, ami: AmiClient, registry: AgentRegistry, *, wrapup_seconds: int = 0) -> None:
        self._db = db
        self._ami = ami
        self._registry = registry
        self._wrapup_seconds = wrapup_seconds
        self._wrapup_timers: dict[str, asyncio.Task[None]] = {}
        # One change at a time per agent: a restore after a reconnect re-reads the record under this lock, so it
        # never re-adds an agent who logged out (or undoes a pause made) while the resync was running.
        self._locks: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        ami.on_login(self.resync)

    async def stop(self) -> None:
        timers = list(self._wrapup_timers.values())
        for timer in timers:
            timer.cancel()
        for timer in timers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await timer
        self._wrapup_timers.clear()

    @property
    def registry(self) -> AgentRegistry:
        return self._registry

    async def _user(self, username: str) -> User:
        async with self._db.transaction() as session:
            user = await session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFound(f"no user {username!r}", field="username")
        if not user.active:
            raise Conflict(f"user {username!r} is disabled", field="username")
        if user.role not in QUEUES_BY_ROLE:
            raise Conflict(f"a {user.role.value} account does not take calls", field="username")
        if not user.extension:
            raise Invalid(f"user {username!r} has no phone extension", field="extension")
        return user

    async def _audit(self, actor: str, actor_id: int | None, action: str, username: str,
                     details: dict[str, object], record: Record | None = None) -> None:
        """The audit entry and the change to the agent's recorded session, in one transaction."""
        async with self._db.transaction() as session:
            if record is not None:
                await record(session)
            session.add(AuditEntry(actor_id=actor_id, actor_label=actor, action=action, target_type="agent",
                                   target_id=username, details=details))

    async def _send(self, action: dict[str, str], tolerated: str | None = None) -> None:
        await send_or_raise(self._ami, action, tolerated=tolerated)

    async def _settle(self, username: str, done: Callable[[AgentState], bool]) -> AgentState:
        """The registry follows AMI events; give them a moment so the answer shows the state Asterisk reports."""
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            state = self._registry.get(username)
            if state is not None and done(state):
                return state
            await asyncio.sleep(0.05)
        state = self._registry.get(username)
        if state is None:
            raise Unavailable("Asterisk did not confirm the change in time; check the agent's state")
        return state

    def state(self, username: str) -> AgentState | None:
        return self._registry.get(username)

    async def login(self, username: str, *, actor: str, actor_id: int | None = None) -> AgentState:
        user = await self._user(username)  # before the lock: only real accounts get one
        async with self._locks[user.username]:
            interface = f"PJSIP/{user.extension}"
            queues = QUEUES_BY_ROLE[user.role]
            # QueueAdd leaves a member that is already in the queue as it is: an agent logging in twice stays
            # paused, so the record keeps the pause only then, as Asterisk will.
            before = self._registry.get(username)
            kept = before is not None and set(queues) <= before.queues and before.paused
            reason = before.pause_reason if kept and before is not None else None
            for queue in queues:
                # Already a member: logging in twice is not an error for the agent.
                await self._send({"Action": "QueueAdd", "Queue": queue, "Interface": interface,
                                  "MemberName": user.username, "StateInterface": interface, "Paused": "false"},
                                 tolerated="Already there")
            log.info("agent.login", username=username, interface=interface, queues=queues)
            await self._audit(actor, actor_id, "agent.login", username, {"interface": interface, "queues": queues},
                              record=lambda session: sessions.save_login(session, user.id, interface, queues,
                                                                         paused=kept, pause_reason=reason))
        return await self._settle(username, lambda s: set(queues) <= s.queues)

    async def logout(self, username: str, *, actor: str, actor_id: int | None = None) -> AgentState:
        user = await self._user(username)  # before the lock: only real accounts get one
        async with self._locks[user.username]:
            interface = f"PJSIP/{user.extension}"
            for queue in QUEUES_BY_ROLE[user.role]:
                await self._send({"Action": "QueueRemove", "Queue": queue, "Interface": interface},
                                 tolerated="Not there")
            log.info("agent.logout", username=username, interface=interface)
            await self._audit(actor, actor_id, "agent.logout", username, {"interface": interface},
                              record=lambda session: sessions.delete_session(session, user.id))
        return await self._settle(username, lambda s: not s.logged_in)

    async def pause(self, username: str, reason: str, *, actor: str, actor_id: int | None = None) -> AgentState:
        if not reason.strip():
            raise Invalid("a pause needs a reason", field="reason")
        return await self._set_paused(username, True, reason.strip(), actor, actor_id)

    async def unpause(self, username: str, *, actor: str, actor_id: int | None = None) -> AgentState:
        return await self._set_paused(username, False, "", actor, actor_id)

    async def _set_paused(self, username: str, paused: bool, reason: str, actor: str,
                          actor_id: int | None) -> AgentState:
        user = await self._user(username)  # before the lock: only real accounts get one
        async with self._locks[user.username]:
            interface = f"PJSIP/{user.extension}"
            state = self._registry.get(username)
            if state is None or not state.logged_in:
                raise Conflict(f"{username!r} is not logged in to any queue", field="username")
            action = {"Action": "QueuePause", "Interface": interface, "Paused": "true" if paused else "false"}
            if reason:
                action["Reason"] = reason
            await self._send(action)
            log.info("agent.pause" if paused else "agent.unpause", username=username, reason=reason or None)
            # A pause given the wrap-up reason is a wrap-up (its timer ends it): transient, so not recorded.
            recorded = paused and reason != WRAPUP_REASON
            await self._audit(actor, actor_id, "agent.pause" if paused else "agent.unpause", username,
                              {"reason": reason},
                              record=lambda session: sessions.save_pause(session, user.id, paused=recorded,
                                                                         pause_reason=reason or None))
        # Resuming also ends a wrap-up ("ready"): no queue may stay paused.
        return await self._settle(username, (lambda s: s.paused) if paused else (lambda s: not s.paused_in))

    # -- wrap-up ------------------------------------------------------------------------------------------------
    async def handle(self, event: AmiEvent) -> None:
        """AgentComplete: the agent's queue call ended; start their wrap-up unless they are already paused."""
        if event.get("Event") != "AgentComplete" or self._wrapup_seconds <= 0:
            return
        username, linkedid = event.get("MemberName", ""), event.get("Linkedid", "")
        state = self._registry.get(username)
        queues = sorted(state.queues & set(WRAPUP_QUEUES)) if state is not None else []
        if state is None or state.paused or not queues:
            return  # supervisors (SOS overflow only) have no wrap-up; a personal pause stays as it is
        try:
            for queue in queues:
                await self._send({"Action": "QueuePause", "Queue": queue, "Interface": state.interface,
                                  "Paused": "true", "Reason": WRAPUP_REASON})
        except (Conflict, Unavailable) as error:
            log.error("agent.wrap_up_failed", username=username, linkedid=linkedid, error=str(error))
            return
        self._schedule_wrap_up_end(state, self._wrapup_seconds)
        log.info("agent.wrap_up", username=username, linkedid=linkedid, queues=queues,
                 seconds=self._wrapup_seconds, uniqueid=event.get("Uniqueid"))

    def _schedule_wrap_up_end(self, state: AgentState, seconds: float) -> None:
        state.wrap_up_until = utcnow() + dt.timedelta(seconds=seconds)
        previous = self._wrapup_timers.pop(state.username, None)
        if previous is not None:
            previous.cancel()
        timer = asyncio.create_task(self._end_wrap_up_after(state.username, seconds),
                                    name=f"wrap-up-{state.username}")
        self._wrapup_timers[state.username] = timer

        def forget(done: asyncio.Task[None], username: str = state.username) -> None:
            if self._wrapup_timers.get(username) is done:
                del self._wrapup_timers[username]

        timer.add_done_callback(forget)
        self._registry.touch(state)

    async def _end_wrap_up_after(self, username: str, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))
        state = self._registry.get(username)
        if state is None or not state.wrap_up:
            return  # ended already: "ready", a personal pause, or logged out
        # Only the queues paused for wrap-up: a pause the agent chose is never lifted by the platform.
        for queue in [q for q, reason in state.paused_in.items() if reason == WRAPUP_REASON]:
            try:
                await self._send({"Action": "QueuePause", "Queue": queue, "Interface": state.interface,
                                  "Paused": "false"})
            except (Conflict, Unavailable) as error:
                log.error("agent.wrap_up_end_failed", username=username, queue=queue, error=str(error))
        log.info("agent.wrap_up_ended", username=username)

    async def resync(self) -> None:
        """After every AMI (re)login: re-learn queue membership from Asterisk, then put back the recorded sessions
        it lost (a crash or restart empties its queues)."""
        response = await self._ami.send_action({"Action": "QueueStatus"}, timeout=15)
        messages = response if isinstance(response, list) else [response]
        self._registry.forget_all()
        # The list's events carry our ActionID, so they come back in the response, not through subscriptions.
        for message in messages:
            if message.get("Event") == "QueueMember":
                await self._registry.handle(message)
        # Before the wrap-ups: an SOS may be waiting for the first agent back in the emergency queue.
        await self._restore(sessions.members_from_queue_status(messages))
        # Wrap-ups that were running when the platform (or AMI) went away: finish each on time.
        now = utcnow()
        for state in self._registry.all():
            if state.wrap_up and state.username not in self._wrapup_timers:
                began = state.last_pause_at or now
                remaining = self._wrapup_seconds - (now - began).total_seconds()
                self._schedule_wrap_up_end(state, max(0.0, remaining))
                log.info("agent.wrap_up_resumed", username=state.username, remaining_seconds=round(remaining, 1))

    async def _restore(self, members: dict[sessions.MemberKey, sessions.Member]) -> None:
        """Bring Asterisk to the recorded sessions: add each member it lacks (paused as recorded, with the reason)
        and set the recorded pause where it differs. The registry follows from the events these actions raise.
        One agent's failure is logged and the others are still restored; the next AMI login tries again."""
        try:
            async with self._db.transaction(read_only=True) as session:
                recorded = await sessions.recorded_sessions(session)
        except Exception as error:
            # Logged, not raised: the wrap-ups after it must still be resumed. The next AMI login tries again.
            log.error("agents.restore_failed", error=str(error))
            return
        restored = failed = 0
        for username, user_id in recorded:  # bounded: one pass over the recorded sessions
            try:
                added, pauses = await self._restore_one(username, user_id, members)
            except Exception as error:
                failed += 1
                log.error("agent.restore_failed", username=username, error=str(error))
                continue
            if added or pauses:
                restored += 1
                log.info("agent.restored", username=username, queues_added=added, pauses_set=pauses)
        log.info("agents.resynced", members=len(members), sessions=len(recorded), restored=restored, failed=failed)

    async def _restore_one(self, username: str, user_id: int,
                           members: dict[sessions.MemberKey, sessions.Member]) -> tuple[int, int]:
        async with self._locks[username]:
            # Read again under the lock: the agent may have logged out or paused since the list was read.
            async with self._db.transaction(read_only=True) as session:
                recorded = await sessions.get_session(session, user_id)
            if recorded is None:
                return 0, 0
            added = pauses = 0
            for action in sessions.restore_actions(username, recorded, members):
                if action["Action"] == "QueueAdd":
                    # "Already there": logged in again since QueueStatus was read; their login stands.
                    await self._send(action, tolerated="Already there")
                    added += 1
                else:
                    await self._send(action)
                    pauses += 1
            return added, pauses


# Where the agents domain's handlers (and other plugins) find the service.
AGENTS = web.AppKey("agents", AgentService)
