"""The care-calls page (关爱电话) in a real browser: a supervisor sees today's check-ins with the missed one first
(its emergency order named) and the one-click call, records how the missed check-in was dealt with, and sees it
leave the exceptions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from callcenter.care_calls.http import CARE_CALLS
from callcenter.care_calls.models import CareOutcome, CareRecord, CareSchedule, Recurrence
from callcenter.db.session import Database
from callcenter.elders.models import Elder, LivingSituation
from callcenter.orders.models import WorkOrderKind
from callcenter.orders.services import raise_order
from tests.browser.conftest import PASSWORD, PanelServer, log_in, screenshot, wait_for, wait_text

pytestmark = pytest.mark.browser

NOTE = "已联系邻居上门查看，老人外出买菜，平安"


def test_a_supervisor_deals_with_a_missed_check_in(browser: Any, panel_server: PanelServer) -> None:
    assert panel_server.app is not None
    today = panel_server.app[CARE_CALLS].today()

    async def seed(db: Database) -> tuple[int, int, str]:
        async with db.transaction() as session:
            missed_elder = Elder(full_name="李奶奶", phone="13800138019", living_situation=LivingSituation.ALONE)
            well_elder = Elder(full_name="赵爷爷", phone="13800138011", living_situation=LivingSituation.EMPTY_NEST)
            session.add_all([missed_elder, well_elder])
            await session.flush()
            rows = []
            for elder in (missed_elder, well_elder):
                schedule = CareSchedule(elder_id=elder.id, recurrence=Recurrence.DAILY, weekdays=[], dates=[],
                                        festivals=[], window_start="09:00", window_end="11:00", starts_on=today,
                                        active=True, automatic=False, created_by="test")
                session.add(schedule)
                await session.flush()
                rows.append(schedule.id)
            order = await raise_order(session, kind=WorkOrderKind.EMERGENCY, priority=2, actor_label="care_calls",
                                      elder_id=missed_elder.id, title="今日关爱电话无人接听")
            missed = CareRecord(elder_id=missed_elder.id, schedule_id=rows[0], local_date=today, kind="check_in",
                                window_start="09:00", window_end="11:00", outcome=CareOutcome.MISSED, attempts=3,
                                call_ids=[], callback_call_ids=[], details={}, work_order_id=order.id)
            well = CareRecord(elder_id=well_elder.id, schedule_id=rows[1], local_date=today, kind="check_in",
                              window_start="09:00", window_end="11:00", outcome=CareOutcome.WELL, attempts=1,
                              call_ids=[], callback_call_ids=[], details={}, digit="1")
            session.add_all([missed, well])
            await session.flush()
            return missed.id, well.id, order.number

    missed_id, well_id, order_number = panel_server.query(seed)
    driver = browser()
    log_in(driver, panel_server.base, "supervisor-b", PASSWORD)
    wait_for(driver, "#nav-care-calls").click()
    row = wait_for(driver, f'#care-body tr[data-record-id="{missed_id}"]')
    assert "李奶奶" in row.text and "无人接听" in row.text and order_number in row.text
    rows = driver.find_elements(By.CSS_SELECTOR, "#care-body tr")
    assert rows[0].get_attribute("data-record-id") == str(missed_id), "exceptions come first"
    well_row = driver.find_element(By.CSS_SELECTOR, f'#care-body tr[data-record-id="{well_id}"]')
    assert "一切安好" in well_row.text and well_row.find_elements(By.CSS_SELECTOR, ".care-deal") == []
    assert row.find_elements(By.CSS_SELECTOR, ".care-call"), "the one-click call back is offered"
    assert driver.find_element(By.ID, "enable-submit").is_displayed()  # supervisors: enable for all living alone
    row.find_element(By.CSS_SELECTOR, ".care-deal").click()
    wait_text(driver, "#handle-elder", "李奶奶")
    driver.find_element(By.ID, "handle-note").send_keys(NOTE)
    driver.find_element(By.ID, "handle-submit").click()
    wait_text(driver, f'#care-body tr[data-record-id="{missed_id}"] .care-handled', NOTE)
    assert "无人接听 1" in driver.find_element(By.ID, "care-counts").text
    driver.execute_script("window.scrollTo(0, 0)")
    screenshot(driver, "care-calls-missed-dealt-with")

    async def stored(db: Database) -> tuple[str | None, str | None, dt.datetime | None]:
        async with db.transaction(read_only=True) as session:
            care = await session.get(CareRecord, missed_id)
            assert care is not None
            return care.handled_by, care.handling_note, care.handled_at

    handled_by, note, handled_at = panel_server.query(stored)
    assert (handled_by, note) == ("supervisor-b", NOTE) and handled_at is not None
