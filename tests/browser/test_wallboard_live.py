"""End to end on the real stack: a supervisor opens the wallboard in headless Chromium; a SIPp hotline caller
queues (the board shows them waiting, the wait counting up) and the agent's SIPp phone answers (the call turns to
talking and "answered within 15 s" rises), all pushed over the WebSocket, without a reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from tests import harness
from tests.browser.conftest import log_in, screenshot, wait_for, wait_text
from tests.integration.test_wallboard import (
    AGENT,
    AGENT_PANEL_PASSWORD,
    SUPERVISOR,
    SUPERVISOR_PASSWORD,
    hotline_caller,
    supervisor_token,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _text(driver: Any, css: str) -> str:
    # One script per read: the board is re-rendered on every push, so element handles go stale between calls.
    return str(driver.execute_script(
        "var node = document.querySelector(arguments[0]); return node ? node.textContent : '';", css))


def _waiting_seconds(driver: Any) -> int:
    return int(driver.execute_script(
        "var node = document.querySelector('#wb-calls-body tr[data-state=\"waiting\"] td.in-state .timer');"
        "return node ? Number(node.getAttribute('data-seconds') || -1) : -1;"))


def test_the_wallboard_updates_when_a_sipp_call_queues_and_is_answered(browser: Any, stack: harness.Stack,
                                                                      sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    supervisor_token(stack)
    agent_token = stack.token(AGENT, AGENT_PANEL_PASSWORD)
    phone = harness.Phone(stack, seeded.agent_extension, seeded.agent_password, sipp_dir / "agent")
    phone.register()
    driver = browser()
    results: dict[str, harness.SippResult] = {}
    caller = None
    try:
        log_in(driver, stack.http_base, SUPERVISOR, SUPERVISOR_PASSWORD)
        driver.find_element(By.ID, "nav-wallboard").click()
        wait_text(driver, "h1", "班长实时看板")
        wait_text(driver, "#ws-status", "实时连接正常")
        wait_for(driver, "#wb-no-calls")
        hotline = "#queue-hotline "
        harness.eventually(lambda: _text(driver, "#wb-updated"), what="the first snapshot on the page")
        answered_before = int(_text(driver, hotline + '[data-field="answered_within_15s"]'))
        driver.execute_script("window.ccNotReloaded = true;")

        caller = hotline_caller(stack, sipp_dir / "caller", 20000, results)
        wait_text(driver, hotline + '[data-field="waiting"]', "1", timeout=30)
        wait_for(driver, '#wb-calls-body tr[data-state="waiting"]')
        assert "排队中" in _text(driver, "#wb-calls-body")
        assert "测试老人" in _text(driver, hotline + '[data-field="callers"]')
        # The wait counts up in the browser, from Asterisk's join time.
        first = harness.eventually(lambda: _waiting_seconds(driver) >= 0 and _waiting_seconds(driver) + 1,
                                   what="the waiting call's timer") - 1
        harness.eventually(lambda: _waiting_seconds(driver) >= first + 2, timeout=10, what="the wait to count up")
        assert _text(driver, hotline + '[data-field="longest_wait"]') not in ("", "—")
        assert screenshot(driver, "wallboard-caller-waiting").stat().st_size > 0

        phone.answer("answer_until_bye", ring_ms=300, timeout=60)
        status, body = stack.api("POST", f"/api/v1/agents/{AGENT}/login", token=agent_token)
        assert status == 200, body
        wait_for(driver, '#wb-calls-body tr[data-state="talking"]', timeout=20)
        assert AGENT in _text(driver, '#wb-calls-body tr[data-state="talking"] td.agent')
        assert "通话中" in _text(driver, '#wb-calls-body tr[data-state="talking"]')
        wait_text(driver, hotline + '[data-field="waiting"]', "0", timeout=10)
        wait_text(driver, hotline + '[data-field="answered_within_15s"]', str(answered_before + 1), timeout=15)
        wait_text(driver, f'#wb-agents-body tr[data-username="{AGENT}"] td.status', "通话中", timeout=10)
        assert driver.execute_script("return window.ccNotReloaded === true;"), "the page was reloaded"
        assert screenshot(driver, "wallboard-call-answered").stat().st_size > 0

        caller.join(60)
        assert results["caller"].ok, results["caller"].output
        wait_for(driver, "#wb-no-calls", timeout=15)
    finally:
        if caller is not None:
            caller.join(60)
        phone.stop()
        stack.api("POST", f"/api/v1/agents/{AGENT}/logout", token=agent_token)
