"""The volunteers page in a real headless Chromium: a supervisor registers a volunteer (the API's field error for a
wrong ID check digit shows and the form keeps what was typed), approves them, pairs them with an elder, and the
volunteer is among the elder's contacts."""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import select

from callcenter.db.session import Database
from callcenter.elders.models import Contact, ContactRole, Elder
from callcenter.elders.schemas import resident_id_check_digit
from tests.browser.conftest import PASSWORD, PanelServer, log_in, screenshot, wait_for, wait_text

pytestmark = pytest.mark.browser

ID_FIRST17 = "44030419850312204"


def test_register_approve_and_pair_a_volunteer_with_an_elder(browser: Any, panel_server: PanelServer) -> None:
    async def an_elder(db: Database) -> int:
        async with db.transaction() as session:
            elder = Elder(full_name="结对测试老人", community="志愿社区")
            session.add(elder)
            await session.flush()
            return elder.id

    elder_id = panel_server.query(an_elder)
    driver = browser()
    log_in(driver, panel_server.base, "supervisor-b", PASSWORD)
    driver.get(panel_server.base + "/volunteers")
    wait_for(driver, "#vol-search")

    driver.find_element(By.ID, "vol-new").click()
    wait_for(driver, "#v-full_name").send_keys("浏览器志愿者")
    driver.find_element(By.ID, "v-phone").send_keys("139 0000 0777")
    right = resident_id_check_digit(ID_FIRST17)
    driver.find_element(By.ID, "v-id_number").send_keys(ID_FIRST17 + ("1" if right == "0" else "0"))
    driver.find_element(By.ID, "vol-save").click()
    wait_for(driver, '[data-error-for="id_number"]')
    assert driver.find_element(By.ID, "v-id_number").get_attribute("aria-invalid") == "true"
    assert driver.find_element(By.ID, "v-full_name").get_attribute("value") == "浏览器志愿者"  # nothing lost
    screenshot(driver, "volunteers-id-error")

    id_input = driver.find_element(By.ID, "v-id_number")
    id_input.clear()
    id_input.send_keys(ID_FIRST17 + right)
    driver.find_element(By.ID, "vol-save").click()
    wait_text(driver, "#d-status", "待审核")
    assert driver.find_element(By.ID, "vol-editor").get_attribute("hidden") is not None

    driver.find_element(By.ID, "review-submit").click()  # "approved" is the first choice
    wait_text(driver, "#d-status", "已通过")

    driver.find_element(By.ID, "p-query").send_keys(str(elder_id))
    driver.find_element(By.ID, "pair-find").click()
    wait_for(driver, f'#pair-results li[data-elder-id="{elder_id}"] button').click()
    wait_text(driver, "#pairing-list", "结对测试老人")
    wait_text(driver, "#pair-message", "已与 结对测试老人 结对")
    screenshot(driver, "volunteers-paired")

    async def contacts(db: Database) -> list[tuple[ContactRole, str, str]]:
        async with db.transaction() as session:
            rows = await session.scalars(select(Contact).where(Contact.elder_id == elder_id))
            return [(c.role, c.name, c.phone) for c in rows]

    assert panel_server.query(contacts) == [(ContactRole.VOLUNTEER, "浏览器志愿者", "13900000777")]
