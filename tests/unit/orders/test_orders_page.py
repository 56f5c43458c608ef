"""The /orders page: the centre's work-order workspace for agents, supervisors and admins, both languages, the
nav links; auditors get a 403 page without the script, anonymous visitors the log-in."""

from __future__ import annotations

from callcenter.users.models import Role
from tests.apiclient import PASSWORD, Api
from tests.unit.web.test_pages import log_in


async def test_the_orders_page_is_for_the_centre_staff_who_move_orders(api: Api) -> None:
    client = api.client
    response = await client.get("/orders", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"

    auditor = await api.user(Role.AUDITOR)
    assert (await log_in(client, auditor.username, PASSWORD)).status == 303
    page = await client.get("/orders")
    text = await page.text()
    assert page.status == 403 and "仅供坐席、班长和管理员" in text and "orders.js" not in text
    assert 'id="nav-orders"' not in await (await client.get("/")).text()
    client.session.cookie_jar.clear()

    agent = await api.user(Role.AGENT)
    assert (await log_in(client, agent.username, PASSWORD)).status == 303
    assert 'id="nav-orders"' in await (await client.get("/")).text()
    page = await client.get("/orders")
    text = await page.text()
    assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
    assert "工单工作台" in text and "回访队列" in text and 'id="new-order"' in text
    assert 'value="resolution_proposed"' in text and "已提出处理意见" in text  # every status can be filtered
    assert 'value="consumer_association"' in text  # complaint sources at intake
    assert text.index("/static/common.js") < text.index("/static/orders.js")  # window.CC first
    assert 'id="nav-panel"' in text and 'id="nav-orders"' in text and 'id="logout-form"' in text
    english = await (await client.get("/orders?lang=en")).text()
    assert "Follow-up queue" in english and "Call back" in english
    for asset in ("common.js", "orders.js", "orders.css"):
        assert (await client.get(f"/static/{asset}")).status == 200
