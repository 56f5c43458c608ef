"""The contact cascade from an emergency order on /orders in headless Chromium (issue 16): the agent starts it,
sees its first responder being called, pauses, resumes and stops it, each step then on the order's trail. No
telephony here (the calls stay queued in the outbound engine); the calls themselves run against real Asterisk in
tests/integration/test_cascade.py and on the alarm card in tests/browser/test_cascade_live.py."""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.by import By

from callcenter.db.session import Database
from callcenter.elders.models import Contact, ContactRole, Elder
from callcenter.orders.models import WorkOrderKind
from callcenter.orders.services import raise_order
from tests.browser.conftest import PASSWORD, PanelServer, log_in, screenshot, wait_for, wait_text

pytestmark = pytest.mark.browser


async def _seed(db: Database) -> int:
    async with db.transaction() as session:
        elder = Elder(full_name="冯秀珍", phone="13600136111", address="光明路 2 号", community="光明社区")
        elder.contacts = [Contact(role=ContactRole.RELATIVE, name="冯大", phone="13900139111", priority=1),
                          Contact(role=ContactRole.VOLUNTEER, name="志愿者小陈", phone="13900139112", priority=1)]
        session.add(elder)
        await session.flush()
        order = await raise_order(session, kind=WorkOrderKind.EMERGENCY, actor_label="ivr", elder_id=elder.id,
                                  title="紧急呼叫")
        return order.id


def test_an_agent_starts_pauses_resumes_and_stops_a_cascade_from_the_order(browser: Any,
                                                                             panel_server: PanelServer) -> None:
    order_id = panel_server.query(_seed)
    agent = browser()
    log_in(agent, panel_server.base, "agent-b", PASSWORD)
    agent.get(f"{panel_server.base}/orders?order={order_id}")
    wait_text(agent, "#order-cascade-state", "尚未开始")
    wait_for(agent, "#order-cascade-start").click()
    wait_text(agent, "#order-cascade-state", "进行中")
    wait_text(agent, "#order-cascade-calls", "冯大 · 呼叫中")
    screenshot(agent, "order-cascade-running")
    wait_for(agent, "#order-cascade-pause").click()
    wait_text(agent, "#order-cascade-state", "已暂停")
    wait_for(agent, "#order-cascade-resume").click()
    wait_text(agent, "#order-cascade-state", "进行中")
    wait_for(agent, "#order-cascade-stop").click()
    wait_text(agent, "#order-cascade-state", "已停止")
    assert agent.find_element(By.ID, "order-cascade-start").is_displayed()  # a new one may be started
    wait_for(agent, "#trail-body tr[data-action='cascade_stopped']")
    actions = [row.get_attribute("data-action") for row in agent.find_elements(By.CSS_SELECTOR, "#trail-body tr")]
    steps = [a for a in actions if a in ("cascade_started", "cascade_paused", "cascade_resumed", "cascade_stopped")]
    assert steps == ["cascade_started", "cascade_paused", "cascade_resumed", "cascade_stopped"], actions
    assert actions.index("cascade_call") > actions.index("cascade_started")  # 冯大 called
    screenshot(agent, "order-cascade-stopped")
