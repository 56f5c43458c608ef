"""The recordings library in a real browser on the real stack: an auditor finds the recording of a real SOS call,
replays it with a reason (the audio element plays; the stream answers byte ranges), and the access, with its
reason, is in the audit log and in the recording's access list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from tests import harness
from tests.browser.conftest import log_in, screenshot, wait_for, wait_text

pytestmark = [pytest.mark.browser, pytest.mark.integration]

AUDITOR, AUDITOR_PASSWORD = "auditor-lib", "auditor-lib-panel"
REASON = "投诉核查：老人反映等待过久"


def _stream_log(stack: harness.Stack) -> list[dict[str, Any]]:
    """The platform's structured log lines for playback-link streams (JSON, one per request)."""
    assert stack.platform_log is not None
    lines = []
    for line in stack.platform_log.read_text(errors="replace").splitlines():
        if '"recording.stream"' in line:
            lines.append(json.loads(line))
    return lines


def test_auditor_replays_a_real_recording_with_a_reason_and_the_access_is_audited(browser: Any, stack: harness.Stack,
                                                                               sipp_dir: Path) -> None:
    harness.sos_answered_by_agent(stack, sipp_dir, hold_ms=6000)
    admin = stack.token()
    status, page = stack.api("GET", "/api/v1/recordings?sos=true", token=admin)
    assert status == 200, page
    recording = harness.eventually(
        lambda: (items := stack.api("GET", "/api/v1/recordings?sos=true", token=admin)[1]["items"]) and items[0],
        timeout=40, what="the SOS recording in the library")
    status, body = stack.api("POST", "/api/v1/users", {"username": AUDITOR, "password": AUDITOR_PASSWORD,
                                                       "role": "auditor"}, token=admin)
    assert status in (201, 409), body

    driver = browser()
    log_in(driver, stack.http_base, AUDITOR, AUDITOR_PASSWORD)
    wait_for(driver, "#library-link").click()
    row = wait_for(driver, f'#library-body tr[data-recording-id="{recording["id"]}"]', timeout=15)
    assert recording["serial_number"] in row.text and "紧急呼叫" in row.text
    row.find_element(By.TAG_NAME, "button").click()
    wait_for(driver, "#player")

    # No reason, no sound: the link is refused before any byte is served.
    driver.find_element(By.ID, "btn-replay").click()
    assert driver.find_element(By.ID, "audio").get_attribute("src") in (None, "")
    driver.find_element(By.ID, "reason").send_keys(REASON)
    driver.find_element(By.ID, "btn-replay").click()
    wait_text(driver, "#player-message", "已记入审计日志")
    harness.eventually(lambda: driver.execute_script(
        "var a = document.getElementById('audio'); return !a.paused && a.currentTime > 0.5;"),
        timeout=15, what="the audio element playing")
    src = driver.find_element(By.ID, "audio").get_attribute("src")
    assert "/stream?grant=" in src and "Bearer" not in src
    # Seek near the end: the element asks for byte ranges, answered 206 by the stream.
    driver.execute_script("var a = document.getElementById('audio'); a.currentTime = a.duration - 1;")
    harness.eventually(lambda: driver.execute_script("return document.getElementById('audio').currentTime") > 2,
                       what="the seek")
    streams = harness.eventually(lambda: _stream_log(stack), what="stream requests in the platform log")
    assert all(entry["recording_id"] == recording["id"] and entry["user"] == AUDITOR for entry in streams)
    assert any((entry.get("range") or "").startswith("bytes=") for entry in streams), streams
    screenshot(driver, "library-replay")

    # The access list shows it, with the reason; so does the audit log.
    driver.find_element(By.ID, "btn-accesses").click()
    wait_text(driver, "#accesses", REASON)
    assert AUDITOR in driver.find_element(By.ID, "accesses").text
    status, page = stack.api("GET", f"/api/v1/audit?action=recording.replay&target_type=recording"
                                    f"&target_id={recording['id']}", token=admin)
    assert status == 200 and [e["details"]["reason"] for e in page["items"]] == [REASON], page
    # A forged link is refused even for a logged-in browser.
    status = driver.execute_script(
        "return fetch(arguments[0] + 'x').then(function (r) { return r.status; });", src)
    assert status == 401
