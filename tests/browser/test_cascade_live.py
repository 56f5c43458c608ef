"""End to end on the real stack (issue 16): the agent takes an alarm on the desk in Chromium and starts the contact
cascade from the card; the first responder (SIPp behind the trunk) presses 2 to decline, the second presses 1 to
accept; the card shows each responder's answer and the acceptance live, and the elder is called back with "help
is coming"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from tests import harness
from tests.browser.conftest import log_in, screenshot, wait_for, wait_text

pytestmark = [pytest.mark.browser, pytest.mark.integration]

AGENT, AGENT_PANEL_PASSWORD = "agent-test", "agent-panel-pw"  # seeded by tests/integration/conftest.py
DECLINES, ACCEPTS, ELDER_PHONE = "13900000112", "13900000121", "17700000131"


def test_the_agent_starts_a_cascade_from_the_card_and_sees_the_acceptance_live(
        browser: Any, stack: harness.Stack, sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    admin = stack.token()
    status, elder = stack.api("POST", "/api/v1/elders", {
        "full_name": "郑玉兰", "phone": ELDER_PHONE, "address": "建设路 3 号", "community": "测试社区",
        "contacts": [{"role": "relative", "name": "郑大", "relationship": "儿子", "phone": DECLINES, "priority": 1},
                     {"role": "volunteer", "name": "孙志愿者", "phone": ACCEPTS, "priority": 1}]}, token=admin)
    assert status == 201, elder
    phone = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir / "agent")
    phone.register()
    people = harness.TrunkResponders(stack, sipp_dir / "people")
    driver = browser()
    try:
        log_in(driver, stack.http_base, AGENT, AGENT_PANEL_PASSWORD)
        wait_text(driver, "#ws-status", "实时连接正常")
        driver.find_element(By.ID, "btn-queue-login").click()
        wait_text(driver, "#agent-status", "空闲", timeout=15)
        status, alarm = stack.api("POST", "/api/v1/alarms", {"type": "fall", "elder_id": elder["id"],
                                                             "note": "邻居来电称老人跌倒"}, token=admin)
        assert status == 201, alarm
        wait_for(driver, "#alarm-card", timeout=15)
        wait_text(driver, "#alarm-elder-fields", "郑玉兰")
        driver.find_element(By.ID, "alarm-take").click()
        wait_text(driver, "#alarm-state", "已接警")

        people.answer_calls(3, listen_ms=2000, timeout=90)  # 郑大, 孙志愿者, then the elder
        cascade_button = driver.find_element(By.ID, "alarm-cascade")
        harness.eventually(cascade_button.is_enabled, what="the cascade button enabled")
        cascade_button.click()
        wait_text(driver, "#cascade-state", "进行中", timeout=10)
        wait_text(driver, "#cascade-calls", "郑大", timeout=10)
        screenshot(driver, "cascade-live-calling")
        wait_text(driver, "#cascade-calls", "无法前往", timeout=40)
        wait_text(driver, "#cascade-accepted", "孙志愿者 已接受并前往，预计 30 分钟内到达", timeout=40)
        assert driver.find_element(By.ID, "cascade-state").text == "已有人接受"
        assert not driver.find_element(By.ID, "cascade-stop").is_displayed()  # over: nothing left to stop
        screenshot(driver, "cascade-live-accepted")
        harness.eventually(lambda: [n for n, _ in people.invites()] == [DECLINES, ACCEPTS, ELDER_PHONE],
                           timeout=30, what="the help-is-coming call to the elder")
        assert people.wait(60).ok, people.errors()
    finally:
        phone.stop()
        people.stop()
        token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
        stack.api("POST", f"/api/v1/agents/{AGENT}/logout", token=token)
