"""GET /volunteers: supervisors and admins get the registry page, other staff a 403 page, anonymous visitors the
log-in; the nav links to it for those who may use it."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from callcenter.users.models import Role
from tests.apiclient import Api
from tests.unit.web.test_pages import log_in


async def _page(api: Api, role: Role, path: str = "/volunteers") -> tuple[int, str]:
    user = await api.user(role)
    async with TestClient(TestServer(api.client.app)) as browser:
        assert (await log_in(browser, user.username)).status == 303
        response = await browser.get(path, allow_redirects=False)
        return response.status, await response.text()


async def test_anonymous_visitors_go_to_the_log_in(api: Api) -> None:
    response = await api.client.get("/volunteers", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"


async def test_supervisors_and_admins_get_the_page_others_a_refusal(api: Api) -> None:
    for role in (Role.SUPERVISOR, Role.ADMIN):
        status, text = await _page(api, role)
        assert status == 200, role
        for part in ("vol-search", "vol-form", "review-form", "service-form", "feedback-form", "pair-search",
                     "nav-volunteers"):
            assert f'id="{part}"' in text, (role, part)
        assert "volunteers.js" in text and "志愿者管理" in text
    for role in (Role.AGENT, Role.AUDITOR):
        status, text = await _page(api, role)
        assert status == 403, role
        assert "只有班长和管理员可以管理志愿者" in text
        assert "volunteers.js" not in text and 'id="nav-volunteers"' not in text and '"token"' not in text


async def test_the_wallboard_nav_links_to_the_registry(api: Api) -> None:
    status, text = await _page(api, Role.SUPERVISOR, "/wallboard")
    assert status == 200 and 'href="/volunteers"' in text
