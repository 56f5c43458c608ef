"""Alarms distributed to agents like calls (issue 15): the most urgent first, one at a time per agent, to an agent
who is free, over the panels' one WebSocket fan-out (``callcenter.push``).

Each round (``AlarmDistributor.distribute``) reads the alarms still ``new`` and orders them by
``priority.queue_priority`` (fall, smoke, gas and the silent SOS before the rest, vital signs last), then by age.
Each is offered to one agent — ``alarm_offer`` on that agent's panel, with the card's data (the desk's card builder:
the alarm, the elder's file, the device) — who takes it with ``POST /api/v1/alarms/{id}/take`` (its version). An
agent is offered an alarm only when they are free for it:

- logged in to a queue, their phone registered and idle, not paused and not in wrap-up (``AgentState``): an SOS
  voice call always comes first, so an agent on a call, or whose phone rings with one, is offered nothing — and an
  offer they hold when their phone starts ringing is withdrawn and goes to another agent;
- with the desk open (a panel subscribed to the fan-out): a card nobody sees answers nothing;
- not holding another alarm: neither one offered to them now nor one they have taken and not resolved (``taken``
  or ``responding``: the card shows one alarm at a time, and the agent closes theirs with its outcome first; a
  panel that reloads meanwhile is sent that alarm's card again).

Among the free agents the one longest in their state goes first (Asterisk's ``leastrecent``), an agent with no
card before one whose card a more urgent alarm would take over. An offer not taken within CC_ALARM_OFFER_SECONDS
is withdrawn (``alarm_withdrawn``) and offered to another agent (the same one again only if nobody else is free).
An alarm not taken within CC_ALARM_ANSWER_TARGET_SECONDS of its receipt overflows to the supervisors
(``alarm_overflow``, like an SOS nobody answers) and stays offered to agents; ``alarm_overflow_ended`` once it is
taken (or resolved).

Where each alarm is offered, since when, when it was first offered, how often, and when it overflowed are columns of
the alarm, written in the round's transaction: a restart loses nothing, the first round after it (the job's start)
offers again what was offered before. A round is run when something changes — a new alarm stored (``wake``, from
the intake and the REST handlers), an alarm taken or resolved, an agent's state, a panel connecting — and at the
next offer's timeout or answer target, and at the latest every CC_ALARM_SWEEP_SECONDS as the safety net.

Socket-free: the fan-out is handed in (``publish_to``, by the desk plugin, which loads after this domain) and
``distribute`` takes the time, so tests drive rounds by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from sqlalchemy import and_, case, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter import push
from callcenter.agents.state import AgentRegistry, AgentState
from callcenter.alarms.models import Alarm, AlarmSeverity, AlarmState, AlarmType
from callcenter.alarms.priority import queue_priority
from callcenter.alarms.schemas import AlarmDetail
from callcenter.alarms.services import describe
from callcenter.audit.services import Actor
from callcenter.contract import Check
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.elders.access import ReadGrounds, record_read
from callcenter.logs import get_logger
from callcenter.users.models import Role, User

log = get_logger(__name__)

OFFER = "alarm_offer"
WITHDRAWN = "alarm_withdrawn"
OVERFLOW = "alarm_overflow"
OVERFLOW_ENDED = "alarm_overflow_ended"
# The audit action of an elder's file shown on an alarm card (beside elders.access's reads and screen-pops).
CARD_READ = "elder.alarm_card"
# A card's parts beside the elder's file that are personal data of the elder (the desk's builder fills them).
CARD_PARTS = ("readings", "track", "fences")
# Who hears an alarm past its answer target (and admins: push.roles).
OVERFLOW_WATCHERS = (Role.SUPERVISOR,)
# An agent's alarm in these states is theirs to finish (the panel's card shows one alarm at a time).
HELD = (AlarmState.TAKEN, AlarmState.RESPONDING)
# The most alarms one round looks at (by priority): far more than a centre has agents.
ROUND_LIMIT = 500

# The card's data for one alarm, in the round's transaction: JSON-safe. The desk's builder adds the elder's file.
CardBuilder = Callable[[AsyncSession, Alarm], Awaitable[dict[str, Any]]]


async def alarm_facts(session: AsyncSession, alarm: Alarm) -> dict[str, Any]:
    """The alarm as ``GET /api/v1/alarms/{id}`` shows it, JSON-safe: what every card and overflow notice carries."""
    return AlarmDetail.model_validate(await describe(session, alarm)).model_dump(mode="json")


async def plain_card(session: AsyncSession, alarm: Alarm) -> dict[str, Any]:
    """The card without the desk's elder file (before the desk plugin hands its builder over)."""
    return {"alarm": await alarm_facts(session, alarm)}


def _priority_order() -> Any:
    """``queue_priority`` as SQL, so a round reads the most urgent alarms first."""
    return case(*[(and_(Alarm.type == alarm_type, Alarm.severity == severity), queue_priority(alarm_type, severity))
                  for alarm_type in AlarmType for severity in AlarmSeverity], else_=1000)


def free_for_alarms(agent: AgentState) -> bool:
    """Logged in, phone registered and idle (no SOS ringing, no call), not paused, not in wrap-up."""
    return agent.available and not agent.wrap_up and not agent.paused


@dataclasses.dataclass(frozen=True, slots=True)
class Round:
    """What one round did (for the logs and the tests): alarm ids offered (to whom), withdrawn, overflowed."""

    offered: dict[int, str]
    withdrawn: dict[int, str]
    overflowed: list[int]
    next_due: dt.datetime | None  # the earliest offer timeout or answer target still to come


class AlarmDistributor:
    """The platform's one distributor of alarms (a background job of the alarms plugin). Use it from the event
    loop's thread."""

    def __init__(self, db: Database, agents: AgentRegistry, *, answer_target: dt.timedelta,
                 offer_timeout: dt.timedelta, sweep_seconds: float) -> None:
        self._db = db
        self._agents = agents
        self.answer_target = answer_target
        self.offer_timeout = offer_timeout
        self._sweep_seconds = sweep_seconds
        self._hub: push.Fanout | None = None
        self._card: CardBuilder = plain_card
        self._cards: dict[str, dict[str, Any]] = {}  # username → the offer on their panel now (replayed)
        self._offered: dict[int, str] = {}  # alarm id → the username it is offered to now
        self._overflowing: dict[int, dict[str, Any]] = {}  # alarm id → its overflow notice (replayed)
        self._reconnected: list[push.Subscriber] = []  # panels connected since the last round
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._round_lock = asyncio.Lock()
        self.failed_rounds = 0
        self._last_error: str | None = None

    def publish_to(self, hub: push.Fanout, card: CardBuilder | None = None) -> None:
        """Offer on ``hub``'s panels, with ``card`` building each offer's data."""
        self._hub = hub
        if card is not None:
            self._card = card

    def wake(self, *_args: object) -> None:
        """Something changed (a new alarm, a take, an agent's state): run a round soon. Cheap, never waits; usable
        as any listener."""
        self._wake.set()

    def replay(self, client: push.Subscriber) -> None:
        """A panel that connects (or reloads) gets the offer on it, and a supervisor's the alarms overflowing."""
        if self._hub is None:
            return
        card = self._cards.get(client.username)
        if card is not None:
            self._hub.send(client, card)
        if client.role in (*OVERFLOW_WATCHERS, Role.ADMIN):
            for notice in self._overflowing.values():
                self._hub.send(client, notice)
        if card is None:
            self._reconnected.append(client)  # the next round sends it the alarm its agent holds, if any
        self.wake()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="alarm-distributor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            delay = float(self._sweep_seconds)
            try:
                done = await self.distribute()
                self._last_error = None
                if done.next_due is not None:
                    delay = min(delay, max(0.05, (done.next_due - utcnow()).total_seconds()))
            except Exception as error:
                self.failed_rounds += 1
                self._last_error = type(error).__name__
                log.exception("alarm.distribution_failed")
                delay = min(delay, 1.0)  # soon again: alarms are waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def health_checks(self) -> dict[str, Check]:
        """``alarm_distribution`` on /healthz: the offers standing and the alarms past their answer target (from
        memory: no query), and whether the last round failed. Not critical: SOS calls do not depend on it."""
        facts = {"offered": len(self._offered), "overflowing": len(self._overflowing),
                 "failed_rounds": self.failed_rounds}
        if self._last_error is not None:
            return {"alarm_distribution": Check(False, f"the last round failed: {self._last_error}", facts=facts)}
        return {"alarm_distribution": Check(True, f"{len(self._offered)} alarms offered to agents, "
                                                  f"{len(self._overflowing)} past the answer target", facts=facts)}

    def _watching(self, username: str) -> bool:
        return self._hub is not None and self._hub.watching(push.user(username))

    async def distribute(self, now: dt.datetime | None = None) -> Round:
        """One round (see the module's docstring): offers, withdrawals and overflows written in one transaction,
        and sent to the panels once it is committed."""
        async with self._round_lock:
            await self._replay_held(now or utcnow())
            return await self._distribute(now or utcnow())

    async def _replay_held(self, now: dt.datetime) -> None:
        """A panel that connected (a reload) while its agent holds an alarm (taken, responding) gets its card
        again, to close it with its outcome."""
        clients, self._reconnected = self._reconnected, []
        clients = [client for client in clients if client.user_id is not None and not client.dropped]
        if not clients or self._hub is None:
            return
        sends: list[tuple[push.Subscriber, dict[str, Any]]] = []
        async with self._db.transaction() as session:
            for client in clients:
                held = await session.scalar(select(Alarm).where(Alarm.taken_by_id == client.user_id,
                                                                Alarm.state.in_(HELD))
                                            .order_by(Alarm.taken_at.desc(), Alarm.id.desc()).limit(1))
                if held is not None:
                    sends.append((client, await self._offer_card(session, held, client.username, now)))
        for client, card in sends:
            self._hub.send(client, card)

    async def _distribute(self, now: dt.datetime) -> Round:
        outgoing: list[tuple[push.Audience, dict[str, Any]]] = []
        offered: dict[int, str] = {}
        withdrawn: dict[int, str] = {}
        overflowed: list[int] = []
        dues: list[dt.datetime] = []
        cards: dict[str, dict[str, Any]] = {}
        notices: dict[int, dict[str, Any]] = {}
        # Most rounds find nothing to do: they read only, and never wait for SQLite's write turn (nor hold it from
        # an SOS's intake).
        async with self._db.transaction(read_only=True) as session:
            if await session.scalar(select(Alarm.id).where(Alarm.state == AlarmState.NEW).limit(1)) is None \
                    and not self._offered and not self._overflowing:
                return Round({}, {}, [], None)
        async with self._db.transaction() as session:
            still_new = set((await session.scalars(select(Alarm.id).where(Alarm.state == AlarmState.NEW))).all())
            alarms = (await session.scalars(
                select(Alarm).where(Alarm.state == AlarmState.NEW)
                .order_by(_priority_order(), Alarm.received_at, Alarm.id).limit(ROUND_LIMIT)
                .with_for_update(skip_locked=True))).all()
            holding = set((await session.scalars(
                select(User.username).join(Alarm, Alarm.taken_by_id == User.id)
                .where(Alarm.state.in_(HELD)))).all())
            free = {agent.username: agent for agent in self._agents.all()
                    if free_for_alarms(agent) and agent.username not in holding and self._watching(agent.username)}
            live = {alarm.id: alarm.offered_to for alarm in alarms if self._live(alarm, free, now)}
            busy_with_offer = set(live.values())
            used: set[str] = set()
            for alarm in alarms:
                holder = live.get(alarm.id)
                if holder is not None and holder not in used:
                    used.add(holder)
                    assert alarm.offered_at is not None
                    dues.append(alarm.offered_at + self.offer_timeout)
                    if self._cards.get(holder, {}).get("alarm", {}).get("id") != alarm.id:
                        # Offered before a restart: the panel is shown it again.
                        cards[holder] = await self._offer_card(session, alarm, holder, now)
                        offered[alarm.id] = holder
                else:
                    previous = alarm.offered_to
                    agent = self._choose(free, used, busy_with_offer, avoid=previous)
                    if previous is not None and (agent is None or agent.username != previous):
                        withdrawn[alarm.id] = previous
                        # Taken over by a more urgent alarm, not taken in time, or no longer free (a call).
                        reason = "preempted" if holder is not None else "timeout" if previous in free else "busy"
                        outgoing.append((push.user(previous), {"type": WITHDRAWN, "alarm_id": alarm.id,
                                                                "reason": reason}))
                    if agent is None:
                        alarm.offered_to, alarm.offered_at = None, None
                    else:
                        used.add(agent.username)
                        alarm.offered_to, alarm.offered_at = agent.username, now
                        alarm.first_offered_at = alarm.first_offered_at or now
                        alarm.offer_count += 1
                        dues.append(now + self.offer_timeout)
                        cards[agent.username] = await self._offer_card(session, alarm, agent.username, now)
                        offered[alarm.id] = agent.username
                target_at = alarm.received_at + self.answer_target
                if alarm.overflowed_at is None and now >= target_at:
                    alarm.overflowed_at = now
                    overflowed.append(alarm.id)
                if alarm.overflowed_at is not None and alarm.id not in self._overflowing:
                    notice = {"type": OVERFLOW, "alarm": await alarm_facts(session, alarm),
                              "overflowed_at": alarm.overflowed_at.isoformat(),
                              "answer_target_seconds": int(self.answer_target.total_seconds())}
                    notices[alarm.id] = notice
                    outgoing.append((push.roles(OVERFLOW_WATCHERS), notice))
                elif alarm.overflowed_at is None:
                    dues.append(target_at)
            gone = [alarm_id for alarm_id in self._offered if alarm_id not in still_new]
            takers: dict[int, str] = {}
            if gone:
                rows = await session.execute(select(Alarm.id, User.username)
                                             .join(User, User.id == Alarm.taken_by_id).where(Alarm.id.in_(gone)))
                takers = {alarm_id: username for alarm_id, username in rows}
        # Committed: now the panels are told. Alarms no longer new (taken, resolved) leave the panels they were on.
        self._overflowing.update(notices)
        for alarm_id in gone:
            username = self._offered.pop(alarm_id)
            if self._cards.get(username, {}).get("alarm", {}).get("id") == alarm_id:
                del self._cards[username]
            if takers.get(alarm_id) != username:  # the agent who took it keeps their card
                outgoing.append((push.user(username), {"type": WITHDRAWN, "alarm_id": alarm_id, "reason": "taken"}))
        for alarm_id in [alarm_id for alarm_id in self._overflowing if alarm_id not in still_new]:
            del self._overflowing[alarm_id]
            outgoing.append((push.roles(OVERFLOW_WATCHERS), {"type": OVERFLOW_ENDED, "alarm_id": alarm_id}))
        for alarm_id, username in withdrawn.items():
            if self._offered.get(alarm_id) == username:
                del self._offered[alarm_id]
            if self._cards.get(username, {}).get("alarm", {}).get("id") == alarm_id:
                del self._cards[username]
        for username, card in cards.items():
            self._cards[username] = card
            self._offered[card["alarm"]["id"]] = username
        if self._hub is not None:
            for audience, message in outgoing:
                self._hub.publish(audience, message)
            for username, card in cards.items():
                self._hub.publish(push.user(username), card)
        for alarm_id, username in offered.items():
            log.info("alarm.offered", alarm_id=alarm_id, agent=username)
        for alarm_id in overflowed:
            log.warning("alarm.overflow", alarm_id=alarm_id,
                        answer_target_seconds=int(self.answer_target.total_seconds()))
        return Round(offered, withdrawn, overflowed, min(dues) if dues else None)

    def _live(self, alarm: Alarm, free: dict[str, AgentState], now: dt.datetime) -> bool:
        """The alarm's offer still stands: its agent still free for it and the offer not timed out."""
        return (alarm.offered_to is not None and alarm.offered_at is not None and alarm.offered_to in free
                and now < alarm.offered_at + self.offer_timeout)

    @staticmethod
    def _choose(free: dict[str, AgentState], used: set[str], busy_with_offer: set[str], *,
                avoid: str | None) -> AgentState | None:
        """The free agent to offer to: not given one this round; one whose offer timed out only if nobody else is
        free; one without a card before one whose card would be taken over; the longest in their state first."""
        candidates: Sequence[AgentState] = [agent for name, agent in free.items() if name not in used]
        if not candidates:
            return None
        others = [agent for agent in candidates if agent.username != avoid]
        pool = others or list(candidates)
        return min(pool, key=lambda agent: (agent.username in busy_with_offer, agent.since, agent.username))

    async def _offer_card(self, session: AsyncSession, alarm: Alarm, username: str,
                          now: dt.datetime) -> dict[str, Any]:
        card = await self._card(session, alarm)
        elder = card.get("elder")
        if isinstance(elder, dict) and elder.get("id") is not None:
            # The file is on the agent's screen: a read of it, audited as every other (elders.access).
            user_id = await session.scalar(select(User.id).where(User.username == username))
            # The parts of the card beside the file that are the elder's too (health data, places) are named.
            parts = [part for part in CARD_PARTS if card.get(part)]
            record_read(session, Actor(user_id, username), CARD_READ, elder["id"],
                        ReadGrounds(order_id=alarm.work_order_id), alarm=alarm.number,
                        fields=sorted(name for name in elder if name != "id") + parts)
        return {**card, "type": OFFER, "offered_to": username, "offered_at": now.isoformat(),
                "answer_by": (alarm.received_at + self.answer_target).isoformat(),
                "offer_until": (now + self.offer_timeout).isoformat()}


ALARM_DISTRIBUTOR = web.AppKey("alarm_distributor", AlarmDistributor)
