"""The panel in a real headless Chromium: log-in, lockout, language, CSRF, roles, and pops pushed through the hub."""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from callcenter import push
from callcenter.db.session import Database
from callcenter.elders.models import Elder
from callcenter.orders.models import WorkOrderKind
from callcenter.orders.services import raise_order, update_order
from callcenter.providers.models import ServiceProvider
from callcenter.users.models import Role
from tests.browser.conftest import PASSWORD, PanelServer, log_in, screenshot, wait_for, wait_text

pytestmark = pytest.mark.browser


def test_wrong_password_shows_an_error_then_the_lockout_message(browser: Any, panel_server: PanelServer) -> None:
    driver = browser()
    log_in(driver, panel_server.base, "locked-b", "wrong-password")
    assert "用户名或密码错误" in wait_for(driver, "#login-error").text
    assert driver.find_element(By.ID, "username").get_attribute("value") == "locked-b"
    for _ in range(5):  # five wrong passwords from this address; the sixth attempt meets the lock
        log_in(driver, panel_server.base, "locked-b", "wrong-password")
    assert "登录失败次数过多" in wait_for(driver, "#login-error").text
    log_in(driver, panel_server.base, "locked-b", PASSWORD)  # locked from this address: even the right password
    assert "登录失败次数过多" in wait_for(driver, "#login-error").text


def test_agent_logs_in_sees_the_agent_bar_in_chinese_and_switches_to_english(browser: Any,
                                                                            panel_server: PanelServer) -> None:
    driver = browser()
    driver.get(panel_server.base + "/")
    assert driver.current_url.endswith("/login")
    log_in(driver, panel_server.base, "agent-b", PASSWORD)
    wait_for(driver, "#agent-bar")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    assert driver.find_element(By.ID, "btn-queue-login").text == "登录队列"
    wait_text(driver, "#ws-status", "实时连接正常")
    # This account has no phone: logging in to the queue says why instead of pretending a state.
    driver.find_element(By.ID, "btn-queue-login").click()
    wait_text(driver, "#bar-message", "no phone extension")
    # An agent's page has no supervisor parts at all, not merely hidden ones.
    assert not driver.find_elements(By.ID, "all-agents")
    assert not driver.find_elements(By.ID, "agents-table")
    driver.find_element(By.ID, "lang-switch").click()
    wait_text(driver, "#btn-queue-login", "Log in to queue")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    driver.get(panel_server.base + "/")  # the choice sticks
    wait_text(driver, "#agent-bar-heading", "Agent state")


def test_logout_without_the_csrf_token_is_refused_and_with_it_works(browser: Any, panel_server: PanelServer) -> None:
    driver = browser()
    log_in(driver, panel_server.base, "agent-b", PASSWORD)
    wait_for(driver, "#agent-bar")
    driver.execute_script("document.querySelector('#logout-form input[name=csrf_token]').remove()")
    driver.find_element(By.ID, "logout-submit").click()
    wait_text(driver, "body", "表单已过期")
    driver.get(panel_server.base + "/")
    wait_for(driver, "#agent-bar")  # still logged in
    driver.find_element(By.ID, "logout-submit").click()
    wait_for(driver, "#login-form")
    driver.get(panel_server.base + "/")
    assert driver.current_url.endswith("/login")


def test_supervisor_and_auditor_see_all_agents_the_auditor_read_only(browser: Any,
                                                                     panel_server: PanelServer) -> None:
    supervisor = browser()
    log_in(supervisor, panel_server.base, "supervisor-b", PASSWORD)
    wait_for(supervisor, "#all-agents")
    assert supervisor.find_elements(By.ID, "agent-bar")
    wait_text(supervisor, "#ws-status", "实时连接正常")
    panel_server.call(lambda: panel_server.hub.publish(push.roles([Role.SUPERVISOR]), {
        "type": "agent_state", "username": "agent-x", "status": "paused", "paused": True,
        "pause_reason": "培训", "queues": ["emergency", "hotline"], "since": "2026-05-01T08:00:00+00:00"}))
    wait_text(supervisor, "#agents-body", "agent-x")
    row = supervisor.find_element(By.CSS_SELECTOR, "tr[data-agent='agent-x']")
    assert "暂停中" in row.text and "培训" in row.text

    auditor = browser()
    log_in(auditor, panel_server.base, "auditor-b", PASSWORD)
    wait_for(auditor, "#read-only-note")
    assert auditor.find_elements(By.ID, "all-agents")
    for part in ("agent-bar", "pop", "order-form", "btn-queue-login"):
        assert not auditor.find_elements(By.ID, part), part


def test_the_agent_bar_shows_wrap_up_with_its_end_and_offers_ready(browser: Any, panel_server: PanelServer) -> None:
    driver = browser()
    log_in(driver, panel_server.base, "agent-b", PASSWORD)
    wait_text(driver, "#ws-status", "实时连接正常")
    panel_server.call(lambda: panel_server.hub.publish(push.user("agent-b"), {
        "type": "agent_state", "username": "agent-b", "status": "wrap_up", "paused": False, "pause_reason": None,
        "wrap_up": True, "wrap_up_until": "2026-05-01T08:00:30+00:00", "queues": ["emergency", "hotline"],
        "since": "2026-05-01T08:00:00+00:00"}))
    wait_text(driver, "#agent-status", "话后整理")
    assert "紧急呼叫照常接入" in driver.find_element(By.ID, "agent-detail").text
    assert not driver.find_element(By.ID, "btn-unpause").get_attribute("disabled")  # "ready" ends it early
    assert not driver.find_element(By.ID, "btn-pause").get_attribute("disabled")


def pop(call_id: int, **overrides: Any) -> dict[str, Any]:
    message = {
        "type": "screen_pop", "call_id": call_id, "linkedid": f"L{call_id}", "kind": "hotline", "sos": False,
        "caller_number": "17700009999", "queue": "hotline", "identified_by": "none", "unknown_caller": True,
        "elder": None, "device": None, "recent_calls": [], "open_work_orders": [], "work_order": None,
    }
    message.update(overrides)
    return message


def test_unknown_caller_pop_searches_and_registers_and_call_end_greys_it(browser: Any,
                                                                          panel_server: PanelServer) -> None:
    driver = browser()
    log_in(driver, panel_server.base, "agent-b", PASSWORD)
    wait_text(driver, "#ws-status", "实时连接正常")
    panel_server.call(lambda: panel_server.hub.publish(push.user("agent-b"), pop(901)))
    wait_for(driver, "#unknown")
    assert not driver.find_element(By.ID, "sos-banner").is_displayed()
    assert driver.find_element(By.ID, "register-phone").get_attribute("value") == "17700009999"
    driver.find_element(By.ID, "register-name").send_keys("新登记老人")
    driver.find_element(By.ID, "register-address").send_keys("测试路 9 号")
    driver.find_element(By.ID, "register-submit").click()
    wait_text(driver, "#elder-fields", "新登记老人")
    # The new file is found by the search box of the next unknown caller.
    panel_server.call(lambda: panel_server.hub.publish(push.user("agent-b"), pop(902, caller_number="agent-phone")))
    wait_for(driver, "#unknown")
    assert driver.find_element(By.ID, "register-phone").get_attribute("value") == ""
    driver.find_element(By.ID, "search-q").send_keys("新登记")
    driver.find_element(By.ID, "search-submit").click()
    wait_text(driver, "#search-results", "新登记老人")
    assert "测试路" not in driver.find_element(By.ID, "search-results").text  # a summary: no address
    driver.find_element(By.CSS_SELECTOR, "#search-results li button").click()
    wait_text(driver, "#elder-fields", "测试路 9 号")  # the file itself, read (and audited) when shown
    panel_server.call(lambda: panel_server.hub.publish(push.user("agent-b"), {"type": "call_ended", "call_id": 902}))
    wait_for(driver, "#pop-ended")
    assert "ended" in driver.find_element(By.ID, "pop").get_attribute("class")


def test_the_websocket_reconnects_after_the_hub_drops_a_slow_panel(browser: Any,
                                                                   panel_server: PanelServer) -> None:
    driver = browser()
    log_in(driver, panel_server.base, "agent-b", PASSWORD)
    wait_text(driver, "#ws-status", "实时连接正常")

    def drop_all() -> int:
        # What the hub does to a browser whose queue is full: drops it; its socket closes with 1013.
        clients = panel_server.hub.subscribers()
        for client in clients:
            panel_server.hub.drop(client)
        return len(clients)

    assert panel_server.call(drop_all) >= 1
    wait_text(driver, "#ws-status", "正在重连")
    wait_text(driver, "#ws-status", "实时连接正常", timeout=15)
    panel_server.call(lambda: panel_server.hub.publish(push.user("agent-b"), pop(903, sos=True, kind="sos")))
    wait_for(driver, "#sos-banner")
    screenshot(driver, "panel-reconnected-sos")


def test_an_order_changed_by_someone_else_is_not_overwritten(browser: Any, panel_server: PanelServer) -> None:
    async def raise_one(db: Database) -> tuple[int, str]:
        async with db.transaction() as session:
            order = await raise_order(session, kind=WorkOrderKind.SERVICE_REQUEST, actor_label="test",
                                      title="送餐", priority=3)
            return order.id, order.number

    order_id, number = panel_server.query(raise_one)
    driver = browser()
    log_in(driver, panel_server.base, "agent-b", PASSWORD)
    wait_text(driver, "#ws-status", "实时连接正常")
    panel_server.call(lambda: panel_server.hub.publish(push.user("agent-b"), pop(
        904, work_order={"id": order_id, "number": number, "kind": "service_request", "status": "open",
                         "priority": 3, "title": "送餐", "version": 1})))
    wait_text(driver, "#order-number", number)

    async def someone_else_edits(db: Database) -> None:
        async with db.transaction() as session:
            await update_order(session, order_id, version=1, changes={"description": "另一位坐席的修改"},
                               actor_id=None, actor_label="other")

    panel_server.query(someone_else_edits)
    driver.find_element(By.ID, "order-description").send_keys("我的修改")
    driver.find_element(By.ID, "order-save").click()
    wait_text(driver, "#order-message", "工单已被他人修改")
    driver.find_element(By.ID, "order-reload").click()
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "order-description").get_attribute("value")
                             == "另一位坐席的修改")
    driver.find_element(By.ID, "order-save").click()
    wait_text(driver, "#order-message", "工单已保存")


def test_the_agent_picks_the_service_and_a_suggested_provider_and_both_are_saved(browser: Any,
                                                                                 panel_server: PanelServer) -> None:
    async def prepare(db: Database) -> tuple[int, str, int, int]:
        async with db.transaction() as session:
            chosen = ServiceProvider(name="老人自选助浴", services=["bathing"], communities=["其他社区"])
            local = ServiceProvider(name="本社区服务站", services=["bathing", "cleaning"], communities=["浏览器社区"])
            session.add_all([chosen, local])
            await session.flush()
            elder = Elder(full_name="浏览器老人", community="浏览器社区", preferred_provider_id=chosen.id)
            session.add(elder)
            await session.flush()
            order = await raise_order(session, kind=WorkOrderKind.SERVICE_REQUEST, actor_label="test",
                                      elder_id=elder.id, title="助浴")
            return order.id, order.number, chosen.id, local.id

    order_id, number, chosen_id, local_id = panel_server.query(prepare)
    driver = browser()
    log_in(driver, panel_server.base, "agent-b", PASSWORD)
    wait_text(driver, "#ws-status", "实时连接正常")
    panel_server.call(lambda: panel_server.hub.publish(push.user("agent-b"), pop(
        905, work_order={"id": order_id, "number": number, "kind": "service_request", "status": "open",
                         "priority": 3, "title": "助浴", "version": 1})))
    wait_text(driver, "#order-number", number)
    assert driver.find_element(By.ID, "order-provider").get_attribute("disabled")  # no service chosen yet

    Select(driver.find_element(By.ID, "order-service")).select_by_value("bathing")
    wait_text(driver, "#order-provider", "老人自选助浴 · 老人选定")
    provider = Select(driver.find_element(By.ID, "order-provider"))
    assert [o.text for o in provider.options[1:]] == ["老人自选助浴 · 老人选定", "本社区服务站 · 服务本社区"]
    assert provider.first_selected_option.get_attribute("value") == str(chosen_id)  # the best match, proposed
    provider.select_by_value(str(local_id))  # the agent prefers the local station today
    driver.find_element(By.ID, "order-save").click()
    wait_text(driver, "#order-message", "工单已保存")

    driver.refresh()  # a saved draft survives a reload
    # The pop is pushed straight through the hub (no replay here): only to a panel that is connected again.
    wait_text(driver, "#ws-status", "实时连接正常")
    panel_server.call(lambda: panel_server.hub.publish(push.user("agent-b"), pop(
        905, work_order={"id": order_id, "number": number, "kind": "service_request", "status": "open",
                         "priority": 3, "title": "助浴", "version": 1})))
    wait_text(driver, "#order-provider", "本社区服务站")
    WebDriverWait(driver, 10).until(lambda d: Select(d.find_element(By.ID, "order-provider"))
                                    .first_selected_option.get_attribute("value") == str(local_id))
    assert Select(driver.find_element(By.ID, "order-service")).first_selected_option.get_attribute("value") == \
        "bathing"
    assert not driver.find_element(By.ID, "conf-controls").is_displayed()  # no conference on this call
    driver.execute_script("document.getElementById('order').scrollIntoView()")
    screenshot(driver, "panel-order-provider")
