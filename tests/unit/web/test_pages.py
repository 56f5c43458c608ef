"""The panel's pages over plain HTTP: log-in with lockout, session cookie, CSRF, roles, language."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pyotp
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcenter.audit.models import AuditEntry
from callcenter.config import Settings
from callcenter.db.session import Database
from callcenter.desk.http import DEVICE_CHANNEL
from callcenter.telephony.mqtt import MqttState
from callcenter.users.models import Role, User
from tests.apiclient import PASSWORD, Api, api_settings, assembled

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def csrf_of(client: TestClient, path: str = "/login") -> str:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    match = CSRF.search(await response.text())
    assert match is not None
    return match.group(1)


async def log_in(client: TestClient, username: str, password: str = PASSWORD) -> ClientResponse:
    token = await csrf_of(client)
    return await client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                             allow_redirects=False)


async def test_anonymous_pages_go_to_login_and_health_and_status_stay(api: Api) -> None:
    response = await api.client.get("/", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"
    assert (await api.client.get("/healthz")).status == 503  # no AMI here; untouched by the panel
    status = await api.client.get("/status")
    text = await status.text()
    assert status.status == 200 and "数据库" in text
    # Every check the platform reports is named in words (none shows as its bare key).
    report = await (await api.client.get("/healthz")).json()
    for key in report["checks"]:
        assert f"<td>{key}</td>" not in text, key
    assert "设备报警接收" in text and "报警分配（坐席）" in text
    login = await api.client.get("/login")
    text = await login.text()
    assert 'lang="zh-CN"' in text and "平台登录" in text and 'for="username"' in text
    assert login.headers["Cache-Control"] == "no-store" and "frame-ancestors 'none'" in \
        login.headers["Content-Security-Policy"]
    cookie = login.cookies["cc_login"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/login"


async def test_login_without_a_matching_csrf_token_is_refused(api: Api) -> None:
    user = await api.user(Role.AGENT)
    await csrf_of(api.client)  # the browser has a nonce cookie, but the form does not carry its token
    for token in (None, "", "forged"):
        data = {"username": user.username, "password": PASSWORD}
        if token is not None:
            data["csrf_token"] = token
        response = await api.client.post("/login", data=data, allow_redirects=False)
        assert response.status == 403 and "表单已过期" in await response.text()
    # A token from another browser's nonce does not fit this browser's cookie.
    async with TestClient(TestServer(api.client.app)) as other:
        foreign = await csrf_of(other)
    response = await api.client.post("/login", data={"username": user.username, "password": PASSWORD,
                                                     "csrf_token": foreign}, allow_redirects=False)
    assert response.status == 403
    assert "cc_session" not in response.cookies


async def test_wrong_password_then_lockout_are_shown(api: Api) -> None:
    user = await api.user(Role.AGENT)
    response = await log_in(api.client, user.username, "wrong-password")
    assert response.status == 401 and "用户名或密码错误" in await response.text()
    for _ in range(4):
        assert (await log_in(api.client, user.username, "wrong-password")).status == 401
    locked = await log_in(api.client, user.username, "wrong-password")
    text = await locked.text()
    assert locked.status == 423 and "登录失败次数过多" in text and "15 分钟" in text
    assert 14 * 60 < int(locked.headers["Retry-After"]) <= 15 * 60
    # Locked from this address means locked: the right password is refused too, with the same message.
    again = await log_in(api.client, user.username)
    assert again.status == 423 and "登录失败次数过多" in await again.text()
    assert (await log_in(api.client, "nobody-here", "whatever-pw")).status == 401


async def test_login_sets_a_strict_httponly_session_and_logout_needs_the_csrf_token(api: Api) -> None:
    user = await api.user(Role.AGENT)
    response = await log_in(api.client, user.username)
    assert response.status == 303 and response.headers["Location"] == "/"
    cookie = response.cookies["cc_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and not cookie["secure"]
    page = await api.client.get("/")
    text = await page.text()
    assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
    assert 'id="agent-bar"' in text and "登录队列" in text and 'id="all-agents"' not in text
    token = CSRF.search(text).group(1)  # type: ignore[union-attr]
    # The page's bearer token works on the API, and only in the page (never in a redirect or URL).
    config = re.search(r'"token": "([^"]+)"', text)
    assert config is not None
    status, body = await api.request("GET", f"/api/v1/users/{user.username}", token=config.group(1))
    assert status == 200 and body["username"] == user.username

    refused = await api.client.post("/logout", allow_redirects=False)
    assert refused.status == 403
    refused = await api.client.post("/logout", data={"csrf_token": "forged"}, allow_redirects=False)
    assert refused.status == 403
    assert (await api.client.get("/", allow_redirects=False)).status == 200  # still logged in
    done = await api.client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == "/login"
    assert (await api.client.get("/", allow_redirects=False)).status == 303
    # The page's bearer token ended with it.
    status, body = await api.request("GET", f"/api/v1/users/{user.username}", token=config.group(1))
    assert status == 401 and body["error"]["code"] == "session_ended"
    async with api.db.transaction() as session:
        actions = (await session.scalars(select(AuditEntry.action).where(AuditEntry.actor_id == user.id))).all()
    assert "auth.login" in actions and "auth.logout" in actions


async def test_the_session_cookie_is_signed_and_a_replayed_logout_cookie_is_dead(api: Api) -> None:
    user = await api.user(Role.AGENT)
    await log_in(api.client, user.username)
    cookie = api.client.session.cookie_jar.filter_cookies(api.client.make_url("/"))["cc_session"].value
    session_id = cookie.rpartition(".")[0]
    async with TestClient(TestServer(api.client.app)) as other:
        other.session.cookie_jar.update_cookies({"cc_session": session_id})  # unsigned
        assert (await other.get("/", allow_redirects=False)).status == 303
        other.session.cookie_jar.update_cookies({"cc_session": cookie})  # the real one works anywhere it is sent
        assert (await other.get("/", allow_redirects=False)).status == 200


async def test_roles_decide_what_the_page_shows(api: Api) -> None:
    expectations = {
        Role.AGENT: ({"agent-bar", "pop"}, {"all-agents", "read-only-note"}),
        Role.SUPERVISOR: ({"agent-bar", "pop", "all-agents"}, {"read-only-note"}),
        Role.AUDITOR: ({"all-agents", "read-only-note"}, {"agent-bar", "pop", "order-form"}),
        Role.ADMIN: ({"all-agents"}, {"agent-bar", "pop", "read-only-note"}),
    }
    for role, (shown, hidden) in expectations.items():
        user = await api.user(role)
        async with TestClient(TestServer(api.client.app)) as browser:
            assert (await log_in(browser, user.username)).status == 303
            text = await (await browser.get("/")).text()
        for part in shown:
            assert f'id="{part}"' in text, (role, part)
        for part in hidden:
            assert f'id="{part}"' not in text, (role, part)


async def test_with_mqtt_off_the_desk_tells_those_taking_alarms_device_alarms_cannot_arrive(api: Api) -> None:
    assert api.client.app[DEVICE_CHANNEL].state is MqttState.OFF  # no broker in these tests
    for role, told in ((Role.AGENT, True), (Role.SUPERVISOR, True), (Role.ADMIN, True), (Role.AUDITOR, False)):
        user = await api.user(role)
        async with TestClient(TestServer(api.client.app)) as browser:
            assert (await log_in(browser, user.username)).status == 303
            text = await (await browser.get("/")).text()
        assert ('id="device-alarms-off"' in text) is told, role
        if told:
            assert 'data-state="off"' in text and "设备报警通道未开启" in text and "一键呼叫" in text, role


async def test_the_library_is_for_supervisors_auditors_and_admins_under_the_shared_nav(api: Api) -> None:
    agent = await api.user(Role.AGENT)
    assert (await log_in(api.client, agent.username)).status == 303
    refused = await api.client.get("/library")
    assert refused.status == 403 and "无权使用录音库" in await refused.text()
    api.client.session.cookie_jar.clear()

    auditor = await api.user(Role.AUDITOR)
    assert (await log_in(api.client, auditor.username)).status == 303
    page = await api.client.get("/library")
    text = await page.text()
    assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
    assert "录音库" in text and 'id="btn-accesses"' in text and '"token"' in text
    assert text.index("/static/common.js") < text.index("/static/library.js")  # window.CC first
    # The signed-in nav with its log-out form: the page is rendered with the session's CSRF token.
    token = CSRF.search(text)
    assert 'id="nav-panel"' in text and 'id="logout-form"' in text and token is not None
    response = await api.client.post("/logout", data={"csrf_token": token.group(1)}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"


async def test_providers_may_not_use_the_panel_and_a_disabled_account_loses_its_session(api: Api) -> None:
    provider = await api.user(Role.PROVIDER)
    response = await log_in(api.client, provider.username)
    assert response.status == 403 and "无权使用坐席面板" in await response.text()
    agent = await api.user(Role.AGENT)
    assert (await log_in(api.client, agent.username)).status == 303
    async with api.db.transaction() as session:
        (await session.get(User, agent.id)).active = False  # type: ignore[union-attr]
    assert (await api.client.get("/", allow_redirects=False)).status == 303


async def test_language_switch_sticks_in_a_cookie(api: Api) -> None:
    user = await api.user(Role.AGENT)
    english = await api.client.get("/login?lang=en")
    assert "Platform log-in" in await english.text() and english.cookies["cc_lang"].value == "en"
    assert 'lang="en"' in await (await api.client.get("/login")).text()
    assert (await log_in(api.client, user.username, "wrong-password")).status == 401
    response = await log_in(api.client, user.username)
    assert response.status == 303
    text = await (await api.client.get("/")).text()
    assert "Log in to queue" in text and '"lang": "en"' in text
    assert "登录队列" in await (await api.client.get("/?lang=zh-CN")).text()
    assert (await api.client.get("/?lang=xx")).status == 200  # unknown: the cookie's language
    assert "Database" in await (await api.client.get("/status?lang=en")).text()  # the status page too


async def test_a_page_carries_only_its_own_and_the_common_strings(api: Api) -> None:
    supervisor = await api.user(Role.SUPERVISOR)
    assert (await log_in(api.client, supervisor.username)).status == 303
    for path, namespace in (("/", "panel"), ("/orders", "orders"), ("/wallboard", "wallboard")):
        text = await (await api.client.get(path)).text()
        match = re.search(r'<script id="cc-config" type="application/json">(.*?)</script>', text, re.S)
        assert match is not None, path
        strings = json.loads(match.group(1))["strings"]
        assert {key.partition(".")[0] for key in strings} == {namespace, "common"}, path
        assert strings["common.nav.orders"] == "工单"
        script = "/static/panel.js" if path == "/" else f"/static{path}.js"
        assert text.index("/static/common.js") < text.index(script), path  # every page on window.CC


async def test_secure_cookies_when_configured(db: Database, tmp_path: Path, api: Api) -> None:
    assert Settings.from_env({"CC_COOKIE_SECURE": "1"}).cookie_secure
    assert not Settings.from_env({}).cookie_secure
    settings = api_settings(tmp_path / "secure", CC_COOKIE_SECURE="1")
    app = assembled(db, settings).web
    user = await api.user(Role.AGENT)
    async with TestClient(TestServer(app)) as client:
        login = await client.get("/login")
        assert login.cookies["cc_login"]["secure"]
        token = CSRF.search(await login.text()).group(1)  # type: ignore[union-attr]
        # A browser sends a Secure cookie back only over TLS; this client is plain HTTP, so it is sent by hand.
        response = await client.post("/login", data={"username": user.username, "password": PASSWORD,
                                                     "csrf_token": token}, allow_redirects=False,
                                     headers={"Cookie": f"cc_login={login.cookies['cc_login'].value}"})
        assert response.status == 303 and response.cookies["cc_session"]["secure"]


async def test_a_panel_session_is_listed_and_ending_it_from_the_api_ends_the_page(api: Api) -> None:
    user = await api.user(Role.SUPERVISOR)
    assert (await log_in(api.client, user.username)).status == 303
    status, listed = await api.request("GET", f"/api/v1/users/{user.username}/sessions")
    assert status == 200 and [s["kind"] for s in listed["items"]] == ["panel"]
    assert listed["items"][0]["user_agent"]
    assert (await api.client.get("/", allow_redirects=False)).status == 200
    status, _ = await api.request("DELETE", f"/api/v1/users/{user.username}/sessions/{listed['items'][0]['id']}")
    assert status == 200
    assert (await api.client.get("/", allow_redirects=False)).status == 303


async def test_the_log_in_form_asks_for_the_second_factors_code(api: Api) -> None:
    auditor = await api.user(Role.AUDITOR)
    token = await api.token_for(auditor)
    status, setup = await api.request("POST", "/api/v1/auth/totp", token=token)
    assert status == 200, setup
    totp, now = pyotp.TOTP(setup["secret"]), dt.datetime.now(dt.UTC)
    assert (await api.request("POST", "/api/v1/auth/totp/confirm", token=token, json={"code": totp.at(now)}))[0] == 200
    response = await log_in(api.client, auditor.username)
    assert response.status == 401 and "6 位动态验证码" in await response.text()
    assert 'name="otp"' in await response.text()
    csrf = await csrf_of(api.client)
    response = await api.client.post("/login", allow_redirects=False, data={
        "username": auditor.username, "password": PASSWORD, "csrf_token": csrf,
        "otp": totp.at(now + dt.timedelta(seconds=30))})
    assert response.status == 303, await response.text()
    assert (await api.client.get("/", allow_redirects=False)).status == 200


async def test_the_accounts_page_manages_staff_for_admins_and_ones_own_account_for_everyone(api: Api) -> None:
    agent = await api.user(Role.AGENT)
    assert (await log_in(api.client, agent.username)).status == 303
    page = await api.client.get("/accounts")
    text = await page.text()
    assert page.status == 200 and 'id="password-form"' in text and 'id="my-sessions"' in text
    assert 'id="manage"' not in text and 'id="totp"' not in text  # not an admin; no second factor for agents
    async with TestClient(TestServer(api.client.app)) as admin_client:
        admin = await api.user(Role.ADMIN)
        assert (await log_in(admin_client, admin.username)).status == 303
        text = await (await admin_client.get("/accounts")).text()
        assert 'id="manage"' in text and 'id="totp"' in text and 'id="nav-accounts"' in text
