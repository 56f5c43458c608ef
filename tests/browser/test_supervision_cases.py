"""The supervision cases page (督办) in a real browser: a supervisor finds an overdue order's case, records a phone
urging with its result, and sees the case move to "being urged" with the urging listed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.orders.models import WorkOrderKind
from callcenter.supervision_cases.models import CaseStatus, SupervisionCase
from callcenter.supervision_cases.services import scan
from tests.browser.conftest import PASSWORD, PanelServer, log_in, screenshot, wait_for, wait_text
from tests.unit.supervision_cases import factory

pytestmark = pytest.mark.browser

RESULT = "服务商承诺今天 17:00 前回电老人"


def test_a_supervisor_records_an_urging_on_an_overdue_case(browser: Any, panel_server: PanelServer) -> None:
    async def overdue_case(db: Database) -> tuple[int, str, str]:
        async with db.transaction() as session:
            provider = await factory.provider(session, "督办测试家政")
            order = await factory.order(session, WorkOrderKind.CONSULTATION, utcnow() - dt.timedelta(hours=50),
                                        provider_id=provider.id)
            [case] = [c for c in await scan(session, utcnow()) if c.work_order_id == order.id]
            return case.id, case.number, order.number

    case_id, case_number, order_number = panel_server.query(overdue_case)
    driver = browser()
    log_in(driver, panel_server.base, "supervisor-b", PASSWORD)
    wait_for(driver, "#nav-supervision-cases").click()
    row = wait_for(driver, f'#cases-body tr[data-case-id="{case_id}"]')
    assert case_number in row.text and order_number in row.text and "督办测试家政" in row.text
    assert "已超时" in row.text and "待督办" in row.text
    row.find_element(By.TAG_NAME, "button").click()
    wait_text(driver, "#case-number", case_number)
    Select(driver.find_element(By.ID, "urge-method")).select_by_value("call")
    driver.find_element(By.ID, "urge-result").send_keys(RESULT)
    driver.find_element(By.ID, "urge-submit").click()
    wait_text(driver, "#case-message", "催办已记录")
    wait_text(driver, "#case-urgings", RESULT)
    wait_text(driver, f'#cases-body tr[data-case-id="{case_id}"] .case-status', "催办中")
    assert "电话催办" in driver.find_element(By.ID, "case-urgings").text
    driver.execute_script("window.scrollTo(0, 0)")
    screenshot(driver, "supervision-case-urged")

    async def stored(db: Database) -> tuple[CaseStatus, list[tuple[str, str, str]]]:
        async with db.transaction() as session:
            case = await session.get(SupervisionCase, case_id)
            assert case is not None
            return case.status, [(u.method.value, u.actor_label, u.result) for u in case.urgings]

    assert panel_server.query(stored) == (CaseStatus.URGING, [("call", "supervisor-b", RESULT)])
