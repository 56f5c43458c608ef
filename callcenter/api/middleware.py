"""The API's aiohttp middleware: bearer authentication and role checks, then errors as JSON.

Only paths under /api/v1 are touched; the panel and /healthz keep their own behaviour. No request under /api/v1
ends in an HTML error page or a traceback: a bug is logged and answered with a 500 JSON body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.exc import IntegrityError

from callcenter import push
from callcenter.api.errors import ApiError, Conflict, Forbidden, Unauthorized
from callcenter.api.registry import API_PREFIX, PRINCIPAL, Principal, route_of
from callcenter.api.tokens import InvalidToken, TokenService
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.logs import get_logger
from callcenter.users.sessions import SESSION_ENDED_CLOSE, SessionsEnded, authenticated_user

log = get_logger(__name__)

Middleware = Callable[[web.Request, Callable[[web.Request], Awaitable[web.StreamResponse]]],
                      Awaitable[web.StreamResponse]]

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


def error_response(error: ApiError) -> web.Response:
    headers = error.headers()
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="callcenter"'
    return web.json_response(error.body(), status=error.status, headers=headers)


async def authenticate(request: web.Request, db: Database, tokens: TokenService) -> Principal:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a bearer token is required: POST /api/v1/auth/login, then send "
                           "'Authorization: Bearer <token>'", code="unauthorized")
    return await principal_for_token(db, tokens, token.strip())


async def principal_for_token(db: Database, tokens: TokenService, token: str) -> Principal:
    """Who a token speaks for: its signature, then its session and account re-read from the database (the
    WebSockets use this too)."""
    now = utcnow()
    try:
        claims = tokens.verify(token, now)
    except InvalidToken as error:
        raise Unauthorized(str(error), code="invalid_token") from None
    async with db.transaction(read_only=True) as session:
        user = await authenticated_user(session, claims, now)
    return Principal(user.id, user.username, user.role, user.provider_id, claims.session_id)


async def socket_principal(socket: web.WebSocketResponse, db: Database, tokens: TokenService) -> Principal | None:
    """Who opened ``socket``, from its first message (``push.first_message_token``) checked like a bearer token; None
    once the socket was refused (closed with 4401 and the reason)."""
    token = await push.first_message_token(socket)
    if token is None:
        await push.refuse(socket, push.UNAUTHORIZED_CLOSE,
                          'authenticate first: send {"type": "auth", "token": "<bearer token>"}')
        return None
    try:
        return await principal_for_token(db, tokens, token)
    except ApiError as error:
        await push.refuse(socket, push.UNAUTHORIZED_CLOSE, error.message)
        return None


def ended_sessions_closer(fanout: push.Fanout) -> Callable[[SessionsEnded], None]:
    """A ``SessionEvents`` listener closing ``fanout``'s sockets opened by the sessions that ended."""

    def close(notice: SessionsEnded) -> None:
        closed = fanout.close_where(lambda subscriber: subscriber.user_id is not None
                                    and notice.covers(subscriber.user_id, subscriber.session_id),
                                    SESSION_ENDED_CLOSE, f"session ended: {notice.reason}")
        if closed:
            log.info("push.sessions_closed", channel=fanout.channel, user_id=notice.user_id, sockets=closed,
                     reason=notice.reason)

    return close


def api_middleware(db: Database, tokens: TokenService) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.path != API_PREFIX and not request.path.startswith(API_PREFIX + "/"):
            return await handler(request)
        try:
            route = route_of(request)
            if route is not None and route.roles is not None:
                principal = await authenticate(request, db, tokens)
                if not principal.may(route.roles):
                    raise Forbidden(f"the {principal.role.value} role may not {route.summary[:1].lower()}"
                                    f"{route.summary[1:]}")
                request[PRINCIPAL] = principal
            return await handler(request)
        except ApiError as error:
            return error_response(error)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            code = _HTTP_CODES.get(error.status, "http_error")
            return web.json_response({"error": {"code": code, "message": error.reason, "field": None}},
                                     status=error.status, headers={k: v for k, v in error.headers.items()
                                                                   if k.lower() == "allow"})
        except IntegrityError as error:
            # Services check uniqueness first and name the field; this is the race between two requests.
            log.warning("api.integrity_conflict", path=request.path, error=str(error.orig)[:300])
            return error_response(Conflict("the change conflicts with a concurrent one; retry"))
        except Exception:
            log.exception("api.unhandled", method=request.method, path=request.path)
            return web.json_response({"error": {"code": "internal_error", "message": "internal error, logged",
                                                "field": None}}, status=500)

    return middleware
