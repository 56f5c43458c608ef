"""Providers: registering them, and proposing who should serve an elder's need (seed 6.1.3).

Ranking: the elder's chosen provider first (if it offers the service), then providers serving the elder's
community, then city-wide ones, then the rest that offer the service. Each suggestion says why it is there.
Distance, rating and current load join the ranking with the service-workflow issue.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import Conflict, Invalid, NotFound
from callcenter.elders.models import Elder
from callcenter.providers.models import ServiceProvider, ServiceType


@dataclasses.dataclass(frozen=True, slots=True)
class Suggestion:
    provider: ServiceProvider
    reason: str
    rank: int


async def create_provider(session: AsyncSession, *, name: str, phone: str | None, services: Sequence[ServiceType],
                          communities: Sequence[str]) -> ServiceProvider:
    provider = ServiceProvider(name=name, phone=phone, services=sorted({s.value for s in services}),
                               communities=sorted(set(communities)), active=True)
    try:
        async with session.begin_nested():
            session.add(provider)
    except IntegrityError:
        raise Conflict(f"a provider named {name!r} exists already", field="name") from None
    return provider


async def list_providers(session: AsyncSession, service: ServiceType | None = None) -> list[ServiceProvider]:
    providers = (await session.scalars(select(ServiceProvider).order_by(ServiceProvider.name))).all()
    return [p for p in providers if service is None or service.value in p.services]


async def active_provider(session: AsyncSession, provider_id: int, service: str | None = None, *,
                          field: str = "provider_id") -> ServiceProvider:
    """The provider an order or an elder may name: it exists, is active, and offers ``service`` if given."""
    provider = await session.get(ServiceProvider, provider_id)
    if provider is None:
        raise Invalid(f"no provider {provider_id}", field=field)
    if not provider.active:
        raise Invalid(f"provider {provider.name!r} is not active", field=field)
    if service is not None and service not in provider.services:
        raise Invalid(f"provider {provider.name!r} does not offer {service}", field=field)
    return provider


async def suggest(session: AsyncSession, service: ServiceType, elder_id: int | None) -> list[Suggestion]:
    elder = await session.get(Elder, elder_id) if elder_id is not None else None
    if elder_id is not None and elder is None:
        raise NotFound(f"no elder {elder_id}", field="elder_id")
    offering = [p for p in await list_providers(session, service) if p.active]
    chosen_id = elder.preferred_provider_id if elder is not None else None
    community = elder.community if elder is not None else None

    def reason_of(provider: ServiceProvider) -> tuple[int, str]:
        if provider.id == chosen_id:
            return 1, "chosen_by_elder"
        if community and community in provider.communities:
            return 2, "serves_community"
        if not provider.communities:
            return 3, "citywide"
        return 4, "other_area"

    ranked = sorted(((reason_of(p), p.name, p) for p in offering), key=lambda item: (item[0][0], item[1]))
    return [Suggestion(provider=p, reason=reason, rank=index + 1)
            for index, ((_, reason), _, p) in enumerate(ranked)]
