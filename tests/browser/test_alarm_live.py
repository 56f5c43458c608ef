"""End to end on the real stack (issue 15): an agent logged in to the queues with their SIPp phone has the desk open
in Chromium; a device publishes a fall over MQTT to the stack's Mosquitto; the card pops on the panel; the agent
takes it, calls the elder from the card — their phone rings and answers, then the elder's number through the
trunk (SIPp) answers — opens the conference from the card and brings 120 in, ends it, and closes the alarm as
genuine."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from selenium.webdriver.common.by import By

from tests import harness
from tests.browser.conftest import log_in, screenshot, wait_for, wait_text

pytestmark = [pytest.mark.browser, pytest.mark.integration]

AGENT, AGENT_PANEL_PASSWORD = "agent-test", "agent-panel-pw"  # seeded by tests/integration/conftest.py
ELDER_PHONE = "17700009901"


async def _publish_fall(port: int, device_id: str, password: str) -> dict[str, Any]:
    """The device's fall alarm, at QoS 1, and the platform's acknowledgement (sent once it is stored)."""
    async with aiomqtt.Client("127.0.0.1", port, username=device_id, password=password, timeout=5) as device:
        await device.subscribe(f"cc/devices/{device_id}/ack", qos=1)
        fall = {"message_id": f"fall-{secrets.token_hex(3)}", "type": "fall",
                "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
                "position": {"lat": 39.9138, "lon": 116.3636, "accuracy_m": 9, "source": "gps"}}
        await device.publish(f"cc/devices/{device_id}/alarm", json.dumps(fall).encode(), qos=1)
        async with asyncio.timeout(15):
            async for answer in device.messages:
                return json.loads(answer.payload)  # type: ignore[arg-type,no-any-return]
    raise AssertionError("no acknowledgement")


def test_a_fall_over_mqtt_pops_the_card_and_the_agent_calls_the_elder(browser: Any, stack: harness.Stack,
                                                                       sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    assert stack.mqtt is not None
    status, device = stack.api("POST", "/api/v1/devices", {
        "elder_id": seeded.elder_id, "kind": "watch", "sip_username": f"dev-fall-{secrets.token_hex(2)}"},
        token=stack.token())
    assert status == 201 and device["mqtt_credentials"] == "issued", device
    phone = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir / "agent")
    phone.register()
    trunk = harness.TrunkByNumber(stack, sipp_dir / "trunk")
    driver = browser()
    try:
        log_in(driver, stack.http_base, AGENT, AGENT_PANEL_PASSWORD)
        wait_text(driver, "#ws-status", "实时连接正常")
        assert not driver.find_elements(By.ID, "device-alarms-off")  # MQTT is connected: no warning
        driver.find_element(By.ID, "btn-queue-login").click()
        wait_text(driver, "#agent-status", "空闲", timeout=15)

        ack = asyncio.run(_publish_fall(stack.mqtt.bind.port, device["mqtt_username"],
                                        device["generated_mqtt_password"]))
        assert ack["status"] == "stored", ack
        card = wait_for(driver, "#alarm-card", timeout=15)
        assert driver.find_element(By.ID, "alarm-type").text == "跌倒"
        wait_text(driver, "#alarm-elder-fields", "测试老人")
        assert "39.9138, 116.3636" in driver.find_element(By.ID, "alarm-where-fields").text
        screenshot(driver, "alarm-live-card")

        driver.find_element(By.ID, "alarm-take").click()
        wait_text(driver, "#alarm-state", "已接警")
        alarm_id = card.get_attribute("data-alarm-id")

        phone.answer("answer_until_bye", ring_ms=300, timeout=60)
        trunk.answer_calls(2, reject_number="10000000000", ring_ms=300, timeout=60)  # the elder, then 120
        call_button = driver.find_element(By.ID, "alarm-call")
        harness.eventually(call_button.is_enabled, what="the call button enabled")
        call_button.click()
        wait_text(driver, "#alarm-message", ELDER_PHONE, timeout=10)

        token = stack.token(AGENT, AGENT_PANEL_PASSWORD)

        def answered() -> dict[str, Any] | None:
            status, alarm = stack.api("GET", f"/api/v1/alarms/{alarm_id}", token=token)
            assert status == 200, alarm
            status, order = stack.api("GET", f"/api/v1/work-orders/{alarm['work_order_id']}", token=token)
            assert status == 200, order
            return next((e for e in order["events"] if e["action"] == "follow_up_call_result"), None)

        result = harness.eventually(answered, timeout=20, what="the elder answering the call from the card")
        assert result["details"]["elder_answered"] is True

        # The conference from the card: 120 joins the elder and the agent on the call the card placed.
        conference_button = driver.find_element(By.ID, "alarm-conference")
        harness.eventually(conference_button.is_enabled, what="the conference button enabled")
        conference_button.click()
        wait_for(driver, "#alarm-card #conference", timeout=5)
        driver.find_element(By.ID, "conf-add-120").click()
        try:
            # Read in one script: the roster is redrawn on every push, so held elements go stale.
            harness.eventually(lambda: driver.execute_script(
                "return Array.from(document.querySelectorAll('#conf-body tr .party-state'))"
                ".map(function (cell) { return cell.getAttribute('data-party-state'); });") == [
                "joined", "joined", "joined"], timeout=25, what="elder, agent and 120 joined on the card's roster")
        except AssertionError as missing:
            raise AssertionError(f"{missing}: the card says {driver.find_element(By.ID, 'conf-message').text!r}, "
                                 f"the roster {driver.find_element(By.ID, 'conf-body').text!r}, the trunk had "
                                 f"{trunk.invites()}") from None
        roles = driver.execute_script("return Array.from(document.querySelectorAll('#conf-body tr'))"
                                      ".map(function (row) { return row.getAttribute('data-role'); });")
        assert sorted(roles) == ["120", "agent", "elder"], roles
        assert [number for number, _ in trunk.invites()] == [ELDER_PHONE, "120"], trunk.errors()
        screenshot(driver, "alarm-live-conference")
        driver.find_element(By.ID, "conf-end").click()
        driver.switch_to.alert.accept()
        assert phone.wait(20).ok
        assert trunk.wait(20).ok, trunk.errors()

        driver.find_element(By.ID, "alarm-outcome-genuine").click()
        driver.find_element(By.ID, "alarm-note").send_keys("老人在客厅跌倒，已通知家属上门")
        driver.find_element(By.ID, "alarm-resolve").click()
        wait_text(driver, "#alarm-state", "已结束")
        screenshot(driver, "alarm-live-resolved")
        status, alarm = stack.api("GET", f"/api/v1/alarms/{alarm_id}", token=token)
        assert (alarm["state"], alarm["outcome"], alarm["source"]) == ("resolved", "genuine", "mqtt"), alarm
    finally:
        phone.stop()
        trunk.stop()
        token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
        stack.api("POST", f"/api/v1/agents/{AGENT}/logout", token=token)
