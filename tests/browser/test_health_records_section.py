"""The health record's section of the elder's file (health_records.js on the elders page) in a real headless
Chromium: an agent opens an elder, starts a chronic-disease plan (shown with its next visit), records a follow-up
visit for it (a missing doctor is refused with the field marked, then saved and listed), records a GB/T 42195-2022
assessment built from the API's items (the level shown, the history and the care level re-read, the page's form
following) and ends the plan; an auditor sees the record masked and no forms."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from callcenter.audit.services import Actor
from callcenter.db.session import Database
from callcenter.elders.models import Elder
from callcenter.health_records import services
from tests import harness
from tests.browser.conftest import PASSWORD, PanelServer, log_in, screenshot, wait_for, wait_text

pytestmark = pytest.mark.browser


def _elder(panel_server: PanelServer, name: str, *, with_plan: bool = False) -> int:
    async def create(db: Database) -> int:
        async with db.transaction() as session:
            elder = Elder(full_name=name, community="健康社区")
            session.add(elder)
            await session.flush()
            if with_plan:
                await services.create_plan(session, elder.id, conditions=["diabetes"], measurements=None,
                                           targets=None, medications=None, visit_interval_days=90,
                                           started_on=dt.date(2026, 1, 5), first_visit_due=None,
                                           actor=Actor(id=None, label="seed"))
            return elder.id

    return int(panel_server.query(create))


def _open_elder(driver: Any, panel_server: PanelServer, username: str, name: str) -> None:
    log_in(driver, panel_server.base, username, PASSWORD)
    driver.get(panel_server.base + "/elders")
    wait_for(driver, "#eld-search")
    driver.find_element(By.ID, "q-text").send_keys(name)
    driver.find_element(By.ID, "eld-search-submit").click()
    # The whole list, read at load, may still be replaced by the search's answer: wait for that one row.
    names = "return Array.from(document.querySelectorAll('#eld-body tr'), r => r.cells[0].textContent);"
    harness.eventually(lambda: driver.execute_script(names) == [name], what="the search's single row")
    # The list read at load and the search's answer may hold the same row: a click on one just replaced is retried.
    WebDriverWait(driver, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#eld-body tr button").click() or True)
    wait_for(driver, "#hr-section")


def test_plan_visit_and_assessment_through_the_forms(browser: Any, panel_server: PanelServer) -> None:
    _elder(panel_server, "健康档案老人")
    driver = browser()
    _open_elder(driver, panel_server, "agent-b", "健康档案老人")
    wait_for(driver, "#hr-plans-none")

    # A plan for hypertension, measuring blood pressure daily, its first visit an interval (30 days) after today.
    driver.find_element(By.ID, "hr-plan-new").click()
    driver.find_element(By.CSS_SELECTOR, '#hr-plan-form [value="hypertension"]').click()
    started = dt.date.fromisoformat(driver.find_element(By.ID, "hr-plan-started_on").get_attribute("value"))
    interval = driver.find_element(By.ID, "hr-plan-visit_interval_days")
    interval.clear()
    interval.send_keys("30")
    row = driver.find_elements(By.CSS_SELECTOR, "#hr-plan-measurements input")
    row[0].send_keys("blood_pressure")
    row[1].send_keys("1")
    driver.find_element(By.ID, "hr-plan-save").click()
    plan = wait_for(driver, "#hr-plans li[data-plan-id]")
    due = (started + dt.timedelta(days=30)).isoformat()
    wait_text(driver, "#hr-plans [data-next-visit]", due)
    assert "高血压" in plan.text and "血压 每 1 天" in plan.text
    screenshot(driver, "health-record-plan")

    # A follow-up visit for the plan: without a doctor the API refuses it, naming the field.
    driver.find_element(By.ID, "hr-tab-visits").click()
    form = wait_for(driver, "#hr-visits-form")
    Select(form.find_element(By.CSS_SELECTOR, '[data-field="plan_id"]')).select_by_index(1)
    form.find_element(By.CSS_SELECTOR, '[data-field="notes"]').send_keys("血压控制尚可")
    driver.find_element(By.ID, "hr-visits-save").click()
    wait_for(driver, '#hr-visits-errors [data-error-for="doctor"]')
    doctor = form.find_element(By.CSS_SELECTOR, '[data-field="doctor"]')
    assert doctor.get_attribute("aria-invalid") == "true"
    assert "医生" in driver.find_element(By.ID, "hr-visits-errors").text
    assert form.find_element(By.CSS_SELECTOR, '[data-field="notes"]').get_attribute("value") == "血压控制尚可"
    screenshot(driver, "health-record-visit-error")
    doctor.send_keys("李医生")
    driver.find_element(By.ID, "hr-visits-save").click()
    wait_text(driver, "#hr-visits", "李医生")
    assert "血压控制尚可" in driver.find_element(By.ID, "hr-visits").text
    assert doctor.get_attribute("aria-invalid") is None
    # The visit fulfilled the plan's: the next one is an interval after it.
    driver.find_element(By.ID, "hr-tab-plans").click()
    visited = dt.date.fromisoformat(driver.execute_script("return CC.config.sections.health_records.today"))
    wait_text(driver, "#hr-plans [data-next-visit]", (visited + dt.timedelta(days=30)).isoformat())

    # An assessment from the standard's items: every item scored as able as can be but walking (0), dementia
    # raising the level by one.
    driver.find_element(By.ID, "hr-tab-assessments").click()
    wait_text(driver, "#hr-care-level", "未评估")
    driver.find_element(By.ID, "hr-assessment-new").click()
    wait_for(driver, "#hr-cut-offs")
    selects = driver.find_elements(By.CSS_SELECTOR, '#hr-assessment-items select[data-field^="items."]')
    assert len(selects) == 26
    for select in selects:
        choice = Select(select)
        choice.select_by_index(len(choice.options) - 1 if select.get_attribute("data-field") == "items.walking" else 1)
    driver.find_element(By.ID, "hr-assessment-assessor").send_keys("王评估员")
    driver.find_element(By.ID, "hr-assessment-dementia").click()
    driver.find_element(By.ID, "hr-assessment-save").click()
    wait_text(driver, "#hr-assessment-result", "轻度失能")
    assert "总分 86" in driver.find_element(By.ID, "hr-assessment-result").text
    wait_text(driver, "#hr-care-level", "2 能力中度受损")  # 86 is mild; dementia one level up
    history = driver.find_element(By.ID, "hr-assessments").text
    assert "王评估员" in history and "2 能力中度受损" in history
    # The page's file follows the new care level (a save would not send it back as the operator's change).
    assert driver.find_element(By.ID, "e-care_level").get_attribute("value") == "2"
    screenshot(driver, "health-record-assessment")

    # Ending the plan (confirmed) shows it ended, with no next visit.
    driver.find_element(By.ID, "hr-tab-plans").click()
    driver.find_element(By.CSS_SELECTOR, '#hr-plans [data-action="end"]').click()
    driver.switch_to.alert.accept()
    wait_text(driver, "#hr-plans-message", "计划已结束")
    wait_text(driver, "#hr-plans li[data-plan-id]", "已于")
    assert driver.find_elements(By.CSS_SELECTOR, "#hr-plans [data-next-visit], #hr-plans [data-action]") == []


def test_an_auditor_reads_the_record_masked_without_forms(browser: Any, panel_server: PanelServer) -> None:
    _elder(panel_server, "审计查看老人", with_plan=True)
    driver = browser()
    _open_elder(driver, panel_server, "auditor-b", "审计查看老人")
    wait_for(driver, "#hr-plans li[data-plan-id]")
    assert driver.find_elements(By.CSS_SELECTOR, "#hr-section form, #hr-plan-new, [data-action]") == []
    assert driver.find_element(By.CSS_SELECTOR, '#hr-plans [data-masked="conditions"]').is_displayed()
    assert "糖尿病" not in driver.find_element(By.ID, "hr-section").text
    assert "2026-04-05 — 随访已逾期" in driver.find_element(By.CSS_SELECTOR, "#hr-plans [data-next-visit]").text
    driver.execute_script("document.getElementById('hr-section').scrollIntoView()")
    screenshot(driver, "health-record-auditor-masked")
    driver.find_element(By.ID, "eld-cancel").click()
    assert not driver.find_element(By.ID, "hr-section").is_displayed()
    assert driver.find_element(By.ID, "hr-plans").text == ""


def test_examination_note_and_a_plan_change_with_field_errors(browser: Any, panel_server: PanelServer) -> None:
    _elder(panel_server, "体检记录老人", with_plan=True)
    driver = browser()
    _open_elder(driver, panel_server, "supervisor-b", "体检记录老人")

    # A target whose upper bound is no number: the API names targets.0.max, the row's input is marked.
    wait_for(driver, '#hr-plans [data-action="change"]').click()
    assert driver.find_element(By.CSS_SELECTOR, '#hr-plan-form [value="diabetes"]').is_selected()
    target = driver.find_elements(By.CSS_SELECTOR, "#hr-plan-targets input")
    for cell, text in zip(target, ("glucose", "4.4", "七", "mmol/L"), strict=True):
        cell.send_keys(text)
    driver.find_element(By.ID, "hr-plan-save").click()
    wait_for(driver, '#hr-plan-errors [data-error-for="targets.0.max"]')
    assert target[2].get_attribute("aria-invalid") == "true"
    assert "控制目标 · 1 · 上限" in driver.find_element(By.ID, "hr-plan-errors").text
    target[2].clear()
    target[2].send_keys("7")
    driver.find_element(By.ID, "hr-plan-save").click()
    wait_text(driver, "#hr-plans-message", "计划已保存")
    wait_text(driver, "#hr-plans li[data-plan-id]", "血糖 4.4–7 mmol/L")

    driver.find_element(By.ID, "hr-tab-examinations").click()
    form = wait_for(driver, "#hr-examinations-form")
    form.find_element(By.CSS_SELECTOR, '[data-field="examiner"]').send_keys("社区卫生服务中心")
    form.find_element(By.CSS_SELECTOR, '[data-field="findings.systolic"]').send_keys("400")
    form.find_element(By.CSS_SELECTOR, '[data-field="findings.diastolic"]').send_keys("85")
    form.find_element(By.CSS_SELECTOR, '[data-field="findings.summary"]').send_keys("血压偏高")
    driver.find_element(By.ID, "hr-examinations-save").click()
    wait_for(driver, '#hr-examinations-errors [data-error-for="findings.systolic"]')
    assert "体检结果 · 收缩压" in driver.find_element(By.ID, "hr-examinations-errors").text
    systolic = form.find_element(By.CSS_SELECTOR, '[data-field="findings.systolic"]')
    systolic.clear()
    systolic.send_keys("150")
    driver.find_element(By.ID, "hr-examinations-save").click()
    wait_text(driver, "#hr-examinations", "150/85 mmHg")
    assert "血压偏高" in driver.find_element(By.ID, "hr-examinations").text

    driver.find_element(By.ID, "hr-tab-notes").click()
    form = wait_for(driver, "#hr-notes-form")
    form.find_element(By.CSS_SELECTOR, '[data-field="doctor"]').send_keys("李医生")
    form.find_element(By.CSS_SELECTOR, '[data-field="note"]').send_keys("低盐饮食")
    driver.find_element(By.ID, "hr-notes-save").click()
    wait_text(driver, "#hr-notes", "低盐饮食")
    screenshot(driver, "health-record-note")
