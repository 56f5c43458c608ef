"""Recording pipeline end to end: an SOS answered by an agent is recorded, stored as Opus, registered, playable
through the API by byte ranges, and gone from Asterisk's spool."""

from __future__ import annotations

import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from pydub import AudioSegment
from sqlalchemy import select

from callcenter.asterisk.render import recordings_spool
from callcenter.calls.models import Call, CallKind, CallLeg
from callcenter.db.session import Database
from tests import harness


def _last_sos(stack: harness.Stack) -> Call | None:
    async def fetch(db: Database) -> Call | None:
        async with db.transaction() as session:
            return await session.scalar(select(Call).where(Call.kind == CallKind.SOS, Call.ended_at.is_not(None))
                                        .order_by(Call.id.desc()).limit(1))

    return stack.query(fetch)  # type: ignore[no-any-return]


def _recordings(stack: harness.Stack, token: str, call_id: int) -> list[dict[str, Any]]:
    status, page = stack.api("GET", f"/api/v1/recordings?call_id={call_id}", token=token)
    assert status == 200, page
    return list(page["items"])


@pytest.mark.every_database
def test_an_answered_sos_is_stored_registered_and_playable_by_range(stack: harness.Stack, sipp_dir: Path,
                                                                     tmp_path: Path) -> None:
    harness.sos_answered_by_agent(stack, sipp_dir, hold_ms=5000)

    call = harness.eventually(lambda: _last_sos(stack), what="the ended SOS call")
    assert call.recording_serial
    token = stack.token()
    [recording] = harness.eventually(lambda: _recordings(stack, token, call.id), timeout=40,
                                     what="the call's recording in GET /api/v1/recordings")
    assert call.ended_at is not None
    length = (call.ended_at - call.started_at).total_seconds()
    assert recording["serial_number"] == call.recording_serial and recording["audio_format"] == "ogg/opus"
    assert abs(recording["duration_seconds"] - length) < 1.5, (recording, length)
    assert recording["size_bytes"] <= 120 * 1024 * max(1.0, recording["duration_seconds"] / 60)

    reason = urllib.parse.quote("录音抽查测试")  # no audio without a reason
    request = urllib.request.Request(f"{stack.http_base}/api/v1/recordings/{recording['id']}/audio?reason={reason}",
                                     headers={"Authorization": f"Bearer {token}", "Range": "bytes=0-"})
    with urllib.request.urlopen(request, timeout=15) as response:
        assert response.status == 206
        assert response.headers["Content-Type"] == "audio/ogg"
        assert response.headers["Content-Range"] == (
            f"bytes 0-{recording['size_bytes'] - 1}/{recording['size_bytes']}")
        body = response.read()
    assert len(body) == recording["size_bytes"]
    downloaded = tmp_path / "recording.ogg"
    downloaded.write_bytes(body)
    assert abs(AudioSegment.from_file(downloaded, format="ogg").duration_seconds - length) < 1.5

    spool = stack.runtime.host_path(recordings_spool(stack.runtime))
    assert not (spool / f"{call.recording_serial}.wav").exists()


def _max_call_id(stack: harness.Stack) -> int:
    async def fetch(db: Database) -> int:
        async with db.transaction() as session:
            return (await session.scalar(select(Call.id).order_by(Call.id.desc()).limit(1))) or 0

    return stack.query(fetch)  # type: ignore[no-any-return]


def _last_hotline(stack: harness.Stack, after_id: int) -> Call | None:
    async def fetch(db: Database) -> Call | None:
        async with db.transaction() as session:
            return await session.scalar(select(Call).where(Call.kind == CallKind.HOTLINE, Call.id > after_id,
                                                           Call.ended_at.is_not(None)).order_by(Call.id.desc()))

    return stack.query(fetch)  # type: ignore[no-any-return]


def _agent_answered_at(stack: harness.Stack, call_id: int, extension: str) -> Any:
    async def fetch(db: Database) -> Any:
        async with db.transaction() as session:
            return await session.scalar(select(CallLeg.answered_at).where(
                CallLeg.call_id == call_id, CallLeg.channel.startswith(f"PJSIP/{extension}-")))

    return stack.query(fetch)


def test_an_answered_hotline_call_is_recorded_from_the_agents_answer(stack: harness.Stack, sipp_dir: Path) -> None:
    """CC_RECORD_QUEUES (hotline by default): the conversation with the agent is recorded, not the menu or the
    wait, and the recording is linked to the call and collected as soon as the call ends."""
    seeded = stack.seeded  # type: ignore[attr-defined]
    before = _max_call_id(stack)
    agent = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir / "agent")
    agent.register()
    harness.add_queue_member(stack, "hotline", seeded.agent_extension, "agent-test")
    try:
        agent.answer("answer_until_bye", ring_ms=500)
        scenario = harness.dtmf_scenario(sipp_dir, "0")  # 0: to an agent
        result = harness.sipp(stack, scenario, service="12349", auth_user=seeded.device_user,
                               password=seeded.device_password,
                               variables={"user": seeded.device_user, "hold_ms": "12000"}, workdir=sipp_dir,
                               timeout=40)
        assert result.ok, result.output
        assert agent.wait(20).ok
    finally:
        agent.stop()
        harness.remove_queue_member(stack, "hotline", seeded.agent_extension)

    call = harness.eventually(lambda: _last_hotline(stack, before), what="the ended hotline call")
    assert call.queue == "hotline" and call.agent_id is not None
    [recording] = harness.eventually(lambda: _recordings(stack, stack.token(), call.id), timeout=20,
                                     what="the hotline call's recording")
    assert call.recording_serial == recording["serial_number"]
    assert recording["serial_number"].startswith("HL-")
    answered = _agent_answered_at(stack, call.id, seeded.agent_extension)
    assert answered is not None and call.ended_at is not None
    talk = (call.ended_at - answered).total_seconds()
    whole = (call.ended_at - call.started_at).total_seconds()
    assert whole - talk > 2 and talk > 2  # the menu came first, and it is not in the recording
    assert abs(recording["duration_seconds"] - talk) < 1.5, (recording, talk, whole)
