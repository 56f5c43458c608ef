"""Screen-pop: the moment an agent's phone is connected to a caller, the agent's panel gets the elder's file.

Built from AMI ``AgentConnect`` (the queue bridged caller and agent). The latest pop of each agent is kept until
the call ends, so a panel that connects (or reloads) after the answer still gets it. Each pop of an elder's file
that reaches a panel is audited as a read of that file, after it is sent (``pop_audit``).
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter import push
from callcenter.calls.models import Call, CallKind
from callcenter.db.base import utcnow
from callcenter.db.retry import is_transient, with_retry
from callcenter.db.session import Database
from callcenter.desk.pop_audit import PopRead, ScreenPopAudit
from callcenter.devices.models import Device
from callcenter.elders.models import Elder
from callcenter.logs import get_logger
from callcenter.orders.models import WorkOrder, WorkOrderStatus
from callcenter.telephony.ami import AmiEvent
from callcenter.users.models import Role

log = get_logger(__name__)

EVENTS = ("AgentCalled", "AgentConnect", "Hangup")
# Pops built while an agent's phone rings, waiting for the answer (bounded: unanswered rings are forgotten).
PREPARED_POPS = 500
RECENT_CALLS = 5
# Calls whose agents still get their conference roster after the caller's line ended (a conference outlives the
# elder's hang-up: 120 and the family may still be talking). Bounded: the oldest are forgotten first.
REMEMBERED_CALLS = 1000
_CLOSED = (WorkOrderStatus.CLOSED, WorkOrderStatus.CANCELLED)
EMERGENCY_QUEUE = "emergency"
# How long the pop waits for the elder's file before it goes out with what AMI says (the database is away).
POP_DATABASE_SECONDS = 1.5


def _age(birth_date: dt.date | None, today: dt.date) -> int | None:
    if birth_date is None:
        return None
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def build_screen_pop(session: AsyncSession, call: Call) -> dict[str, Any]:
    """The message an agent's panel shows: who is calling and everything needed in the first minute."""
    elder = await session.get(Elder, call.elder_id) if call.elder_id is not None else None
    device = await session.get(Device, call.device_id) if call.device_id is not None else None
    this_order = await session.scalar(select(WorkOrder).where(WorkOrder.call_id == call.id)
                                      .order_by(WorkOrder.id).limit(1))
    return {
        "type": "screen_pop",
        "call_id": call.id,
        "linkedid": call.linkedid,
        "kind": call.kind.value,
        "sos": call.kind is CallKind.SOS,
        "caller_number": call.caller_number,
        "queue": call.queue,
        "identified_by": call.identified_by.value,
        "unknown_caller": elder is None,
        **await elder_file(session, elder, device, not_call_id=call.id),
        "work_order": _order(this_order) if this_order is not None else None,
    }


async def elder_file(session: AsyncSession, elder: Elder | None, device: Device | None, *,
                     not_call_id: int | None = None) -> dict[str, Any]:
    """What a pop shows of the elder and their device: the file with contacts in priority order, the device, the
    recent calls (but ``not_call_id``, the one being popped) and the open work orders. The screen-pop and the alarm
    card (``desk.alarm_card``) both show it."""
    file: dict[str, Any] = {"elder": None, "device": None, "recent_calls": [], "open_work_orders": []}
    if device is not None:
        file["device"] = {"id": device.id, "kind": device.kind.value, "status": device.status.value,
                          "battery_percent": device.battery_percent,
                          "last_heartbeat_at": _iso(device.last_heartbeat_at)}
    if elder is None:
        return file
    await session.refresh(elder, ["contacts"])
    file["elder"] = {
        "id": elder.id, "full_name": elder.full_name, "gender": elder.gender,
        "age": _age(elder.birth_date, utcnow().date()), "phone": elder.phone, "address": elder.address,
        "community": elder.community, "latitude": elder.latitude, "longitude": elder.longitude,
        "living_situation": elder.living_situation.value if elder.living_situation else None,
        "care_level": elder.care_level, "conditions": elder.conditions, "medications": elder.medications,
        "allergies": elder.allergies, "language": elder.language,
        "contacts": [{"id": c.id, "role": c.role.value, "name": c.name, "phone": c.phone,
                      "relationship": c.relationship_to_elder, "priority": c.priority}
                     for c in sorted(elder.contacts, key=lambda c: (c.role.value, c.priority))],
    }
    calls = select(Call).where(Call.elder_id == elder.id)
    if not_call_id is not None:
        calls = calls.where(Call.id != not_call_id)
    recent = (await session.scalars(calls.order_by(Call.started_at.desc()).limit(RECENT_CALLS))).all()
    file["recent_calls"] = [{"id": c.id, "kind": c.kind.value, "started_at": _iso(c.started_at),
                             "disposition": c.disposition.value} for c in recent]
    orders = (await session.scalars(select(WorkOrder).where(WorkOrder.elder_id == elder.id,
                                                            WorkOrder.status.not_in(_CLOSED))
                                    .order_by(WorkOrder.priority, WorkOrder.created_at.desc()).limit(20))).all()
    file["open_work_orders"] = [_order(o) for o in orders]
    return file


def degraded_screen_pop(linkedid: str, event: AmiEvent) -> dict[str, Any]:
    """What AMI alone says when the database cannot: the caller, the queue (an SOS is in the emergency queue).
    The elder's file follows once the database answers; the agent is told so (``degraded``)."""
    queue = event.get("Queue") or None
    return {
        "type": "screen_pop", "call_id": None, "linkedid": linkedid,
        "kind": "sos" if queue == EMERGENCY_QUEUE else "other", "sos": queue == EMERGENCY_QUEUE,
        "caller_number": event.get("CallerIDNum") or None, "queue": queue, "identified_by": "none",
        "unknown_caller": True, "elder": None, "device": None, "recent_calls": [], "open_work_orders": [],
        "work_order": None, "degraded": True,
    }


def _order(order: WorkOrder) -> dict[str, Any]:
    return {"id": order.id, "number": order.number, "kind": order.kind.value, "status": order.status.value,
            "priority": order.priority, "title": order.title, "version": order.version}


class ScreenPops:
    def __init__(self, db: Database, hub: push.Fanout, audit: ScreenPopAudit) -> None:
        self._db = db
        self._hub = hub
        self._audit = audit  # each pop of an elder's file that reaches a panel is a read of it, audited
        self._active: dict[str, dict[str, Any]] = {}  # username → the pop of the call they are on
        self._agents_of: OrderedDict[int, set[str]] = OrderedDict()  # call id → every agent it was popped to
        self._prepared: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()  # (linkedid, agent) → pop

    async def _build(self, linkedid: str, event: AmiEvent) -> dict[str, Any] | None:
        # Read-only: the pop never waits for the AMI events and AGI requests being written meanwhile.
        async def read() -> dict[str, Any] | None:
            async with self._db.transaction(read_only=True) as session:
                call = await session.scalar(select(Call).where(Call.linkedid == linkedid))
                return await build_screen_pop(session, call) if call is not None else None

        try:
            pop = await with_retry(read, deadline=POP_DATABASE_SECONDS)
        except Exception as error:
            if not is_transient(error):
                raise
            log.error("desk.screen_pop_degraded", linkedid=linkedid, error=f"{type(error).__name__}")
            return degraded_screen_pop(linkedid, event)
        if pop is None and event.get("Queue") == EMERGENCY_QUEUE:
            # An SOS whose intake went to the journal (the database was away): not in the log yet.
            return degraded_screen_pop(linkedid, event)
        return pop

    async def handle(self, event: AmiEvent) -> None:
        name, linkedid = event.get("Event"), event.get("Linkedid", "")
        if name == "AgentCalled":
            # The agent's phone rings: build the pop now, so the answer only has to send it.
            username = event.get("MemberName", "")
            pop = await self._build(linkedid, event) if username else None
            if pop is not None:
                self._prepared[(linkedid, username)] = pop
                while len(self._prepared) > PREPARED_POPS:
                    self._prepared.popitem(last=False)
        elif name == "AgentConnect":
            username = event.get("MemberName", "")
            if not username:
                return
            pop = self._prepared.pop((linkedid, username), None) or await self._build(linkedid, event)
            if pop is None:
                return
            pop["agent"] = username
            self._active[username] = pop
            self._agents_of.setdefault(pop["call_id"], set()).add(username)
            self._agents_of.move_to_end(pop["call_id"])
            while len(self._agents_of) > REMEMBERED_CALLS:
                self._agents_of.popitem(last=False)
            delivered = self._hub.publish(push.user(username), pop)
            log.info("desk.screen_pop", linkedid=linkedid, call_id=pop["call_id"], agent=username,
                     sos=pop["sos"], elder_id=(pop["elder"] or {}).get("id"), panels=delivered)
            if delivered:  # after the pop is on its way: the audit never delays it
                self._audited(pop, username, [client.source_ip for client in
                                              self._hub.subscribers(push.user(username))])
        elif name == "Hangup" and event.get("Uniqueid") == linkedid:
            for key in [key for key in self._prepared if key[0] == linkedid]:
                del self._prepared[key]
            # The caller's channel ended: the call is over for every agent who had it popped.
            for username, pop in list(self._active.items()):
                if pop["linkedid"] == linkedid:
                    del self._active[username]
                    self._hub.publish(push.user(username), {"type": "call_ended", "call_id": pop["call_id"]})

    def agents_of_call(self, call_id: int) -> list[str]:
        """The agents the call was popped to, also after it ended (its conference may live on)."""
        return sorted(self._agents_of.get(call_id, ()))

    def replay(self, client: push.Subscriber) -> None:
        """A panel that connects mid-call gets the pop it missed."""
        pop = self._active.get(client.username)
        if pop is not None and self._hub.send(client, pop):
            self._audited(pop, client.username, [client.source_ip], replay=True)

    def _audited(self, pop: dict[str, Any], username: str, addresses: list[str | None], *,
                 replay: bool = False) -> None:
        """Queue the audit entry of a pop that showed an elder's file (``pop_audit``); a pop without one reads
        nothing."""
        elder = pop.get("elder")
        if elder is None or pop.get("call_id") is None:
            return
        self._audit.note(PopRead(
            username=username, elder_id=elder["id"], call_id=pop["call_id"], at=utcnow(),
            panel_addresses=tuple(sorted({address for address in addresses if address})),
            fields=tuple(sorted(name for name in elder if name != "id")), replay=replay))


def publish_roster(hub: push.Fanout,
                   pops: ScreenPops) -> Callable[[int, list[dict[str, Any]], str | None], None]:
    """A conference roster change goes to the agent(s) on that call — those it was popped to, and the agent the
    call names (who placed it from an alarm card) — and to the supervisors."""

    def publish(call_id: int, roster: list[dict[str, Any]], call_agent: str | None) -> None:
        message = {"type": "conference_roster", "call_id": call_id, "participants": roster}
        for username in sorted({*pops.agents_of_call(call_id), *([call_agent] if call_agent else [])}):
            hub.publish(push.user(username), message)
        hub.publish(push.roles([Role.SUPERVISOR]), message)

    return publish
