"""Health, reload without restart, and the never-stranded path, against the real Asterisk."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from callcenter.db.session import Database
from callcenter.devices.models import Device, DeviceKind
from callcenter.users.passwords import sip_ha1
from tests import harness


def _wait_status(stack: harness.Stack, status: int, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        code, body = stack.get("/healthz")
        last = (code, body)
        if code == status:
            return dict(body)
        time.sleep(0.2)
    raise AssertionError(f"/healthz never returned {status}: last {last}")


@pytest.mark.every_database
def test_healthz_reports_every_lifeline(stack: harness.Stack) -> None:
    status, body = stack.get("/healthz")
    assert status == 200
    assert body["status"] == "ok" and body["ready"] is True and body["failing"] == []
    assert all(check["ok"] for check in body["checks"].values())
    # The lifelines, the disks recordings pass through (spool, store, data dir), the call log's journal and the
    # devices' MQTT channel (the stack's own Mosquitto), the alarm intake's counts, journal and distribution, the
    # position and reading intakes', the devices' heartbeats' and the signed HTTP ingest's counts, and the SMS
    # channel (off in the stack: it passes and says so).
    assert set(body["checks"]) == {"ami", "fastagi", "database", "mqtt", "spool", "storage", "data", "journal",
                                   "alarm_intake", "alarm_journal", "alarm_distribution", "position_intake",
                                   "reading_intake", "device_heartbeats", "device_ingest", "sms"}
    assert body["checks"]["sms"]["detail"].startswith("off: CC_SMS_CHANNEL=off")
    assert body["checks"]["mqtt"]["state"] == "connected"
    assert body["checks"]["journal"]["backlog"] == 0
    assert {name for name, check in body["checks"].items() if check["critical"]} == {"ami", "fastagi"}
    assert all(body["checks"][part]["free_mb"] > 0 for part in ("spool", "storage", "data"))
    ready_status, ready = stack.get("/healthz/ready")  # the same answer as /healthz (kept for existing monitors)
    assert ready_status == 200 and ready["status"] == "ok" and set(ready["checks"]) == set(body["checks"])
    assert stack.get("/healthz/live") == (200, {"status": "alive"})


def test_a_new_device_works_after_render_and_reload_without_restart(stack: harness.Stack, sipp_dir: Path) -> None:
    pid_before = stack.runtime.pid()

    async def add_device(db: Database) -> None:
        async with db.transaction() as session:
            session.add(Device(kind=DeviceKind.WATCH, sip_username="dev-added",
                               sip_ha1=sip_ha1("dev-added", "added-pw-1")))

    stack.query(add_device)
    before = harness.sipp(stack, "register", service="dev-added", auth_user="dev-added", password="added-pw-1",
                          variables={"expires": "60"}, workdir=sipp_dir, timeout=5)
    assert not before.ok  # not provisioned in Asterisk yet
    stack.render_and_reload()
    after = harness.sipp(stack, "register", service="dev-added", auth_user="dev-added", password="added-pw-1",
                         variables={"expires": "60"}, workdir=sipp_dir)
    assert after.ok, after.output
    assert stack.runtime.pid() == pid_before


def test_sos_is_still_answered_when_the_platform_is_down(stack: harness.Stack, sipp_dir: Path) -> None:
    """With no FastAGI server, the dialplan's failure path keeps the elder on the line (seed 4.2.7)."""
    seeded = stack.seeded  # type: ignore[attr-defined]
    stack.stop_platform()
    try:
        result = harness.sipp(stack, "call", service="sos", auth_user=seeded.device_user,
                              password=seeded.device_password,
                              variables={"user": seeded.device_user, "hold_ms": "2000"},
                              workdir=sipp_dir)
        assert result.ok, result.output
        log = stack.runtime.host_path(stack.runtime.instance_dir / "log" / "console.log").read_text(errors="replace")
        assert "FastAGI sos failed" in log
    finally:
        stack.start_platform()
        stack.wait_healthy()


def test_healthz_is_503_while_asterisk_is_down_and_recovers_after(stack: harness.Stack) -> None:
    stack.runtime.stop()
    body = _wait_status(stack, 503)
    assert body["checks"]["ami"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert body["status"] == "down" and "ami" in body["failing"]
    # Readiness says so too; liveness does not: a restart of the platform would not bring Asterisk back.
    assert stack.get("/healthz/ready")[0] == 503
    assert stack.get("/healthz/live") == (200, {"status": "alive"})
    stack.runtime.start()
    body = _wait_status(stack, 200, timeout=30)
    assert body["checks"]["ami"]["ok"] is True


def test_a_half_open_fastagi_connection_does_not_stall_calls(stack: harness.Stack, sipp_dir: Path) -> None:
    """Garbage and a partial AGI header on the real FastAGI port; an SOS right after is still handled."""
    import socket

    seeded = stack.seeded  # type: ignore[attr-defined]
    agi = stack.settings.agi
    with socket.create_connection((agi.host, agi.port)) as garbage, \
            socket.create_connection((agi.host, agi.port)) as partial:
        garbage.sendall(b"\x00\xff not agi at all\n" * 100)
        partial.sendall(b"agi_network: yes\nagi_network_script: sos\nagi_chan")  # never finished
        result = harness.sipp(stack, "call", service="sos", auth_user=seeded.device_user,
                              password=seeded.device_password,
                              variables={"user": seeded.device_user, "hold_ms": "2000"}, workdir=sipp_dir)
        assert result.ok, result.output
        status, _ = stack.get("/healthz")
        assert status == 200
    # The SOS intake ran on the platform while the bad connections were open.
    assert "sos.intake" in stack.platform_output()
