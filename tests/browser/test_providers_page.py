"""The providers registry page in a real headless Chromium: a supervisor registers a provider whose fee names a
service it does not offer (the API's refusal shows next to that fee and the form keeps what was typed), fixes it,
sees the licence flagged as soon expiring, cannot take another provider's name (409 at the name), adds and
deactivates a staff member, and issues an API key whose secret is shown once: it is the stored one, and it is
nowhere on the page once the provider is opened again."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import select

from callcenter.db.session import Database
from callcenter.providers.models import ProviderApiKey, ProviderStaff, ServiceProvider
from tests.browser.conftest import PASSWORD, PanelServer, log_in, screenshot, wait_for, wait_text

pytestmark = pytest.mark.browser


def test_register_a_provider_add_staff_and_issue_a_key(browser: Any, panel_server: PanelServer) -> None:
    async def another_provider(db: Database) -> None:
        async with db.transaction() as session:
            session.add(ServiceProvider(name="已有服务商", services=["repair"], communities=[], fees={}))

    panel_server.query(another_provider)
    driver = browser()
    log_in(driver, panel_server.base, "supervisor-b", PASSWORD)
    driver.get(panel_server.base + "/providers-registry")
    wait_for(driver, "#prv-filter")

    driver.find_element(By.ID, "prv-new").click()
    wait_for(driver, "#p-name").send_keys("浏览器服务商")
    driver.find_element(By.ID, "p-phone").send_keys("0371-6512 3456")
    driver.find_element(By.ID, "p-communities").send_keys("和平社区、幸福社区")
    expires = (dt.datetime.now(ZoneInfo("Asia/Shanghai")).date() + dt.timedelta(days=10)).isoformat()
    driver.execute_script("arguments[0].value = arguments[1]", driver.find_element(By.ID, "p-licence_expires_on"),
                          expires)
    driver.find_element(By.ID, "p-offer-cleaning").click()
    driver.find_element(By.ID, "p-fee-cleaning-price").send_keys("30")
    driver.find_element(By.ID, "p-fee-cleaning-unit").send_keys("小时")
    driver.find_element(By.ID, "p-fee-repair-price").send_keys("20")  # repair is not ticked as offered
    driver.find_element(By.ID, "prv-save").click()

    wait_for(driver, 'tr[data-service="repair"] [data-error-for="fees.repair"]')
    assert driver.find_element(By.ID, "p-fee-repair-price").get_attribute("aria-invalid") == "true"
    assert driver.find_element(By.ID, "p-fee-cleaning-price").get_attribute("aria-invalid") is None
    assert driver.find_element(By.ID, "p-name").get_attribute("value") == "浏览器服务商"  # nothing lost
    assert driver.find_element(By.ID, "p-fee-cleaning-unit").get_attribute("value") == "小时"
    assert driver.find_element(By.ID, "p-offer-cleaning").is_selected()
    screenshot(driver, "providers-fee-error")

    driver.find_element(By.ID, "p-fee-repair-price").clear()
    driver.find_element(By.ID, "prv-save").click()
    wait_text(driver, "#d-name", "浏览器服务商")
    wait_text(driver, "#d-message", "已登记")
    assert driver.find_element(By.ID, "prv-editor").get_attribute("hidden") is not None
    assert "家政保洁 30 元/小时" in driver.find_element(By.ID, "d-fees").text
    assert driver.find_element(By.ID, "d-licence").get_attribute("data-licence") == "soon"
    wait_for(driver, '#prv-body tr[data-provider-id] td[data-licence="soon"]')

    # A change that takes another provider's name: the 409 is shown at the name, the form stays open as typed.
    driver.find_element(By.ID, "d-edit").click()
    name = wait_for(driver, "#p-name")
    name.clear()
    name.send_keys("已有服务商")
    driver.find_element(By.ID, "prv-save").click()
    wait_for(driver, 'label [data-error-for="name"]')
    assert name.get_attribute("aria-invalid") == "true" and name.get_attribute("value") == "已有服务商"
    assert driver.find_element(By.ID, "p-fee-cleaning-price").get_attribute("value") == "30"
    driver.find_element(By.ID, "prv-cancel").click()

    wait_for(driver, "#s-skill-cleaning").click()
    driver.find_element(By.ID, "s-name").send_keys("张护工")
    driver.find_element(By.ID, "s-phone").send_keys("177 0000 0401")
    driver.find_element(By.ID, "staff-submit").click()
    wait_text(driver, "#staff-body", "张护工")
    wait_for(driver, '#staff-body tr[data-active="true"] button[data-action="deactivate"]').click()
    wait_for(driver, '#staff-body tr[data-active="false"]')
    screenshot(driver, "providers-detail")

    driver.find_element(By.ID, "key-create").click()
    secret = wait_for(driver, "#key-secret-value").get_attribute("value")
    key_id = driver.find_element(By.ID, "key-secret-id").get_attribute("value")
    wait_for(driver, f'#key-body tr[data-key-id="{key_id}"]')
    screenshot(driver, "providers-key-secret")

    async def stored(db: Database) -> tuple[list[tuple[str, bool]], list[str], dict[str, Any], str | None]:
        async with db.transaction() as session:
            provider = await session.scalar(select(ServiceProvider).where(ServiceProvider.name == "浏览器服务商"))
            assert provider is not None
            staff = await session.scalars(select(ProviderStaff).where(ProviderStaff.provider_id == provider.id))
            keys = await session.scalars(select(ProviderApiKey).where(ProviderApiKey.provider_id == provider.id))
            return ([(s.name, s.active) for s in staff], [k.secret for k in keys if k.key_id == key_id],
                    provider.fees, provider.phone)

    staff, secrets, fees, phone = panel_server.query(stored)
    assert staff == [("张护工", False)] and secrets == [secret] and len(secret) >= 32
    assert fees == {"cleaning": {"price_yuan": 30.0, "unit": "小时", "note": None}} and phone == "037165123456"

    # Shown once: the page opened afresh lists the key but has no way to its secret.
    driver.get(panel_server.base + "/providers-registry")
    wait_text(driver, "#prv-body", "浏览器服务商")
    driver.find_element(By.XPATH, '//tr[td[1]="浏览器服务商"]//button').click()
    wait_for(driver, f'#key-body tr[data-key-id="{key_id}"]')
    assert driver.find_element(By.ID, "key-secret").get_attribute("hidden") is not None
    assert secret not in driver.page_source
