"""The /wallboard page: supervisors and admins only, its own script and styles, both languages, the nav link."""

from __future__ import annotations

from callcenter.users.models import Role
from callcenter.wallboard.services import WallboardService
from tests.apiclient import PASSWORD, Api
from tests.unit.web.test_pages import log_in


async def test_the_wallboard_page_is_for_supervisors_and_admins(board_api: tuple[Api, WallboardService]) -> None:
    board, _ = board_api
    client = board.client
    response = await client.get("/wallboard", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"
    agent = await board.user(Role.AGENT)
    assert (await log_in(client, agent.username)).status == 303
    page = await client.get("/wallboard")
    assert page.status == 403 and "只有班长和管理员" in await page.text()
    assert "wallboard.js" not in await page.text()
    panel = await (await client.get("/")).text()
    assert 'id="nav-wallboard"' not in panel
    client.session.cookie_jar.clear()

    supervisor = await board.user(Role.SUPERVISOR)
    assert (await log_in(client, supervisor.username, PASSWORD)).status == 303
    assert 'id="nav-wallboard"' in await (await client.get("/")).text()
    page = await client.get("/wallboard")
    text = await page.text()
    assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
    assert "班长实时看板" in text and 'id="queue-emergency"' in text and "紧急队列" in text
    assert "/static/wallboard.js" in text and "/static/wallboard.css" in text and '"token"' in text
    assert text.index("/static/common.js") < text.index("/static/wallboard.js")  # window.CC first
    assert 'id="nav-panel"' in text and 'id="logout-form"' in text and supervisor.username in text
    english = await (await client.get("/wallboard?lang=en")).text()
    assert "Supervisor wallboard" in english and "Hotline queue" in english
    for asset in ("common.js", "wallboard.js", "wallboard.css"):
        assert (await client.get(f"/static/{asset}")).status == 200
