"""The route table of the REST API: one ``ApiRoute`` per operation, read by aiohttp *and* by the OpenAPI builder.

A route names its request schema (body and query), its response schema, status, roles and extra error statuses.
The aiohttp handler that ``ApiRoutes.register`` installs parses exactly those schemas before the domain handler
runs, so the published document and the behaviour cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from callcenter.api.errors import Forbidden, Invalid, MalformedRequest, NotFound, Unauthorized
from callcenter.api.schemas import MAX_INT
from callcenter.audit.services import Actor
from callcenter.users.models import Role

API_PREFIX = "/api/v1"
_PARAM = re.compile(r"\{(\w+)\}")
ALL_ROLES = frozenset(Role)


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: re-read from the database on every request, so a disabled account stops at once."""

    user_id: int
    username: str
    role: Role
    # A provider-portal account's provider: every provider route confines it to this provider's own data.
    provider_id: int | None = None
    # The log-in session the token names (users.sessions): a log-out ends it.
    session_id: str | None = None

    def may(self, roles: frozenset[Role]) -> bool:
        return self.role is Role.ADMIN or self.role in roles


PRINCIPAL = web.RequestKey("api_principal", Principal)


@dataclasses.dataclass(frozen=True, slots=True)
class ApiRequest:
    """What a domain handler gets: the parsed, validated parts of the request and who sent it."""

    http: web.Request
    principal: Principal | None
    params: dict[str, Any]
    query: Any
    body: Any

    @property
    def user(self) -> Principal:
        if self.principal is None:  # only public routes lack one, and they do not ask
            raise Unauthorized("authentication required")
        return self.principal

    @property
    def source_ip(self) -> str | None:
        return self.http.remote

    @property
    def actor(self) -> Actor:
        return Actor(self.user.user_id, self.user.username, self.source_ip)

    def require(self, value: Any) -> Any:
        """``value`` from the app (a service, the database) by its ``web.AppKey``."""
        return self.http.app[value]


@dataclasses.dataclass(frozen=True, slots=True)
class BinaryResponse:
    """A route that answers bytes (audio, files) rather than JSON. Its handler builds and returns the aiohttp
    ``StreamResponse`` itself; authentication, roles and JSON errors work as on every other route, and the
    document lists ``media_type`` for each success status with the ``headers`` described."""

    media_type: str
    statuses: tuple[int, ...] = (200,)
    headers: tuple[tuple[str, str], ...] = ()  # (name, description) on every success status


Handler = Callable[[ApiRequest], Awaitable[BaseModel | web.StreamResponse]]


@dataclasses.dataclass(frozen=True, slots=True)
class ApiRoute:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    response: type[BaseModel] | BinaryResponse
    roles: frozenset[Role] | None  # None: public (no token needed)
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    description: str | None = None
    # The body reaches the handler unparsed: it first checks something over the exact bytes (a signature), then
    # parses them with ``parse_json_body(route.body, raw)``. The document still lists ``body``.
    raw_body: bool = False
    # Request headers the operation reads, (name, description), listed as required header parameters.
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def path_params(self) -> list[str]:
        return _PARAM.findall(self.path)

    @property
    def operation_id(self) -> str:
        return f"{self.tag}_{self.handler.__name__}"

    def error_statuses(self) -> list[int]:
        """Every error status this operation can answer with, for the document."""
        statuses = set(self.errors)
        if self.roles is not None:
            statuses |= {401, 403}
        if self.body is not None:
            statuses |= {400, 422}
        if self.query is not None:
            statuses.add(422)
        if self.path_params:
            statuses.add(404)
        return sorted(statuses)


def is_int_param(name: str) -> bool:
    return name == "id" or name.endswith("_id")


class ApiRoutes:
    """An ordered collection of routes; domains fill one each and the app registers them all."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self._routes: list[ApiRoute] = []

    def __iter__(self) -> Iterator[ApiRoute]:
        return iter(self._routes)

    def route(self, method: str, path: str, *, summary: str, response: type[BaseModel] | BinaryResponse,
              roles: Iterable[Role] | None, status: int = 200, body: type[BaseModel] | None = None,
              query: type[BaseModel] | None = None, errors: tuple[int, ...] = (),
              description: str | None = None, raw_body: bool = False,
              headers: tuple[tuple[str, str], ...] = ()) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            self._routes.append(ApiRoute(
                method=method, path=API_PREFIX + path, handler=handler, summary=summary, tag=self.tag,
                response=response, roles=None if roles is None else frozenset(roles), status=status, body=body,
                query=query, errors=errors, description=description or (handler.__doc__ or "").strip() or None,
                raw_body=raw_body, headers=headers,
            ))
            return handler

        return decorate

    def roles_for(self, method: str, path: str) -> frozenset[Role]:
        """The roles of the operation ``method path`` (``path`` as given to ``route``, without /api/v1), admins
        aside: ``Principal.may`` lets them through everywhere. A page that shows or hides what that operation does
        refers to its policy through this, so the two cannot drift apart."""
        for route in self._routes:
            if route.method == method and route.path == API_PREFIX + path:
                if route.roles is None:
                    raise ValueError(f"{method} {path} is public: it has no roles")
                return route.roles
        raise LookupError(f"{self.tag} has no route {method} {path}")


ROUTE_KEY = "api_route"  # attribute on the aiohttp handler, read by the middleware


def register(app: web.Application, routes: Iterable[ApiRoute]) -> list[ApiRoute]:
    installed = []
    for route in routes:
        app.router.add_route(route.method, route.path, _aiohttp_handler(route))
        installed.append(route)
    return installed


def route_of(request: web.Request) -> ApiRoute | None:
    return getattr(request.match_info.handler, ROUTE_KEY, None)


def _aiohttp_handler(route: ApiRoute) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        principal = request.get(PRINCIPAL)
        if route.roles is not None and (principal is None or not principal.may(route.roles)):
            # The middleware authenticates first; this is the guard if a route is ever mounted without it.
            raise Forbidden("your role may not do this") if principal else Unauthorized("authentication required")
        api_request = ApiRequest(
            http=request, principal=principal, params=_path_params(route, request),
            query=_parse_query(route.query, request) if route.query else None,
            body=await _parse_body(route.body, request) if route.body and not route.raw_body else None,
        )
        result = await route.handler(api_request)
        if isinstance(route.response, BinaryResponse):
            if not isinstance(result, web.StreamResponse):
                raise TypeError(f"{route.operation_id} returned {type(result).__name__}, declared bytes")
            return result
        if not isinstance(result, route.response):
            raise TypeError(f"{route.operation_id} returned {type(result).__name__}, declared {route.response}")
        return web.json_response(result.model_dump(mode="json"), status=route.status, dumps=_dumps)

    setattr(handle, ROUTE_KEY, route)
    functools.update_wrapper(handle, route.handler, assigned=("__name__", "__qualname__", "__doc__"))
    return handle


_dumps = functools.partial(json.dumps, ensure_ascii=False)


def _path_params(route: ApiRoute, request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name in route.path_params:
        raw = request.match_info[name]
        if is_int_param(name):
            # Ids run from 1 to MAX_INT (as the document says): anything else is not found, never handed to the
            # database (PostgreSQL's INTEGER is 32 bits, and int() refuses thousands of digits).
            if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or not 1 <= int(raw) <= MAX_INT:
                raise NotFound(f"no such {name}: {raw[:40]!r}", field=name)
            params[name] = int(raw)
        else:
            if _NUL in raw:  # no name has one
                raise NotFound(f"no such {name}", field=name)
            params[name] = raw
    return params


# PostgreSQL stores no NUL character in text: a request carrying one (in a path, a query string or a JSON string)
# is refused here, whatever the field, rather than failing in the database.
_NUL = "\x00"


def _parse_query(schema: type[BaseModel], request: web.Request) -> BaseModel:
    values: dict[str, str] = {}
    for name in request.query:
        given = request.query.getall(name)
        if len(given) > 1:
            raise Invalid(f"query parameter {name} given {len(given)} times", field=name)
        if _NUL in name or _NUL in given[0]:
            raise Invalid(f"query parameter {name!r} contains a NUL character", field=name)
        values[name] = given[0]
    try:
        return schema.model_validate(values)
    except ValidationError as error:
        raise invalid(error) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def _parse_body(schema: type[BaseModel], request: web.Request) -> BaseModel:
    return parse_json_body(schema, await request.read())


def parse_json_body(schema: type[BaseModel], raw: bytes) -> BaseModel:
    """A JSON request body validated (strictly) against ``schema``: 400 if it is not JSON, 422 if it breaks the
    schema."""
    if not raw.strip():
        raise MalformedRequest("the request body must be a JSON object")
    try:
        document = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as error:
        raise MalformedRequest(f"the request body is not valid JSON: {error}") from None
    if (where := _nul_in(document, ())) is not None:
        raise Invalid("text may not contain a NUL character", field=field_path(where))
    try:
        # Strict: "3" is not a care level and 1 is not a name; JSON mode still reads dates and enums from strings.
        return schema.model_validate_json(raw, strict=True)
    except ValidationError as error:
        raise invalid(error) from None


def _nul_in(value: Any, where: tuple[int | str, ...]) -> tuple[int | str, ...] | None:
    """Where in a parsed JSON document a string (or a key) holds a NUL character; None if nowhere."""
    if isinstance(value, str):
        return where if _NUL in value else None
    items: Iterable[tuple[int | str, Any]] = ()
    if isinstance(value, dict):
        for key in value:
            if _NUL in key:
                return (*where, key)
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    for key, item in items:
        if (found := _nul_in(item, (*where, key))) is not None:
            return found
    return None


def field_path(loc: tuple[int | str, ...]) -> str | None:
    return ".".join(str(part) for part in loc) or None


def invalid(error: ValidationError) -> Invalid:
    """A pydantic error as a 422 naming the first offending field (dotted path) and listing every violation."""
    details: list[dict[str, str | None]] = []
    for item in error.errors(include_url=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "missing":
            message = "required"
        details.append({"field": field_path(item["loc"]), "message": message})
    first = details[0]
    label = f"{first['field']}: {first['message']}" if first["field"] else str(first["message"])
    return Invalid(label, field=first["field"], details=details if len(details) > 1 else None)
