"""The OpenAPI document is valid 3.1 and describes every /api/v1 route the app serves."""

from __future__ import annotations

from openapi_spec_validator import OpenAPIV31SpecValidator

from callcenter.api.registry import API_PREFIX
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
    assert len(served) == 112


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
        "name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
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
