"""The API's aiohttp middleware: bearer authentication and role checks, then errors as JSON.

Only paths under /api/v1 are touched; the panel and /healthz keep their own behaviour. No request under /api/v1
ends in an HTML error page or a traceback: a bug is logged and answered with a 500 JSON body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.exc import IntegrityError

from callcenter.api.errors import ApiError, Conflict, Forbidden, Unauthorized
from callcenter.api.registry import API_PREFIX, PRINCIPAL, Principal, route_of
from callcenter.api.tokens import InvalidToken, TokenService
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.logs import get_logger
from callcenter.users.services import active_user

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
    """Who a token speaks for, re-read from the database (the WebSocket uses this too)."""
    try:
        claims = tokens.verify(token, utcnow())
    except InvalidToken as error:
        raise Unauthorized(str(error), code="invalid_token") from None
    async with db.transaction() as session:
        user = await active_user(session, claims.user_id)
    if user is None:
        raise Unauthorized("this account no longer exists or is disabled", code="invalid_token")
    if user.role is not claims.role:
        raise Unauthorized("the account's role changed since this token was issued: log in again",
                           code="invalid_token")
    return Principal(user.id, user.username, user.role, user.provider_id)


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
