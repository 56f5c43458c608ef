"""Headless Chromium (Debian's chromium + chromium-driver) driving the panel, and a panel server for it.

A missing browser or driver is an error, never a skip: scripts/install-system-packages.sh installs both.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from callcenter.api.context import TOKENS
from callcenter.api.tokens import TokenService
from callcenter.config import PROJECT_ROOT
from callcenter.db.session import Database
from callcenter.desk.http import HUB
from callcenter.push import Fanout
from callcenter.users.login_guard import LOGIN_GUARD, LoginGuard
from callcenter.users.models import Role, User
from callcenter.users.passwords import hash_password
from tests import harness
from tests.apiclient import api_settings, assembled

# The integration stack (Asterisk + `callcenter serve` + SIPp) for the end-to-end panel test.
from tests.integration.conftest import built_prompts, sipp_dir, stack  # noqa: F401

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# No outside network here: everything Chromium would fetch on its own is switched off, so nothing waits on it.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--window-size=1280,800")
PASSWORD = "panel-browser-pw"
USERS = {"agent-b": Role.AGENT, "supervisor-b": Role.SUPERVISOR, "auditor-b": Role.AUDITOR,
         "locked-b": Role.AGENT}


def _require_browser() -> None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            raise RuntimeError(f"{path} is missing: install Debian's chromium and chromium-driver "
                               "(scripts/install-system-packages.sh)")


@pytest.fixture
def browser() -> Iterator[Callable[[], WebDriver]]:
    """A factory of fresh headless Chromium sessions (own profile each: no shared cookies), all closed after."""
    _require_browser()
    drivers: list[WebDriver] = []
    profiles: list[str] = []

    def open_browser() -> WebDriver:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        profiles.append(tempfile.mkdtemp(prefix="cc-chromium-"))
        options.add_argument(f"--user-data-dir={profiles[-1]}")
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        driver.set_page_load_timeout(20)
        drivers.append(driver)
        return driver

    try:
        yield open_browser
    finally:
        for driver in drivers:
            driver.quit()
        for profile in profiles:
            shutil.rmtree(profile, ignore_errors=True)


@dataclasses.dataclass
class PanelServer:
    """The web application (pages, API, WebSocket) on a real port, in its own thread and event loop."""

    base: str
    db: Database
    hub: Fanout
    tokens: TokenService
    loop: asyncio.AbstractEventLoop
    app: web.Application | None = None  # its shared services (the agent registry, the alarm distributor, …)

    def call(self, function: Callable[[], Any]) -> Any:
        """Run ``function`` on the server's loop (the hub is not thread-safe) and return its result."""
        done: Future[Any] = Future()

        def run() -> None:
            try:
                done.set_result(function())
            except Exception as error:  # handed to the test thread
                done.set_exception(error)

        self.loop.call_soon_threadsafe(run)
        return done.result(10)

    def query(self, coroutine_factory: Callable[[Database], Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine_factory(self.db), self.loop).result(15)


@pytest.fixture(scope="module")
def panel_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PanelServer]:
    """The panel without telephony: agents' queue actions answer 503, pops are pushed into the hub by tests."""
    with running_panel(tmp_path_factory.mktemp("panel")) as server:
        yield server


@contextlib.contextmanager
def running_panel(tmp_path: Path, **environment: str) -> Iterator[PanelServer]:
    """A panel server as ``panel_server``'s, configured with ``environment``'s CC_* variables: for the few tests
    that need other settings than the shared server's."""
    with harness.database_url("sqlite", tmp_path) as url:
        harness.migrated_database(url)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        port = harness.free_tcp_port()

        async def start() -> tuple[web.AppRunner, Database, Fanout, TokenService, web.Application]:
            db = Database(url)
            async with db.transaction() as session:
                for username, role in USERS.items():
                    session.add(User(username=username, role=role, password_hash=hash_password(PASSWORD)))
            settings = api_settings(tmp_path, **environment)
            # A module's browsers log in from 127.0.0.1 far more than a person would.
            app = assembled(db, settings,
                            replacements={LOGIN_GUARD: LoginGuard(attempts_per_minute=10_000)}).web  # AMI never starts
            tokens, hub = app[TOKENS], app[HUB]
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            return runner, db, hub, tokens, app

        runner, db, hub, tokens, app = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
        server = PanelServer(f"http://127.0.0.1:{port}", db, hub, tokens, loop, app)
        try:
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(15)
            asyncio.run_coroutine_threadsafe(db.dispose(), loop).result(15)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()


# While a page is replaced, chromedriver may answer about nodes of the old document; such answers are retried.
_DURING_NAVIGATION = (WebDriverException,)


def wait_for(driver: WebDriver, css: str, timeout: float = 10) -> Any:
    return WebDriverWait(driver, timeout, ignored_exceptions=_DURING_NAVIGATION).until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css)))


def wait_text(driver: WebDriver, css: str, text: str, timeout: float = 10) -> None:
    WebDriverWait(driver, timeout, ignored_exceptions=_DURING_NAVIGATION).until(
        expected_conditions.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))


def log_in(driver: WebDriver, base: str, username: str, password: str) -> None:
    driver.get(f"{base}/login")
    driver.find_element(By.ID, "username").clear()
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    # Mark this document, so the wait below sees the next page rather than the previous answer still on screen.
    driver.execute_script("document.documentElement.dataset.submitted = '1'")
    driver.find_element(By.ID, "login-submit").click()
    WebDriverWait(driver, 10, ignored_exceptions=_DURING_NAVIGATION).until(
        lambda d: d.execute_script("return document.readyState === 'complete' && "
                                   "!document.documentElement.dataset.submitted"))


def screenshot(driver: WebDriver, name: str) -> Path:
    """Keep a picture of the page as a test artifact: under var/test-artifacts/screenshots/ (ignored by git, kept
    after the run for a person or CI to look at), or the directory CC_TEST_SCREENSHOTS names."""
    directory = Path(os.environ.get("CC_TEST_SCREENSHOTS") or PROJECT_ROOT / "var" / "test-artifacts" / "screenshots")
    path = directory / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(path)):
        raise AssertionError(f"the browser did not save the screenshot {path}")
    return path
