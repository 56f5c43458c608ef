"""Providers: the registry (seed 5.11), proposing who should serve an elder's need (seed 6.1.3), portal accounts,
API keys, and the rating from the provider's record (seed 6.6, 8).

Services take the caller's session and work inside its transaction; every change is audited with it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import secrets
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import Conflict, Invalid, NotFound
from callcenter.audit.services import Actor, record
from callcenter.db.base import utcnow
from callcenter.elders.models import Elder
from callcenter.orders.models import Complaint, WorkOrder, WorkOrderStatus
from callcenter.providers.models import ProviderApiKey, ProviderStaff, ServiceProvider, ServiceType
from callcenter.supervision_cases.models import SupervisionCase, SupervisionUrging
from callcenter.users.models import Role, User
from callcenter.users.services import create_user

# A provider's orders that keep its people busy now: what "current load" counts in matching.
BUSY_STATUSES = (WorkOrderStatus.DISPATCHED, WorkOrderStatus.ACCEPTED, WorkOrderStatus.IN_SERVICE)
EARTH_RADIUS_KM = 6371.0088


def licence_valid(provider: ServiceProvider, today: dt.date) -> bool:
    """A licence is valid through its expiry day; a provider without a recorded expiry is not refused."""
    return provider.licence_expires_on is None or provider.licence_expires_on >= today


# --- registry -------------------------------------------------------------------------------------------------


async def get_provider(session: AsyncSession, provider_id: int) -> ServiceProvider:
    provider = await session.get(ServiceProvider, provider_id)
    if provider is None:
        raise NotFound(f"no provider {provider_id}", field="id")
    return provider


async def _check_name_free(session: AsyncSession, name: str, provider_id: int | None) -> None:
    statement = select(ServiceProvider.id).where(ServiceProvider.name == name)
    if provider_id is not None:
        statement = statement.where(ServiceProvider.id != provider_id)
    if await session.scalar(statement) is not None:
        raise Conflict(f"a provider named {name!r} exists already", field="name")


def _stored(field: str, value: Any) -> Any:
    """A request value as the registry keeps it (enum values, sorted sets, fees as plain JSON)."""
    if field == "services":
        return sorted({ServiceType(s).value for s in value})
    if field == "communities":
        return sorted(set(value))
    if field == "fees":
        return {ServiceType(service).value: fee.model_dump() if hasattr(fee, "model_dump") else dict(fee)
                for service, fee in value.items()}
    return value


async def create_provider(session: AsyncSession, fields: Mapping[str, Any], actor: Actor) -> ServiceProvider:
    """Register a provider from the request's fields (``ProviderCreate``; fees were checked to name offered
    services)."""
    await _check_name_free(session, fields["name"], None)
    values = {name: _stored(name, value) for name, value in fields.items()}
    provider = ServiceProvider(**values)
    try:
        async with session.begin_nested():
            session.add(provider)
    except IntegrityError:  # a concurrent registration took the name
        raise Conflict(f"a provider named {fields['name']!r} exists already", field="name") from None
    record(session, actor, action="provider.create", target_type="provider", target_id=provider.id,
           details={"name": provider.name, "services": provider.services, "communities": provider.communities})
    return provider


async def update_provider(session: AsyncSession, provider_id: int, changes: Mapping[str, Any],
                          actor: Actor) -> ServiceProvider:
    """Change the fields given. Dropping a service is refused while a fee or an active staff member's skill
    still names it: the admin changes those in the same request (fees) or first (staff), nothing is lost
    silently."""
    provider = await get_provider(session, provider_id)
    if "name" in changes and changes["name"] != provider.name:
        await _check_name_free(session, changes["name"], provider.id)
    values = {name: _stored(name, value) for name, value in changes.items()}
    services = set(values.get("services", provider.services))
    fees = values.get("fees", provider.fees)
    stray_fees = sorted(set(fees) - services)
    if stray_fees:
        raise Invalid(f"fees for services not offered: {', '.join(stray_fees)}; change fees too",
                      field="fees" if "fees" in values else "services")
    if "services" in values:
        for person in await _staff_of(session, provider.id):
            stray = sorted(set(person.skills) - services) if person.active else []
            if stray:
                raise Invalid(f"staff member {person.name!r} (#{person.id}) still has the skill "
                              f"{', '.join(stray)}: change their skills first", field="services")
    changed = sorted(name for name, value in values.items() if getattr(provider, name) != value)
    for name in changed:
        setattr(provider, name, values[name])
    if changed:
        await session.flush()
        await session.refresh(provider, ["updated_at"])
        record(session, actor, action="provider.update", target_type="provider", target_id=provider.id,
               details={"fields": changed})
    return provider


async def list_providers(session: AsyncSession, service: ServiceType | None = None) -> list[ServiceProvider]:
    providers = (await session.scalars(select(ServiceProvider).order_by(ServiceProvider.name))).all()
    return [p for p in providers if service is None or service.value in p.services]


async def active_provider(session: AsyncSession, provider_id: int, service: str | None = None, *,
                          today: dt.date, field: str = "provider_id") -> ServiceProvider:
    """The provider an order or an elder may name: it exists, is active, its licence has not expired (on
    ``today``, the date in the centre's time zone: a licence runs through its last day there), and it offers
    ``service`` if given."""
    provider = await session.get(ServiceProvider, provider_id)
    if provider is None:
        raise Invalid(f"no provider {provider_id}", field=field)
    if not provider.active:
        raise Invalid(f"provider {provider.name!r} is not active", field=field)
    if not licence_valid(provider, today):
        raise Invalid(f"provider {provider.name!r}: its licence expired on {provider.licence_expires_on}",
                      field=field, code="licence_expired")
    if service is not None and service not in provider.services:
        raise Invalid(f"provider {provider.name!r} does not offer {service}", field=field)
    return provider


# --- staff ----------------------------------------------------------------------------------------------------


async def _staff_of(session: AsyncSession, provider_id: int) -> list[ProviderStaff]:
    return list((await session.scalars(select(ProviderStaff).where(ProviderStaff.provider_id == provider_id)
                                       .order_by(ProviderStaff.id))).all())


def _check_skills(provider: ServiceProvider, skills: Sequence[str]) -> None:
    stray = sorted(set(skills) - set(provider.services))
    if stray:
        raise Invalid(f"{provider.name!r} does not offer {', '.join(stray)}", field="skills")


async def list_staff(session: AsyncSession, provider_id: int) -> list[ProviderStaff]:
    await get_provider(session, provider_id)
    return await _staff_of(session, provider_id)


async def add_staff(session: AsyncSession, provider_id: int, fields: Mapping[str, Any],
                    actor: Actor) -> ProviderStaff:
    provider = await get_provider(session, provider_id)
    skills = _stored("services", fields.get("skills", []))
    _check_skills(provider, skills)
    person = ProviderStaff(provider_id=provider.id, name=fields["name"], phone=fields.get("phone"), skills=skills,
                           certificate=fields.get("certificate"), active=fields.get("active", True))
    session.add(person)
    await session.flush()
    record(session, actor, action="provider_staff.create", target_type="provider", target_id=provider.id,
           details={"staff_id": person.id, "name": person.name, "skills": skills})
    return person


async def update_staff(session: AsyncSession, provider_id: int, staff_id: int, changes: Mapping[str, Any],
                       actor: Actor) -> ProviderStaff:
    provider = await get_provider(session, provider_id)
    person = await session.get(ProviderStaff, staff_id)
    if person is None or person.provider_id != provider.id:
        raise NotFound(f"no staff member {staff_id} at this provider", field="staff_id")
    values = {name: _stored("services", value) if name == "skills" else value for name, value in changes.items()}
    if values.get("active", person.active):  # an active person delivers only what the provider offers
        _check_skills(provider, values.get("skills", person.skills))
    changed = sorted(name for name, value in values.items() if getattr(person, name) != value)
    for name in changed:
        setattr(person, name, values[name])
    if changed:
        await session.flush()
        record(session, actor, action="provider_staff.update", target_type="provider", target_id=provider.id,
               details={"staff_id": person.id, "fields": changed})
    return person


# --- portal accounts and API keys -------------------------------------------------------------------------------


async def create_account(session: AsyncSession, provider_id: int, *, username: str, password: str,
                         display_name: str | None, actor: Actor) -> User:
    """A provider-portal login: role provider, bound to this provider, so it sees only the provider's data."""
    provider = await get_provider(session, provider_id)
    user = await create_user(session, username=username, password=password, role=Role.PROVIDER,
                             display_name=display_name, extension=None, sip_password=None, actor=actor)
    user.provider_id = provider.id
    await session.flush()
    record(session, actor, action="provider.account_create", target_type="provider", target_id=provider.id,
           details={"user_id": user.id, "username": user.username})
    return user


def new_key_id() -> str:
    return f"ccpk_{secrets.token_hex(8)}"


async def create_api_key(session: AsyncSession, provider_id: int, actor: Actor) -> ProviderApiKey:
    """A signing key: the 32-byte random secret is returned to the caller once, never listed again."""
    provider = await get_provider(session, provider_id)
    key = ProviderApiKey(key_id=new_key_id(), provider_id=provider.id, secret=secrets.token_urlsafe(32))
    session.add(key)
    await session.flush()
    record(session, actor, action="provider_api_key.create", target_type="provider", target_id=provider.id,
           details={"key_id": key.key_id})
    return key


async def list_api_keys(session: AsyncSession, provider_id: int) -> list[ProviderApiKey]:
    await get_provider(session, provider_id)
    return list((await session.scalars(select(ProviderApiKey).where(ProviderApiKey.provider_id == provider_id)
                                       .order_by(ProviderApiKey.id))).all())


async def revoke_api_key(session: AsyncSession, provider_id: int, key_id: str, actor: Actor) -> ProviderApiKey:
    """Revoke at once: the next request signed with it is refused (revoked_key). Revoking again changes
    nothing."""
    await get_provider(session, provider_id)
    key = await session.scalar(select(ProviderApiKey).where(ProviderApiKey.key_id == key_id,
                                                            ProviderApiKey.provider_id == provider_id))
    if key is None:
        raise NotFound(f"no API key {key_id!r} for this provider", field="key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
        record(session, actor, action="provider_api_key.revoke", target_type="provider", target_id=provider_id,
               details={"key_id": key.key_id})
    return key


# --- rating -----------------------------------------------------------------------------------------------------

FOUNDED_COMPLAINT_PENALTY = 0.5
URGING_PENALTY = 0.1
NEUTRAL_SATISFACTION = 3.0


@dataclasses.dataclass(frozen=True, slots=True)
class Evaluation:
    provider_id: int
    orders_closed: int
    rated_orders: int
    average_satisfaction: float | None
    founded_complaints: int
    supervision_cases: int
    urgings: int
    rating: float | None


async def evaluate(session: AsyncSession, provider_id: int) -> Evaluation:
    """The provider's record and the rating it earns. Reads only.

    rating = clamp(S − 0.5 × C − 0.1 × U, 1, 5), rounded to 2 decimals, where

    - S: the average satisfaction (1..5) of the provider's closed orders that have one; 3.0 (neutral) when none
      has, so complaints and urgings still count against a provider without rated orders;
    - C: complaints about the provider closed as founded;
    - U: urgings (催办) recorded on supervision cases about the provider.

    A provider with no rated closed order, no founded complaint and no urging is not rated (None)."""
    await get_provider(session, provider_id)
    closed, rated, average = (await session.execute(
        select(func.count(WorkOrder.id), func.count(WorkOrder.satisfaction), func.avg(WorkOrder.satisfaction))
        .where(WorkOrder.provider_id == provider_id, WorkOrder.status == WorkOrderStatus.CLOSED))).one()
    founded = await session.scalar(select(func.count()).select_from(Complaint).where(
        Complaint.about_provider_id == provider_id, Complaint.founded.is_(True)))
    cases = await session.scalar(select(func.count()).select_from(SupervisionCase).where(
        SupervisionCase.provider_id == provider_id))
    urgings = await session.scalar(select(func.count()).select_from(SupervisionUrging).join(SupervisionCase).where(
        SupervisionCase.provider_id == provider_id))
    average_satisfaction = None if not rated else round(float(average), 2)
    rating: float | None = None
    if rated or founded or urgings:
        base = float(average) if rated else NEUTRAL_SATISFACTION
        raw = base - FOUNDED_COMPLAINT_PENALTY * int(founded or 0) - URGING_PENALTY * int(urgings or 0)
        rating = round(min(5.0, max(1.0, raw)), 2)
    return Evaluation(provider_id=provider_id, orders_closed=int(closed), rated_orders=int(rated),
                      average_satisfaction=average_satisfaction, founded_complaints=int(founded or 0),
                      supervision_cases=int(cases or 0), urgings=int(urgings or 0), rating=rating)


async def recompute_rating(session: AsyncSession, provider_id: int) -> float | None:
    """Set ``provider.rating`` by the formula of :func:`evaluate`; call it when an order of the provider
    closes, a complaint about it is closed or an urging on its case is recorded. Returns the rating."""
    evaluation = await evaluate(session, provider_id)
    provider = await get_provider(session, provider_id)
    if provider.rating != evaluation.rating:
        provider.rating = evaluation.rating
        await session.flush()
    return evaluation.rating


# --- matching ---------------------------------------------------------------------------------------------------

AREA_SCORE = {"serves_community": 3.0, "citywide": 2.0, "other_area": 0.0}
DISTANCE_SCORE = 2.0  # at the elder's door; falls linearly to 0 at DISTANCE_REACH_KM
DISTANCE_REACH_KM = 10.0
UNKNOWN_DISTANCE_SCORE = 1.0  # as if 5 km away: neither rewarded nor punished for a missing position
RATING_WEIGHT = 0.5  # per star above or below 3
LOAD_PENALTY = 0.25  # per order in progress
MAX_LOAD_PENALTY = 2.0


@dataclasses.dataclass(frozen=True, slots=True)
class Suggestion:
    provider: ServiceProvider
    reason: str
    rank: int
    distance_km: float | None
    rating: float | None
    load: int
    score: float


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two WGS-84 points, in km."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


async def current_loads(session: AsyncSession, provider_ids: Collection[int]) -> dict[int, int]:
    """Per provider: its work orders now dispatched, accepted or in service."""
    if not provider_ids:
        return {}
    rows = await session.execute(
        select(WorkOrder.provider_id, func.count(WorkOrder.id))
        .where(WorkOrder.provider_id.in_(list(provider_ids)), WorkOrder.status.in_(BUSY_STATUSES))
        .group_by(WorkOrder.provider_id))
    return {int(provider_id): int(count) for provider_id, count in rows.all()}


def score_of(area: str, distance_km: float | None, rating: float | None, load: int) -> float:
    """Higher is better: area + distance + rating − load.

    - area: 3 serves the elder's community, 2 city-wide, 0 another area;
    - distance: 2 at the elder's door falling linearly to 0 at 10 km and beyond; 1 when a position is unknown;
    - rating: 0.5 per star above (or below) 3; 0 when not rated;
    - load: −0.25 per order in progress, at most −2.

    So a provider of the elder's community stays ahead of a city-wide one of equal standing, while a much
    closer, better rated or idle city-wide provider can overtake a distant, busy or poorly rated local one."""
    if distance_km is None:
        distance = UNKNOWN_DISTANCE_SCORE
    else:
        distance = DISTANCE_SCORE * max(0.0, 1 - distance_km / DISTANCE_REACH_KM)
    stars = 0.0 if rating is None else RATING_WEIGHT * (rating - 3)
    return round(AREA_SCORE[area] + distance + stars - min(MAX_LOAD_PENALTY, LOAD_PENALTY * load), 2)


async def suggest(session: AsyncSession, service: ServiceType, elder_id: int | None, *,
                  today: dt.date, exclude: Collection[int] = ()) -> list[Suggestion]:
    """Providers proposed for an elder's need, best first (seed 6.1.3).

    Candidates offer ``service``, are active, their licence has not expired (on ``today``, the centre's date)
    and are not in ``exclude`` (those who declined this order). The elder's chosen provider comes first;
    the others follow by :func:`score_of` (then name; the chosen one's score is computed alike, by its area).
    Each suggestion carries its reason and the figures."""
    elder = await session.get(Elder, elder_id) if elder_id is not None else None
    if elder_id is not None and elder is None:
        raise NotFound(f"no elder {elder_id}", field="elder_id")
    excluded = set(exclude)
    offering = [p for p in await list_providers(session, service)
                if p.active and licence_valid(p, today) and p.id not in excluded]
    loads = await current_loads(session, [p.id for p in offering])
    chosen_id = elder.preferred_provider_id if elder is not None else None
    community = elder.community if elder is not None else None

    def area_of(provider: ServiceProvider) -> str:
        if community and community in provider.communities:
            return "serves_community"
        if not provider.communities:
            return "citywide"
        return "other_area"

    def distance_to(provider: ServiceProvider) -> float | None:
        if elder is None or None in (elder.latitude, elder.longitude, provider.latitude, provider.longitude):
            return None
        return round(haversine_km(elder.latitude, elder.longitude,  # type: ignore[arg-type]
                                  provider.latitude, provider.longitude), 2)  # type: ignore[arg-type]

    scored = []
    for provider in offering:
        area, distance, load = area_of(provider), distance_to(provider), loads.get(provider.id, 0)
        reason = "chosen_by_elder" if provider.id == chosen_id else area
        scored.append((reason, distance, load, score_of(area, distance, provider.rating, load), provider))
    scored.sort(key=lambda item: (item[0] != "chosen_by_elder", -item[3], item[4].name))
    return [Suggestion(provider=provider, reason=reason, rank=index + 1, distance_km=distance,
                       rating=provider.rating, load=load, score=score)
            for index, (reason, distance, load, score, provider) in enumerate(scored)]
