"""Agent state from queue-member events: per-queue pauses, wrap-up, availability per queue."""

from __future__ import annotations

from panoramisk.message import Message

from callcenter.agents.state import WRAPUP_REASON, AgentRegistry


def _event(name: str, queue: str, **fields: str) -> Message:
    return Message({"Event": name, "Queue": queue, "MemberName": "agent-a", "Interface": "PJSIP/8001", **fields})


async def _logged_in(registry: AgentRegistry) -> None:
    for queue in ("emergency", "hotline"):
        await registry.handle(_event("QueueMemberAdded", queue, Paused="0", Status="1"))


async def test_wrap_up_pauses_the_hotline_only_and_the_agent_still_takes_sos() -> None:
    registry = AgentRegistry()
    await _logged_in(registry)
    await registry.handle(_event("QueueMemberPause", "hotline", Paused="1", PausedReason=WRAPUP_REASON,
                                 LastPause="1777000000"))
    agent = registry.get("agent-a")
    assert agent is not None
    assert (agent.status, agent.wrap_up, agent.paused) == ("wrap_up", True, False)
    assert agent.available_in("emergency") and not agent.available_in("hotline")
    assert [a.username for a in registry.available(["emergency"])] == ["agent-a"]
    assert registry.available(["hotline"]) == []
    assert agent.last_pause_at is not None and agent.last_pause_at.year == 2026
    assert agent.as_dict()["wrap_up"] is True


async def test_a_personal_pause_of_every_queue_is_a_pause_and_outranks_wrap_up() -> None:
    registry = AgentRegistry()
    await _logged_in(registry)
    await registry.handle(_event("QueueMemberPause", "hotline", Paused="1", PausedReason=WRAPUP_REASON))
    for queue in ("emergency", "hotline"):
        await registry.handle(_event("QueueMemberPause", queue, Paused="1", PausedReason="休息"))
    agent = registry.get("agent-a")
    assert agent is not None
    assert (agent.status, agent.paused, agent.pause_reason, agent.wrap_up) == ("paused", True, "休息", False)
    assert registry.available() == []
    for queue in ("emergency", "hotline"):
        await registry.handle(_event("QueueMemberPause", queue, Paused="0"))
    assert (agent.status, agent.paused, agent.paused_in) == ("available", False, {})


async def test_a_call_during_wrap_up_shows_on_call_and_removal_forgets_the_queue_pause() -> None:
    registry = AgentRegistry()
    await _logged_in(registry)
    await registry.handle(_event("QueueMemberPause", "hotline", Paused="1", PausedReason=WRAPUP_REASON))
    await registry.handle(_event("QueueMemberStatus", "emergency", Status="2"))
    agent = registry.get("agent-a")
    assert agent is not None and agent.status == "on_call"
    await registry.handle(_event("QueueMemberRemoved", "hotline"))
    assert agent.paused_in == {} and agent.queues == {"emergency"}
