"""Listen, whisper and barge on an agent's live call (seed 5.x supervision), through the one AMI client.

The supervisor's own phone is originated into ``cc-spy`` (never re-sent), which runs ChanSpy on the agent's
channel with options from a fixed table: ``q`` quiet, ``E`` end with the spied call, ``w`` whisper, ``B`` barge.
Switching mode sets new options on the supervisor's channel and redirects it back to ChanSpy; stopping hangs it up.
Every use is audited: ``spy.start``, ``spy.mode``, and ``spy.end`` with start, end and the modes used.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import secrets

from sqlalchemy import select

from callcenter.api.asterisk import send_or_raise
from callcenter.api.errors import Conflict, Forbidden, NotFound
from callcenter.audit.services import Actor, record
from callcenter.calls.models import Call, CallLeg
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.logs import get_logger
from callcenter.spy.schemas import SpyMode, SpyState
from callcenter.telephony.ami import AmiClient, AmiError, AmiEvent
from callcenter.telephony.originate import Originate, originate
from callcenter.users.models import Role, User

log = get_logger(__name__)

EVENTS = ("ChanSpyStart", "Hangup")
SPY_OPTIONS = {SpyMode.LISTEN: "qE", SpyMode.WHISPER: "qEw", SpyMode.BARGE: "qEB"}
SPY_UNIQUEID_PREFIX = "ccs"  # Originate ChannelId: the spy channel's events are told apart without a lookup
RING_SECONDS = 30
MAY_SPY = frozenset({Role.SUPERVISOR, Role.ADMIN})


@dataclasses.dataclass
class SpySession:
    id: str
    call_id: int
    linkedid: str
    supervisor: str
    supervisor_id: int | None
    source_ip: str | None
    agent_channel: str
    mode: SpyMode
    state: SpyState = SpyState.RINGING
    started_at: dt.datetime = dataclasses.field(default_factory=utcnow)
    ended_at: dt.datetime | None = None
    end_reason: str | None = None
    modes: list[dict[str, str]] = dataclasses.field(default_factory=list)

    @property
    def actor(self) -> Actor:
        return Actor(self.supervisor_id, self.supervisor, self.source_ip)


def spy_request(spy: SpySession, *, extension: str, settings: Settings) -> Originate:
    """The supervisor's phone into ``cc-spy``, which runs ChanSpy on the agent's channel in the session's mode."""
    return Originate(
        channel=f"PJSIP/{extension}", context="cc-spy", channel_id=spy.id, ring_seconds=RING_SECONDS,
        caller_name=settings.centre_name, caller_number=settings.centre_number,
        variables={"CC_SPY_TARGET": spy.agent_channel, "CC_SPY_OPTIONS": SPY_OPTIONS[spy.mode]},
    )


class SpyService:
    def __init__(self, db: Database, ami: AmiClient, settings: Settings) -> None:
        self._db = db
        self._ami = ami
        self._settings = settings
        self._sessions: dict[str, SpySession] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def active(self, supervisor: str, call_id: int) -> SpySession:
        for spy in self._sessions.values():
            if spy.supervisor == supervisor and spy.call_id == call_id:
                return spy
        raise NotFound(f"{supervisor} is not listening to call {call_id}", field="call_id")

    async def start(self, call_id: int, mode: SpyMode, actor: Actor, role: Role) -> SpySession:
        if role not in MAY_SPY:
            raise Forbidden("only supervisors and administrators may listen to calls")
        if any(spy.supervisor == actor.label for spy in self._sessions.values()):
            raise Conflict("you are already listening to a call: stop that first", field="call_id")
        async with self._db.transaction() as session:
            call = await session.get(Call, call_id)
            if call is None:
                raise NotFound(f"no call {call_id}", field="call_id")
            if call.ended_at is not None:
                raise Conflict("the call has ended", field="call_id")
            supervisor = await session.get(User, actor.id) if actor.id is not None else None
            if supervisor is None or not supervisor.extension:
                raise Conflict("your account has no phone extension to ring", field="extension")
            agent = await session.get(User, call.agent_id) if call.agent_id is not None else None
            leg = None
            if agent is not None and agent.extension:
                leg = await session.scalar(select(CallLeg).where(
                    CallLeg.call_id == call.id, CallLeg.ended_at.is_(None), CallLeg.answered_at.is_not(None),
                    CallLeg.channel.startswith(f"PJSIP/{agent.extension}-")).order_by(CallLeg.id.desc()).limit(1))
            if leg is None:
                raise Conflict("no agent is talking on this call", field="call_id")
            spy = SpySession(id=f"{SPY_UNIQUEID_PREFIX}{secrets.token_hex(6)}", call_id=call.id,
                             linkedid=call.linkedid, supervisor=actor.label, supervisor_id=actor.id,
                             source_ip=actor.source_ip, agent_channel=leg.channel, mode=mode)
            spy.modes.append({"mode": mode.value, "at": spy.started_at.isoformat()})
            record(session, actor, action="spy.start", target_type="call", target_id=call.id,
                   details={"mode": mode.value, "agent": agent.username if agent else None,
                            "agent_channel": leg.channel, "spy_channel": spy.id})
            extension = supervisor.extension
        self._sessions[spy.id] = spy
        request = spy_request(spy, extension=extension, settings=self._settings)
        task = asyncio.create_task(self._await_origination(spy, request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.warning("spy.start", linkedid=spy.linkedid, call_id=call_id, supervisor=spy.supervisor,
                    mode=mode.value, agent_channel=spy.agent_channel, uniqueid=spy.id)
        return spy

    async def _await_origination(self, spy: SpySession, request: Originate) -> None:
        reason: str | None = None
        try:
            result = await originate(self._ami, request)
            if not result.answered:
                reason = f"the supervisor's phone did not answer ({result.reason or result.message})"
        except AmiError as error:
            reason = f"Asterisk is not reachable: {error}"
        if reason is not None:
            await self._ended(spy, reason)

    async def switch(self, call_id: int, mode: SpyMode, actor: Actor) -> SpySession:
        spy = self.active(actor.label, call_id)
        if spy.mode is mode:
            return spy
        if spy.state is not SpyState.ACTIVE:
            raise Conflict(f"the spy is {spy.state.value}; switch once it is listening", field="state")
        await self._send({"Action": "Setvar", "Channel": spy.id, "Variable": "CC_SPY_OPTIONS",
                          "Value": SPY_OPTIONS[mode]})
        # Out of ChanSpy and straight back in with the new options (the supervisor's line stays up).
        await self._send({"Action": "Redirect", "Channel": spy.id, "Context": "cc-spy", "Exten": "s",
                          "Priority": "spy"})
        previous, spy.mode = spy.mode, mode
        spy.modes.append({"mode": mode.value, "at": utcnow().isoformat()})
        async with self._db.transaction() as session:
            record(session, actor, action="spy.mode", target_type="call", target_id=call_id,
                   details={"from": previous.value, "to": mode.value, "spy_channel": spy.id})
        log.warning("spy.mode", linkedid=spy.linkedid, call_id=call_id, supervisor=spy.supervisor, mode=mode.value,
                    uniqueid=spy.id)
        return spy

    async def stop(self, call_id: int, actor: Actor) -> SpySession:
        spy = self.active(actor.label, call_id)
        # Already gone: its Hangup event is on the way (or was missed); the session ends here anyway.
        with contextlib.suppress(Conflict):
            await self._send({"Action": "Hangup", "Channel": spy.id, "Cause": "16"})
        await self._ended(spy, "stopped by the supervisor")
        return spy

    async def handle(self, event: AmiEvent) -> None:
        name = event.get("Event")
        if name == "ChanSpyStart":
            spy = self._sessions.get(event.get("SpyerUniqueid", ""))
            if spy is not None:
                spy.state = SpyState.ACTIVE
                log.info("spy.attached", linkedid=spy.linkedid, uniqueid=spy.id, spyee=event.get("SpyeeChannel"),
                         mode=spy.mode.value)
        elif name == "Hangup":
            uniqueid = event.get("Uniqueid", "")
            if uniqueid.startswith(SPY_UNIQUEID_PREFIX) and uniqueid in self._sessions:
                await self._ended(self._sessions[uniqueid], event.get("Cause-txt") or "hung up")

    async def _ended(self, spy: SpySession, reason: str) -> None:
        if self._sessions.pop(spy.id, None) is None:
            return  # ended already (the stop request and the Hangup event race)
        spy.state, spy.ended_at, spy.end_reason = SpyState.ENDED, utcnow(), reason
        async with self._db.transaction() as session:
            record(session, spy.actor, action="spy.end", target_type="call", target_id=spy.call_id,
                   details={"started_at": spy.started_at.isoformat(), "ended_at": spy.ended_at.isoformat(),
                            "modes": spy.modes, "reason": reason, "spy_channel": spy.id,
                            "agent_channel": spy.agent_channel})
        log.warning("spy.end", linkedid=spy.linkedid, call_id=spy.call_id, supervisor=spy.supervisor,
                    reason=reason, uniqueid=spy.id)

    async def _send(self, action: dict[str, str]) -> None:
        await send_or_raise(self._ami, action)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
