"""The provider portal page over plain HTTP: a provider's account lands on /provider after log-in and is sent there
from every centre page; centre staff are sent from the portal to their panel; an account bound to no provider is
refused."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from callcenter.providers.models import ServiceProvider
from callcenter.users.models import Role
from tests.apiclient import Api
from tests.unit.web.test_pages import log_in

CENTRE_PAGES = ("/", "/library", "/wallboard")


async def _provider_account(api: Api) -> str:
    async with api.db.transaction() as session:
        provider = ServiceProvider(name="幸福家政", phone="0374-5551234", services=["bathing"], active=True)
        session.add(provider)
        await session.flush()
        provider_id = provider.id
    return (await api.user(Role.PROVIDER, provider_id=provider_id)).username


async def test_a_provider_lands_on_its_portal_and_never_sees_the_centres_pages(api: Api) -> None:
    assert (await api.client.get("/provider", allow_redirects=False)).headers["Location"] == "/login"
    username = await _provider_account(api)
    response = await log_in(api.client, username)
    assert response.status == 303 and response.headers["Location"] == "/provider"
    page = await api.client.get("/provider")
    text = await page.text()
    assert page.status == 200 and "服务商工单门户" in text and 'id="orders-table"' in text
    assert '"role": "provider"' in text and "provider.js" in text
    assert page.headers["Cache-Control"] == "no-store"  # the page embeds a bearer token
    for path in (*CENTRE_PAGES, "/login"):
        response = await api.client.get(path, allow_redirects=False)
        assert (response.status, response.headers.get("Location")) == (303, "/provider"), path
    english = await api.client.get("/provider?lang=en")
    assert "Provider work-order portal" in await english.text()


async def test_centre_staff_are_sent_from_the_portal_to_their_panel(api: Api) -> None:
    agent = await api.user(Role.AGENT)
    async with TestClient(TestServer(api.client.app)) as browser:
        assert (await log_in(browser, agent.username)).headers["Location"] == "/"
        response = await browser.get("/provider", allow_redirects=False)
        assert (response.status, response.headers["Location"]) == (303, "/")
        assert (await browser.get("/", allow_redirects=False)).status == 200


async def test_a_provider_account_bound_to_no_provider_is_refused(api: Api) -> None:
    unbound = await api.user(Role.PROVIDER)
    response = await log_in(api.client, unbound.username)
    assert response.status == 403 and "未关联服务商" in await response.text()
    assert "cc_session" not in response.cookies
