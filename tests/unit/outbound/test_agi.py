"""The outbound script step (``outbound`` over FastAGI) driven over real TCP by a scripted Asterisk, against a
real database: a key cutting into the prompt is stored and answered, a key for the centre hands the person to the
emergency queue, nothing pressed plays the closing prompt, and a job stopped before it was answered asks nothing."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from callcenter.config import Settings
from callcenter.db.session import Database
from callcenter.outbound import agi
from callcenter.outbound.models import AttemptState, OutboundAttempt, OutboundJob, OutboundPurpose
from callcenter.outbound.services import OutboundDialer, cancel_jobs, enqueue
from callcenter.telephony.ami import AmiEvent
from callcenter.telephony.fastagi import FastAgiServer
from tests.unit.ivr.test_agi import ROOT, Phone
from tests.unit.outbound.ami import ScriptedAmi
from tests.unit.telephony.test_fastagi import FakeAsterisk

pytestmark = pytest.mark.timeout(20)
SCRIPT = {"prompts": ["outbound-cascade-intro", "cascade-what-fall", "outbound-cascade-keys"],
          "choices": {"1": "accept", "2": "decline", "3": "agent"},
          "replies": {"1": ["outbound-cascade-accepted"], "3": ["to-agent"]}, "agent_keys": ["3"],
          "agent_queue": "emergency", "no_key_prompts": ["outbound-no-key"], "wait_seconds": 1}


@pytest.fixture
async def answered(db: Database, settings: Settings) -> AsyncIterator[tuple[OutboundDialer, FastAgiServer, int]]:
    """A dialer whose one job's call was answered, and the FastAGI server with its ``outbound`` step."""
    ami = ScriptedAmi()
    ami.outcomes["13900000001"] = AmiEvent({"Event": "OriginateResponse", "Response": "Success"})
    dialer = OutboundDialer(db, ami, settings.replace(outbound_quiet_hours="none"))  # type: ignore[arg-type]
    async with db.transaction() as session:
        await enqueue(session, purpose=OutboundPurpose.CASCADE, owner="test", owner_ref=None, target="13900000001",
                      script=SCRIPT, created_by="test")
    await dialer.run_round()
    await dialer.drain()
    async with db.transaction(read_only=True) as session:
        attempt_id = await session.scalar(select(OutboundAttempt.id))
    assert attempt_id is not None
    server = FastAgiServer("127.0.0.1", 0, {"outbound": functools.partial(agi.run_script, dialer, ROOT)})
    await server.start()
    yield dialer, server, attempt_id
    await asyncio.wait_for(server.stop(), 8)


async def _call(server: FastAgiServer, phone: Phone, attempt_id: int) -> None:
    async with asyncio.timeout(8):
        side = await FakeAsterisk.request(server.port, "outbound", str(attempt_id), "cco1-1-abc",
                                          uniqueid="cco1-1-abc", callerid="13900000001")
        try:
            await side.converse(phone.answer)
        finally:
            await side.close()


async def _attempt(db: Database, attempt_id: int) -> OutboundAttempt:
    async with db.transaction(read_only=True) as session:
        attempt = await session.get(OutboundAttempt, attempt_id)
        assert attempt is not None
        return attempt


async def test_a_key_during_the_prompt_is_stored_and_answered(
        db: Database, answered: tuple[OutboundDialer, FastAgiServer, int]) -> None:
    _, server, attempt_id = answered
    phone = Phone(variables={}, script=["barge:1"])
    await _call(server, phone, attempt_id)
    assert phone.heard() == ["outbound-cascade-intro", "outbound-cascade-accepted"]
    assert (phone.set["CC_OUTBOUND_ACTION"], phone.set["CC_AGI_RESULT"]) == ("hangup", "ok")
    attempt = await _attempt(db, attempt_id)
    assert (attempt.digit, attempt.choice, attempt.state) == ("1", "accept", AttemptState.ANSWERED)
    assert attempt.digit_at is not None


async def test_the_key_for_the_centre_hands_the_person_to_the_emergency_queue(
        db: Database, answered: tuple[OutboundDialer, FastAgiServer, int]) -> None:
    _, server, attempt_id = answered
    phone = Phone(variables={}, script=["silence", "3"])  # nothing the first time round, then 3 after the prompts
    await _call(server, phone, attempt_id)
    assert phone.heard() == ["outbound-cascade-intro", "cascade-what-fall", "outbound-cascade-keys"] * 2 + [
        "to-agent"]
    assert (phone.set["CC_OUTBOUND_ACTION"], phone.set["CC_OUTBOUND_QUEUE"]) == ("queue", "emergency")
    assert (await _attempt(db, attempt_id)).choice == "agent"


async def test_nothing_pressed_plays_the_closing_prompt(
        db: Database, answered: tuple[OutboundDialer, FastAgiServer, int]) -> None:
    _, server, attempt_id = answered
    phone = Phone(variables={}, script=["silence", "silence"])
    await _call(server, phone, attempt_id)
    assert phone.heard()[-1] == "outbound-no-key" and phone.set["CC_OUTBOUND_ACTION"] == "hangup"
    assert (await _attempt(db, attempt_id)).digit is None


async def test_a_job_stopped_before_the_answer_asks_nothing(
        db: Database, answered: tuple[OutboundDialer, FastAgiServer, int]) -> None:
    _, server, attempt_id = answered
    async with db.transaction() as session:
        job_id = await session.scalar(select(OutboundJob.id))
        assert job_id is not None
        await cancel_jobs(session, [job_id], reason="someone accepted")
    phone = Phone(variables={}, script=["barge:1"])
    await _call(server, phone, attempt_id)
    assert phone.heard() == ["outbound-no-longer-needed"]
    assert phone.set["CC_OUTBOUND_ACTION"] == "hangup"
    assert (await _attempt(db, attempt_id)).digit is None  # nobody is recorded as going

