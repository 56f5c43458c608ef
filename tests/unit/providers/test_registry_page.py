"""GET /providers-registry: supervisors and admins get the provider registry page, other centre staff a 403 page,
anonymous visitors the log-in; the nav links to it for those who may use it."""

from __future__ import annotations

import datetime as dt
import json
import re
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient, TestServer

from callcenter.providers.models import ServiceType
from callcenter.users.models import Role
from tests.apiclient import Api
from tests.unit.web.test_pages import log_in

PATH = "/providers-registry"


async def _page(api: Api, role: Role, path: str = PATH) -> tuple[int, str, str | None]:
    account = await api.user(role)
    async with TestClient(TestServer(api.client.app)) as browser:
        assert (await log_in(browser, account.username)).status == 303
        response = await browser.get(path, allow_redirects=False)
        return response.status, await response.text(), response.headers.get("Location")


async def test_anonymous_visitors_go_to_the_log_in(api: Api) -> None:
    response = await api.client.get(PATH, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"


async def test_supervisors_and_admins_get_the_page_others_a_refusal(api: Api) -> None:
    def centre_today() -> str:
        return dt.datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()

    for role in (Role.SUPERVISOR, Role.ADMIN):
        before = centre_today()
        status, text, _ = await _page(api, role)
        assert status == 200, role
        for part in ("prv-filter", "prv-form", "p-fees", "staff-form", "account-form", "key-create", "eval-fields",
                     "nav-providers"):
            assert f'id="{part}"' in text, (role, part)
        for service in ServiceType:  # a fee row and a filter choice per service
            assert f'data-service="{service.value}"' in text and f'<option value="{service.value}">' in text
        assert "providers.js" in text and "服务商管理" in text
        config = json.loads(re.search(r'<script id="cc-config" type="application/json">(.*?)</script>', text,
                                      re.S).group(1))  # type: ignore[union-attr]
        # Expiry is judged on the centre's calendar, as matching does.
        assert config["today"] in {before, centre_today()}
        assert config["licenceWarningDays"] == 30 and config["services"] == [s.value for s in ServiceType]
    for role in (Role.AGENT, Role.AUDITOR):
        status, text, _ = await _page(api, role)
        assert status == 403, role
        assert "只有班长和管理员可以管理服务商" in text
        assert "providers.js" not in text and 'id="nav-providers"' not in text and '"token"' not in text


async def test_the_nav_links_to_the_registry_for_supervisors_only(api: Api) -> None:
    status, text, _ = await _page(api, Role.SUPERVISOR, "/volunteers")
    assert status == 200 and 'href="/providers-registry"' in text
    status, text, _ = await _page(api, Role.AGENT, "/volunteers")
    assert status == 403 and 'href="/providers-registry"' not in text
