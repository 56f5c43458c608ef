"""/api/v1/openapi.json: the document built from the very route table the app serves."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from callcenter.api.registry import ApiRequest, ApiRoutes


class OpenApiDocument(BaseModel):
    """An OpenAPI 3.1 document (https://spec.openapis.org/oas/v3.1.0)."""

    model_config = ConfigDict(extra="allow")
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]


DOCUMENT = web.AppKey("api_openapi_document", OpenApiDocument)
routes = ApiRoutes("meta")


@routes.route("GET", "/openapi.json", summary="Read this API's OpenAPI 3.1 document", response=OpenApiDocument,
              roles=None)
async def openapi_document(request: ApiRequest) -> OpenApiDocument:
    return request.require(DOCUMENT)  # type: ignore[no-any-return]
