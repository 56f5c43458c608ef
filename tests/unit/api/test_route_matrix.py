"""Authorisation, tested everywhere: every REST route the app serves × every role (and nobody), every page × every
role, and a provider's portal account against every route it may use, aimed at another provider's rows.

Nothing here lists the routes: they are read from the running app (the route registry every plugin contributes
to), so a new route is in the matrix the moment it is served. A route's policy is its ``roles``: a route with
none (``roles=None``) is public, and a public operation must be on ``PUBLIC_OPERATIONS`` below, with the reason it
needs no account — a route that forgot its policy fails here instead of serving everyone.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from aiohttp import web

from callcenter.api.registry import API_PREFIX, ROUTE_KEY, ApiRoute, BinaryResponse
from callcenter.contract import Page
from callcenter.db.base import utcnow
from callcenter.users.models import Role, User
from callcenter.web.pages import LOGIN_PAGE, PANEL, home_of
from tests.apiclient import PASSWORD, Api
from tests.unit.api import world as world_module
from tests.unit.api.world import World, fill_path
from tests.unit.web.test_pages import log_in

# Public operations, each reviewed: why it is open to anyone. Anything else public is a route without a policy.
PUBLIC_OPERATIONS: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/openapi.json"): "the API's own description: clients read it before they have an account",
    ("POST", "/api/v1/auth/login"): "where a token is obtained; throttled and locked out per address",
    ("GET", "/api/v1/recordings/{id}/stream"): "authorised by the signed, short-lived playback grant in its query "
                                               "(an <audio> element sends no bearer token); the grant's user is "
                                               "re-checked on every request",
    ("POST", "/api/v1/provider-reports"): "authorised by the HMAC-SHA256 signature of the provider's own system",
    ("POST", "/api/v1/device-messages"): "authorised by the HMAC-SHA256 signature of a gateway's or vendor cloud's "
                                         "ingest key, scoped to its devices",
}
# Public pages, each reviewed: why it needs no log-in.
PUBLIC_PAGES: dict[str, str] = {
    "/login": "the log-in form",
    "/status": "the platform's health in words, for whoever stands at the server: no personal data",
}

# Query strings that let an operation's handler run on the world's rows (its required parameters).
QUERIES: dict[tuple[str, str], Callable[[World], dict[str, str]]] = {
    ("GET", "/api/v1/recordings/{id}/audio"): lambda _world: {"reason": "权限矩阵测试"},
    ("GET", "/api/v1/providers/suggestions"): lambda world: {"service": "bathing", "elder_id": str(world.elder_id)},
    # A file read names the call it is read for (the world's call is the elder's): the check of it runs too.
    ("GET", "/api/v1/elders/{id}"): lambda world: {"call_id": str(world.call_id)},
    ("GET", "/api/v1/elders/{id}/contacts"): lambda world: {"call_id": str(world.call_id)},
}
# Operations an admin reaches, yet that answer no 2xx on the world's rows here, and why.
NO_SUCCESS_HERE: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/calls/{call_id}/spy"): "nobody listens in without Asterisk: 404",
    ("GET", "/api/v1/agents/{username}"): "an agent's live state exists once their phone logged in: 404",
    ("GET", "/api/v1/recordings/{id}/stream"): "public: the grant of POST …/playback opens it, not a token (422 "
                                               "without); test_recordings_api streams with one",
}
# Roles in the order they act on a route: the admin last, since it may act on the other accounts.
ROLES = (Role.AGENT, Role.SUPERVISOR, Role.AUDITOR, Role.PROVIDER, Role.ADMIN)


def served_routes(app: web.Application) -> list[ApiRoute]:
    """Every operation the app serves under /api/v1, from the registry's handlers; a handler mounted there
    without a registry route has no policy and fails here."""
    routes = []
    for served in app.router.routes():
        path = served.resource.canonical if served.resource is not None else ""
        if path != API_PREFIX and not path.startswith(API_PREFIX + "/"):
            continue
        route = getattr(served.handler, ROUTE_KEY, None)
        assert route is not None, f"{served.method} {path} is served outside the route registry: it has no policy"
        routes.append(route)
    # Deletions last: they may remove a row the other operations read.
    return sorted(routes, key=lambda route: route.method == "DELETE")


def documented_statuses(route: ApiRoute) -> set[int]:
    success = route.response.statuses if isinstance(route.response, BinaryResponse) else (route.status,)
    return {*success, *route.error_statuses()}


async def _call(api: Api, route: ApiRoute, path: str, *, token: str | None, query: dict[str, str] | None = None,
                body: Any = None) -> tuple[int, Any, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs: dict[str, Any] = {"headers": headers, "params": query or {}}
    if route.body is not None:
        kwargs["json"] = {} if body is None else body
    response = await api.client.request(route.method, path, allow_redirects=False, **kwargs)
    raw = await response.read()
    answer: Any = raw
    if response.content_type == "application/json":
        answer = json.loads(raw)
    return response.status, answer, dict(response.headers)


def _query(route: ApiRoute, world: World) -> dict[str, str]:
    make = QUERIES.get((route.method, route.path))
    return make(world) if make else {}


def _guard_refused(status: int, body: Any) -> bool:
    """Whether the answer is the guard's (no or a bad token: 401; a role outside the route's: 403)."""
    return status in (401, 403) and isinstance(body, dict) and body["error"]["code"] in (
        "unauthorized", "invalid_token", "forbidden")


async def test_every_route_has_a_policy_and_the_public_ones_are_the_reviewed_ones(api: Api) -> None:
    routes = served_routes(api.client.app)
    assert len(routes) >= 90  # the registry was read, not an empty app
    public = {(route.method, route.path) for route in routes if route.roles is None}
    unreviewed = public - set(PUBLIC_OPERATIONS)
    assert not unreviewed, (f"public routes (roles=None) not on PUBLIC_OPERATIONS: {sorted(unreviewed)}. Give each "
                            "route the roles that may use it, or review why it is public and list it there.")
    assert set(PUBLIC_OPERATIONS) <= public, f"no longer served or no longer public: {set(PUBLIC_OPERATIONS) - public}"
    for route in routes:
        assert route.roles is None or route.roles <= frozenset(Role), route.path


async def test_every_route_answers_every_role_as_its_policy_says(api: Api, tmp_path: Path) -> None:
    world = await world_module.build(api, tmp_path)
    routes = served_routes(api.client.app)
    failures: list[str] = []
    admin_answers: dict[tuple[str, str], int] = {}
    for number, route in enumerate(routes):
        actors = await world.actors(api, f"r{number}")
        documented = documented_statuses(route)
        query = _query(route, world)
        label = f"{route.method} {route.path}"

        anonymous_path, _ = fill_path(route.path, world.path_values())
        status, body, headers = await _call(api, route, anonymous_path, token=None, query=query)
        if route.roles is None:
            if _guard_refused(status, body):
                failures.append(f"{label} is public, yet anonymous got {status} {body!r:.200}")
        elif status != 401 or body["error"]["code"] != "unauthorized" or "Bearer" not in headers.get(
                "WWW-Authenticate", ""):
            failures.append(f"{label} anonymous: {status} {body!r:.200}, expected the guard's 401")

        for role in ROLES:
            # A route naming an account acts on the caller's own (agents and users act on themselves), the admin's
            # on another one's (the agent's).
            own = actors[Role.AGENT if role is Role.ADMIN else role].username
            path, unknown = fill_path(route.path, {key: value for key, value in world.path_values().items()
                                                   if key[1] != "username"}, {"username": own})
            status, body, _ = await _call(api, route, path, token=await api.token_for(actors[role]), query=query)
            allowed = route.roles is None or role is Role.ADMIN or role in route.roles
            if not allowed:
                if status != 403 or body["error"]["code"] != "forbidden":
                    failures.append(f"{label} as {role.value}: {status} {body!r:.200}, expected 403")
                continue
            if status in (401, 403) if route.roles is not None else _guard_refused(status, body):
                failures.append(f"{label} as {role.value} (allowed): {status} {body!r:.200}")
            elif status not in documented:
                failures.append(f"{label} as {role.value}: {status} is not among its documented {sorted(documented)}"
                                f" {body!r:.200}")
            if role is Role.ADMIN and route.method == "GET" and not unknown:
                admin_answers[(route.method, route.path)] = status
    assert not failures, "\n".join(failures)
    # The rows were real: the handlers ran, and every read answered the admin with its data.
    unsuccessful = {key: status for key, status in admin_answers.items()
                    if not 200 <= status < 300 and key not in NO_SUCCESS_HERE}
    assert not unsuccessful, f"reads that did not succeed for the admin on the world's rows: {unsuccessful}"
    listed = {key: admin_answers.get(key) for key in NO_SUCCESS_HERE}
    assert all(status is not None and status >= 300 for status in listed.values()), (
        f"NO_SUCCESS_HERE names routes no longer read, or that succeed now: {listed}")


# --- a provider's portal account and another provider's rows --------------------------------------------------

# Bodies that pass the schema, so the answer is the scope's, not the body's 422: f(world, the tenant aimed at).
VALID_BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/work-orders/{id}/actions"): lambda _world, tenant: {"action": "accept",
                                                                          "version": tenant.order_version},
    ("POST", "/api/v1/providers/{id}/staff"): lambda _world, tenant: {"name": "新护理员", "phone": "13800138009"},
    ("PATCH", "/api/v1/providers/{id}/staff/{staff_id}"): lambda _world, tenant: {"active": False},
    # One's own password: the world's accounts log in with PASSWORD. The provider test changes A's password once
    # in each of its two passes (B's rows, then A's own), so the bodies alternate: there and back.
    ("POST", "/api/v1/auth/password"): lambda _world, tenant: next(_PASSWORD_CHANGES),
}
_PASSWORD_CHANGES = itertools.cycle([{"current_password": PASSWORD, "new_password": "lantern-orchard-quietly-9"},
                                     {"current_password": "lantern-orchard-quietly-9", "new_password": PASSWORD}])


def _generated_body(document: dict[str, Any], route: ApiRoute) -> Any:
    """The smallest body the document's schema accepts (deterministic): for an operation no body is listed for."""
    operation = schemathesis.openapi.from_dict(document)[route.path][route.method]
    case = hypothesis.find(operation.as_strategy(), lambda _case: True, settings=hypothesis.settings(
        database=None, derandomize=True, max_examples=50, suppress_health_check=list(hypothesis.HealthCheck)))
    return case.body


def _mentions(answer: Any, markers: Iterable[str]) -> list[str]:
    text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else json.dumps(answer, ensure_ascii=False)
    return [marker for marker in markers if marker in text]


async def test_a_provider_account_never_reaches_another_providers_rows(api: Api, tmp_path: Path) -> None:
    """For every route a provider account may use: aimed at provider B's rows (in any of its path parameters),
    A's account gets 403 or 404 and B's rows are unchanged; no answer to A, with or without a filter naming B,
    mentions B; and aimed at A's own rows, the same requests go through."""
    world = await world_module.build(api, tmp_path)
    a, b = world.a, world.b
    _, document = await api.request("GET", "/api/v1/openapi.json", role=None)
    routes = [route for route in served_routes(api.client.app)
              if route.roles is not None and Role.PROVIDER in route.roles]
    assert {(route.method, route.path) for route in routes} >= {
        ("GET", "/api/v1/work-orders"), ("GET", "/api/v1/work-orders/{id}"),
        ("POST", "/api/v1/work-orders/{id}/actions"),
        ("GET", "/api/v1/providers/{id}"), ("GET", "/api/v1/providers/{id}/staff"),
        ("POST", "/api/v1/providers/{id}/staff"), ("PATCH", "/api/v1/providers/{id}/staff/{staff_id}"),
        ("GET", "/api/v1/providers/{id}/evaluation")}
    b_markers = (b.name, b.account.username, b.order_number)
    _, b_staff_before = await api.request("GET", f"/api/v1/providers/{b.provider_id}/staff")
    _, b_order_before = await api.request("GET", f"/api/v1/work-orders/{b.order_id}")
    failures: list[str] = []
    for route in routes:
        label = f"{route.method} {route.path}"
        body_of = VALID_BODIES.get((route.method, route.path))
        body = None
        if route.body is not None:
            body = body_of(world, b) if body_of else _generated_body(document, route)
        owned = [(segment, name) for segment, name in _path_keys(route.path) if (segment, name) in a.path_values()]
        neutral = world.path_values()
        queries = [{}]
        if route.query is not None and "provider_id" in route.query.model_fields:
            queries.append({"provider_id": str(b.provider_id)})
        # Every mix of A's and B's rows in the path but A's alone; a path naming no provider's row: as it is.
        for mix in itertools.product((a, b), repeat=len(owned)):
            if owned and b not in mix:
                continue
            values = {**neutral, **{key: tenant.path_values()[key] for key, tenant in zip(owned, mix, strict=True)}}
            path, _ = fill_path(route.path, values)
            for query in queries:
                token = await api.token_for(a.account)
                status, answer, _ = await _call(api, route, path, token=token, query=query, body=body)
                if owned and status not in (403, 404):
                    failures.append(f"{label} {path} {query}: {status} {answer!r:.200}, expected 403 or 404"
                                    + ("" if body_of or route.body is None else
                                       " (give VALID_BODIES a body this route accepts)"))
                if leaked := _mentions(answer, b_markers):
                    failures.append(f"{label} {path} {query}: the answer names B ({leaked})")
    _, b_staff_after = await api.request("GET", f"/api/v1/providers/{b.provider_id}/staff")
    _, b_order_after = await api.request("GET", f"/api/v1/work-orders/{b.order_id}")
    assert b_staff_after == b_staff_before
    assert (b_order_after["status"], b_order_after["version"]) == (b_order_before["status"], b_order_before["version"])
    assert not failures, "\n".join(failures)

    # The same requests aimed at A's own rows go through: the refusals above were the scope's.
    for route in routes:
        values = {**world.path_values(), **a.path_values()}
        if "{session}" in route.path:  # a live session of A's (an earlier route may have ended the world's one)
            fresh = await api.token_for(a.account)
            values[("sessions", "session")] = api.tokens.verify(fresh, utcnow()).session_id
        path, _ = fill_path(route.path, values)
        body_of = VALID_BODIES.get((route.method, route.path))
        body = (body_of(world, a) if body_of else _generated_body(document, route)) if route.body else None
        status, answer, _ = await _call(api, route, path, token=await api.token_for(a.account), body=body)
        assert 200 <= status < 300, (route.method, path, status, answer)


def _path_keys(path: str) -> list[tuple[str, str]]:
    segments = path.split("/")
    return [(segments[index - 1], segment[1:-1]) for index, segment in enumerate(segments)
            if segment.startswith("{") and segment.endswith("}")]


# --- pages -------------------------------------------------------------------------------------------------------


def _expected_page(page: Page, role: Role | None, homes: dict[Role, str]) -> tuple[int, str | None]:
    """What ``role`` (None: nobody signed in) gets from ``page``: (status, where it is sent)."""
    if page.public:
        return 200, None
    if role is None:
        return 303, "/login"
    if not page.is_for(role):
        return 303, homes.get(role, "/")
    return (200 if page.allows(role) else 403), None


async def test_every_page_answers_every_role_as_its_declaration_says(api: Api, tmp_path: Path) -> None:
    world = await world_module.build(api, tmp_path)
    panel = api.client.app[PANEL]
    pages = (LOGIN_PAGE, *panel.pages)
    public = {page.path for page in pages if page.public}
    assert public == set(PUBLIC_PAGES), (f"public pages (accounts=None) not reviewed: {public - set(PUBLIC_PAGES)}; "
                                         f"reviewed but no longer public: {set(PUBLIC_PAGES) - public}")
    actors: dict[Role | None, User | None] = {None: None, **await world.actors(api, "pages")}
    failures: list[str] = []
    browser = api.client
    for role, user in actors.items():
        browser.session.cookie_jar.clear()  # nobody signed in
        if user is not None:
            signed_in = await log_in(browser, user.username)
            assert signed_in.status == 303, (role, await signed_in.text())
            assert signed_in.headers["Location"] == home_of(panel, user.role)
        for page in panel.pages:
            response = await browser.get(page.path, allow_redirects=False)
            text = await response.text()
            expected = _expected_page(page, role, dict(panel.homes))
            got = (response.status, response.headers.get("Location"))
            if got != expected:
                failures.append(f"{page.path} as {role}: {got}, expected {expected}")
            has_token = user is not None and '"token":' in text
            if has_token != (expected[0] == 200 and not page.public):
                failures.append(f"{page.path} as {role}: the page {'carries' if has_token else 'lacks'} the "
                                "bearer token")
        login = await browser.get("/login", allow_redirects=False)
        expected_login = (200, None) if user is None else (303, home_of(panel, user.role))
        if (login.status, login.headers.get("Location")) != expected_login:
            failures.append(f"/login as {role}: {login.status}, expected {expected_login}")
    assert not failures, "\n".join(failures)
    assert {page.path for page in panel.pages} >= {"/", "/provider", "/orders", "/library", "/wallboard"}
