"""The elder's health readings on the elder's file, in a real headless Chromium: a supervisor opens a file with a
device's readings and sees the latest of each type and a uPlot chart per type (drawn, with its series), narrows the
period, enters a blood pressure by hand (a value out of the plausible range shows the API's error at its field; a
good one appears as the latest) and sets the elder's own limit on a doctor's instruction; an auditor reads the same
file with nothing to enter or set."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from callcenter.db.session import Database
from callcenter.elders.models import Contact, ContactRole, Elder
from callcenter.readings.models import Reading, ReadingSource, ReadingType
from tests import harness
from tests.browser.conftest import PASSWORD, PanelServer, log_in, screenshot, wait_for, wait_text

pytestmark = pytest.mark.browser

# Whether a chart's canvas has anything drawn on it (uPlot draws the axes, the series and the limits there).
DRAWN = """const canvas = document.querySelector(arguments[0] + ' canvas');
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
for (let i = 3; i < data.length; i += 4) { if (data[i] !== 0) return true; }
return false;"""


def _elder_with_readings(panel_server: PanelServer, name: str) -> int:
    """An elder with a community doctor, a cuff's readings every other day for 20 days and a watch's heart rate
    10 to 20 days ago."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    async def seed(db: Database) -> int:
        async with db.transaction() as session:
            elder = Elder(full_name=name, community="健康社区")
            session.add(elder)
            await session.flush()
            session.add(Contact(elder_id=elder.id, role=ContactRole.DOCTOR, name="王医生", phone="13800000019",
                                priority=1))
            for day in range(0, 20, 2):
                session.add(Reading(elder_id=elder.id, type=ReadingType.BLOOD_PRESSURE, source=ReadingSource.MQTT,
                                    measured_at=now - dt.timedelta(days=day, hours=1), received_at=now,
                                    values={"systolic_mmhg": 130 + day, "diastolic_mmhg": 80 + day // 2}))
            for day in range(10, 20, 3):
                session.add(Reading(elder_id=elder.id, type=ReadingType.HEART_RATE, source=ReadingSource.HTTP,
                                    measured_at=now - dt.timedelta(days=day), received_at=now, values={"bpm": 70}))
            await session.flush()
            return elder.id

    return int(panel_server.query(seed))


def _open_file(driver: WebDriver, panel_server: PanelServer, username: str, elder_id: int) -> None:
    log_in(driver, panel_server.base, username, PASSWORD)
    driver.get(panel_server.base + "/elders")
    wait_for(driver, f'#eld-body tr[data-elder-id="{elder_id}"] button').click()
    wait_for(driver, "#ht")


def _shot(driver: WebDriver, css: str, name: str) -> None:
    """A screenshot with ``css`` at the top of the window (the section is below the file's form)."""
    driver.execute_script("document.querySelector(arguments[0]).scrollIntoView()", css)
    screenshot(driver, name)


def _whose(driver: WebDriver, measure: str) -> str:
    """The limits table's "whose" cell of ``measure``: default or the elder's own."""
    return driver.find_element(By.CSS_SELECTOR, f'#ht-limits-body tr[data-measure="{measure}"] td:nth-child(7)').text


def _legend(driver: WebDriver, chart: str) -> list[str]:
    return driver.execute_script(  # type: ignore[no-any-return]
        "return Array.from(document.querySelectorAll(arguments[0] + ' .u-legend .u-series th'),"
        " cell => cell.textContent.trim());", chart)


def test_charts_hand_entry_and_the_elders_own_limits(browser: Any, panel_server: PanelServer) -> None:
    elder_id = _elder_with_readings(panel_server, "健康图表老人")
    driver = browser()
    _open_file(driver, panel_server, "supervisor-b", elder_id)

    pressure, heart = '.ht-chart[data-type="blood_pressure"]', '.ht-chart[data-type="heart_rate"]'
    wait_for(driver, pressure + " .uplot")
    wait_for(driver, heart + " .uplot")
    assert _legend(driver, pressure)[1:] == ["收缩压（mmHg）", "舒张压（mmHg）"]
    assert _legend(driver, heart)[1:] == ["心率（次/分）"]
    assert driver.execute_script(DRAWN, pressure) and driver.execute_script(DRAWN, heart)
    latest = driver.find_element(By.CSS_SELECTOR, '#ht-latest-body tr[data-type="blood_pressure"]').text
    assert "130/80 mmHg" in latest and "设备（MQTT）" in latest and "正常范围" in latest
    assert "设备（网关）" in driver.find_element(By.CSS_SELECTOR, '#ht-latest-body tr[data-type="heart_rate"]').text
    assert _whose(driver, "systolic_mmhg") == "默认"
    _shot(driver, "#ht", "health-trends-charts")

    # Seven days: the heart rate (10 to 20 days ago) has nothing to chart.
    Select(driver.find_element(By.ID, "ht-range")).select_by_value("7")
    wait_text(driver, heart + " .ht-none", "此时间范围内没有读数")
    wait_for(driver, pressure + " .uplot")

    # By hand: a systolic no cuff gives is refused at its field, what was typed kept; a good one is the latest.
    Select(driver.find_element(By.ID, "ht-type")).select_by_value("blood_pressure")
    systolic = wait_for(driver, "#ht-v-systolic_mmhg")
    systolic.send_keys("400")
    driver.find_element(By.ID, "ht-v-diastolic_mmhg").send_keys("95")
    driver.find_element(By.ID, "ht-entry-save").click()
    wait_for(driver, '#ht-entry [data-error-for="values.systolic_mmhg"]')
    assert systolic.get_attribute("aria-invalid") == "true" and systolic.get_attribute("value") == "400"
    wait_text(driver, "#ht-entry-message", "请改正标出的字段")
    _shot(driver, "#ht-entry", "health-trends-field-error")
    systolic.clear()
    systolic.send_keys("152")
    # Typed on the centre's clock (Asia/Shanghai; the browser runs in UTC) and shown on it: the same minute back.
    typed = driver.find_element(By.ID, "ht-measured_at").get_attribute("value")
    driver.find_element(By.ID, "ht-entry-save").click()
    wait_text(driver, "#ht-entry-message", "已保存：血压 152/95 mmHg")
    wait_text(driver, '#ht-latest-body tr[data-type="blood_pressure"]', "152/95 mmHg")
    latest = driver.find_element(By.CSS_SELECTOR, '#ht-latest-body tr[data-type="blood_pressure"]').text
    assert "人工录入" in latest and "supervisor-b" in latest
    assert typed.replace("-", "/").replace("T", " ") in latest, (typed, latest)
    wait_for(driver, pressure + " .uplot")
    assert systolic.get_attribute("value") == "" and systolic.get_attribute("aria-invalid") is None

    # The elder's own systolic limit, on the doctor's instruction: who set it and when, then back to the defaults.
    driver.find_element(By.CSS_SELECTOR, '#ht-limits-body tr[data-measure="systolic_mmhg"] button').click()
    high = wait_for(driver, '#ht-limits-form [data-field="measures.systolic_mmhg.high_high"]')
    high.clear()
    high.send_keys("170")
    driver.find_element(By.ID, "ht-limits-note").send_keys("遵医嘱")
    driver.find_element(By.ID, "ht-limits-save").click()
    wait_text(driver, "#ht-limits-message", "已保存老人本人的阈值")
    row = '#ht-limits-body tr[data-measure="systolic_mmhg"]'
    harness.eventually(lambda: _whose(driver, "systolic_mmhg") == "本人专属", what="the elder's own limit")
    assert "王医生" in driver.find_element(By.CSS_SELECTOR, row).text
    assert "supervisor-b" in driver.find_element(By.CSS_SELECTOR, row).text
    assert "170" in driver.find_element(By.CSS_SELECTOR, row).text
    # Only the measure changed is the elder's own: the diastolic keeps the defaults.
    assert _whose(driver, "diastolic_mmhg") == "默认"
    _shot(driver, "#ht-limits", "health-trends-own-limits")
    driver.find_element(By.CSS_SELECTOR, row + " button + button").click()  # back to the defaults, confirmed
    driver.switch_to.alert.accept()
    wait_text(driver, "#ht-limits-message", "已恢复默认阈值")
    harness.eventually(lambda: _whose(driver, "systolic_mmhg") == "默认", what="the default limits again")
    assert "170" not in driver.find_element(By.CSS_SELECTOR, row).text


def test_an_auditor_reads_the_charts_with_nothing_to_enter_or_set(browser: Any, panel_server: PanelServer) -> None:
    elder_id = _elder_with_readings(panel_server, "只读图表老人")
    driver = browser()
    _open_file(driver, panel_server, "auditor-b", elder_id)
    wait_for(driver, '.ht-chart[data-type="blood_pressure"] .uplot')
    wait_for(driver, '#ht-limits-body tr[data-measure="systolic_mmhg"]')
    assert driver.find_elements(By.ID, "ht-entry") == [] and driver.find_elements(By.ID, "ht-limits-form") == []
    assert driver.find_elements(By.CSS_SELECTOR, "#ht-limits-body button") == []
    driver.find_element(By.ID, "eld-cancel").click()
    harness.eventually(lambda: not driver.find_element(By.ID, "ht").is_displayed(), what="the section hidden")
