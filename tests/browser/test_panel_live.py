"""End to end on the real stack: an agent logs in through the browser, joins the queue with the agent bar, answers
an SOS on their (SIPp) phone, sees the red pop with the elder's file, completes the work order, reloads, and finds
both the saved order and the pop again."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By

from tests import harness
from tests.browser.conftest import log_in, screenshot, wait_for, wait_text

pytestmark = [pytest.mark.browser, pytest.mark.integration]

AGENT, AGENT_PANEL_PASSWORD = "agent-test", "agent-panel-pw"  # seeded by tests/integration/conftest.py


def _wait_for_the_sos_pop(driver: Any, caller: threading.Thread, results: dict[str, harness.SippResult]) -> Any:
    """The SOS banner; when it does not come, say what the calling SIPp device printed (it may never have called)."""
    try:
        return wait_for(driver, "#sos-banner", timeout=25)
    except TimeoutException:
        caller.join(5)
        outcome = {name: result.output for name, result in results.items()} or "the caller is still running"
        raise AssertionError(f"no SOS pop within 25 s; the calling device: {outcome}") from None


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

        banner = _wait_for_the_sos_pop(driver, caller, results)
        assert banner.text == "紧急呼叫 SOS"
        wait_text(driver, "#elder-fields", "测试老人")
        contacts = driver.find_element(By.ID, "contacts-body").text
        assert "测试家属" in contacts and "17700009902" in contacts
        dial = driver.find_element(By.CSS_SELECTOR, "#contacts-body button")
        assert not dial.get_attribute("disabled")  # one click dials the relative into the conference
        assert "独居" in driver.find_element(By.ID, "elder-fields").text
        assert driver.find_element(By.ID, "device").is_displayed()
        wait_for(driver, "#order-form")
        assert driver.find_element(By.ID, "order-kind").get_attribute("value") == "emergency"
        wait_text(driver, "#agent-status", "通话中", timeout=10)
        assert screenshot(driver, "panel-sos-pop").stat().st_size > 0

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


def _party_state(driver: Any, role: str) -> str | None:
    # Read in one script: the roster is re-rendered on every push, so element handles go stale between calls.
    return driver.execute_script(  # type: ignore[no-any-return]
        "var cell = document.querySelector('#conf-body tr[data-role=\"' + arguments[0] + '\"] td.party-state');"
        "return cell ? cell.getAttribute('data-party-state') : null;", role)


def test_agent_adds_120_to_a_real_sos_call_with_one_click_and_sees_the_roster(browser: Any, stack: harness.Stack,
                                                                            sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    phone = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir / "agent")
    phone.register()
    trunk = harness.trunk_phone(stack, sipp_dir / "trunk")  # 120, reached through CC_TRUNK_URI
    driver = browser()
    results: dict[str, harness.SippResult] = {}
    elder = threading.Thread(target=lambda: results.setdefault("elder", harness.sipp(
        stack, "call_until_bye", service="sos", auth_user=seeded.device_user, password=seeded.device_password,
        variables={"user": seeded.device_user}, workdir=sipp_dir / "elder", timeout=90)))
    try:
        log_in(driver, stack.http_base, AGENT, AGENT_PANEL_PASSWORD)
        wait_text(driver, "#ws-status", "实时连接正常")
        driver.find_element(By.ID, "btn-queue-login").click()
        wait_text(driver, "#agent-status", "空闲", timeout=15)
        phone.answer("answer_until_bye", ring_ms=300, timeout=90)
        trunk.answer("answer_until_bye", ring_ms=500, timeout=90)
        elder.start()

        _wait_for_the_sos_pop(driver, elder, results)
        wait_text(driver, "#elder-fields", "测试老人")
        wait_for(driver, "#conference")
        assert driver.find_element(By.ID, "conf-table").get_attribute("hidden")  # no conference yet
        add_120 = driver.find_element(By.ID, "conf-add-120")
        harness.eventually(lambda: add_120.is_enabled(), what="the add-120 button enabled")
        add_120.click()

        # The roster appears and follows the real legs: 120 rings, then everyone is in the bridge.
        wait_for(driver, "#conf-table", timeout=10)
        harness.eventually(lambda: (_party_state(driver, "elder"), _party_state(driver, "agent"),
                                    _party_state(driver, "120")) == ("joined", "joined", "joined"),
                           timeout=25, what="elder, agent and 120 joined in the panel's roster")
        assert "120 急救" in driver.find_element(By.ID, "conf-body").text
        assert "已加入" in driver.find_element(By.ID, "conf-body").text
        assert screenshot(driver, "panel-conference-120-joined").stat().st_size > 0

        # Mute 120 from its row; the roster (pushed over the WebSocket) says so.
        driver.find_element(By.CSS_SELECTOR, '#conf-body tr[data-role="120"] button').click()
        wait_text(driver, '#conf-body tr[data-role="120"]', "已静音", timeout=10)

        # End for everyone (confirmed): every party leaves and the elder's line is closed by Asterisk.
        driver.find_element(By.ID, "conf-end").click()
        driver.switch_to.alert.accept()
        harness.eventually(lambda: _party_state(driver, "elder") == "left" and _party_state(driver, "120") == "left",
                           timeout=20, what="everyone left")
        elder.join(30)
        assert results["elder"].ok, results["elder"].output
        wait_for(driver, "#pop-ended", timeout=15)
        assert driver.find_element(By.ID, "conf-add-120").get_attribute("disabled")
        screenshot(driver, "panel-conference-ended")
    finally:
        if elder.is_alive():
            elder.join(30)
        phone.stop()
        trunk.stop()
        token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
        stack.api("POST", f"/api/v1/agents/{AGENT}/logout", token=token)
