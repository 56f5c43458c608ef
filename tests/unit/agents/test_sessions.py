"""The recorded queue sessions: what is written on login, pause, resume and logout, and what a resync sends to put
them back into an Asterisk that lost them. Asterisk's own side of it runs in
tests/integration/test_asterisk_restart.py."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select
from structlog.testing import capture_logs

from callcenter.agents import sessions
from callcenter.agents.models import AgentSession
from callcenter.agents.services import AgentService
from callcenter.agents.sessions import Member
from callcenter.agents.state import WRAPUP_REASON, AgentRegistry
from callcenter.api.errors import Unavailable
from callcenter.db.session import Database
from callcenter.telephony.ami import AmiClient
from callcenter.users.models import Role, User
from tests.harness import free_tcp_port

INTERFACE = "PJSIP/8201"


def _recorded(*, paused: bool = False, reason: str | None = None,
              queues: tuple[str, ...] = ("emergency", "hotline")) -> AgentSession:
    return AgentSession(user_id=1, interface=INTERFACE, queues=list(queues), paused=paused, pause_reason=reason)


def test_every_missing_queue_is_added_back_paused_as_recorded_with_the_reason() -> None:
    actions = sessions.restore_actions("agent-a", _recorded(paused=True, reason="午餐"), {})
    assert actions == [
        {"Action": "QueueAdd", "Queue": queue, "Interface": INTERFACE, "MemberName": "agent-a",
         "StateInterface": INTERFACE, "Paused": "true", "Reason": "午餐"}
        for queue in ("emergency", "hotline")
    ]
    unpaused = sessions.restore_actions("agent-a", _recorded(), {("hotline", INTERFACE): Member(False, "")})
    assert unpaused == [{"Action": "QueueAdd", "Queue": "emergency", "Interface": INTERFACE, "MemberName": "agent-a",
                         "StateInterface": INTERFACE, "Paused": "false"}]


def test_a_member_paused_otherwise_than_recorded_gets_the_recorded_pause() -> None:
    paused = _recorded(paused=True, reason="会议")
    members = {("emergency", INTERFACE): Member(False, ""), ("hotline", INTERFACE): Member(True, "休息")}
    assert sessions.restore_actions("agent-a", paused, members) == [
        {"Action": "QueuePause", "Queue": queue, "Interface": INTERFACE, "Paused": "true", "Reason": "会议"}
        for queue in ("emergency", "hotline")
    ]
    members = {("emergency", INTERFACE): Member(True, "休息"), ("hotline", INTERFACE): Member(False, "")}
    assert sessions.restore_actions("agent-a", _recorded(), members) == [
        {"Action": "QueuePause", "Queue": "emergency", "Interface": INTERFACE, "Paused": "false"}]


def test_a_member_as_recorded_or_in_wrap_up_is_left_alone() -> None:
    as_recorded = {("emergency", INTERFACE): Member(True, "会议"), ("hotline", INTERFACE): Member(True, "会议")}
    assert sessions.restore_actions("agent-a", _recorded(paused=True, reason="会议"), as_recorded) == []
    # Wrap-up is transient and ends by its own timer: the resync never cuts it short.
    wrap_up = {("emergency", INTERFACE): Member(False, ""), ("hotline", INTERFACE): Member(True, WRAPUP_REASON)}
    assert sessions.restore_actions("agent-a", _recorded(), wrap_up) == []


def test_queue_status_members_are_keyed_by_queue_and_interface() -> None:
    messages = [
        {"Event": "QueueParams", "Queue": "emergency"},
        {"Event": "QueueMember", "Queue": "emergency", "Name": "agent-a", "Location": INTERFACE, "Paused": "1",
         "PausedReason": "午餐"},
        {"Event": "QueueMember", "Queue": "hotline", "MemberName": "agent-a", "Interface": INTERFACE, "Paused": "0"},
        {"Event": "QueueStatusComplete"},
    ]
    assert sessions.members_from_queue_status(messages) == {
        ("emergency", INTERFACE): Member(True, "午餐"), ("hotline", INTERFACE): Member(False, "")}


async def _user(db: Database, username: str, *, active: bool = True) -> int:
    async with db.transaction() as session:
        user = User(username=username, password_hash="x", role=Role.AGENT, extension=username[-4:], active=active)
        session.add(user)
        await session.flush()
        return user.id


async def _row(db: Database, user_id: int) -> tuple[str, list[str], bool, str | None] | None:
    async with db.transaction(read_only=True) as session:
        recorded = await sessions.get_session(session, user_id)
    if recorded is None:
        return None
    return recorded.interface, recorded.queues, recorded.paused, recorded.pause_reason


async def test_login_pause_resume_and_logout_keep_one_row_per_agent(db: Database) -> None:
    user_id = await _user(db, "agent-8201")
    queues = ["emergency", "hotline"]
    async with db.transaction() as session:
        await sessions.save_login(session, user_id, INTERFACE, queues, paused=False, pause_reason=None)
    assert await _row(db, user_id) == (INTERFACE, queues, False, None)

    async with db.transaction() as session:
        assert await sessions.save_pause(session, user_id, paused=True, pause_reason="午餐")
    assert await _row(db, user_id) == (INTERFACE, queues, True, "午餐")

    # Logging in again while paused (Asterisk keeps the pause of a member already there): still one row.
    async with db.transaction() as session:
        await sessions.save_login(session, user_id, INTERFACE, queues, paused=True, pause_reason="午餐")
    async with db.transaction() as session:
        assert await sessions.save_pause(session, user_id, paused=False, pause_reason="午餐")
    assert await _row(db, user_id) == (INTERFACE, queues, False, None)  # no stale reason once resumed
    async with db.transaction(read_only=True) as session:
        assert len((await session.scalars(select(AgentSession))).all()) == 1

    async with db.transaction() as session:
        await sessions.delete_session(session, user_id)
        # A member the platform never logged in (e.g. added on the CLI) gets no row from a pause.
        assert not await sessions.save_pause(session, user_id, paused=True, pause_reason="会议")
    assert await _row(db, user_id) is None


async def test_only_enabled_accounts_are_restored_and_a_deleted_user_takes_the_row_along(db: Database) -> None:
    enabled, disabled = await _user(db, "agent-8202"), await _user(db, "agent-8203", active=False)
    async with db.transaction() as session:
        for user_id in (enabled, disabled):
            await sessions.save_login(session, user_id, INTERFACE, ["emergency"], paused=False, pause_reason=None)
    async with db.transaction(read_only=True) as session:
        assert await sessions.recorded_sessions(session) == [("agent-8202", enabled)]

    async with db.transaction() as session:
        await session.execute(delete(User).where(User.id == enabled))
    assert await _row(db, enabled) is None


async def test_one_agent_that_cannot_be_restored_does_not_stop_the_others(db: Database) -> None:
    """AMI is down (the client never started): every action fails; each agent is tried and reported, and neither
    a failed restore nor a login that never reached Asterisk writes anything."""
    ami = AmiClient("127.0.0.1", free_tcp_port(), "u", "s")
    service = AgentService(db, ami, AgentRegistry())
    first, second = await _user(db, "agent-8204"), await _user(db, "agent-8205")
    async with db.transaction() as session:
        for user_id in (first, second):
            await sessions.save_login(session, user_id, f"PJSIP/{user_id}", ["emergency"], paused=False,
                                      pause_reason=None)
    with capture_logs() as logs:
        await service._restore({})
    failed = [entry["username"] for entry in logs if entry["event"] == "agent.restore_failed"]
    assert failed == ["agent-8204", "agent-8205"]
    summary = next(entry for entry in logs if entry["event"] == "agents.resynced")
    assert (summary["sessions"], summary["restored"], summary["failed"]) == (2, 0, 2)

    third = await _user(db, "agent-8206")
    with pytest.raises(Unavailable):
        await service.login("agent-8206", actor="agent-8206")
    assert await _row(db, third) is None
