"""GET /elders: every centre role gets the registry page; what it offers follows the API's roles (agents edit,
supervisors and admins also delete and import, auditors read); anonymous visitors go to the log-in."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from callcenter.users.models import Role
from tests.apiclient import Api
from tests.unit.web.test_pages import log_in


async def _page(api: Api, role: Role, path: str = "/elders") -> tuple[int, str]:
    user = await api.user(role)
    async with TestClient(TestServer(api.client.app)) as browser:
        assert (await log_in(browser, user.username)).status == 303
        response = await browser.get(path, allow_redirects=False)
        return response.status, await response.text()


async def test_anonymous_visitors_go_to_the_log_in(api: Api) -> None:
    response = await api.client.get("/elders", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"


async def test_the_page_offers_what_each_role_may_do(api: Api) -> None:
    expectations = {
        Role.SUPERVISOR: ({"eld-search", "eld-form", "eld-new", "eld-delete", "import-form"}, set()),
        Role.ADMIN: ({"eld-search", "eld-form", "eld-new", "eld-delete", "import-form"}, set()),
        Role.AGENT: ({"eld-search", "eld-form", "eld-new"}, {"eld-delete", "import-form"}),
        Role.AUDITOR: ({"eld-search", "eld-form"}, {"eld-new", "eld-delete", "import-form"}),
    }
    for role, (shown, hidden) in expectations.items():
        status, text = await _page(api, role)
        assert status == 200, role
        assert "elders.js" in text and "老人档案管理" in text and 'id="nav-elders"' in text
        for part in shown:
            assert f'id="{part}"' in text, (role, part)
        for part in hidden:
            assert f'id="{part}"' not in text, (role, part)
        assert (f'"mayWrite": {"true" if role is not Role.AUDITOR else "false"}') in text


async def test_the_wallboard_nav_links_to_the_registry(api: Api) -> None:
    status, text = await _page(api, Role.SUPERVISOR, "/wallboard")
    assert status == 200 and 'href="/elders"' in text
