"""The accounts page in a real headless Chromium: an administrator creates an account (the password policy's field
error shows and the form keeps what was typed), the new agent logs in elsewhere, and disabling the account from the
page sends the agent's open desk back to the log-in form at once (its WebSocket is closed with 4401)."""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from callcenter.db.session import Database
from callcenter.users.models import Role, User
from callcenter.users.passwords import hash_password
from tests.browser.conftest import PASSWORD, PanelServer, log_in, screenshot, wait_for, wait_text

pytestmark = pytest.mark.browser

NEW_PASSWORD = "lantern-orchard-quietly-9"


def test_an_admin_creates_then_disables_an_account_and_its_open_desk_ends(browser: Any,
                                                                         panel_server: PanelServer) -> None:
    async def an_admin(db: Database) -> None:
        async with db.transaction() as session:
            session.add(User(username="admin-accounts-b", password_hash=hash_password(PASSWORD), role=Role.ADMIN))

    panel_server.query(an_admin)
    admin = browser()
    log_in(admin, panel_server.base, "admin-accounts-b", PASSWORD)
    admin.get(panel_server.base + "/accounts")
    wait_for(admin, '#users-body tr[data-username="admin-accounts-b"]')

    admin.find_element(By.ID, "c-username").send_keys("acct-agent-b")
    admin.find_element(By.ID, "c-display").send_keys("新坐席")
    admin.find_element(By.ID, "c-password").send_keys("password123")
    admin.find_element(By.ID, "create-submit").click()
    wait_for(admin, '#create-errors [data-error-for="password"]')
    assert admin.find_element(By.ID, "c-password").get_attribute("aria-invalid") == "true"
    assert admin.find_element(By.ID, "c-username").get_attribute("value") == "acct-agent-b"  # nothing lost
    screenshot(admin, "accounts-weak-password")
    password = admin.find_element(By.ID, "c-password")
    password.clear()
    password.send_keys(NEW_PASSWORD)
    admin.find_element(By.ID, "create-submit").click()
    wait_text(admin, "#create-message", "acct-agent-b")
    row = wait_for(admin, '#users-body tr[data-username="acct-agent-b"]')

    desk = browser()
    log_in(desk, panel_server.base, "acct-agent-b", NEW_PASSWORD)
    wait_text(desk, "#ws-status", "实时连接正常")

    row.find_element(By.TAG_NAME, "button").click()
    wait_text(admin, "#account-name", "acct-agent-b")
    wait_text(admin, "#account-sessions-body", "工作台")  # the agent's panel session is listed
    admin.find_element(By.ID, "e-active").click()
    admin.find_element(By.ID, "edit-submit").click()
    wait_text(admin, "#account-message", "已保存")
    WebDriverWait(desk, 10).until(lambda driver: driver.current_url.endswith("/login"))
    screenshot(admin, "accounts-disabled")
    screenshot(desk, "accounts-desk-ended")
    wait_text(admin, '#users-body tr[data-username="acct-agent-b"]', "已停用")
