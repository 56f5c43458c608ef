"""The panel's pages: ``GET/POST /login``, ``POST /logout``, and every page a domain declares (``contract.Page``).

Pages are rendered on the server (jinja2) from their domain's ``templates/``, next to this package's shared ones
(``base.html``, ``_page.html``, ``_nav.html``, ``_forms.html``); a page's JavaScript (its domain's ``static/``,
served under ``/static/`` by ``web.assets``) then talks only to the REST API and the WebSockets with the bearer
token of its session. What a page shows, and to whom, its domain decides in its declaration; this module holds
the log-in, the session and what every page shares: the signed-in nav, the 403 answer, the config block, the
security headers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

import callcenter.users
from callcenter import __version__
from callcenter.api.context import centre_today
from callcenter.api.errors import Unauthorized
from callcenter.api.middleware import principal_for_token
from callcenter.api.tokens import TokenService
from callcenter.audit.services import Actor, record
from callcenter.contract import Page, PageContent, PageRequest, PageSection
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.logs import get_logger
from callcenter.users.login_guard import LoginGuard
from callcenter.users.models import Role, SessionKind
from callcenter.users.services import LoginOutcome, authenticate
from callcenter.users.sessions import SESSION_EVENTS, EndReason, end_sessions, open_session
from callcenter.web.assets import StaticFiles
from callcenter.web.i18n import COMMON, COMMON_DIRECTORY, Catalogues, language_of, remember_language
from callcenter.web.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    PanelSession,
    SessionStore,
    Signer,
    new_nonce,
)

log = get_logger(__name__)

SHARED_TEMPLATES = Path(__file__).parent / "templates"
# The log-in form is the users domain's page; its handlers are the panel's own machinery (sessions, CSRF).
LOGIN_PAGE = Page("/login", "login", Path(callcenter.users.__file__).parent, accounts=None)
_ANY_ROLE = frozenset(Role)


def security_headers(image_origins: Sequence[str] = ()) -> dict[str, str]:
    """The page embeds a bearer token: nothing may cache it, frame it, or run script from elsewhere next to it.
    connect-src 'self' covers the same-origin WebSocket (ws:/wss:) in CSP Level 3 browsers. ``image_origins``: where
    else images may come from — the map's tile server (CC_MAP_TILE_URL), and only while one is set."""
    images = " ".join(("'self'", *image_origins))
    return {
        "Cache-Control": "no-store",
        "Content-Security-Policy": f"default-src 'none'; script-src 'self'; style-src 'self'; img-src {images}; "
                                   "connect-src 'self'; media-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                                   "base-uri 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


SECURITY_HEADERS = security_headers()  # what answers that show no page (redirects, refusals) carry
SHARED_STYLESHEET = "panel.css"
SHARED_SCRIPT = "common.js"


@dataclasses.dataclass(frozen=True, slots=True)
class NavItem:
    path: str
    element_id: str
    label: str


@dataclasses.dataclass(frozen=True, slots=True)
class Panel:
    db: Database
    tokens: TokenService
    login_guard: LoginGuard
    sessions: SessionStore
    templates: jinja2.Environment
    cookie_secure: bool
    pages: tuple[Page, ...]  # every declared page
    homes: Mapping[Role, str]  # where each role's accounts land (the home page for them); no entry: no panel
    strings: Catalogues
    static: StaticFiles
    sections: Mapping[str, tuple[PageSection, ...]] = dataclasses.field(default_factory=dict)  # by host page
    headers: Mapping[str, str] = dataclasses.field(default_factory=lambda: SECURITY_HEADERS)  # a page's answer's

    def nav(self, role: Role, *, on_home: bool) -> list[NavItem]:
        """The declared pages' links ``role`` may follow: the home page's own first (as the desk always had them),
        then those on every page, each in plugin order."""
        links = [(page.path, page.nav) for page in self.pages
                 if page.nav is not None and page.allows(role) and (page.nav.everywhere or on_home)]
        return [NavItem(path, link.element_id, link.label)
                for path, link in sorted(links, key=lambda found: found[1].everywhere)]


PANEL = web.AppKey("web_panel", Panel)


def _panel(request: web.Request) -> Panel:
    return request.app[PANEL]


def _html(request: web.Request, page: Page, *, namespaces: tuple[str, ...] = (), **values: Any) -> str:
    """``namespaces``: the strings of the sections shown on the page, beside its own."""
    panel = _panel(request)
    language = language_of(request)
    return panel.templates.get_template(f"{page.name}.html").render(
        lang=language, t=panel.strings.translator(language, page.name, *namespaces), version=__version__,
        css_url=panel.static.url(SHARED_STYLESHEET), **values)


def _render(request: web.Request, page: Page, *, status: int = 200, namespaces: tuple[str, ...] = (),
            **values: Any) -> web.Response:
    panel = _panel(request)
    response = web.Response(text=_html(request, page, namespaces=namespaces, **values), content_type="text/html",
                            charset="utf-8", status=status, headers=panel.headers)
    remember_language(request, response, language_of(request), secure=panel.cookie_secure)
    return response


def _set_cookie(panel: Panel, response: web.StreamResponse, name: str, value: str, *, path: str = "/") -> None:
    # No Max-Age: the cookie ends with the browser (shared desks); the server ends the session at its expiry.
    response.set_cookie(name, value, path=path, httponly=True, samesite="Strict", secure=panel.cookie_secure)


def home_of(panel: Panel, role: Role) -> str:
    """Where an account lands after log-in: its home page (a provider's portal account at /provider, centre staff
    at /)."""
    return panel.homes.get(role, "/")


async def current_session(request: web.Request, accounts: frozenset[Role]) -> PanelSession | None:
    """The request's live session, or None. The user is re-read on every page like an API request, so a disabled
    account or a changed role ends its page session at once. A page is for ``accounts``: anyone else signed in is
    sent to their own home page — a provider's account never sees the centre's pages."""
    panel = _panel(request)
    session = panel.sessions.get(request.cookies.get(SESSION_COOKIE), utcnow())
    if session is None:
        return None
    try:
        principal = await principal_for_token(panel.db, panel.tokens, session.api_token)
    except Unauthorized:
        panel.sessions.drop(session.id)
        return None
    if principal.role not in accounts:
        raise web.HTTPSeeOther(home_of(panel, principal.role), headers=SECURITY_HEADERS)
    return session


def _redirect(location: str) -> web.Response:
    # 303: after a POST the browser follows with a GET, so a reload never re-sends a form.
    return web.Response(status=303, headers={"Location": location, **SECURITY_HEADERS})


def _to_login(request: web.Request) -> web.Response:
    response = _redirect("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


def _page_request(request: web.Request, session: PanelSession | None) -> PageRequest:
    return PageRequest(role=session.role if session else None, username=session.username if session else None,
                       today=centre_today(request.app), services=request.app)


@dataclasses.dataclass(frozen=True, slots=True)
class ShownSection:
    """A section on a page as its template includes it: ``template`` with ``values`` (``section.values``)."""

    name: str
    template: str
    values: Mapping[str, Any]


def _script_page(request: web.Request, session: PanelSession, page: Page, content: PageContent | None,
                 sections: Sequence[tuple[PageSection, PageContent]] = ()) -> web.Response:
    """A page behind the log-in, whose script (after ``common.js``) talks to the REST API with the session's bearer
    token. Its config block carries who is signed in, the token, the strings in the page's language, and the
    content's config; the template gets ``page_js``, ``page_css`` (None without css), ``common_js``, the nav and
    the content's values. No ``content`` (the role may not use the page): the same page answered 403, which shows
    why and carries neither the script nor the token."""
    panel = _panel(request)
    language = language_of(request)
    shown = content or PageContent()
    if content is None:
        sections = ()  # a 403 page carries no script at all, a section's neither
    namespaces = tuple(section.name for section, _ in sections)
    # The shared libraries the page and its sections need, each once, before every script that uses them.
    libraries = list(dict.fromkeys([*page.libraries,
                                    *(name for section, _ in sections for name in section.libraries)]))
    config = {"username": session.username, "role": session.role.value, "lang": language,
              "token": session.api_token, "strings": panel.strings.page_strings(language, page.name, *namespaces),
              **shown.config, "sections": {section.name: dict(part.config) for section, part in sections}}
    return _render(request, page, status=200 if content is not None else 403, namespaces=namespaces,
                   session=session, role=session.role,
                   allowed=content is not None, config=config, csrf_token=session.csrf_token,
                   nav_links=panel.nav(session.role, on_home=page.home),
                   common_js=panel.static.url(SHARED_SCRIPT), page_js=panel.static.url(f"{page.name}.js"),
                   page_css=panel.static.url(f"{page.name}.css") if page.css else None,
                   library_css=[panel.static.url(name) for name in libraries if name.endswith(".css")],
                   library_js=[panel.static.url(name) for name in libraries if name.endswith(".js")],
                   sections=[ShownSection(section.name, f"{section.name}.html", part.values)
                             for section, part in sections],
                   section_scripts=_section_links(panel.static, sections, ".js"),
                   section_css=_section_links(panel.static, sections, ".css"),
                   **shown.values)


def _section_links(static: StaticFiles, sections: Sequence[tuple[PageSection, PageContent]],
                   suffix: str) -> list[str]:
    """The sections' own files ending in ``suffix``, in plugin order (their libraries load before the page's
    script, with the page's own)."""
    return [static.url(name) for section, _ in sections for name in section.files() if name.endswith(suffix)]


def page_handler(page: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The handler of a declared page: who may see it (``Page``), then what its domain shows them."""

    async def public(request: web.Request) -> web.StreamResponse:
        # The status page, as it always was: no session, no script, nothing to protect but a report.
        content = await page.content(_page_request(request, None))
        return web.Response(text=_html(request, page, **content.values), content_type="text/html",
                            charset="utf-8")

    async def signed_in(request: web.Request) -> web.StreamResponse:
        assert page.accounts is not None
        session = await current_session(request, page.accounts)
        if session is None:
            return _to_login(request)
        if not page.allows(session.role):
            return _script_page(request, session, page, None)
        asked = _page_request(request, session)
        sections = [(section, await section.content(asked))
                    for section in _panel(request).sections.get(page.name, ()) if section.allows(session.role)]
        return _script_page(request, session, page, await page.content(asked), sections)

    return public if page.public else signed_in


async def login_form(request: web.Request) -> web.StreamResponse:
    if (session := await current_session(request, _ANY_ROLE)) is not None:
        return _redirect(home_of(_panel(request), session.role))
    return _login_page(request)


def _login_page(request: web.Request, *, error: str | None = None, username: str = "",
                status: int = 200) -> web.Response:
    """The form, with a CSRF token bound to the browser's pre-log-in nonce (made here if it has none)."""
    panel = _panel(request)
    nonce = panel.sessions.signer.unsign(request.cookies.get(LOGIN_COOKIE))
    fresh = nonce is None
    if nonce is None:
        nonce = new_nonce()
    response = _render(request, LOGIN_PAGE, status=status, error=error, username=username,
                       csrf_token=panel.sessions.signer.csrf_for(nonce))
    if fresh:
        _set_cookie(panel, response, LOGIN_COOKIE, panel.sessions.signer.sign(nonce), path="/login")
    return response


async def login_submit(request: web.Request) -> web.StreamResponse:
    panel = _panel(request)
    t = panel.strings.translator(language_of(request), LOGIN_PAGE.name)
    form = await request.post()
    nonce = panel.sessions.signer.unsign(request.cookies.get(LOGIN_COOKIE))
    token = form.get(CSRF_FIELD)
    if nonce is None or not panel.sessions.signer.csrf_ok(nonce, token if isinstance(token, str) else None):
        log.warning("panel.csrf_refused", path=request.path, remote=request.remote)
        return _login_page(request, error=t("common.csrf.refused"), status=403)
    username, password, otp = form.get("username"), form.get("password"), form.get("otp")
    if not isinstance(username, str) or not isinstance(password, str) or not username.strip() or not password:
        return _login_page(request, error=t("login.missing"), status=400)
    username = username.strip()[:64]
    otp = otp.strip()[:16] if isinstance(otp, str) and otp.strip() else None
    result = await authenticate(panel.db, panel.login_guard, username, password[:256], source_ip=request.remote,
                                otp=otp)
    if result.outcome is LoginOutcome.LOCKED:
        minutes = max(1, math.ceil((result.retry_after or 60) / 60))
        page = _login_page(request, error=t("login.locked", minutes=minutes), username=username, status=423)
        page.headers["Retry-After"] = str(result.retry_after or 60)
        return page
    if result.outcome is LoginOutcome.THROTTLED:
        page = _login_page(request, error=t("login.throttled", seconds=result.retry_after or 5), username=username,
                           status=429)
        page.headers["Retry-After"] = str(result.retry_after or 5)
        return page
    if result.outcome is LoginOutcome.INACTIVE:
        return _login_page(request, error=t("login.inactive"), username=username, status=403)
    if result.outcome is LoginOutcome.OTP_REQUIRED:
        return _login_page(request, error=t("login.otp_required"), username=username, status=401)
    if result.outcome is not LoginOutcome.OK or result.user is None:
        return _login_page(request, error=t("login.bad_credentials"), username=username, status=401)
    user = result.user
    if user.role not in panel.homes:
        return _login_page(request, error=t("login.no_panel"), username=username, status=403)
    if user.role is Role.PROVIDER and user.provider_id is None:
        return _login_page(request, error=t("login.unbound_provider"), username=username, status=403)
    now = utcnow()
    async with panel.db.transaction() as db_session:
        api_token, row = await open_session(db_session, user, SessionKind.PANEL, panel.tokens,
                                            source_ip=request.remote, user_agent=request.headers.get("User-Agent"),
                                            now=now)
    _, cookie = panel.sessions.create(user_id=user.id, username=user.username, display_name=user.display_name,
                                      role=user.role, api_token=api_token, login_session_id=row.id,
                                      expires_at=row.expires_at, now=now)
    log.info("panel.login", username=user.username, role=user.role.value, sessions=len(panel.sessions))
    response = _redirect(home_of(panel, user.role))
    _set_cookie(panel, response, SESSION_COOKIE, cookie)
    response.del_cookie(LOGIN_COOKIE, path="/login")  # one nonce, one log-in
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    panel = _panel(request)
    session = panel.sessions.get(request.cookies.get(SESSION_COOKIE), utcnow())
    if session is None:
        return _to_login(request)
    form = await request.post()
    token = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not panel.sessions.signer.csrf_ok(session.id, token if isinstance(token, str) else None):
        log.warning("panel.csrf_refused", path=request.path, remote=request.remote, username=session.username)
        t = panel.strings.translator(language_of(request))
        return web.Response(text=t("common.csrf.refused"), status=403, headers=SECURITY_HEADERS)
    panel.sessions.drop(session.id)
    async with panel.db.transaction() as db_session:
        ended = await end_sessions(db_session, session.user_id, EndReason.LOGOUT, utcnow(),
                                   only=[session.login_session_id])
        record(db_session, Actor(session.user_id, session.username, request.remote), action="auth.logout",
               target_type="user", target_id=session.user_id)
    if ended is not None:  # the page's WebSockets close with it
        request.app[SESSION_EVENTS].ended(ended)
    log.info("panel.logout", username=session.username)
    return _to_login(request)


def homes_of(pages: Iterable[Page]) -> dict[Role, str]:
    """Each role's home page; two for one role would leave its log-in undecided, so they stop the platform."""
    homes: dict[Role, str] = {}
    for page in pages:
        if not page.home or page.accounts is None:
            continue
        for role in page.accounts:
            if homes.setdefault(role, page.path) != page.path:
                raise ValueError(f"{role.value} has two home pages: {homes[role]} and {page.path}")
    return homes


def sections_of(pages: Iterable[Page], sections: Iterable[PageSection]) -> dict[str, tuple[PageSection, ...]]:
    """The sections by host page, in plugin order; a section of a page nobody declared, or of a public page (no
    script, no session), stops the platform."""
    hosts = {page.name: page for page in pages}
    found: dict[str, list[PageSection]] = {}
    for section in sections:
        host = hosts.get(section.page)
        if host is None or host.public:
            raise ValueError(f"section {section.path}: no signed-in page {section.page!r} to show it on")
        found.setdefault(section.page, []).append(section)
    return {name: tuple(shown) for name, shown in found.items()}


def templates_of(pages: Iterable[Page | PageSection]) -> jinja2.Environment:
    """The shared templates and every page's; a page's template may not shadow another's or a shared one."""
    found: dict[str, Path] = {path.name: path for path in SHARED_TEMPLATES.glob("*.html")}
    for page in pages:
        path = page.directory / "templates" / f"{page.name}.html"
        if not path.is_file():
            raise FileNotFoundError(f"page {page.path}: {path} is missing")
        if found.setdefault(path.name, path) != path:
            raise ValueError(f"page {page.path}: {path.name} is both {found[path.name]} and {path}")
    directories = dict.fromkeys(str(path.parent) for path in found.values())  # shared first, in page order
    return jinja2.Environment(loader=jinja2.FileSystemLoader(list(directories)), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def catalogues_of(pages: Iterable[Page | PageSection]) -> Catalogues:
    directories = {COMMON: COMMON_DIRECTORY}
    for page in pages:
        if directories.setdefault(page.name, page.directory) != page.directory:
            raise ValueError(f"page {page.path}: the strings {page.name} are another package's")
    return Catalogues.load(directories)


def register(app: web.Application, *, db: Database, tokens: TokenService, login_guard: LoginGuard,
             cookie_secure: bool, pages: Iterable[Page], sections: Iterable[PageSection] = (),
             image_origins: Sequence[str] = ()) -> None:
    declared = tuple(pages)
    added = tuple(sections)
    every = (LOGIN_PAGE, *declared)
    app[PANEL] = Panel(db=db, tokens=tokens, login_guard=login_guard,
                       sessions=SessionStore(Signer(tokens.derived_key("panel-session"))),
                       templates=templates_of((*every, *added)), cookie_secure=cookie_secure, pages=declared,
                       homes=homes_of(declared), strings=catalogues_of((*every, *added)),
                       static=StaticFiles.of((*declared, *added)), sections=sections_of(declared, added),
                       headers=security_headers(image_origins))
    app[PANEL].static.register(app)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login_submit)
    app.router.add_post("/logout", logout)
    for page in declared:
        app.router.add_get(page.path, page_handler(page))
