"""The panel's pages: ``GET/POST /login``, ``POST /logout`` and the agent page ``GET /``.

Pages are rendered on the server (jinja2); the agent page's JavaScript (``static/panel.js``) then talks only to the
REST API and the WebSocket with the bearer token of its session. Which parts a page has is decided here, by role:
agents and supervisors get the agent bar and screen-pops; supervisors, admins and auditors the table of all
agents; auditors nothing that acts.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from callcenter import __version__, push
from callcenter.api.context import centre_today
from callcenter.api.errors import ApiError, Forbidden, Unauthorized
from callcenter.api.middleware import error_response, principal_for_token
from callcenter.api.tokens import TokenService
from callcenter.audit.services import Actor, record
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.elders.models import LivingSituation
from callcenter.logs import get_logger
from callcenter.orders.models import ComplaintSource, WorkOrderKind, WorkOrderStatus
from callcenter.orders.notify import ORDER_NOTIFIER
from callcenter.providers.models import ServiceType
from callcenter.recordings.access import may_download
from callcenter.supervision_cases.models import CaseReason, CaseStatus, UrgingMethod
from callcenter.users.login_guard import LoginGuard
from callcenter.users.models import Role
from callcenter.users.services import LoginOutcome, authenticate
from callcenter.volunteers.models import FeedbackKind, ReviewStatus
from callcenter.wallboard.services import QUEUES as WALLBOARD_QUEUES
from callcenter.web.i18n import language_of, page_strings, remember_language, translator
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

WEB_DIR = Path(__file__).parent
STATIC_DIR = WEB_DIR / "static"
PANEL_ROLES = frozenset({Role.ADMIN, Role.AGENT, Role.SUPERVISOR, Role.AUDITOR})  # the centre's pages
PORTAL_ROLES = frozenset({Role.PROVIDER})  # the provider portal, /provider (seed 6.3)
_ANY_ROLE = frozenset(Role)
# The statuses an order dispatched to a provider can be in while the provider still sees it (the portal's filter).
PORTAL_STATUSES = (WorkOrderStatus.DISPATCHED, WorkOrderStatus.ACCEPTED, WorkOrderStatus.IN_SERVICE,
                   WorkOrderStatus.SERVICE_DONE, WorkOrderStatus.FOLLOW_UP, WorkOrderStatus.CLOSED,
                   WorkOrderStatus.CANCELLED)
RECEIPT_RESULTS = ("completed", "partial", "not_done")  # orders.schemas.Receipt.result
_AGENT_BAR = frozenset({Role.AGENT, Role.SUPERVISOR})  # they have phones in queues
_ALL_AGENTS = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.AUDITOR})
_LIVE_AGENTS = frozenset({Role.ADMIN, Role.SUPERVISOR})  # the hub pushes agent_state to these roles only
WALLBOARD_ROLES = frozenset({Role.ADMIN, Role.SUPERVISOR})  # the wallboard page and its pushes
_LIBRARY = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.AUDITOR})  # the recordings library
_AUDITORS = frozenset({Role.ADMIN, Role.AUDITOR})  # may list who accessed a recording
# Supervision cases (督办): every panel role reads them; supervisors (and admins) urge and resolve.
SUPERVISION_CASE_WRITERS = frozenset({Role.ADMIN, Role.SUPERVISOR})
PAUSE_REASONS = ("break", "meal", "training", "meeting", "other")
# The page embeds a bearer token: nothing may cache it, frame it, or run script from elsewhere next to it.
# connect-src 'self' covers the same-origin WebSocket (ws:/wss:) in CSP Level 3 browsers.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; media-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Panel:
    db: Database
    tokens: TokenService
    login_guard: LoginGuard
    sessions: SessionStore
    templates: jinja2.Environment
    cookie_secure: bool


PANEL = web.AppKey("web_panel", Panel)


def _panel(request: web.Request) -> Panel:
    return request.app[PANEL]


def page_namespace(template: str) -> str:
    """A page's strings are the catalogue namespace named after its template (web.i18n): orders.html, orders."""
    return PurePosixPath(template).stem


def _render(request: web.Request, template: str, *, status: int = 200, **values: Any) -> web.Response:
    panel = _panel(request)
    language = language_of(request)
    static = request.app.router["static"]
    html = panel.templates.get_template(template).render(
        lang=language, t=translator(language, page_namespace(template)), version=__version__,
        css_url=str(static.url_for(filename="panel.css")), **values)
    response = web.Response(text=html, content_type="text/html", charset="utf-8", status=status,
                            headers=SECURITY_HEADERS)
    remember_language(request, response, language, secure=panel.cookie_secure)
    return response


def _set_cookie(panel: Panel, response: web.StreamResponse, name: str, value: str, *, path: str = "/") -> None:
    # No Max-Age: the cookie ends with the browser (shared desks); the server ends the session at its expiry.
    response.set_cookie(name, value, path=path, httponly=True, samesite="Strict", secure=panel.cookie_secure)


def home_of(role: Role) -> str:
    """Where an account lands after log-in: a provider's portal account at /provider, centre staff at /."""
    return "/provider" if role in PORTAL_ROLES else "/"


async def current_session(request: web.Request, roles: frozenset[Role] = PANEL_ROLES) -> PanelSession | None:
    """The request's live session, or None. The user is re-read on every page like an API request, so a disabled
    account or a changed role ends its page session at once. A page is for ``roles`` (by default the centre's):
    anyone else signed in is sent to their own home page — a provider's account never sees the centre's pages."""
    panel = _panel(request)
    session = panel.sessions.get(request.cookies.get(SESSION_COOKIE), utcnow())
    if session is None:
        return None
    try:
        principal = await principal_for_token(panel.db, panel.tokens, session.api_token)
    except Unauthorized:
        panel.sessions.drop(session.id)
        return None
    if principal.role not in roles:
        raise web.HTTPSeeOther(home_of(principal.role), headers=SECURITY_HEADERS)
    return session


def _redirect(location: str) -> web.Response:
    # 303: after a POST the browser follows with a GET, so a reload never re-sends a form.
    return web.Response(status=303, headers={"Location": location, **SECURITY_HEADERS})


def _to_login(request: web.Request) -> web.Response:
    response = _redirect("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


PageHandler = Callable[[web.Request, PanelSession], web.StreamResponse]


def _signed_in(roles: frozenset[Role] = PANEL_ROLES) -> Callable[[PageHandler], Handler]:
    """A page behind the log-in: the handler is given the live session; anonymous visitors (or an ended session) get
    the log-in, and anyone signed in but not in ``roles`` their own home page (current_session)."""
    def decorate(handler: PageHandler) -> Handler:
        @functools.wraps(handler)
        async def page(request: web.Request) -> web.StreamResponse:
            session = await current_session(request, roles)
            if session is None:
                return _to_login(request)
            return handler(request, session)
        return page
    return decorate


def _script_page(request: web.Request, session: PanelSession, template: str, script: str, *,
                 css: str | None = None, allowed: bool = True, config: dict[str, Any] | None = None,
                 **values: Any) -> web.Response:
    """A page whose script (``static/<script>``, after ``common.js``) talks to the REST API with the session's
    bearer token. Its config block carries who is signed in, the token and the strings in the page's language, and
    ``config``; the template gets ``page_js``, ``page_css`` (None without ``css``), ``common_js`` and ``values``.
    Not ``allowed``: the same page answered 403, which shows why and carries neither the script nor the token."""
    language = language_of(request)
    static = request.app.router["static"]
    page_config = {"username": session.username, "role": session.role.value, "lang": language,
                   "token": session.api_token, "strings": page_strings(language, page_namespace(template)),
                   **(config or {})}
    return _render(request, template, status=200 if allowed else 403, session=session, role=session.role,
                   allowed=allowed, config=page_config, csrf_token=session.csrf_token,
                   common_js=str(static.url_for(filename="common.js")),
                   page_js=str(static.url_for(filename=script)),
                   page_css=str(static.url_for(filename=css)) if css else None, **values)


async def login_form(request: web.Request) -> web.StreamResponse:
    if (session := await current_session(request, _ANY_ROLE)) is not None:
        return _redirect(home_of(session.role))
    return _login_page(request)


def _login_page(request: web.Request, *, error: str | None = None, username: str = "",
                status: int = 200) -> web.Response:
    """The form, with a CSRF token bound to the browser's pre-log-in nonce (made here if it has none)."""
    panel = _panel(request)
    nonce = panel.sessions.signer.unsign(request.cookies.get(LOGIN_COOKIE))
    fresh = nonce is None
    if nonce is None:
        nonce = new_nonce()
    response = _render(request, "login.html", status=status, error=error, username=username,
                       csrf_token=panel.sessions.signer.csrf_for(nonce))
    if fresh:
        _set_cookie(panel, response, LOGIN_COOKIE, panel.sessions.signer.sign(nonce), path="/login")
    return response


async def login_submit(request: web.Request) -> web.StreamResponse:
    panel = _panel(request)
    t = translator(language_of(request), "login")
    form = await request.post()
    nonce = panel.sessions.signer.unsign(request.cookies.get(LOGIN_COOKIE))
    token = form.get(CSRF_FIELD)
    if nonce is None or not panel.sessions.signer.csrf_ok(nonce, token if isinstance(token, str) else None):
        log.warning("panel.csrf_refused", path=request.path, remote=request.remote)
        return _login_page(request, error=t("common.csrf.refused"), status=403)
    username, password = form.get("username"), form.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username.strip() or not password:
        return _login_page(request, error=t("login.missing"), status=400)
    username = username.strip()[:64]
    result = await authenticate(panel.db, panel.login_guard, username, password[:256], source_ip=request.remote)
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
    if result.outcome is not LoginOutcome.OK or result.user is None:
        return _login_page(request, error=t("login.bad_credentials"), username=username, status=401)
    user = result.user
    if user.role not in PANEL_ROLES | PORTAL_ROLES:
        return _login_page(request, error=t("login.no_panel"), username=username, status=403)
    if user.role is Role.PROVIDER and user.provider_id is None:
        return _login_page(request, error=t("login.unbound_provider"), username=username, status=403)
    now = utcnow()
    api_token, expires_at = panel.tokens.issue(user.id, user.role, now)
    _, cookie = panel.sessions.create(user_id=user.id, username=user.username, display_name=user.display_name,
                                      role=user.role, api_token=api_token, expires_at=expires_at, now=now)
    log.info("panel.login", username=user.username, role=user.role.value, sessions=len(panel.sessions))
    response = _redirect(home_of(user.role))
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
        t = translator(language_of(request))
        return web.Response(text=t("common.csrf.refused"), status=403, headers=SECURITY_HEADERS)
    panel.sessions.drop(session.id)
    async with panel.db.transaction() as db_session:
        record(db_session, Actor(session.user_id, session.username, request.remote), action="auth.logout",
               target_type="user", target_id=session.user_id)
    log.info("panel.logout", username=session.username)
    return _to_login(request)


@_signed_in()
def agent_page(request: web.Request, session: PanelSession) -> web.StreamResponse:
    role = session.role
    config = {
        "agentBar": role in _AGENT_BAR, "allAgents": role in _ALL_AGENTS, "liveAgents": role in _LIVE_AGENTS,
        "readOnly": role is Role.AUDITOR, "pops": role in _AGENT_BAR,
        "orderKinds": [kind.value for kind in WorkOrderKind],
        "serviceTypes": [service.value for service in ServiceType],
    }
    return _script_page(request, session, "panel.html", "panel.js", config=config,
                        agent_bar=config["agentBar"], all_agents=config["allAgents"],
                        read_only=config["readOnly"], pops=config["pops"], pause_reasons=PAUSE_REASONS,
                        library=role in _LIBRARY,
                        nav_wallboard=role in WALLBOARD_ROLES,
                        nav_supervision_cases=role in SUPERVISION_CASE_WRITERS)


@_signed_in()
def library_page(request: web.Request, session: PanelSession) -> web.StreamResponse:
    """The recordings library: supervisors and auditors (and admins) search and replay with a reason."""
    if session.role not in _LIBRARY:
        return web.Response(text=translator(language_of(request), "library")("library.forbidden"), status=403,
                            headers=SECURITY_HEADERS)
    return _script_page(request, session, "library.html", "library.js", may_download=may_download(session.role),
                        may_audit=session.role in _AUDITORS)


PROVIDER_REGISTRY_ROLES = frozenset({Role.ADMIN, Role.SUPERVISOR})  # the providers API's writers (providers.http)
# A licence running out within this many days is flagged on the registry page, so it is renewed before matching
# and dispatch start refusing the provider (providers.services.licence_valid).
LICENCE_WARNING_DAYS = 30


@_signed_in()
def providers_registry_page(request: web.Request, session: PanelSession) -> web.StreamResponse:
    """The service-provider registry (seed 5.11, ``static/providers.js`` over ``/api/v1/providers``): list by
    service and active, register and edit providers with their fees per service and licence (an expired or soon
    expiring licence is flagged), staff, portal accounts, signing keys (the secret shown once) and the evaluation.
    Supervisors and admins; anyone else signed in gets a 403 page, anonymous visitors the log-in. (``/provider``
    is the providers' own portal, hence this path.)"""
    # "Expired" is judged on the centre's calendar, as the API does when matching.
    today = centre_today(request.app)
    services = [service.value for service in ServiceType]
    return _script_page(request, session, "providers.html", "providers.js", css="providers.css",
                        allowed=session.role in PROVIDER_REGISTRY_ROLES, services=services,
                        config={"today": today.isoformat(), "licenceWarningDays": LICENCE_WARNING_DAYS,
                                "services": services})


VOLUNTEER_ROLES = frozenset({Role.ADMIN, Role.SUPERVISOR})  # the volunteers registry page: those who may change it


@_signed_in()
def volunteers_page(request: web.Request, session: PanelSession) -> web.StreamResponse:
    """The volunteers registry (``static/volunteers.js`` over ``/api/v1/volunteers``): find, register and edit
    volunteers, review them, record services and feedback, pair them with elders. Supervisors and admins; anyone
    else signed in gets a 403 page, anonymous visitors the log-in."""
    return _script_page(request, session, "volunteers.html", "volunteers.js", css="volunteers.css",
                        allowed=session.role in VOLUNTEER_ROLES, statuses=[status.value for status in ReviewStatus],
                        kinds=[kind.value for kind in FeedbackKind])


ELDER_WRITERS = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.AGENT})  # register and change files (elders.http)
ELDER_MANAGERS = frozenset({Role.ADMIN, Role.SUPERVISOR})  # delete files, import the civil-affairs roster


@_signed_in()
def elders_page(request: web.Request, session: PanelSession) -> web.StreamResponse:
    """The elders registry (``static/elders.js`` over ``/api/v1/elders``): find, register, change and delete files,
    and import the civil-affairs roster with its progress. Every centre role reads; agents also write; supervisors
    and admins also delete and import. Auditors see the files read-only."""
    may_write, may_manage = session.role in ELDER_WRITERS, session.role in ELDER_MANAGERS
    return _script_page(request, session, "elders.html", "elders.js", css="elders.css",
                        config={"mayWrite": may_write, "mayManage": may_manage}, may_write=may_write,
                        may_manage=may_manage, living=[situation.value for situation in LivingSituation])


@_signed_in()
def wallboard_page(request: web.Request, session: PanelSession) -> web.StreamResponse:
    """The supervisors' wallboard (``static/wallboard.js``: ``GET /api/v1/wallboard``, then ``wallboard`` pushes on
    ``/ws``). Supervisors and admins; anyone else signed in gets a 403 page, anonymous visitors the log-in."""
    return _script_page(request, session, "wallboard.html", "wallboard.js", css="wallboard.css",
                        allowed=session.role in WALLBOARD_ROLES, queues=WALLBOARD_QUEUES)


@_signed_in()
def supervision_cases_page(request: web.Request, session: PanelSession) -> web.StreamResponse:
    """Supervision cases (督办, ``static/supervision_cases.js`` over ``/api/v1/supervision-cases``): the unresolved
    cases with reason, order, provider and age; supervisors record urgings and resolve, others only read."""
    read_only = session.role not in SUPERVISION_CASE_WRITERS
    return _script_page(request, session, "supervision_cases.html", "supervision_cases.js",
                        config={"readOnly": read_only}, read_only=read_only, reasons=[r.value for r in CaseReason],
                        statuses=[s.value for s in CaseStatus], methods=[m.value for m in UrgingMethod])


@_signed_in(PORTAL_ROLES)
def provider_page(request: web.Request, session: PanelSession) -> web.StreamResponse:
    """The provider portal (seed 6.3, ``static/provider.js``): the orders dispatched to the account's provider
    (``GET /api/v1/work-orders`` scopes them), each with the steps the API allows now — accept, decline, assign
    staff, start on site, the receipt — and a live notice on ``/provider/ws`` when one is dispatched. Only
    provider accounts; centre staff are sent to their panel."""
    return _script_page(request, session, "provider.html", "provider.js", css="provider.css",
                        statuses=[s.value for s in PORTAL_STATUSES], results=RECEIPT_RESULTS)


async def provider_socket(request: web.Request) -> web.StreamResponse:
    """``GET /provider/ws?token=``: the portal's live notices (orders.notify). The bearer token comes as a query
    parameter (browsers cannot set headers on a WebSocket) and is checked like the desk WebSocket's; only a provider
    account is subscribed, and only to its own provider's notices. ``hello`` first: the page then re-reads its
    list, so nothing published while it was away is missed."""
    panel = _panel(request)
    try:
        principal = await principal_for_token(panel.db, panel.tokens, request.query.get("token", ""))
        if principal.role not in PORTAL_ROLES or principal.provider_id is None:
            raise Forbidden("only a provider's portal account receives its notices")
    except ApiError as error:
        return error_response(error)
    portal = request.app[ORDER_NOTIFIER].pages
    socket = await push.open_socket(request)
    # Subscribed before the hello: a dispatch in between is queued after it, not lost.
    subscription = portal.subscribe(principal.username, principal.role, principal.provider_id)
    log.info("provider_portal.connected", username=principal.username, provider_id=principal.provider_id,
             pages=len(portal.subscribers(push.provider(principal.provider_id))))
    portal.send(subscription, {"type": "hello", "username": principal.username, "role": principal.role.value})
    try:
        await push.serve(socket, portal, subscription)
    finally:
        log.info("provider_portal.disconnected", username=principal.username, provider_id=principal.provider_id)
    return socket


ORDER_ROLES = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.AGENT})  # the centre's work-order workspace


@_signed_in()
def orders_page(request: web.Request, session: PanelSession) -> web.StreamResponse:
    """The centre's work orders (``static/orders.js`` over ``/api/v1/work-orders``): the list, one order with its
    trail and the steps allowed now, the follow-up queue with one-click call back, and intake. Agents,
    supervisors and admins; anyone else signed in gets a 403 page, anonymous visitors the log-in."""
    return _script_page(request, session, "orders.html", "orders.js", css="orders.css",
                        allowed=session.role in ORDER_ROLES,
                        statuses=[s.value for s in WorkOrderStatus if s is not WorkOrderStatus.DRAFT],
                        kinds=[k.value for k in WorkOrderKind], services=[s.value for s in ServiceType],
                        complaint_sources=[s.value for s in ComplaintSource])


def register(app: web.Application, *, db: Database, tokens: TokenService, login_guard: LoginGuard,
             cookie_secure: bool) -> None:
    templates = jinja2.Environment(loader=jinja2.FileSystemLoader(str(WEB_DIR / "templates")), autoescape=True,
                                   undefined=jinja2.StrictUndefined)
    app[PANEL] = Panel(db=db, tokens=tokens, login_guard=login_guard,
                       sessions=SessionStore(Signer(tokens.derived_key("panel-session"))),
                       templates=templates, cookie_secure=cookie_secure)
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=True)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login_submit)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", agent_page)
    app.router.add_get("/provider", provider_page)
    app.router.add_get("/provider/ws", provider_socket)
    app.router.add_get("/wallboard", wallboard_page)
    app.router.add_get("/orders", orders_page)
    app.router.add_get("/volunteers", volunteers_page)
    app.router.add_get("/providers-registry", providers_registry_page)
    app.router.add_get("/elders", elders_page)
    app.router.add_get("/library", library_page)
    app.router.add_get("/supervision-cases", supervision_cases_page)
