"""The OpenAPI document is valid 3.1 and describes every /api/v1 route the app serves."""

from __future__ import annotations

from openapi_spec_validator import OpenAPIV31SpecValidator

from callcenter.api.registry import API_PREFIX
from callcenter.api.schemas import MAX_INT
from callcenter.users.models import Role
from tests.apiclient import Api


async def test_document_is_public_valid_and_covers_every_route(api: Api) -> None:
    status, document = await api.request("GET", "/api/v1/openapi.json", role=None)
    assert status == 200
    OpenAPIV31SpecValidator(document).validate()
    assert document["openapi"].startswith("3.1")
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in api.client.app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith(API_PREFIX)
    }
    documented = {(method, path) for path, operations in document["paths"].items() for method in operations}
    assert served == documented
    assert len(served) == 177


async def test_operations_declare_bodies_errors_and_security(api: Api) -> None:
    _, document = await api.request("GET", "/api/v1/openapi.json", role=None)
    paths = document["paths"]
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "HMAC-SHA256"}
    login = paths["/api/v1/auth/login"]["post"]
    assert login["security"] == []
    assert set(login["responses"]) == {"200", "400", "401", "422", "423", "429"}
    create_device = paths["/api/v1/devices"]["post"]
    assert set(create_device["responses"]) == {"201", "400", "401", "403", "409", "422"}
    body_ref = create_device["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = document["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert {"elder_id", "kind", "sip_username"} <= set(body["required"])
    assert "sip_password" in body["properties"] and "sip_password" not in body["required"]  # generated if absent
    created_ref = create_device["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    assert "sip_password" not in document["components"]["schemas"][created_ref.rsplit("/", 1)[1]]["properties"]
    calls = paths["/api/v1/calls"]["get"]
    assert {p["name"] for p in calls["parameters"]} == {"elder_id", "since", "until", "kind", "limit", "offset"}
    assert paths["/api/v1/elders/{id}"]["patch"]["parameters"][0] == {
        "name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}
    error = document["components"]["schemas"]["ErrorBody"]
    assert error["properties"]["error"]["$ref"].endswith("/Error")
    assert paths["/api/v1/users"]["post"]["x-roles"] == []
    assert paths["/api/v1/elders"]["get"]["x-roles"] == ["agent", "auditor", "supervisor"]


async def test_unknown_api_paths_and_methods_answer_json(api: Api) -> None:
    status, body = await api.request("GET", "/api/v1/nothing-here")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await api.request("DELETE", "/api/v1/elders")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"
    status, body = await api.request("GET", "/api/v1/elders/not-a-number")
    assert status == 404 and body["error"]["field"] == "id"


async def test_health_and_panel_still_work_next_to_the_api(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status == 503  # AMI and FastAGI are not running here
    assert (await response.json())["checks"]["database"]["ok"]
    response = await api.client.get("/")
    assert response.status == 200 and "text/html" in response.content_type


def _unbounded_integers(schema: dict, where: str, schemas: dict, seen: frozenset[str] = frozenset()) -> list[str]:
    """Where ``schema`` (following references) admits an integer with no maximum, or one beyond MAX_INT."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return [] if name in seen else _unbounded_integers(schemas[name], name, schemas, seen | {name})
    found = []
    if schema.get("type") == "integer" and schema.get("maximum", MAX_INT + 1) > MAX_INT:
        found.append(where)
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            found += _unbounded_integers(part, where, schemas, seen)
    for name, part in schema.get("properties", {}).items():
        found += _unbounded_integers(part, f"{where}.{name}", schemas, seen)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found += _unbounded_integers(schema[key], f"{where}[]", schemas, seen)
    return found


async def test_every_integer_a_request_carries_fits_the_database(api: Api) -> None:
    """An id, offset or version past a 32-bit INTEGER reached the database and ended in a 500 (SQLite refuses
    integers past 64 bits, PostgreSQL past 32): found by the fuzzing (test_fuzz.py). Every integer in a path, a
    query string or a body is now bounded by MAX_INT in the schema the request is parsed with."""
    _, document = await api.request("GET", "/api/v1/openapi.json", role=None)
    schemas = document["components"]["schemas"]
    unbounded = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                unbounded += _unbounded_integers(parameter["schema"], f"{method} {path} {parameter['name']}", schemas)
            if "requestBody" in operation:
                body = operation["requestBody"]["content"]["application/json"]["schema"]
                unbounded += _unbounded_integers(body, f"{method} {path} body", schemas)
    assert not unbounded, sorted(set(unbounded))


async def test_integers_past_the_database_are_refused_not_sent_to_it(api: Api) -> None:
    for path in ("/api/v1/elders/2147483648", f"/api/v1/elders/{'9' * 5000}", f"/api/v1/elders/{'0' * 11}1"):
        status, body = await api.request("GET", path)
        assert status == 404 and body["error"]["field"] == "id", path[:40]
    status, body = await api.request("GET", "/api/v1/work-orders", params={"provider_id": str(2**64)})
    assert status == 422 and body["error"]["field"] == "provider_id"
    status, body = await api.request("GET", "/api/v1/calls", params={"offset": str(2**31)})
    assert status == 422 and body["error"]["field"] == "offset"
    status, body = await api.request("PATCH", "/api/v1/work-orders/1", json={"version": 2**63})
    assert status == 422 and body["error"]["field"] == "version"


async def test_a_date_time_is_iso_8601_text_within_the_years_utc_holds(api: Api) -> None:
    """Found by the fuzzing: ``until=-1002254`` was read as a Unix time (the document says ISO 8601), and a
    date-time that UTC cannot hold (the year 0 there) reached the database's UTC conversion and ended in a 500."""
    for path in ("/api/v1/calls", "/api/v1/recordings", "/api/v1/audit"):
        for value in ("-1002254", "1700000000", " 1.5e9 ", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
            status, body = await api.request("GET", path, params={"until": value})
            assert status == 422 and body["error"]["field"] == "until", (path, value, body)
        status, _ = await api.request("GET", path, params={"until": "2026-03-01T08:00:00+08:00"})
        assert status == 200, path
    for value in ("0001-01-01T00:00:00+08:00", "1700000000", "2026-03-01T08:00:00"):  # the last: naive
        status, order = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT, json={
            "kind": "consultation", "title": "来电", "due_at": value})
        assert status == 422 and order["error"]["field"] == "due_at", (value, order)
    status, order = await api.request("POST", "/api/v1/work-orders", role=Role.AGENT, json={
        "kind": "consultation", "title": "来电", "due_at": "2026-12-31T17:00:00+08:00"})
    assert status == 201 and order["due_at"] == "2026-12-31T09:00:00Z", order
