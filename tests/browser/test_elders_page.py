"""The elders page in a real headless Chromium: a supervisor imports a small roster (progress to the end, the
counts, a rejected row with its reason and the report button), finds an imported elder (the list masks the ID and
the phone number), opens the file (the ID masked), reveals the full ID with a reason (audited), then edits the file
and sees the API's field error for a bad phone number, with what was typed kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from sqlalchemy import func, select

from callcenter.audit.models import AuditEntry
from callcenter.db.sealed import lookup_digest
from callcenter.db.session import Database
from callcenter.elders.models import ID_NUMBER_INDEX, Elder
from tests import harness
from tests.browser.conftest import PASSWORD, PanelServer, log_in, screenshot, wait_for, wait_text
from tests.unit.elders.roster_data import HEADERS, row

pytestmark = pytest.mark.browser


def test_import_a_roster_then_edit_an_elder(browser: Any, panel_server: PanelServer, tmp_path: Path) -> None:
    rows = [row(serial) for serial in range(900_001, 900_006)]
    rows[3][4] = "1234-567"  # a bad phone: this row is rejected, the others imported
    roster = tmp_path / "花名册.csv"
    roster.write_text("\r\n".join(",".join(cells) for cells in [HEADERS, *rows]) + "\r\n", encoding="gb18030")

    driver = browser()
    log_in(driver, panel_server.base, "supervisor-b", PASSWORD)
    driver.get(panel_server.base + "/elders")
    wait_for(driver, "#eld-search")

    driver.find_element(By.ID, "import-file").send_keys(str(roster))
    driver.find_element(By.ID, "import-submit").click()
    wait_text(driver, "#import-status", "导入完成", timeout=20)
    assert driver.find_element(By.ID, "count-total").text == "5"
    assert driver.find_element(By.ID, "count-created").text == "4"
    assert driver.find_element(By.ID, "count-rejected").text == "1"
    progress = driver.find_element(By.ID, "import-progress")
    assert progress.get_attribute("value") == progress.get_attribute("max") == "5"
    assert "第 5 行" in driver.find_element(By.ID, "import-rejected").text
    assert "联系电话" in driver.find_element(By.ID, "import-rejected").text
    assert driver.find_element(By.ID, "import-report").is_displayed()
    screenshot(driver, "elders-imported")

    async def imported(db: Database) -> int:
        async with db.transaction() as session:
            return int(await session.scalar(select(func.count()).select_from(Elder).where(
                Elder.id_number_digest.in_([lookup_digest(session, cells[1], ID_NUMBER_INDEX) for cells in rows])))
                or 0)

    assert panel_server.query(imported) == 4

    driver.find_element(By.ID, "q-text").send_keys(rows[0][1])
    driver.find_element(By.ID, "eld-search-submit").click()
    # The whole list (refreshed when the import finished) holds this elder too: wait for the search's own answer.
    names = "return Array.from(document.querySelectorAll('#eld-body tr'), r => r.cells[0].textContent);"
    harness.eventually(lambda: driver.execute_script(names) == [rows[0][0]], what="the search's single row")
    masked_id = rows[0][1][:4] + "*" * 10 + rows[0][1][-4:]
    row_cells = "return Array.from(document.querySelectorAll('#eld-body tr td'), c => c.textContent);"
    cells = driver.execute_script(row_cells)
    assert cells[1] == masked_id and cells[4] == rows[0][4][:3] + "****" + rows[0][4][-4:], cells
    assert rows[0][1] not in driver.find_element(By.ID, "eld-table").text
    driver.find_element(By.CSS_SELECTOR, "#eld-body tr button").click()
    id_input = wait_for(driver, "#e-id_number")
    harness.eventually(lambda: id_input.get_attribute("value") == masked_id, what="the file's masked ID")

    # "Show full" asks for a reason; a too-short one is refused on the page, a good one reveals and is audited.
    wait_for(driver, "#e-reveal").click()
    reason = wait_for(driver, "#reveal-reason")
    reason.send_keys("核对")
    driver.find_element(By.ID, "reveal-submit").click()
    wait_text(driver, "#reveal-message", "至少 4 个字")
    assert id_input.get_attribute("value") == masked_id
    screenshot(driver, "elders-reveal-asks-a-reason")
    reason.send_keys("民政补贴身份")
    reason.send_keys(Keys.ENTER)  # in the reason box Enter reveals; it does not save the file
    wait_text(driver, "#reveal-message", "已记入审计日志")
    assert id_input.get_attribute("value") == rows[0][1]
    assert not driver.find_element(By.ID, "e-reveal").is_displayed()
    screenshot(driver, "elders-id-revealed")

    async def reveals(db: Database) -> list[tuple[str, dict[str, Any]]]:
        async with db.transaction() as session:
            entries = await session.scalars(select(AuditEntry).where(AuditEntry.action == "elder.reveal"))
            return [(entry.actor_label, entry.details) for entry in entries]

    assert panel_server.query(reveals) == [("supervisor-b", {"justified_by": "none", "reason": "核对民政补贴身份",
                                                             "fields": ["id_number"]})]

    phone = wait_for(driver, "#e-phone")
    phone.clear()
    phone.send_keys("1380013800")  # ten digits: no mobile, landline or service number
    driver.find_element(By.ID, "eld-save").click()
    wait_for(driver, '[data-error-for="phone"]')
    assert phone.get_attribute("aria-invalid") == "true" and phone.get_attribute("value") == "1380013800"
    assert "联系电话" in driver.find_element(By.ID, "eld-form-errors").text
    screenshot(driver, "elders-phone-error")

    phone.clear()
    phone.send_keys("177 0090 0001")
    driver.find_element(By.ID, "eld-save").click()
    wait_text(driver, "#eld-form-message", "已保存")
    wait_text(driver, "#eld-body", "177****0001")
    # The revealed ID was shown, not changed: the save did not send it, and the saved file is masked again.
    assert driver.find_element(By.ID, "e-id_number").get_attribute("value") == masked_id
