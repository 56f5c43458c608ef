"""Fault 6 (docs/reliability.md): the recordings spool's or the recordings store's disk is full, for real.

Each disk is a small tmpfs mounted over the directory the stack uses (Asterisk's spool, CC_RECORDINGS_DIR) and
filled with one preallocated file, so writes fail with ENOSPC exactly as on a full disk. A SIPp device presses SOS
and the seeded agent's SIPp phone answers. Checked: the elder is answered with exactly one emergency order; /healthz
says the disk is full (200, "degraded": SOS handling is not impaired); the wallboard's alarm is pushed live; a full
store keeps the WAV in the spool and stores it once space returns; a full spool leaves no audio at all (what
Asterisk 22 does: answer, queue, an empty file and "No space left on device"), which is flagged on the order.

The answer→queue time is measured on Asterisk's own clock, as every fault test does (harness.sos_answer_to_queue_
seconds): from the dialplan's Answer() in cc-sos (before MixMonitor) to its Queue(emergency), kept in
var/test-artifacts/reliability.json.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from callcenter.asterisk.render import recordings_spool
from callcenter.asterisk.runtime import AsteriskRuntime
from callcenter.calls.models import Call, CallKind
from callcenter.config import Settings
from callcenter.db.session import Database
from callcenter.orders.models import WorkOrder, WorkOrderEvent
from callcenter.recordings.models import Recording
from callcenter.recordings.services import MISSING_ACTION
from tests import harness, tmpfs
from tests.integration.conftest import running_stack
from tests.integration.test_desk import PanelListener
from tests.integration.test_wallboard import supervisor_token

pytestmark = pytest.mark.integration

SPOOL_KB = 4096
STORE_KB = 2048


@pytest.fixture(scope="module")
def disk_stack(tmp_path_factory: pytest.TempPathFactory, built_prompts: Path) -> Iterator[harness.Stack]:
    """The real stack with the spool and the recordings store each on a small tmpfs of its own, disk alarms at 1 MB
    and a disk check every second. The instance is named here so its spool can be mounted before Asterisk starts."""
    harness.require_tools()
    data_dir = tmp_path_factory.mktemp("stack-disk-full")
    extra_env = {"CC_ASTERISK_INSTANCE": f"test-disk-{secrets.token_hex(4)}", "CC_SPOOL_MIN_FREE_MB": "1",
                 "CC_RECORDINGS_MIN_FREE_MB": "1", "CC_DATA_MIN_FREE_MB": "1", "CC_DISK_CHECK_SECONDS": "1"}
    with harness.database_url("sqlite", data_dir) as url:
        settings = Settings.from_env({**harness.stack_environment(data_dir, url), **extra_env})
        runtime = AsteriskRuntime.for_settings(settings)
        spool = runtime.host_path(recordings_spool(runtime))
        try:
            with tmpfs.mounted(spool, SPOOL_KB), tmpfs.mounted(settings.recordings_dir, STORE_KB), \
                    running_stack(data_dir, url, built_prompts, extra_env) as stack:
                stack.spool, stack.store = spool, settings.recordings_dir  # type: ignore[attr-defined]
                yield stack
        finally:
            # The instance's removal could not take the mount points away while they were mounted.
            shutil.rmtree(runtime.host_path(runtime.instance_dir), ignore_errors=True)


def _last_sos_id(stack: harness.Stack) -> int:
    async def fetch(db: Database) -> int:
        async with db.transaction(read_only=True) as session:
            return await session.scalar(select(func.max(Call.id)).where(Call.kind == CallKind.SOS)) or 0

    return stack.query(fetch)  # type: ignore[no-any-return]


def _ended_sos_with_orders(stack: harness.Stack, after: int) -> tuple[Call, list[int]] | None:
    async def fetch(db: Database) -> tuple[Call, list[int]] | None:
        async with db.transaction(read_only=True) as session:
            call = await session.scalar(select(Call).where(Call.kind == CallKind.SOS, Call.id > after,
                                                           Call.ended_at.is_not(None)).order_by(Call.id.desc()))
            if call is None:
                return None
            orders = list((await session.scalars(select(WorkOrder.id).where(WorkOrder.call_id == call.id))).all())
            return call, orders

    return stack.query(fetch)  # type: ignore[no-any-return]


def _recording(stack: harness.Stack, serial: str) -> Recording | None:
    async def fetch(db: Database) -> Recording | None:
        async with db.transaction(read_only=True) as session:
            return await session.scalar(select(Recording).where(Recording.serial_number == serial))

    return stack.query(fetch)  # type: ignore[no-any-return]


def _missing_flags(stack: harness.Stack, order_id: int) -> list[WorkOrderEvent]:
    async def fetch(db: Database) -> list[WorkOrderEvent]:
        async with db.transaction(read_only=True) as session:
            return list((await session.scalars(select(WorkOrderEvent).where(
                WorkOrderEvent.work_order_id == order_id, WorkOrderEvent.action == MISSING_ACTION))).all())

    return stack.query(fetch)  # type: ignore[no-any-return]


def _log_lines(stack: harness.Stack, event: str) -> list[dict[str, Any]]:
    """The platform's structured log lines of ``event`` (its whole log file, one JSON object a line)."""
    assert stack.platform_log is not None
    found = []
    for line in stack.platform_log.read_text(errors="replace").splitlines():
        if f'"event": "{event}"' in line:
            with contextlib.suppress(ValueError):
                found.append(json.loads(line))
    return found


def _health(stack: harness.Stack) -> tuple[int, dict[str, Any]]:
    status, body = stack.get("/healthz")
    return status, dict(body)


def _disk_level(stack: harness.Stack, part: str) -> str:
    _, body = _health(stack)
    return str(body["checks"][part]["level"])


def _pushed_alarms(listener: PanelListener) -> list[dict[str, Any]] | None:
    boards = [m for m in listener.messages if m.get("type") == "wallboard"]
    return list(boards[-1]["alarms"]) if boards else None


def _alarm_pushed(listener: PanelListener, part: str, code: str) -> bool:
    alarms = _pushed_alarms(listener)
    return alarms is not None and any(a["part"] == part and a["code"] == code for a in alarms)


def _sos(stack: harness.Stack, sipp_dir: Path, name: str) -> tuple[Call, int]:
    """An SOS answered by the agent, timed on AMI; the ended call and its one emergency order."""
    seeded = stack.seeded  # type: ignore[attr-defined]
    before = _last_sos_id(stack)
    harness.sos_answered_by_agent(stack, sipp_dir, hold_ms=3000)  # asserts the agent's phone answered
    seconds = harness.sos_answer_to_queue_seconds(stack, seeded.device_user)
    harness.record_reliability(name, seconds)
    print(f"\n{name}: answer→queue {seconds * 1000:.0f} ms")
    call, orders = harness.eventually(lambda: _ended_sos_with_orders(stack, before), timeout=20,
                                      what="the ended SOS call")
    assert len(orders) == 1, orders  # exactly one emergency order
    assert call.answered_at is not None and call.agent_id is not None and call.recording_serial
    return call, orders[0]


def test_a_full_store_keeps_the_recording_in_the_spool_and_stores_it_when_space_returns(
        disk_stack: harness.Stack, sipp_dir: Path) -> None:
    stack = disk_stack
    store: Path = stack.store  # type: ignore[attr-defined]
    spool: Path = stack.spool  # type: ignore[attr-defined]
    with PanelListener(stack, supervisor_token(stack)) as board:
        tmpfs.fill(store)
        # Alarmed by the disk monitor on its own (a check a second), pushed live to the supervisors' board.
        harness.eventually(lambda: _alarm_pushed(board, "storage", "disk_full"), timeout=15,
                           what="the storage alarm pushed on /ws")
        status, health = _health(stack)
        assert status == 200 and health["status"] == "degraded" and health["ready"] is True
        assert health["failing"] == ["storage"]
        assert (health["checks"]["storage"]["level"], health["checks"]["storage"]["free_mb"]) == ("full", 0)

        call, _order = _sos(stack, sipp_dir, "recordings store disk full")
        wav = spool / f"{call.recording_serial}.wav"
        # The pipeline tried, the store refused for want of space, and the WAV stayed where it was.
        [refused, *_] = harness.eventually(
            lambda: [line for line in _log_lines(stack, "recording.failed")
                     if line["serial"] == call.recording_serial and line["no_space"]], timeout=30,
            what="the store refusing the recording for want of space")
        assert refused["step"] == "store" and "No space left on device" in refused["error"]
        assert wav.exists() and wav.stat().st_size > 16000 * 2  # about 3 s of 8 kHz 16-bit audio, and more
        assert _recording(stack, str(call.recording_serial)) is None

        tmpfs.free(store)
        recording = harness.eventually(lambda: _recording(stack, str(call.recording_serial)), timeout=20,
                                       what="the recording stored once space returned")
        assert recording.call_id == call.id and recording.duration_seconds and recording.duration_seconds > 2
        assert (store / recording.storage_key).exists() and not wav.exists()
        harness.eventually(lambda: _pushed_alarms(board) == [], timeout=15, what="the alarm taken off the board")
    assert _health(stack)[1]["status"] == "ok"


def test_a_full_spool_still_answers_the_sos_and_flags_the_missing_recording(disk_stack: harness.Stack,
                                                                           sipp_dir: Path) -> None:
    stack = disk_stack
    spool: Path = stack.spool  # type: ignore[attr-defined]
    token = supervisor_token(stack)
    with PanelListener(stack, token) as board:
        tmpfs.fill(spool)
        harness.eventually(lambda: _alarm_pushed(board, "spool", "disk_full"), timeout=15,
                           what="the spool alarm pushed on /ws")
        status, wallboard = stack.api("GET", "/api/v1/wallboard", token=token)
        assert status == 200 and [(a["part"], a["code"], a["severity"]) for a in wallboard["alarms"]] == [
            ("spool", "disk_full", "critical")]
        status, health = _health(stack)
        assert status == 200 and health["status"] == "degraded" and health["failing"] == ["spool"]

        call, order_id = _sos(stack, sipp_dir, "recordings spool disk full")
        # What Asterisk did: it answered and queued the elder (above) and wrote no audio.
        console = stack.runtime.log_file.read_text(errors="replace")
        assert "No space left on device" in console
        # No audio exists to keep; the order says so rather than the recording being silently absent.
        [flag] = harness.eventually(lambda: _missing_flags(stack, order_id), timeout=30,
                                    what="recording_missing on the emergency order's trail")
        assert flag.call_id == call.id and flag.details["recording_serial"] == call.recording_serial
        assert _recording(stack, str(call.recording_serial)) is None
        assert not (spool / f"{call.recording_serial}.wav").exists()  # the empty file is gone, the flag stays

        tmpfs.free(spool)
        harness.eventually(lambda: _disk_level(stack, "spool") == "ok", timeout=10, what="the spool ok again")
        harness.eventually(lambda: _pushed_alarms(board) == [], timeout=15, what="the alarm taken off the board")
    assert _health(stack)[0] == 200
