"""End to end on the real stack: an agent logs in through the browser, joins the queue with the agent bar, answers
an SOS on their (SIPp) phone, sees the red pop with the elder's file, completes the work order, reloads, and finds
both the saved order and the pop again."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from tests import harness
from tests.browser.conftest import log_in, screenshot, wait_for, wait_text

pytestmark = [pytest.mark.browser, pytest.mark.integration]

AGENT, AGENT_PANEL_PASSWORD = "agent-test", "agent-panel-pw"  # seeded by tests/integration/conftest.py


def test_agent_answers_an_sos_and_completes_its_order_in_the_browser(browser: Any, stack: harness.Stack,
                                                                      sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    phone = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir)
    phone.register()
    driver = browser()
    caller: threading.Thread | None = None
    results: dict[str, harness.SippResult] = {}
    try:
        log_in(driver, stack.http_base, AGENT, AGENT_PANEL_PASSWORD)
        wait_text(driver, "#ws-status", "实时连接正常")
        driver.find_element(By.ID, "btn-queue-login").click()
        # The true state, from Asterisk's queue-member events: in the queues, phone registered and idle.
        wait_text(driver, "#agent-status", "空闲", timeout=15)
        assert not driver.find_element(By.ID, "btn-pause").get_attribute("disabled")

        phone.answer("answer_until_bye", ring_ms=300)
        caller = threading.Thread(target=lambda: results.setdefault("sos", harness.sipp(
            stack, "call", service="sos", auth_user=seeded.device_user, password=seeded.device_password,
            variables={"user": seeded.device_user, "hold_ms": "30000"}, workdir=sipp_dir, timeout=60)))
        caller.start()

        banner = wait_for(driver, "#sos-banner", timeout=25)
        assert banner.text == "紧急呼叫 SOS"
        wait_text(driver, "#elder-fields", "测试老人")
        contacts = driver.find_element(By.ID, "contacts-body").text
        assert "测试家属" in contacts and "17700009902" in contacts
        dial = driver.find_element(By.CSS_SELECTOR, "#contacts-body button")
        assert dial.get_attribute("disabled") and dial.get_attribute("title")
        assert "独居" in driver.find_element(By.ID, "elder-fields").text
        assert driver.find_element(By.ID, "device").is_displayed()
        wait_for(driver, "#order-form")
        assert driver.find_element(By.ID, "order-kind").get_attribute("value") == "emergency"
        wait_text(driver, "#agent-status", "通话中", timeout=10)
        screenshot(driver, "panel-sos-pop")

        note = "老人在卫生间摔倒，意识清醒，已通知儿子。"
        description = driver.find_element(By.ID, "order-description")
        description.clear()
        description.send_keys(note)
        driver.find_element(By.ID, "order-save").click()
        wait_text(driver, "#order-message", "工单已保存")

        driver.refresh()
        wait_for(driver, "#sos-banner", timeout=15)  # the pop, replayed to the reloaded page
        wait_text(driver, "#elder-fields", "测试老人")
        wait_for(driver, "#order-form")
        harness.eventually(lambda: driver.find_element(By.ID, "order-description").get_attribute("value") == note,
                           what="the saved description after the reload")
        wait_text(driver, "#agent-status", "通话中", timeout=10)

        caller.join(60)
        assert results["sos"].ok, results["sos"].output
        wait_for(driver, "#pop-ended", timeout=15)  # the call ended: greyed, kept for the order
        screenshot(driver, "panel-sos-ended")
    finally:
        if caller is not None:
            caller.join(60)
        phone.stop()
        token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
        stack.api("POST", f"/api/v1/agents/{AGENT}/logout", token=token)
