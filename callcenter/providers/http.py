"""/api/v1/providers: the service-provider registry (seed 5.11) with staff, portal accounts, API keys and the
evaluation; provider suggestions for an elder's need (6.1.3); and /api/v1/provider-reports, the reporting API a
provider's own system calls with signed requests (7.5.3, see providers.reporting and docs/provider-api.md).

Writes are for admins and supervisors. A provider-portal account (role provider) reads its own provider and staff
and manages its own staff; any other provider is a 404 to it, as if it did not exist.
"""

from __future__ import annotations

from callcenter.api.context import DATABASE, PROVIDER_API_MAX_SKEW, centre_today, centre_zone
from callcenter.api.errors import NotFound
from callcenter.api.registry import ApiRequest, ApiRoutes, parse_json_body
from callcenter.db.base import utcnow
from callcenter.providers import reporting
from callcenter.providers.schemas import (
    AccountCreate,
    AccountOut,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    Evaluation,
    ProviderCreate,
    ProviderList,
    ProviderOut,
    ProviderPatch,
    ProviderQuery,
    ProviderReportIn,
    ProviderReportOut,
    StaffCreate,
    StaffList,
    StaffOut,
    StaffPatch,
    Suggestion,
    SuggestionList,
    SuggestionQuery,
)
from callcenter.providers.services import (
    add_staff,
    create_account,
    create_api_key,
    create_provider,
    evaluate,
    get_provider,
    list_api_keys,
    list_providers,
    list_staff,
    revoke_api_key,
    suggest,
    update_provider,
    update_staff,
)
from callcenter.users.models import Role
from callcenter.users.sessions import SESSION_EVENTS, end_provider_sessions

routes = ApiRoutes("providers")
READERS = (Role.SUPERVISOR, Role.AGENT, Role.AUDITOR)
WRITERS = (Role.SUPERVISOR,)
# A provider's own account joins these: confined to its own provider by ``_own``.
OWN_READERS = (*READERS, Role.PROVIDER)
OWN_STAFF_WRITERS = (*WRITERS, Role.PROVIDER)


def _own(request: ApiRequest) -> int:
    """The provider in the path, refused (404) to a provider account of another provider."""
    provider_id: int = request.params["id"]
    user = request.user
    if user.role is Role.PROVIDER and user.provider_id != provider_id:
        raise NotFound(f"no provider {provider_id}", field="id")
    return provider_id


@routes.route("POST", "/providers", summary="Register a service provider", body=ProviderCreate,
              response=ProviderOut, status=201, roles=WRITERS, errors=(409,),
              description="Fees may only name services the provider offers.")
async def create(request: ApiRequest) -> ProviderOut:
    body: ProviderCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        provider = await create_provider(session, dict(body), request.actor)
        return ProviderOut.model_validate(provider)


@routes.route("GET", "/providers", summary="List service providers, optionally those offering a service",
              query=ProviderQuery, response=ProviderList, roles=READERS)
async def index(request: ApiRequest) -> ProviderList:
    query: ProviderQuery = request.query
    async with request.require(DATABASE).transaction(read_only=True) as session:
        return ProviderList(items=[ProviderOut.model_validate(p) for p in await list_providers(session,
                                                                                               query.service)])


@routes.route("GET", "/providers/suggestions", summary="Providers proposed for an elder's need, best first",
              query=SuggestionQuery, response=SuggestionList, roles=READERS, errors=(404,))
async def suggestions(request: ApiRequest) -> SuggestionList:
    """The elder's chosen provider first, then the others that offer the service, are active and licensed, by
    score: serving the elder's community (or city-wide), distance from the elder's home, rating and the orders
    they have in progress. Each comes with its reason and those figures."""
    query: SuggestionQuery = request.query
    async with request.require(DATABASE).transaction(read_only=True) as session:
        found = await suggest(session, query.service, query.elder_id, today=centre_today(request.http.app))
        return SuggestionList(service=query.service, elder_id=query.elder_id, items=[
            Suggestion(provider=ProviderOut.model_validate(s.provider), reason=s.reason,  # type: ignore[arg-type]
                       rank=s.rank, distance_km=s.distance_km, rating=s.rating, load=s.load, score=s.score)
            for s in found])


@routes.route("GET", "/providers/{id}", summary="Read a provider's registry entry", response=ProviderOut,
              roles=OWN_READERS)
async def show(request: ApiRequest) -> ProviderOut:
    async with request.require(DATABASE).transaction(read_only=True) as session:
        return ProviderOut.model_validate(await get_provider(session, _own(request)))


@routes.route("PATCH", "/providers/{id}", summary="Change a provider's registry entry", body=ProviderPatch,
              response=ProviderOut, roles=WRITERS, errors=(409,),
              description="Only the fields given change. A service is dropped only once no fee and no active "
                          "staff member's skill names it.")
async def patch(request: ApiRequest) -> ProviderOut:
    body: ProviderPatch = request.body
    async with request.require(DATABASE).transaction() as session:
        provider = await update_provider(session, request.params["id"], body.changes(), request.actor)
        ended = []
        if body.changes().get("active") is False:
            ended = await end_provider_sessions(session, provider.id, utcnow())
        out = ProviderOut.model_validate(provider)
    for notice in ended:  # its portal pages close now
        request.require(SESSION_EVENTS).ended(notice)
    return out


@routes.route("GET", "/providers/{id}/staff", summary="List a provider's staff", response=StaffList,
              roles=OWN_READERS)
async def staff(request: ApiRequest) -> StaffList:
    async with request.require(DATABASE).transaction(read_only=True) as session:
        return StaffList(items=[StaffOut.model_validate(s) for s in await list_staff(session, _own(request))])


@routes.route("POST", "/providers/{id}/staff", summary="Add a staff member to a provider", body=StaffCreate,
              response=StaffOut, status=201, roles=OWN_STAFF_WRITERS,
              description="Skills must be services the provider offers.")
async def create_staff(request: ApiRequest) -> StaffOut:
    body: StaffCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        person = await add_staff(session, _own(request), body.model_dump(), request.actor)
        return StaffOut.model_validate(person)


@routes.route("PATCH", "/providers/{id}/staff/{staff_id}", summary="Change or deactivate a staff member",
              body=StaffPatch, response=StaffOut, roles=OWN_STAFF_WRITERS)
async def patch_staff(request: ApiRequest) -> StaffOut:
    body: StaffPatch = request.body
    async with request.require(DATABASE).transaction() as session:
        person = await update_staff(session, _own(request), request.params["staff_id"], body.changes(),
                                    request.actor)
        return StaffOut.model_validate(person)


@routes.route("POST", "/providers/{id}/accounts", summary="Create a provider-portal account", body=AccountCreate,
              response=AccountOut, status=201, roles=WRITERS, errors=(409,),
              description="The account has the provider role and sees only this provider's orders and staff.")
async def create_portal_account(request: ApiRequest) -> AccountOut:
    body: AccountCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        user = await create_account(session, request.params["id"], username=body.username,
                                    password=body.password, display_name=body.display_name, actor=request.actor)
        return AccountOut.model_validate(user)


@routes.route("GET", "/providers/{id}/evaluation", summary="A provider's record and the rating it earns",
              response=Evaluation, roles=OWN_READERS)
async def evaluation(request: ApiRequest) -> Evaluation:
    """Closed orders and their satisfaction, founded complaints, supervision cases and urgings, and the rating
    by the formula of ``providers.services.evaluate``."""
    async with request.require(DATABASE).transaction(read_only=True) as session:
        return Evaluation.model_validate(await evaluate(session, _own(request)), from_attributes=True)


@routes.route("POST", "/providers/{id}/api-keys", summary="Issue a signing key for the provider's own system",
              response=ApiKeyCreated, status=201, roles=WRITERS,
              description="The secret is in this answer only: hand it to the provider over a safe channel.")
async def create_key(request: ApiRequest) -> ApiKeyCreated:
    async with request.require(DATABASE).transaction() as session:
        return ApiKeyCreated.model_validate(await create_api_key(session, request.params["id"], request.actor))


@routes.route("GET", "/providers/{id}/api-keys", summary="List a provider's signing keys (never their secrets)",
              response=ApiKeyList, roles=WRITERS)
async def keys(request: ApiRequest) -> ApiKeyList:
    async with request.require(DATABASE).transaction(read_only=True) as session:
        return ApiKeyList(items=[ApiKeyOut.model_validate(k) for k in await list_api_keys(session,
                                                                                        request.params["id"])])


@routes.route("DELETE", "/providers/{id}/api-keys/{key}", summary="Revoke a signing key", response=ApiKeyOut,
              roles=WRITERS, description="Requests signed with it are refused from now on (revoked_key).")
async def revoke_key(request: ApiRequest) -> ApiKeyOut:
    async with request.require(DATABASE).transaction() as session:
        key = await revoke_api_key(session, request.params["id"], request.params["key"], request.actor)
        return ApiKeyOut.model_validate(key)


_SIGNATURE_HEADERS = (
    (reporting.KEY_ID_HEADER, "the key's id"),
    (reporting.TIMESTAMP_HEADER, "unix seconds when the request was signed (within CC_PROVIDER_API_MAX_SKEW)"),
    (reporting.NONCE_HEADER, "16..64 characters, never reused with the same key"),
    (reporting.SIGNATURE_HEADER, "hex HMAC-SHA256(secret, \"POST\\n/api/v1/provider-reports\\n{timestamp}\\n"
                                 "{nonce}\\n{sha256 hex of the raw body}\")"),
)


@routes.route("POST", "/provider-reports", summary="A provider's system reports a step on an order (signed)",
              body=ProviderReportIn, response=ProviderReportOut, roles=None, raw_body=True,
              headers=_SIGNATURE_HEADERS, errors=(401, 404, 409),
              description="Authenticated by an HMAC-SHA256 signature over the raw body, not by a bearer token "
                          "(docs/provider-api.md). 401 codes: invalid_signature, stale_timestamp, replayed_nonce, "
                          "unknown_key, revoked_key. Idempotent by report_id: a retried delivery gets the first "
                          "answer (also a refusal) and changes nothing; the same report_id with another body is "
                          "409 report_id_reused. An order not dispatched to the provider is 404.")
async def provider_report(request: ApiRequest) -> ProviderReportOut:
    raw = await request.http.read()
    db = request.require(DATABASE)
    now = utcnow()
    max_skew = request.require(PROVIDER_API_MAX_SKEW)
    try:
        # Checked without writing, so a stream of bad requests does not queue for the database's write turn.
        async with db.transaction(read_only=True) as session:
            key, nonce = await reporting.authenticate(session, request.http.headers, raw, now=now,
                                                      max_skew=max_skew)
            key_id, provider_id = key.key_id, key.provider_id
        async with db.transaction() as session:  # committed now: the nonce is spent whatever comes next
            await reporting.claim_nonce(session, key_id, nonce, now=now, max_skew=max_skew)
    except reporting.SignatureRejected as rejection:
        await reporting.record_rejection(db, rejection, source_ip=request.source_ip)
        raise
    async with db.transaction() as session:
        report: ProviderReportIn = parse_json_body(ProviderReportIn, raw)  # type: ignore[assignment]
        provider = await get_provider(session, provider_id)  # the key's foreign key cascades: it exists
        outcome = await reporting.receive_report(session, provider, report, now=now,
                                                 tz=centre_zone(request.http.app))
    if outcome.status != 200:
        raise reporting.StoredAnswer(outcome.status, outcome.body)
    return ProviderReportOut.model_validate(outcome.body)
