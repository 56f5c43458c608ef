"""Pages declared by their domains: the domains never reach into the web layer, page roles are the API's own
policies, the nav follows the declarations, and every page's files are served under /static/ as before."""

from __future__ import annotations

import ast
import base64
import hashlib
import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel

import callcenter
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.contract import CENTRE_STAFF, Page, PageSection
from callcenter.db.session import Database
from callcenter.orders import http as orders_http
from callcenter.orders.plugin import ORDERS_PAGE
from callcenter.plugins import PLUGINS
from callcenter.users.models import Role
from callcenter.web.assets import StaticFiles
from callcenter.web.pages import PANEL, Panel, sections_of
from tests.apiclient import Api, api_settings, assembled
from tests.unit.web.test_pages import log_in

FORBIDDEN_IMPORTS = ("callcenter.web", "callcenter.platform")


def _domain_packages() -> list[Path]:
    return sorted({Path(callcenter.__file__).parent / plugin.load.__module__.split(".")[1] for plugin in PLUGINS})


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return names


def test_no_domain_imports_the_web_layer_or_the_platform() -> None:
    packages = _domain_packages()
    assert len(packages) > 10 and all((package / "plugin.py").is_file() for package in packages)
    offenders = [f"{path.relative_to(package.parent)}: {name}" for package in packages
                 for path in package.rglob("*.py") for name in _imports(path)
                 if any(name == forbidden or name.startswith(forbidden + ".") for forbidden in FORBIDDEN_IMPORTS)]
    assert offenders == []


def test_the_import_check_sees_every_form(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import callcenter.web.pages\nfrom callcenter import platform\nfrom callcenter.web import i18n\n",
                      encoding="utf-8")
    assert {"callcenter.web.pages", "callcenter.platform", "callcenter.web.i18n"} <= _imports(module)


def test_roles_for_is_the_route_policy_itself() -> None:
    assert orders_http.routes.roles_for("GET", "/follow-ups") == frozenset({Role.SUPERVISOR, Role.AGENT})
    assert ORDERS_PAGE.roles is orders_http.routes.roles_for("GET", "/follow-ups")
    with pytest.raises(LookupError, match="GET /no-such-thing"):
        orders_http.routes.roles_for("GET", "/no-such-thing")
    with pytest.raises(LookupError):
        orders_http.routes.roles_for("DELETE", "/follow-ups")  # the path alone is not the operation
    public = ApiRoutes("test")

    @public.route("GET", "/open", summary="open", response=BaseModel, roles=None)
    async def open_route(_request: ApiRequest) -> BaseModel:
        return BaseModel()

    with pytest.raises(ValueError, match="public"):
        public.roles_for("GET", "/open")


def test_a_page_is_for_its_accounts_and_its_roles_with_admins_always() -> None:
    page = Page("/x", "x", Path("."), roles=frozenset({Role.SUPERVISOR}))
    assert [role for role in Role if page.allows(role)] == [Role.ADMIN, Role.SUPERVISOR]
    assert not page.is_for(Role.PROVIDER) and page.is_for(Role.AUDITOR)
    everyone = Page("/y", "y", Path("."))
    assert {role for role in Role if everyone.allows(role)} == CENTRE_STAFF
    assert Page("/z", "z", Path("."), accounts=None).public


@pytest.fixture
def panel(db: Database, tmp_path: Path) -> Panel:
    return assembled(db, api_settings(tmp_path)).web[PANEL]


def test_every_role_lands_on_its_home_page_and_sees_the_links_it_may_follow(panel: Panel) -> None:
    assert panel.homes == {Role.ADMIN: "/", Role.AGENT: "/", Role.SUPERVISOR: "/", Role.AUDITOR: "/",
                           Role.PROVIDER: "/provider"}
    with_links = [page for page in panel.pages if page.nav is not None]
    for role in Role:
        on_home = {item.element_id for item in panel.nav(role, on_home=True)}
        elsewhere = {item.element_id for item in panel.nav(role, on_home=False)}
        assert on_home == {page.nav.element_id for page in with_links if page.allows(role)}, role  # type: ignore
        assert elsewhere == {page.nav.element_id for page in with_links  # type: ignore[union-attr]
                             if page.allows(role) and page.nav.everywhere}, role  # type: ignore[union-attr]
    assert {item.element_id for item in panel.nav(Role.AGENT, on_home=True)} == {
        "nav-orders", "nav-elders", "nav-supervision-cases", "nav-accounts", "nav-alarms", "nav-care-calls"}
    assert {item.element_id for item in panel.nav(Role.AUDITOR, on_home=False)} == {"nav-elders", "nav-accounts",
                                                                                   "nav-alarms"}
    # The desk's own links first, as the desk always had them, then those on every page.
    assert [item.element_id for item in panel.nav(Role.ADMIN, on_home=True)] == [
        "library-link", "nav-supervision-cases", "nav-wallboard", "nav-care-calls", "nav-sip-bans",
        "nav-accounts", "nav-elders", "nav-orders", "nav-alarms", "nav-providers", "nav-volunteers"]
    assert panel.nav(Role.PROVIDER, on_home=True) == []


def test_a_section_goes_on_a_signed_in_page_that_is_declared_and_to_the_roles_it_names() -> None:
    host = Page("/host", "host", Path("."))
    public = Page("/open", "open", Path("."), accounts=None)
    first, second = PageSection("host", "first", Path(".")), PageSection("host", "second", Path("."))
    assert sections_of([host, public], [first, second]) == {"host": (first, second)}  # in plugin order
    for stray in (PageSection("nowhere", "x", Path(".")), PageSection("open", "x", Path("."))):
        with pytest.raises(ValueError, match="no signed-in page"):
            sections_of([host, public], [stray])
    doctors_only = PageSection("host", "health", Path("."), roles=frozenset({Role.SUPERVISOR}))
    assert [role for role in Role if doctors_only.allows(role)] == [Role.ADMIN, Role.SUPERVISOR]
    assert doctors_only.files() == ("health.js",) and doctors_only.path == "host#health"


def test_two_pages_may_not_share_a_static_file_name(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder / "static").mkdir(parents=True)
        (tmp_path / folder / "static" / "same.js").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match=r"same\.js"):
        StaticFiles.of([Page("/a", "same", tmp_path / "a"), Page("/b", "same", tmp_path / "b")])
    with pytest.raises(FileNotFoundError):
        StaticFiles.of([Page("/c", "missing", tmp_path / "a")])
    with pytest.raises(ValueError, match=r"common\.js"):  # nor shadow a shared one
        (tmp_path / "a" / "static" / "common.js").write_text("", encoding="utf-8")
        StaticFiles.of([Page("/c", "common", tmp_path / "a")])


def test_a_page_may_name_only_shared_files_as_its_libraries(tmp_path: Path) -> None:
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "own.js").write_text("", encoding="utf-8")
    found = StaticFiles.of([Page("/own", "own", tmp_path, libraries=("leaflet.css", "leaflet.js", "map.js"))])
    assert {"leaflet.js", "leaflet.css", "map.js", "own.js"} <= found.files.keys()
    (tmp_path / "x" / "static").mkdir(parents=True)
    (tmp_path / "x" / "static" / "x.js").write_text("", encoding="utf-8")
    for name in ("charts.js", "own.js"):  # unknown, or another page's own file
        with pytest.raises(FileNotFoundError, match=rf"page own#x: no shared file {re.escape(name)}"):
            StaticFiles.of([Page("/own", "own", tmp_path), PageSection("own", "x", tmp_path / "x", libraries=(name,))])


async def test_pages_files_are_served_under_static_with_a_content_version(api: Api) -> None:
    user = await api.user(Role.SUPERVISOR)
    assert (await log_in(api.client, user.username)).status == 303
    text = await (await api.client.get("/orders")).text()
    files = api.client.app[PANEL].static.files
    for name in ("common.js", "panel.css", "orders.js", "orders.css"):
        match = re.search(rf'"/static/{re.escape(name)}\?v=([^"]+)"', text)
        assert match is not None, name
        digest = base64.urlsafe_b64encode(hashlib.sha256(files[name].read_bytes()).digest()).decode("ascii")
        assert match.group(1) == digest.replace("=", "%3D"), name  # as aiohttp's append_version wrote it
        response = await api.client.get(f"/static/{name}?v={match.group(1)}")
        assert response.status == 200 and await response.read() == files[name].read_bytes(), name
    assert files["orders.js"].parent.parent == Path(orders_http.__file__).parent  # served from its domain
    for missing in ("nope.js", "..%2Fpages.py", "orders.html"):
        assert (await api.client.get(f"/static/{missing}")).status == 404, missing
    async with TestClient(TestServer(api.client.app)) as anonymous:  # no session needed, as before
        assert (await anonymous.get("/static/wallboard.js")).status == 200

