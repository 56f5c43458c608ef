"""/api/v1/auth/login and /api/v1/users: log in; staff accounts (create: admin; list: admin, supervisor)."""

from __future__ import annotations

import asyncio
import json
import math

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from callcenter.api.context import DATABASE, TOKENS
from callcenter.api.errors import Forbidden, Locked, TooManyRequests, Unauthorized
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.db.base import utcnow
from callcenter.devices.services import PROVISIONER, Provisioning, apply_provisioning
from callcenter.logs import get_logger
from callcenter.users.login_guard import LOGIN_GUARD, LoginGuard
from callcenter.users.models import Role
from callcenter.users.schemas import LoginRequest, LoginResponse, UserCreate, UserCreated, UserOut, UserPage, UserQuery
from callcenter.users.services import LoginOutcome, authenticate, create_user, get_user, list_users

log = get_logger(__name__)
routes = ApiRoutes("users")
# The log-in endpoints the flood fast path guards: the API's and the panel's form.
LOGIN_PATHS = frozenset({"/api/v1/auth/login", "/login"})
TARPIT_MAX = 1000
_FLOOD_JSON = json.dumps({"error": {"code": "too_many_requests", "field": None,
                                    "message": "too many log-in attempts from this address: try again later"}})


def login_flood_middleware(guard: LoginGuard) -> Middleware:
    """Refuse a log-in from an address already past its attempts a minute before anything else is done: no body
    read, no validation, no log line, no write, the answer held a few seconds and the connection closed, so a flood
    costs the event loop (which also serves the SOS path) as little as it can (issue 12, benchmarks/sos_flood.py)."""

    tarpitted = [0]  # answers held right now

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "POST" or request.path not in LOGIN_PATHS:
            return await handler(request)
        retry_after = guard.blocked(request.remote)
        if retry_after is None:
            return await handler(request)
        if (count := guard.note_quiet_refusal(request.remote)) is not None:
            log.warning("auth.login_flood", source_ip=request.remote, refused_since_last=count,
                        retry_after=retry_after)
        # A tarpit: the answer waits a few seconds (a sleeping task, nothing else), so each of the flood's
        # connections sends a few requests a minute instead of hundreds a second. Bounded: past TARPIT_MAX held
        # answers, the rest are answered at once.
        if guard.tarpit_seconds > 0 and tarpitted[0] < TARPIT_MAX:
            tarpitted[0] += 1
            try:
                await asyncio.sleep(min(guard.tarpit_seconds, retry_after))
            finally:
                tarpitted[0] -= 1
        response = web.Response(status=429, text=_FLOOD_JSON, content_type="application/json",
                                headers={"Retry-After": str(retry_after)})
        response.force_close()
        return response

    return middleware

_MAY_READ_OTHERS = frozenset({Role.ADMIN, Role.SUPERVISOR})


@routes.route("POST", "/auth/login", summary="Log in and get a bearer token", body=LoginRequest,
              response=LoginResponse, roles=None, errors=(401, 423, 429))
async def login(request: ApiRequest) -> LoginResponse:
    """Five wrong passwords for a username from one address lock that username for that address for 15 minutes
    (423); too many attempts from one address are refused for a while (429). Both carry ``Retry-After``, and
    neither tells whether the account exists. Every attempt is audited (a flood's refusals once a minute)."""
    body: LoginRequest = request.body
    result = await authenticate(request.require(DATABASE), request.require(LOGIN_GUARD), body.username,
                                body.password, source_ip=request.source_ip)
    if result.outcome is LoginOutcome.LOCKED:
        minutes = max(1, math.ceil((result.retry_after or 60) / 60))
        raise Locked(f"too many wrong passwords for this username from your address: try again in {minutes} "
                     "minutes, or from another device", retry_after=result.retry_after or 60)
    if result.outcome is LoginOutcome.THROTTLED:
        raise TooManyRequests(f"too many log-in attempts: try again in {result.retry_after} seconds",
                              retry_after=result.retry_after or 5)
    if result.outcome is LoginOutcome.INACTIVE:
        raise Unauthorized("this account is disabled", code="account_inactive")
    if result.outcome is not LoginOutcome.OK or result.user is None:
        raise Unauthorized("wrong username or password", code="bad_credentials")
    token, expires_at = request.require(TOKENS).issue(result.user.id, result.user.role, utcnow())
    return LoginResponse(token=token, expires_at=expires_at, user=UserOut.model_validate(result.user))


@routes.route("POST", "/users", summary="Create a staff account (and its phone extension)", body=UserCreate,
              response=UserCreated, status=201, roles=(), errors=(409,))
async def create(request: ApiRequest) -> UserCreated:
    """With an extension, the phone is provisioned in Asterisk at once; if that fails the account is kept and
    ``provisioning`` is ``pending``."""
    body: UserCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        user = await create_user(
            session, username=body.username, password=body.password, role=body.role, display_name=body.display_name,
            extension=body.extension, sip_password=body.sip_password, actor=request.actor,
        )
        out = UserOut.model_validate(user)
    provisioning = Provisioning.NOT_NEEDED
    if user.extension is not None:
        provisioning = await apply_provisioning(request.require(PROVISIONER), reason="user.create",
                                                target=user.extension)
    return UserCreated(**out.model_dump(), provisioning=provisioning.value)


@routes.route("GET", "/users", summary="List staff accounts", query=UserQuery, response=UserPage,
              roles=(Role.SUPERVISOR,))
async def index(request: ApiRequest) -> UserPage:
    query: UserQuery = request.query
    async with request.require(DATABASE).transaction() as session:
        found = await list_users(session, role=query.role, limit=query.limit, offset=query.offset)
        return UserPage.of(found, query)


@routes.route("GET", "/users/{username}", summary="Read a staff account", response=UserOut,
              roles=(Role.SUPERVISOR, Role.AGENT, Role.AUDITOR))
async def show(request: ApiRequest) -> UserOut:
    """Admins and supervisors read any account; agents and auditors only their own."""
    username = request.params["username"]
    if request.user.role not in _MAY_READ_OTHERS and username != request.user.username:
        raise Forbidden("you may read only your own account")
    async with request.require(DATABASE).transaction() as session:
        return UserOut.model_validate(await get_user(session, username))
