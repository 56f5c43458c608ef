"""One-click emergency conference: the elder and the agent are moved into a ConfBridge without being dropped,
and each party (120, the community doctor, relatives, the social worker) is originated into it through the trunk.

The roster is the ``conference_participants`` table, kept true by AMI Confbridge* and OriginateResponse events;
web handlers call this service, which talks to Asterisk only through the platform's one AMI client.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.asterisk import send_or_raise
from callcenter.api.errors import Conflict, Invalid, NotFound, Unavailable
from callcenter.audit.services import Actor
from callcenter.calls.models import Call, CallKind, CallLeg
from callcenter.conferences.models import ConferenceParticipant, PartyRole, PartyState
from callcenter.config import Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.dial_policy.services import DialPurpose, dial_basis, record_dial
from callcenter.elders.models import Contact, ContactRole
from callcenter.logs import get_logger
from callcenter.orders.services import record_on_call_order
from callcenter.telephony.ami import AmiClient, AmiError, AmiEvent
from callcenter.telephony.originate import REASON_TEXTS, Originate, OriginateReason, originate
from callcenter.users.models import User

log = get_logger(__name__)

EVENTS = ("ConfbridgeJoin", "ConfbridgeLeave", "ConfbridgeMute", "ConfbridgeUnmute", "Hangup")
# Q.850 causes of a dialled party's channel that never joined: what the roster shows.
_CAUSE_STATES = {"17": (PartyState.BUSY, "busy"), "18": (PartyState.NO_ANSWER, "no answer"),
                 "19": (PartyState.NO_ANSWER, "no answer"), "21": (PartyState.FAILED, "rejected"),
                 "1": (PartyState.FAILED, "unallocated number"), "34": (PartyState.FAILED, "no circuit"),
                 "38": (PartyState.FAILED, "network out of order")}
RING_SECONDS = 30
# Originated parties get uniqueids with this prefix (Originate ChannelId), so the Hangup of every other channel
# in the system is dismissed without a database round trip.
PARTY_UNIQUEID_PREFIX = "ccp"
# What a failed leg shows on the roster, by its OriginateResponse Reason (any other: failed).
_FAILED_STATES = {OriginateReason.BUSY: PartyState.BUSY, OriginateReason.NO_ANSWER: PartyState.NO_ANSWER}
_CONTACT_ROLES = {PartyRole.DOCTOR: ContactRole.DOCTOR, PartyRole.RELATIVE: ContactRole.RELATIVE,
                  PartyRole.SOCIAL_WORKER: ContactRole.SOCIAL_WORKER}

# (call id, roster, the username of the agent on the call as the call's row names it, if any)
RosterListener = Callable[[int, list[dict[str, Any]], str | None], None]


def room_for(call: Call) -> str:
    return f"cc-{call.id}"


def _trail_details(p: ConferenceParticipant) -> dict[str, object]:
    return {"participant_id": p.id, "role": p.role.value, "name": p.name, "number": p.number,
            "state": p.state.value, "failure_reason": p.failure_reason}


def why_closed(call: Call, roster: list[ConferenceParticipant]) -> str | None:
    """Why this call's conference takes no more parties, mutes or removals, or None while it is live.

    The conference exists for the elder: once the call has ended, the conference was ended for everyone, or the
    elder has left it (hung up; only dialled parties remain), dialling someone would ring a person into a room
    with nobody to help. Before the first party the elder has no row yet, and the call itself decides.
    """
    if call.ended_at is not None:
        return "the call has ended: nobody can be dialled into its conference"
    elder = next((p for p in roster if p.role is PartyRole.ELDER), None)
    if elder is None:
        return None
    if elder.left_at is not None or elder.state not in (PartyState.RINGING, PartyState.JOINED):
        return "the conference has ended (the elder is no longer in it): nobody can be dialled into it"
    return None


def party_request(*, number: str, room: str, channel_id: str, settings: Settings) -> Originate:
    """A party's number through the trunk into the room (``cc-conference`` ``party``), shown as the centre."""
    return Originate(
        channel=f"PJSIP/{number}@trunk", context="cc-conference", exten="party", channel_id=channel_id,
        ring_seconds=RING_SECONDS, caller_name=settings.centre_name, caller_number=settings.centre_number,
        variables={"CC_CONF_ROOM": room},
    )


def participant_dict(p: ConferenceParticipant) -> dict[str, Any]:
    return {"id": p.id, "role": p.role.value, "name": p.name, "number": p.number, "contact_id": p.contact_id,
            "state": p.state.value, "muted": p.muted, "failure_reason": p.failure_reason,
            "joined_at": p.joined_at.isoformat() if p.joined_at else None,
            "left_at": p.left_at.isoformat() if p.left_at else None}


class ConferenceService:
    def __init__(self, db: Database, ami: AmiClient, settings: Settings) -> None:
        self._db = db
        self._ami = ami
        self._settings = settings
        self._listeners: list[RosterListener] = []
        self._originations: set[asyncio.Task[None]] = set()

    def on_roster_change(self, listener: RosterListener) -> None:
        self._listeners.append(listener)

    # -- reading ----------------------------------------------------------------------------------------------
    async def roster(self, session: AsyncSession, call_id: int) -> list[ConferenceParticipant]:
        return list((await session.scalars(select(ConferenceParticipant).where(
            ConferenceParticipant.call_id == call_id).order_by(ConferenceParticipant.id))).all())

    async def _call(self, session: AsyncSession, call_id: int, *, for_update: bool = False) -> Call:
        call = await session.get(Call, call_id, with_for_update=for_update)
        if call is None:
            raise NotFound(f"no call {call_id}", field="call_id")
        return call

    async def _live_call(self, session: AsyncSession, call_id: int, *, for_update: bool = False) -> Call:
        """The call, if its conference still takes parties, mutes and removals; 409 naming why not otherwise."""
        call = await self._call(session, call_id, for_update=for_update)
        reason = why_closed(call, await self.roster(session, call.id))
        if reason is not None:
            raise Conflict(reason, field="call_id", code="conference_closed")
        return call

    # -- starting: elder and agent into the bridge ----------------------------------------------------------------
    async def _live_leg(self, session: AsyncSession, call: Call, *, origin: bool,
                        channel_prefix: str | None = None, not_prefix: str | None = None) -> CallLeg | None:
        statement = select(CallLeg).where(CallLeg.call_id == call.id, CallLeg.ended_at.is_(None))
        legs = (await session.scalars(statement.order_by(CallLeg.id))).all()
        for leg in legs:
            if origin and leg.uniqueid == call.linkedid:
                return leg
            if not origin and leg.uniqueid != call.linkedid and leg.answered_at is not None and (
                    channel_prefix is None or leg.channel.startswith(channel_prefix)) and (
                    not_prefix is None or not leg.channel.startswith(not_prefix)):
                return leg
        return None

    async def _elder_and_agent_legs(self, session: AsyncSession, call: Call,
                                    agent: User | None) -> tuple[CallLeg | None, CallLeg | None]:
        """The elder's live leg and the agent's. An elder's call (SOS, hotline) began with the elder's channel and
        the agent answered it; a call the centre placed (click-to-dial from an alarm card or a follow-up) began
        with the agent's phone, rung first, and the elder answered the leg dialled out through the trunk."""
        agent_prefix = f"PJSIP/{agent.extension}-" if agent is not None and agent.extension else None
        if call.kind is CallKind.OUTBOUND:
            agent_leg = await self._live_leg(session, call, origin=True)
            if agent_leg is not None and agent_prefix is not None and not agent_leg.channel.startswith(agent_prefix):
                agent_leg = None  # not this agent's phone: never move a stranger's channel
            return await self._live_leg(session, call, origin=False, not_prefix=agent_prefix), agent_leg
        return (await self._live_leg(session, call, origin=True),
                await self._live_leg(session, call, origin=False, channel_prefix=agent_prefix))

    async def ensure_started(self, call_id: int, *, actor_id: int | None) -> None:
        """Move the elder and the answering agent into the call's conference room (once)."""
        async with self._db.transaction() as session:
            # Locked and checked first: an ended call is refused even once its conference exists, and two first
            # parties added at once move the two only once.
            call = await self._live_call(session, call_id, for_update=True)
            if any(p.role is PartyRole.ELDER for p in await self.roster(session, call.id)):
                return
            agent = await session.get(User, call.agent_id) if call.agent_id is not None else None
            elder_leg, agent_leg = await self._elder_and_agent_legs(session, call, agent)
            if elder_leg is None or agent_leg is None:
                raise Conflict("the elder and an agent must be talking before a conference starts",
                               field="call_id")
            elder_number = call.callee_number if call.kind is CallKind.OUTBOUND else call.caller_number
            room = room_for(call)
            serial = f"CONF-{utcnow():%Y%m%d%H%M%S}-{''.join(ch for ch in call.linkedid if ch.isdigit())}"
            members = [
                ConferenceParticipant(call_id=call.id, room=room, role=PartyRole.ELDER, uniqueid=elder_leg.uniqueid,
                                      channel=elder_leg.channel, number=elder_number, added_by_id=actor_id),
                ConferenceParticipant(call_id=call.id, room=room, role=PartyRole.AGENT, uniqueid=agent_leg.uniqueid,
                                      channel=agent_leg.channel, name=agent.username if agent else None,
                                      added_by_id=actor_id),
            ]
            session.add_all(members)
            await session.flush()
            member_ids = [member.id for member in members]
            elder_channel, agent_channel, linkedid = elder_leg.channel, agent_leg.channel, call.linkedid
            # The order's trail names the conference's one recording, so an auditor finds it from the order.
            await record_on_call_order(session, call.id, "conference_started", actor_id=actor_id,
                                       actor_label=agent.username if agent else "agent",
                                       details={"room": room, "recording_serial": serial})
        try:
            for channel in (elder_channel, agent_channel):
                for variable, value in (("CC_CONF_ROOM", room), ("CC_CONF_SERIAL", serial)):
                    await self._send({"Action": "Setvar", "Channel": channel, "Variable": variable, "Value": value})
            # Both at once (ExtraChannel): neither side is left alone in the old bridge, so nobody is dropped.
            await self._send({"Action": "Redirect", "Channel": elder_channel, "Context": "cc-conference",
                              "Exten": "elder", "Priority": "1", "ExtraChannel": agent_channel,
                              "ExtraContext": "cc-conference", "ExtraExten": "agent", "ExtraPriority": "1"})
        except (Conflict, Unavailable) as error:
            # The two are still talking where they were: forget the rows, so the next try moves them again
            # instead of dialling parties into a room nobody is in.
            async with self._db.transaction() as session:
                for member_id in member_ids:
                    member = await session.get(ConferenceParticipant, member_id)
                    if member is not None:
                        await session.delete(member)
                await record_on_call_order(session, call_id, "conference_start_failed", actor_id=actor_id,
                                           actor_label="system", details={"error": str(error)[:300]})
            log.error("conference.start_failed", linkedid=linkedid, call_id=call_id, error=str(error))
            raise
        log.warning("conference.started", linkedid=linkedid, call_id=call_id, room=room, recording_serial=serial)

    # -- parties ------------------------------------------------------------------------------------------------
    async def add_party(self, call_id: int, role: PartyRole, *, contact_id: int | None, number: str | None,
                        actor_id: int | None) -> ConferenceParticipant:
        if role in (PartyRole.ELDER, PartyRole.AGENT):
            raise Invalid("the elder and the agent join by themselves", field="role")
        if not self._settings.trunk_uri:
            raise Conflict("no SIP trunk is configured (CC_TRUNK_URI): outside numbers cannot be dialled",
                           field="role")
        # Everything that can refuse the request is checked before anything changes: a refused add leaves a plain
        # two-party call (no bridge, no recording, nothing on the trail).
        async with self._db.transaction() as session:
            await self._resolve_party(session, await self._live_call(session, call_id), role, contact_id, number)
        await self.ensure_started(call_id, actor_id=actor_id)
        async with self._db.transaction() as session:
            call = await self._live_call(session, call_id, for_update=True)
            name, number, contact_id = await self._resolve_party(session, call, role, contact_id, number)
            party = ConferenceParticipant(call_id=call.id, room=room_for(call), role=role, contact_id=contact_id,
                                          name=name, number=number, added_by_id=actor_id)
            session.add(party)
            await session.flush()
            party_id = party.id
            actor_label = await self._actor_label(session, actor_id)
            await record_on_call_order(session, call.id, "conference_party_added", actor_id=actor_id,
                                       actor_label=actor_label, details=_trail_details(party))
            await self._audit_dial(session, call, party, DialPurpose.CONFERENCE, actor_id, actor_label)
        return await self._originate(party_id)

    async def _audit_dial(self, session: AsyncSession, call: Call, party: ConferenceParticipant,
                          purpose: DialPurpose, actor_id: int | None, actor_label: str) -> None:
        """The outbound dial in the audit log: who, which number, on what basis (dial_policy). The basis is judged
        afresh on every dial, a contact's party's too: by a re-dial the contact may have another number, or a
        supervisor may have withdrawn the allowed number (``Forbidden`` then, and nothing is dialled)."""
        number = (party.number or "").lstrip("+")
        basis = await dial_basis(session, number, elder_id=call.elder_id,
                                 service_numbers=self._settings.service_number_set, now=utcnow())
        record_dial(session, Actor(actor_id, actor_label), purpose=purpose, number=number, basis=basis,
                    call_id=call.id)

    async def _resolve_party(self, session: AsyncSession, call: Call, role: PartyRole, contact_id: int | None,
                             number: str | None) -> tuple[str | None, str, int | None]:
        if contact_id is not None:
            contact = await session.get(Contact, contact_id)
            if contact is None or contact.elder_id != call.elder_id:
                raise Invalid("no such contact of this call's elder", field="contact_id")
            if _CONTACT_ROLES.get(role) is not contact.role:
                raise Invalid(f"contact {contact_id} is a {contact.role.value}, not a {role.value}", field="role")
            return contact.name, contact.phone, contact.id
        if number:
            # A typed number: dialled only when the policy allows it (dial_policy), else refused before anything.
            await dial_basis(session, number.lstrip("+"), elder_id=call.elder_id,
                             service_numbers=self._settings.service_number_set, now=utcnow())
            return None, number, None
        if role is PartyRole.EMERGENCY:
            return "120", self._settings.emergency_number, None
        # No contact named: the elder's first contact of that role, in priority order.
        contact = await session.scalar(select(Contact).where(
            Contact.elder_id == call.elder_id, Contact.role == _CONTACT_ROLES[role]).order_by(Contact.priority))
        if call.elder_id is None or contact is None:
            raise Invalid(f"the elder has no {role.value} on file: give a number", field="number")
        return contact.name, contact.phone, contact.id

    async def redial(self, call_id: int, participant_id: int, *,
                     actor_id: int | None = None) -> ConferenceParticipant:
        async with self._db.transaction() as session:
            await self._live_call(session, call_id, for_update=True)
            party = await self._participant(session, call_id, participant_id)
            if party.state not in (PartyState.BUSY, PartyState.NO_ANSWER, PartyState.FAILED, PartyState.LEFT):
                raise Conflict(f"the party is {party.state.value}", field="state")
            if party.role in (PartyRole.ELDER, PartyRole.AGENT):
                raise Conflict("only dialled parties can be re-dialled", field="role")
            party.state, party.failure_reason, party.left_at, party.joined_at = PartyState.RINGING, None, None, None
            # Checked again: a supervisor may have withdrawn the number since it was first dialled.
            await self._audit_dial(session, await self._call(session, call_id), party, DialPurpose.REDIAL,
                                   actor_id, await self._actor_label(session, actor_id))
        return await self._originate(participant_id)

    async def _originate(self, participant_id: int) -> ConferenceParticipant:
        async with self._db.transaction() as session:
            party = await session.get(ConferenceParticipant, participant_id)
            assert party is not None
            call = await self._call(session, party.call_id)
            party.uniqueid = f"{PARTY_UNIQUEID_PREFIX}{party.id}-{secrets.token_hex(4)}"
            party.channel = None
            party.state = PartyState.RINGING
            linkedid = call.linkedid
        # Sessions do not expire on commit: the row's values stay readable for the answer.
        request = party_request(number=party.number, room=party.room, channel_id=party.uniqueid,
                                settings=self._settings)
        task = asyncio.create_task(self._await_origination(participant_id, request, linkedid))
        self._originations.add(task)
        task.add_done_callback(self._originations.discard)
        await self._notify(party.call_id)
        return party

    async def _await_origination(self, participant_id: int, request: Originate, linkedid: str) -> None:
        """One Originate, never re-sent; a failure is logged with its cause and shown, the bridge is untouched."""
        bound = log.bind(linkedid=linkedid, participant_id=participant_id, channel=request.channel)
        reason: str | None = None
        try:
            result = await originate(self._ami, request)
            if not result.answered:
                reason = result.reason or result.message or "failed"
        except AmiError as error:
            reason = f"error: {error}"
        if reason is None:
            return  # ConfbridgeJoin marks it joined
        async with self._db.transaction() as session:
            # Row lock: the party's Hangup event may be recording its precise cause right now (PostgreSQL runs
            # both transactions at once; without the lock the coarse "failed" could overwrite "busy").
            party = await session.get(ConferenceParticipant, participant_id, with_for_update=True)
            if party is None or party.state is not PartyState.RINGING:
                return
            party.state = _FAILED_STATES.get(reason, PartyState.FAILED)
            party.failure_reason = REASON_TEXTS.get(reason, reason)[:100]
            call_id = party.call_id
            await record_on_call_order(session, call_id, "conference_party_failed", actor_id=None,
                                       actor_label="asterisk", details=_trail_details(party))
        bound.warning("conference.party_failed", reason=reason)
        await self._notify(call_id)

    async def _participant(self, session: AsyncSession, call_id: int, participant_id: int) -> ConferenceParticipant:
        party = await session.get(ConferenceParticipant, participant_id)
        if party is None or party.call_id != call_id:
            raise NotFound(f"no participant {participant_id} in call {call_id}", field="participant_id")
        return party

    async def _party_action(self, call_id: int, participant_id: int, action: str, *, live: bool = True) -> None:
        """Mute, unmute or kick one joined party. ``live``: refused once the conference is closed (the agent
        stepping out is not: it is how the agent leaves the remaining parties alone together)."""
        async with self._db.transaction() as session:
            call = await (self._live_call(session, call_id) if live else self._call(session, call_id))
            party = await self._participant(session, call_id, participant_id)
            if party.state is not PartyState.JOINED or not party.channel:
                raise Conflict(f"the party is {party.state.value}, not in the conference", field="state")
            channel, room = party.channel, room_for(call)
        await self._send({"Action": action, "Conference": room, "Channel": channel})

    async def mute(self, call_id: int, participant_id: int) -> None:
        await self._party_action(call_id, participant_id, "ConfbridgeMute")

    async def unmute(self, call_id: int, participant_id: int) -> None:
        await self._party_action(call_id, participant_id, "ConfbridgeUnmute")

    async def remove(self, call_id: int, participant_id: int) -> None:
        await self._party_action(call_id, participant_id, "ConfbridgeKick")

    async def leave(self, call_id: int) -> None:
        """The agent steps out; the elder stays connected with 120 and family."""
        async with self._db.transaction() as session:
            agent = next((p for p in await self.roster(session, call_id)
                          if p.role is PartyRole.AGENT and p.state is PartyState.JOINED), None)
            if agent is None:
                raise Conflict("the agent is not in this call's conference", field="call_id")
            agent_id = agent.id
        await self._party_action(call_id, agent_id, "ConfbridgeKick", live=False)

    async def end(self, call_id: int, *, actor_id: int | None = None) -> None:
        """Everyone out, and every party still ringing hung up: nobody answers into an empty room.

        Allowed while anyone is still in the room, even after the elder has hung up (the agent closes the lines
        left). Once done, the elder's row carries the moment (``left_at``) before Asterisk's ConfbridgeLeave
        arrives, so an add sent right after the end is refused rather than dialled.
        """
        async with self._db.transaction() as session:
            call = await self._call(session, call_id)
            roster = await self.roster(session, call.id)
            if not any(p.state is PartyState.JOINED for p in roster):
                raise Conflict("nobody is in this call's conference", field="call_id", code="conference_closed")
            ringing = [p.uniqueid for p in roster if p.state is PartyState.RINGING and p.uniqueid
                       and p.uniqueid.startswith(PARTY_UNIQUEID_PREFIX)]
            room, linkedid = room_for(call), call.linkedid
        await self._send({"Action": "ConfbridgeKick", "Conference": room, "Channel": "all"})
        async with self._db.transaction() as session:
            elder = next((p for p in await self.roster(session, call_id) if p.role is PartyRole.ELDER), None)
            if elder is not None and elder.left_at is None:
                elder.left_at = utcnow()
            await record_on_call_order(session, call_id, "conference_ended", actor_id=actor_id,
                                       actor_label=await self._actor_label(session, actor_id),
                                       details={"room": room, "ringing_hung_up": len(ringing)})
        for uniqueid in ringing:
            # Its Hangup event tells the roster; a party that answered meanwhile was kicked with the rest.
            with contextlib.suppress(Conflict, Unavailable):
                await self._send({"Action": "Hangup", "Channel": uniqueid, "Cause": "16"})
        log.warning("conference.ended", linkedid=linkedid, call_id=call_id, room=room, ringing_hung_up=len(ringing))

    async def _send(self, action: dict[str, Any]) -> None:
        await send_or_raise(self._ami, action)

    # -- events ---------------------------------------------------------------------------------------------------
    async def handle(self, event: AmiEvent) -> None:
        name, uniqueid = event.get("Event"), event.get("Uniqueid", "")
        if name == "Hangup" and not uniqueid.startswith(PARTY_UNIQUEID_PREFIX):
            return  # a member's hang-up is told by ConfbridgeLeave; only dialled parties' causes matter here
        async with self._db.transaction() as session:
            party = await session.scalar(select(ConferenceParticipant).where(
                ConferenceParticipant.uniqueid == uniqueid).with_for_update())
            if party is None:
                return
            now = utcnow()
            before = (party.state, party.failure_reason)
            if name == "ConfbridgeJoin":
                party.state, party.joined_at, party.left_at = PartyState.JOINED, now, None
                party.channel = event.get("Channel") or party.channel
                party.muted = event.get("Muted") == "Yes"
            elif name == "ConfbridgeLeave":
                party.state, party.left_at = PartyState.LEFT, now
            elif name in ("ConfbridgeMute", "ConfbridgeUnmute"):
                party.muted = name == "ConfbridgeMute"
            elif name == "Hangup":
                # A member's hang-up is told by ConfbridgeLeave. A party that never joined may already carry the
                # Originate's coarse "failed": the channel's own cause is more precise and wins.
                if party.joined_at is not None or party.state not in (PartyState.RINGING, PartyState.FAILED):
                    return
                # The dialled party's channel ended before joining: its cause says busy, no answer, or why not.
                cause = event.get("Cause", "")
                party.state, party.failure_reason = _CAUSE_STATES.get(
                    cause, (PartyState.FAILED, (event.get("Cause-txt") or f"cause {cause}")[:100]))
            call_id = party.call_id
            if (party.state, party.failure_reason) != before:
                # Who joined, left or could not be reached, and when: on the order's trail (seed 4.2.4).
                action = {PartyState.JOINED: "conference_party_joined", PartyState.LEFT: "conference_party_left"}.get(
                    party.state, "conference_party_failed")
                await record_on_call_order(session, call_id, action, actor_id=None, actor_label="asterisk",
                                           details={**_trail_details(party), "at": now.isoformat()})
        log.info("conference.roster", linkedid=event.get("Linkedid"), uniqueid=uniqueid, event_name=name,
                 call_id=call_id)
        await self._notify(call_id)

    @staticmethod
    async def _actor_label(session: AsyncSession, actor_id: int | None) -> str:
        user = await session.get(User, actor_id) if actor_id is not None else None
        return user.username if user is not None else "system"

    async def _notify(self, call_id: int) -> None:
        if not self._listeners:
            return
        async with self._db.transaction() as session:
            roster = [participant_dict(p) for p in await self.roster(session, call_id)]
            # The call's own agent: a call the centre placed (from an alarm card) was never popped to anyone.
            agent = await session.scalar(select(User.username).join(Call, Call.agent_id == User.id)
                                         .where(Call.id == call_id))
        for listener in self._listeners:
            listener(call_id, roster, agent)

    async def stop(self) -> None:
        for task in list(self._originations):
            task.cancel()
