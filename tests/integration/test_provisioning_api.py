"""The REST API against the real process: log in, register an elder's device and an agent's phone over HTTP,
and the SIP registration with those credentials succeeds within 5 s — no Asterisk restart, no manual reload; the
device's MQTT account on the stack's Mosquitto works at once too."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests import harness

pytestmark = pytest.mark.integration


def _call(stack: harness.Stack, method: str, path: str, body: object = None,
          token: str | None = None) -> tuple[int, Any]:
    return stack.api(method, path, body, token)


def _admin_token(stack: harness.Stack) -> str:
    return stack.token()


def _registers_within(stack: harness.Stack, user: str, password: str, deadline: float, workdir: Path) -> float:
    """Register until Asterisk says 200; the seconds it took from the moment the API answered."""
    started = time.monotonic()
    last = None
    while time.monotonic() - started < deadline:
        last = harness.sipp(stack, "register", service=user, auth_user=user, password=password,
                            variables={"expires": "60"}, workdir=workdir, timeout=3)
        if last.ok:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"{user} could not register within {deadline}s: {last.output if last else ''}\n"
                         f"platform log:\n{stack.platform_output()}")


@pytest.mark.every_database
def test_wrong_password_is_401_from_the_real_process(stack: harness.Stack) -> None:
    status, body = _call(stack, "POST", "/api/v1/auth/login", {"username": "admin", "password": "not-it-at-all"})
    assert status == 401
    assert body["error"]["code"] == "bad_credentials"
    status, body = _call(stack, "GET", "/api/v1/elders")
    assert status == 401


@pytest.mark.every_database
def test_a_device_posted_over_the_api_registers_within_5_seconds(stack: harness.Stack, sipp_dir: Path) -> None:
    token = _admin_token(stack)
    pid_before = stack.runtime.pid()
    status, elder = _call(stack, "POST", "/api/v1/elders", {
        "full_name": "接口老人", "phone": "17700009911", "community": "测试社区",
        "contacts": [{"role": "relative", "name": "接口家属", "phone": "17700009912"}]}, token)
    assert status == 201, elder
    status, device = _call(stack, "POST", "/api/v1/devices", {
        "elder_id": elder["id"], "kind": "pendant", "sip_username": "dev-api-1", "phone": "17700009913"}, token)
    assert status == 201, device
    assert device["provisioning"] == "applied"
    # No password given: the platform generated one and shows it this once; the device registers with it.
    assert len(device["generated_sip_password"]) >= 20
    elapsed = _registers_within(stack, "dev-api-1", device["generated_sip_password"], 5.0, sipp_dir)
    assert elapsed < 5.0
    assert stack.runtime.pid() == pid_before
    status, read = _call(stack, "GET", f"/api/v1/devices?elder_id={elder['id']}", token=token)
    assert status == 200 and [d["sip_username"] for d in read["items"]] == ["dev-api-1"]

    # Rotation: a new generated password works at once, the old one no longer does.
    status, changed = _call(stack, "POST", f"/api/v1/devices/{device['id']}/sip-password", {}, token)
    assert status == 200 and changed["provisioning"] == "applied", changed
    old_password = harness.sipp(stack, "register_rejected", service="dev-api-1", auth_user="dev-api-1",
                                password=device["generated_sip_password"], variables={"expires": "60"},
                                workdir=sipp_dir)
    assert old_password.ok, old_password.output
    assert _registers_within(stack, "dev-api-1", changed["generated_sip_password"], 5.0, sipp_dir) < 5.0

    # Its MQTT account on the platform-managed broker, shown once, logs in at once.
    assert (device["mqtt_credentials"], device["mqtt_username"]) == ("issued", str(device["id"])), device
    assert stack.mqtt is not None
    asyncio.run(_mqtt_login(stack.mqtt.bind.port, device["mqtt_username"], device["generated_mqtt_password"]))


async def _mqtt_login(port: int, username: str, password: str) -> None:
    async with aiomqtt.Client("127.0.0.1", port, username=username, password=password, timeout=5) as device:
        await device.publish(f"cc/devices/{username}/heartbeat", b'{"battery_percent": 80}', qos=1)


@pytest.mark.every_database
def test_an_agent_phone_posted_over_the_api_registers_within_5_seconds(stack: harness.Stack,
                                                                      sipp_dir: Path) -> None:
    token = _admin_token(stack)
    pid_before = stack.runtime.pid()
    status, user = _call(stack, "POST", "/api/v1/users", {
        "username": "agent-api", "password": "agent-api-panel", "role": "agent", "display_name": "接口坐席",
        "extension": "8190", "sip_password": "agent-api-phone"}, token)
    assert status == 201, user
    assert user["provisioning"] == "applied"
    elapsed = _registers_within(stack, "8190", "agent-api-phone", 5.0, sipp_dir)
    assert elapsed < 5.0
    assert stack.runtime.pid() == pid_before
    status, _ = _call(stack, "POST", "/api/v1/auth/login", {"username": "agent-api", "password": "agent-api-panel"})
    assert status == 200
