"""The wallboard's live state from AMI events alone: queue order as Asterisk keeps it, talks, hang-ups, and a resync
from QueueStatus (QueueEntry's Wait) that loses no event handled while it runs."""

from __future__ import annotations

import datetime as dt

from panoramisk.message import Message

from callcenter.wallboard.services import LiveState

T0 = 1_780_000_000.0  # an Asterisk event Timestamp (seconds since the epoch)


def _event(name: str, uniqueid: str, *, at: float = T0, linkedid: str | None = None, **fields: str) -> Message:
    return Message({"Event": name, "Uniqueid": uniqueid, "Linkedid": linkedid or uniqueid, "Timestamp": f"{at:.6f}",
                    **fields})


def _join(state: LiveState, queue: str, uniqueid: str, position: int, at: float = T0) -> bool:
    return state.apply(_event("QueueCallerJoin", uniqueid, at=at, Queue=queue, Position=str(position),
                              CallerIDNum=f"1770000{uniqueid[-4:]}", CallerIDName="<unknown>"))


def _order(state: LiveState, queue: str) -> list[str]:
    return [caller.uniqueid for caller in state.waiting(queue)]


def test_callers_keep_asterisks_order_and_their_join_time() -> None:
    state = LiveState()
    assert _join(state, "hotline", "1.0001", 1)
    assert _join(state, "hotline", "1.0002", 2, at=T0 + 5)
    # An SOS-priority caller inserted ahead of both (Asterisk says position 1).
    assert _join(state, "hotline", "1.0003", 1, at=T0 + 9)
    assert _order(state, "hotline") == ["1.0003", "1.0001", "1.0002"]
    first = state.waiting("hotline")[1]
    assert first.joined_at == dt.datetime.fromtimestamp(T0, dt.UTC)
    assert first.caller_number == "17700000001" and first.caller_name is None
    assert not _join(state, "hotline", "1.0001", 3)  # the same join again (a replay) changes nothing
    assert state.apply(_event("QueueCallerLeave", "1.0003", Queue="hotline", Position="1"))
    assert state.apply(_event("QueueCallerAbandon", "1.0001", Queue="hotline", Position="1", HoldTime="12"))
    assert _order(state, "hotline") == ["1.0002"]
    assert not state.apply(_event("QueueCallerLeave", "9.9999", Queue="hotline"))  # never known
    assert state.waiting("emergency") == []


def test_agent_connect_starts_a_talk_and_complete_or_hangup_ends_it() -> None:
    state = LiveState()
    for uniqueid, linkedid in (("2.0001", "2.0001"), ("2.0002", "2.0001")):
        state.apply(_event("Newchannel", uniqueid, linkedid=linkedid))
    _join(state, "emergency", "2.0001", 1)
    state.apply(_event("QueueCallerLeave", "2.0001", Queue="emergency"))
    assert state.apply(_event("AgentConnect", "2.0001", at=T0 + 4, Queue="emergency", MemberName="agent-a",
                              DestUniqueid="2.0002", HoldTime="4"))
    talk = state.talks()["2.0001"]
    assert (talk.agent, talk.queue, talk.since) == ("agent-a", "emergency", dt.datetime.fromtimestamp(T0 + 4, dt.UTC))
    assert not state.apply(_event("AgentComplete", "2.0001", Queue="emergency", MemberName="someone-else"))
    assert state.apply(_event("AgentComplete", "2.0001", Queue="emergency", MemberName="agent-a"))
    assert state.talks() == {}
    # Without AgentComplete (a lost event), the agent's hang-up ends the talk.
    state.apply(_event("AgentConnect", "2.0001", Queue="emergency", MemberName="agent-a", DestUniqueid="2.0002"))
    state.apply(_event("Hangup", "2.0002", linkedid="2.0001"))
    assert state.talks() == {} and state.live_linkedids() == {"2.0001"}
    state.apply(_event("Hangup", "2.0001"))
    assert state.live_linkedids() == set()


def test_the_last_hangup_of_a_call_clears_a_caller_whose_leave_was_missed() -> None:
    state = LiveState()
    state.apply(_event("Newchannel", "3.0001"))
    _join(state, "hotline", "3.0001", 1)
    assert state.apply(_event("Hangup", "3.0001"))
    assert state.waiting("hotline") == [] and state.waiting_linkedids() == {}


def test_resync_takes_waits_from_queue_entries_and_replays_events_handled_meanwhile() -> None:
    state = LiveState()
    _join(state, "hotline", "4.0001", 1)  # stale: Asterisk no longer has it
    state.begin_resync()
    # Handled while QueueStatus was being answered: one caller joins after the list was made, one leaves after it.
    state.apply(_event("Newchannel", "4.0009"))
    _join(state, "emergency", "4.0009", 1, at=T0 + 100)
    state.apply(_event("QueueCallerLeave", "4.0003", Queue="hotline", Position="2"))
    now = dt.datetime.fromtimestamp(T0 + 120, dt.UTC)
    queue_status = [
        Message({"Response": "Success", "EventList": "start"}),
        Message({"Event": "QueueParams", "Queue": "hotline", "Calls": "2"}),
        Message({"Event": "QueueMember", "Queue": "hotline", "Name": "agent-a"}),
        Message({"Event": "QueueEntry", "Queue": "hotline", "Position": "2", "Uniqueid": "4.0003",
                 "CallerIDNum": "17700000003", "CallerIDName": "王", "Wait": "30"}),
        Message({"Event": "QueueEntry", "Queue": "hotline", "Position": "1", "Uniqueid": "4.0002",
                 "CallerIDNum": "17700000002", "CallerIDName": "", "Wait": "75"}),
        Message({"Event": "QueueStatusComplete"}),
    ]
    channels = [Message({"Event": "CoreShowChannel", "Uniqueid": u, "Linkedid": link, "Channel": f"PJSIP/x-{u}"})
                for u, link in (("4.0002", "4.0002"), ("4.0003", "4.0003"), ("4.0004", "4.0002"))]
    state.finish_resync(queue_status, channels, now)
    assert state.synced
    assert _order(state, "hotline") == ["4.0002"]  # the leave handled meanwhile is not undone
    waiting = state.waiting("hotline")[0]
    assert waiting.joined_at == now - dt.timedelta(seconds=75) and waiting.caller_name is None
    assert _order(state, "emergency") == ["4.0009"]  # the join handled meanwhile is kept
    assert state.live_linkedids() == {"4.0002", "4.0003", "4.0009"}
    # After the resync, events are no longer journaled.
    state.apply(_event("QueueCallerLeave", "4.0009", Queue="emergency"))
    assert state.waiting("emergency") == []
