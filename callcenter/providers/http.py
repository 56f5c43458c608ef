"""/api/v1/providers: the service providers registry (admins add; staff read) and provider suggestions for an
elder's need, as the agent completes a work order."""

from __future__ import annotations

from callcenter.api.context import DATABASE
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.providers.schemas import (
    ProviderCreate,
    ProviderList,
    ProviderOut,
    ProviderQuery,
    Suggestion,
    SuggestionList,
    SuggestionQuery,
)
from callcenter.providers.services import create_provider, list_providers, suggest
from callcenter.users.models import Role

routes = ApiRoutes("providers")
READERS = (Role.SUPERVISOR, Role.AGENT, Role.AUDITOR)


@routes.route("POST", "/providers", summary="Register a service provider", body=ProviderCreate,
              response=ProviderOut, status=201, roles=(), errors=(409,))
async def create(request: ApiRequest) -> ProviderOut:
    body: ProviderCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        provider = await create_provider(session, name=body.name, phone=body.phone, services=body.services,
                                         communities=body.communities)
        return ProviderOut.model_validate(provider)


@routes.route("GET", "/providers", summary="List service providers, optionally those offering a service",
              query=ProviderQuery, response=ProviderList, roles=READERS)
async def index(request: ApiRequest) -> ProviderList:
    query: ProviderQuery = request.query
    async with request.require(DATABASE).transaction() as session:
        return ProviderList(items=[ProviderOut.model_validate(p) for p in await list_providers(session,
                                                                                               query.service)])


@routes.route("GET", "/providers/suggestions", summary="Providers proposed for an elder's need, best first",
              query=SuggestionQuery, response=SuggestionList, roles=READERS, errors=(404,))
async def suggestions(request: ApiRequest) -> SuggestionList:
    """The elder's chosen provider first, then those serving the elder's community, then city-wide ones, then
    the rest offering the service; each with the reason it is proposed."""
    query: SuggestionQuery = request.query
    async with request.require(DATABASE).transaction() as session:
        found = await suggest(session, query.service, query.elder_id)
        return SuggestionList(service=query.service, elder_id=query.elder_id, items=[
            Suggestion(provider=ProviderOut.model_validate(s.provider), reason=s.reason, rank=s.rank)
            for s in found])
