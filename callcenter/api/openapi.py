"""The OpenAPI 3.1 document, built from the route table and the pydantic schemas the handlers parse with."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from callcenter import __version__
from callcenter.api.registry import ApiRoute, BinaryResponse, is_int_param
from callcenter.api.schemas import MAX_INT, ErrorBody

_REF = "#/components/schemas/{model}"
OPENAPI_VERSION = "3.1.0"


TITLE = "居家和社区养老服务智慧信息平台 REST API"


def build_document(routes: Iterable[ApiRoute], *, title: str = TITLE) -> dict[str, Any]:
    routes = list(routes)
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorBody, "serialization")]
    for route in routes:
        if not isinstance(route.response, BinaryResponse):
            wanted.append((route.response, "serialization"))
        if route.body is not None:
            wanted.append((route.body, "validation"))
        if route.query is not None:
            wanted.append((route.query, "validation"))
    unique = list(dict.fromkeys(wanted))
    refs, definitions = models_json_schema(unique, ref_template=_REF)
    schemas: dict[str, Any] = definitions.get("$defs", {})

    def ref(model: type[BaseModel], mode: Literal["validation", "serialization"]) -> dict[str, Any]:
        return dict(refs[(model, mode)])

    error_ref = ref(ErrorBody, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "tags": [route.tag],
            "parameters": _parameters(route, schemas, refs),
            "responses": {
                **_success(route, ref),
                **{
                    str(status): {
                        "description": HTTPStatus(status).phrase,
                        "content": {"application/json": {"schema": error_ref}},
                    }
                    for status in route.error_statuses()
                },
            },
        }
        if route.description:
            operation["description"] = route.description
        if not operation["parameters"]:
            del operation["parameters"]
        if route.body is not None:
            operation["requestBody"] = {
                "required": True, "content": {"application/json": {"schema": ref(route.body, "validation")}},
            }
        if route.roles is None:
            operation["security"] = []
        else:
            operation["x-roles"] = sorted(role.value for role in route.roles)
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": __version__,
            "description": "Log in with POST /api/v1/auth/login, then send `Authorization: Bearer <token>`. "
                           "Errors are `{\"error\": {\"code\", \"message\", \"field\"}}`; `field` is a dotted path. "
                           "`x-roles` lists the roles allowed besides admin.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "HMAC-SHA256"}},
        },
    }


def _success(route: ApiRoute, ref: Callable[[type[BaseModel], JsonSchemaMode], dict[str, Any]]
             ) -> dict[str, Any]:
    if not isinstance(route.response, BinaryResponse):
        return {str(route.status): {
            "description": HTTPStatus(route.status).phrase,
            "content": {"application/json": {"schema": ref(route.response, "serialization")}},
        }}
    binary = route.response
    answer: dict[str, Any] = {"content": {binary.media_type: {"schema": {"type": "string", "format": "binary"}}}}
    if binary.headers:
        answer["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                             for name, text in binary.headers}
    return {str(status): {"description": HTTPStatus(status).phrase, **answer} for status in binary.statuses}


def _parameters(route: ApiRoute, schemas: dict[str, Any],
                refs: dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]]) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INT} if is_int_param(name) else {"type": "string"}}
        for name in route.path_params
    ]
    parameters += [{"name": name, "in": "header", "required": True, "description": text,
                    "schema": {"type": "string"}} for name, text in route.headers]
    if route.query is not None:
        query_schema = schemas[refs[(route.query, "validation")]["$ref"].rsplit("/", 1)[1]]
        required = set(query_schema.get("required", ()))
        for name, schema in query_schema.get("properties", {}).items():
            parameter = {"name": name, "in": "query", "required": name in required, "schema": schema}
            if "description" in schema:
                parameter["description"] = schema["description"]
            parameters.append(parameter)
    return parameters
