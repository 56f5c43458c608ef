"""End to end on the real stack: a supervisor has the wallboard open in headless Chromium when the recordings
spool's disk (a real tmpfs) fills up; the red banner appears, pushed over the WebSocket without a reload, in
Chinese, and goes away when space returns."""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests import harness, tmpfs
from tests.browser.conftest import log_in, screenshot, wait_text
from tests.integration.test_disk_full import disk_stack  # noqa: F401 - the fixture: spool and store on tmpfs
from tests.integration.test_wallboard import SUPERVISOR, SUPERVISOR_PASSWORD, supervisor_token

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_a_full_spool_shows_a_red_banner_on_the_open_wallboard_and_clears_it(
        browser: Any, disk_stack: harness.Stack) -> None:  # noqa: F811 - the imported fixture
    stack = disk_stack
    spool = stack.spool  # type: ignore[attr-defined]
    supervisor_token(stack)
    driver = browser()
    log_in(driver, stack.http_base, SUPERVISOR, SUPERVISOR_PASSWORD)
    driver.get(f"{stack.http_base}/wallboard")
    wait_text(driver, "#ws-status", "实时连接正常")
    banner = driver.find_element(By.ID, "wb-alarms")
    assert not banner.is_displayed()
    driver.execute_script("window.ccNotReloaded = true;")
    try:
        tmpfs.fill(spool)
        WebDriverWait(driver, 15).until(expected_conditions.visibility_of_element_located((By.ID, "wb-alarms")))
        wait_text(driver, "#wb-alarm-list li[data-part='spool']", "录音缓存盘已满")
        item = driver.find_element(By.CSS_SELECTOR, "#wb-alarm-list li[data-part='spool']")
        assert item.get_attribute("data-code") == "disk_full" and "critical" in (item.get_attribute("class") or "")
        assert "新通话没有录音" in item.text
        screenshot(driver, "wallboard-spool-full")
    finally:
        tmpfs.free(spool)
    WebDriverWait(driver, 15).until(expected_conditions.invisibility_of_element_located((By.ID, "wb-alarms")))
    assert driver.execute_script("return window.ccNotReloaded === true;")  # pushed, not reloaded
