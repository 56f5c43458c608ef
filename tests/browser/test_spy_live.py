"""One click on an agent's live call, in a real browser on the real stack: the supervisor's SIPp phone is rung and
attached by ChanSpy; switching to whisper and stopping work from the wallboard's buttons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from tests import harness
from tests.browser.conftest import log_in, screenshot, wait_text
from tests.integration.test_spy import (
    SUPERVISOR,
    SUPERVISOR_PASSWORD,
    _answered_sos,
    _chanspy_data,
    _supervisor,
    spy_line,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _click_spy(driver: Any, call_id: int, mode: str) -> None:
    # One script: the board re-renders on every push, so a found element may be stale a moment later.
    assert driver.execute_script(
        "var b = document.querySelector('td.spy[data-call-id=\"' + arguments[0] + '\"] button[data-spy-mode=\"'"
        " + arguments[1] + '\"]'); if (!b) return false; b.click(); return true;", str(call_id), mode)


def test_supervisor_listens_then_whispers_then_stops_from_the_wallboard(browser: Any, stack: harness.Stack,
                                                                       sipp_dir: Path) -> None:
    seeded = stack.seeded  # type: ignore[attr-defined]
    _supervisor(stack)
    driver = browser()
    with spy_line(stack, sipp_dir) as line:
        agent, supervisor, elder = line.agent, line.supervisor, line.elder
        log_in(driver, stack.http_base, SUPERVISOR, SUPERVISOR_PASSWORD)
        driver.get(stack.http_base + "/wallboard")
        wait_text(driver, "#ws-status", "实时连接正常")
        agent.answer("answer_until_bye", ring_ms=300, timeout=90)
        supervisor.answer("answer_until_bye", ring_ms=300, timeout=90)
        elder.start()
        call_id = harness.eventually(lambda: _answered_sos(stack), timeout=20, what="the agent answering")
        harness.eventually(lambda: driver.find_elements(
            By.CSS_SELECTOR, f'td.spy[data-call-id="{call_id}"] button'), timeout=15,
            what="the listen buttons on the talking call")

        _click_spy(driver, call_id, "listen")
        wait_text(driver, "#spy-message", "正在呼叫您的话机")
        target = harness.eventually(lambda: _chanspy_data(stack), timeout=15, what="ChanSpy running")[0]
        assert target.endswith(",qE") and target.startswith(f"PJSIP/{seeded.agent_extension}-")
        _click_spy(driver, call_id, "whisper")
        wait_text(driver, "#spy-message", "已切换为耳语")
        harness.eventually(lambda: [d.rsplit(",", 1)[1] for d in _chanspy_data(stack)] == ["qEw"],
                           what="ChanSpy whispering")
        screenshot(driver, "wallboard-spy-whisper")
        _click_spy(driver, call_id, "stop")
        wait_text(driver, "#spy-message", "已停止监听")
        harness.eventually(lambda: _chanspy_data(stack) == [], what="ChanSpy gone")
        assert supervisor.wait(15).ok
