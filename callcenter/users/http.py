"""/api/v1/auth and /api/v1/users: log in and out, one's own sessions, password and second factor; staff accounts
for their whole life (create, change, disable, reset a password, unlock, end sessions: admin; list: supervisor)."""

from __future__ import annotations

import asyncio
import json
import math

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from callcenter.api.context import DATABASE, TOKENS
from callcenter.api.errors import Forbidden, Locked, TooManyRequests, Unauthorized
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.audit.services import record
from callcenter.db.base import utcnow
from callcenter.devices.services import PROVISIONER, Provisioning, apply_provisioning
from callcenter.logs import get_logger
from callcenter.users import services
from callcenter.users.login_guard import LOGIN_GUARD, LoginGuard
from callcenter.users.models import Role, SessionKind, User, UserSession
from callcenter.users.schemas import (
    LoginRequest,
    LoginResponse,
    PasswordChange,
    PasswordReset,
    SessionList,
    SessionOut,
    SessionsEndedOut,
    TotpConfirm,
    TotpSetup,
    Unlocked,
    UserCreate,
    UserCreated,
    UserOut,
    UserPage,
    UserQuery,
    UserUpdate,
)
from callcenter.users.services import LoginOutcome, authenticate, create_user, get_user, list_users
from callcenter.users.sessions import (
    SESSION_EVENTS,
    EndReason,
    SessionsEnded,
    end_one,
    end_sessions,
    live_sessions,
    open_session,
)

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
# Every signed-in account, portal accounts included: one's own sessions, log-out and password.
ANY_ACCOUNT = tuple(Role)
ADMINS_ONLY = ()  # Principal.may lets admins through everywhere


def _tell_sockets(request: ApiRequest, ended: SessionsEnded | None) -> None:
    """Once the change is committed: close the open WebSockets of the ended sessions."""
    if ended is not None:
        request.require(SESSION_EVENTS).ended(ended)


def _session_list(rows: list[UserSession], current: str | None) -> SessionList:
    return SessionList(items=[SessionOut.model_validate(row).model_copy(update={"current": row.id == current})
                              for row in rows])


@routes.route("POST", "/auth/login", summary="Log in and get a bearer token", body=LoginRequest,
              response=LoginResponse, roles=None, errors=(401, 423, 429))
async def login(request: ApiRequest) -> LoginResponse:
    """Five wrong passwords for a username from one address lock that username for that address for 15 minutes
    (423); too many attempts from one address are refused for a while (429). Both carry ``Retry-After``, and
    neither tells whether the account exists. Every attempt is audited (a flood's refusals once a minute)."""
    body: LoginRequest = request.body
    db = request.require(DATABASE)
    result = await authenticate(db, request.require(LOGIN_GUARD), body.username, body.password,
                                source_ip=request.source_ip, otp=body.otp)
    if result.outcome is LoginOutcome.LOCKED:
        minutes = max(1, math.ceil((result.retry_after or 60) / 60))
        raise Locked(f"too many wrong passwords for this username from your address: try again in {minutes} "
                     "minutes, or from another device", retry_after=result.retry_after or 60)
    if result.outcome is LoginOutcome.THROTTLED:
        raise TooManyRequests(f"too many log-in attempts: try again in {result.retry_after} seconds",
                              retry_after=result.retry_after or 5)
    if result.outcome is LoginOutcome.INACTIVE:
        raise Unauthorized("this account is disabled", code="account_inactive")
    if result.outcome is LoginOutcome.OTP_REQUIRED:
        raise Unauthorized("this account has a second factor: send the authenticator's current code as otp",
                           code="otp_required", field="otp")
    if result.outcome is not LoginOutcome.OK or result.user is None:
        raise Unauthorized("wrong username or password", code="bad_credentials")
    async with db.transaction() as session:
        user = await session.get(User, result.user.id)
        if user is None or not user.active:  # disabled between the check and now
            raise Unauthorized("this account is disabled", code="account_inactive")
        token, row = await open_session(session, user, SessionKind.API, request.require(TOKENS),
                                        source_ip=request.source_ip,
                                        user_agent=request.http.headers.get("User-Agent"), now=utcnow())
        return LoginResponse(token=token, expires_at=row.expires_at, user=UserOut.model_validate(user))


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


@routes.route("POST", "/auth/logout", summary="Log out: end this token's session", response=SessionsEndedOut,
              roles=ANY_ACCOUNT)
async def logout(request: ApiRequest) -> SessionsEndedOut:
    """The token stops working at once, and WebSockets opened with it close."""
    principal = request.user
    async with request.require(DATABASE).transaction() as session:
        ended = await end_sessions(session, principal.user_id, EndReason.LOGOUT, utcnow(),
                                   only=[principal.session_id] if principal.session_id else [])
        if ended is not None:
            record(session, request.actor, action="auth.logout", target_type="user", target_id=principal.user_id)
    _tell_sockets(request, ended)
    return SessionsEndedOut(ended=0 if ended is None else 1)


@routes.route("GET", "/auth/sessions", summary="List my live sessions", response=SessionList, roles=ANY_ACCOUNT)
async def my_sessions(request: ApiRequest) -> SessionList:
    async with request.require(DATABASE).transaction(read_only=True) as session:
        return _session_list(await live_sessions(session, request.user.user_id, utcnow()), request.user.session_id)


@routes.route("DELETE", "/auth/sessions/{session}", summary="End one of my sessions (a forgotten desk)",
              response=SessionsEndedOut, roles=ANY_ACCOUNT, errors=(404,))
async def end_my_session(request: ApiRequest) -> SessionsEndedOut:
    async with request.require(DATABASE).transaction() as session:
        ended = await end_one(session, request.user.user_id, request.params["session"], EndReason.REVOKED, utcnow())
        record(session, request.actor, action="auth.session_revoked", target_type="user",
               target_id=request.user.user_id, details={"session": request.params["session"][:8]})
    _tell_sockets(request, ended)
    return SessionsEndedOut(ended=1)


@routes.route("POST", "/auth/password", summary="Change my password", body=PasswordChange,
              response=SessionsEndedOut, roles=ANY_ACCOUNT, errors=(403,))
async def change_password(request: ApiRequest) -> SessionsEndedOut:
    """The current password is checked like a log-in (wrong ones count towards the lock-out). Every other session
    of the account ends; this one stays."""
    body: PasswordChange = request.body
    ended = await services.change_own_password(
        request.require(DATABASE), request.require(LOGIN_GUARD), request.user.user_id, body.current_password,
        body.new_password, actor=request.actor, keep_session=request.user.session_id)
    _tell_sockets(request, ended)
    return SessionsEndedOut(ended=0 if ended is None else len(ended.session_ids))


@routes.route("POST", "/auth/totp", summary="Set up my second factor (admins and auditors)", response=TotpSetup,
              roles=(Role.AUDITOR,), errors=(409,))
async def totp_setup(request: ApiRequest) -> TotpSetup:
    """A new secret, pending until ``POST /auth/totp/confirm`` with a code from it; log-ins need no code until
    then."""
    async with request.require(DATABASE).transaction() as session:
        user, uri = await services.start_second_factor(session, request.user.user_id, actor=request.actor)
        return TotpSetup(secret=user.totp_secret or "", uri=uri)


@routes.route("POST", "/auth/totp/confirm", summary="Turn my second factor on with a first code", body=TotpConfirm,
              response=UserOut, roles=(Role.AUDITOR,), errors=(409,))
async def totp_confirm(request: ApiRequest) -> UserOut:
    body: TotpConfirm = request.body
    async with request.require(DATABASE).transaction() as session:
        user = await services.confirm_second_factor(session, request.user.user_id, body.code, actor=request.actor)
        return UserOut.model_validate(user)


@routes.route("PATCH", "/users/{username}", summary="Change a staff account (name, language, role, active)",
              body=UserUpdate, response=UserOut, roles=ADMINS_ONLY, errors=(409,))
async def update(request: ApiRequest) -> UserOut:
    """Disabling (``active: false``) or changing the role ends every session of the account at once. The last
    active administrator can be neither disabled nor re-roled."""
    body: UserUpdate = request.body
    values = {name: getattr(body, name) for name in body.model_fields_set}
    async with request.require(DATABASE).transaction() as session:
        change = await services.update_user(session, request.params["username"], values=values, actor=request.actor)
        out = UserOut.model_validate(change.user)
    _tell_sockets(request, change.ended)
    return out


@routes.route("POST", "/users/{username}/password", summary="Set a new password for an account (forgotten)",
              body=PasswordReset, response=UserOut, roles=ADMINS_ONLY)
async def reset_password(request: ApiRequest) -> UserOut:
    """Every session of the account ends."""
    body: PasswordReset = request.body
    async with request.require(DATABASE).transaction() as session:
        change = await services.reset_password(session, request.params["username"], body.password,
                                               actor=request.actor)
        out = UserOut.model_validate(change.user)
    _tell_sockets(request, change.ended)
    return out


@routes.route("POST", "/users/{username}/unlock", summary="Lift an account's log-in lock-out", response=Unlocked,
              roles=ADMINS_ONLY)
async def unlock(request: ApiRequest) -> Unlocked:
    async with request.require(DATABASE).transaction() as session:
        user = await get_user(session, request.params["username"])
        cleared = await request.require(LOGIN_GUARD).unlock(user.username)
        record(session, request.actor, action="user.unlock", target_type="user", target_id=user.id,
               details={"addresses_cleared": cleared})
        return Unlocked(username=user.username, addresses_cleared=cleared)


@routes.route("GET", "/users/{username}/sessions", summary="List an account's live sessions", response=SessionList,
              roles=ADMINS_ONLY)
async def user_sessions(request: ApiRequest) -> SessionList:
    async with request.require(DATABASE).transaction(read_only=True) as session:
        user = await get_user(session, request.params["username"])
        return _session_list(await live_sessions(session, user.id, utcnow()), request.user.session_id)


@routes.route("DELETE", "/users/{username}/sessions", summary="End every session of an account",
              response=SessionsEndedOut, roles=ADMINS_ONLY)
async def end_user_sessions(request: ApiRequest) -> SessionsEndedOut:
    async with request.require(DATABASE).transaction() as session:
        user = await get_user(session, request.params["username"])
        ended = await end_sessions(session, user.id, EndReason.REVOKED, utcnow())
        count = 0 if ended is None else len(ended.session_ids)
        record(session, request.actor, action="user.sessions_revoked", target_type="user", target_id=user.id,
               details={"ended": count})
    _tell_sockets(request, ended)
    return SessionsEndedOut(ended=count)


@routes.route("DELETE", "/users/{username}/sessions/{session}", summary="End one session of an account",
              response=SessionsEndedOut, roles=ADMINS_ONLY)
async def end_user_session(request: ApiRequest) -> SessionsEndedOut:
    async with request.require(DATABASE).transaction() as session:
        user = await get_user(session, request.params["username"])
        ended = await end_one(session, user.id, request.params["session"], EndReason.REVOKED, utcnow())
        record(session, request.actor, action="user.session_revoked", target_type="user", target_id=user.id,
               details={"session": request.params["session"][:8]})
    _tell_sockets(request, ended)
    return SessionsEndedOut(ended=1)


@routes.route("DELETE", "/users/{username}/totp", summary="Turn an account's second factor off (a lost phone)",
              response=UserOut, roles=ADMINS_ONLY)
async def reset_totp(request: ApiRequest) -> UserOut:
    async with request.require(DATABASE).transaction() as session:
        return UserOut.model_validate(await services.reset_second_factor(session, request.params["username"],
                                                                         actor=request.actor))
