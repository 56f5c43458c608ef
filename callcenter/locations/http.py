"""/api/v1/elders/{id}/positions and /api/v1/elders/{id}/geofences: where an elder's devices were (the track and
the latest fix) and the elder's fences. Read by the roles that read the elder's file, and audited as reads of it
(``elders.access``: ``elder.positions.read``, ``elder.geofences.read``, with the call or order named); fences are
kept by the roles that write the file. What a map needs: WGS-84 with each fix's accuracy, the track in time order,
the fences as GeoJSON."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.context import DATABASE
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.db.base import utcnow
from callcenter.elders import http as elders_http
from callcenter.elders.access import grounds_for, record_read
from callcenter.elders.schemas import ReadQuery
from callcenter.elders.services import get_elder
from callcenter.locations import services
from callcenter.locations.schemas import GeofenceCreate, GeofenceList, GeofenceOut, GeofencePatch, Track, TrackQuery

routes = ApiRoutes("locations")
# The elder's file's own policies, by reference: who reads the file reads where the elder is.
READERS = elders_http.routes.roles_for("GET", "/elders/{id}")
WRITERS = elders_http.routes.roles_for("PATCH", "/elders/{id}")
POSITIONS_READ = "elder.positions.read"
GEOFENCES_READ = "elder.geofences.read"
_AUDITED = ("Audited as a read of the elder's file (who, when, from where, and why: `call_id` or `order_id` when "
            "given — each must exist and be about this elder, else 422 naming it — else the reader's live call with "
            "the elder, else none).")


async def _audited_read(request: ApiRequest, session: AsyncSession, action: str, query: ReadQuery,
                        **details: object) -> None:
    elder_id = request.params["id"]
    grounds = await grounds_for(session, request.user.user_id, elder_id, call_id=query.call_id,
                                order_id=query.order_id, now=utcnow())
    record_read(session, request.actor, action, elder_id, grounds, **details)


@routes.route("GET", "/elders/{id}/positions", summary="The elder's track and last known position",
              query=TrackQuery, response=Track, roles=READERS,
              description="The fixes of the elder's devices measured in the period (default: the last 24 hours), "
                          "oldest first, WGS-84 with each fix's accuracy radius; `latest` is the newest fix ever, "
                          f"whatever the period. {_AUDITED}")
async def positions(request: ApiRequest) -> Track:
    query: TrackQuery = request.query
    async with request.require(DATABASE).transaction() as session:
        elder = await get_elder(session, request.params["id"])
        since, until = services.period(query.since, query.until)
        fixes, truncated = await services.track(session, elder.id, since=since, until=until, limit=query.limit)
        latest = await services.latest_position(session, elder.id)
        await _audited_read(request, session, POSITIONS_READ, query, positions=len(fixes))
        return Track(elder_id=elder.id, latest=services.position_out(latest) if latest is not None else None,
                     since=since, until=until, items=[services.position_out(p) for p in fixes], truncated=truncated)


@routes.route("GET", "/elders/{id}/geofences", summary="The elder's geofences, with where the elder is about each",
              query=ReadQuery, response=GeofenceList, roles=READERS, description=_AUDITED)
async def index(request: ApiRequest) -> GeofenceList:
    query: ReadQuery = request.query
    async with request.require(DATABASE).transaction() as session:
        elder = await get_elder(session, request.params["id"])
        fences = await services.fences_of(session, elder.id)
        await _audited_read(request, session, GEOFENCES_READ, query, geofences=len(fences))
        return GeofenceList(items=[await services.fence_out(session, fence) for fence in fences])


@routes.route("GET", "/elders/{id}/geofences/{fence_id}", summary="Read one of the elder's geofences",
              query=ReadQuery, response=GeofenceOut, roles=READERS, description=_AUDITED)
async def show(request: ApiRequest) -> GeofenceOut:
    query: ReadQuery = request.query
    async with request.require(DATABASE).transaction() as session:
        elder = await get_elder(session, request.params["id"])
        fence = await services.get_fence(session, elder.id, request.params["fence_id"])
        await _audited_read(request, session, GEOFENCES_READ, query, geofence_id=fence.id)
        return await services.fence_out(session, fence)


@routes.route("POST", "/elders/{id}/geofences", summary="Give the elder a geofence", body=GeofenceCreate,
              response=GeofenceOut, status=201, roles=WRITERS,
              description="A circle (centre, radius in metres) or a simple polygon of WGS-84 corners; `stay_inside` "
                          "(leaving it outside the allowed hours raises a geofence alarm) or `keep_out` (entering "
                          "it does). Allowed hours are on the centre's clock. Audited.")
async def create(request: ApiRequest) -> GeofenceOut:
    body: GeofenceCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        elder = await get_elder(session, request.params["id"])
        fence = await services.create_fence(session, elder.id, body, request.actor)
        return await services.fence_out(session, fence)


@routes.route("PATCH", "/elders/{id}/geofences/{fence_id}", summary="Change a geofence", body=GeofencePatch,
              response=GeofenceOut, roles=WRITERS, errors=(409,),
              description="Send the version you read (a stale one answers 409). A new area, kind or activity forgets "
                          "which side the elder was on: the next certain fix sets it again. Audited.")
async def patch(request: ApiRequest) -> GeofenceOut:
    body: GeofencePatch = request.body
    async with request.require(DATABASE).transaction() as session:
        elder = await get_elder(session, request.params["id"])
        fence = await services.update_fence(session, elder.id, request.params["fence_id"], body, request.actor)
        return await services.fence_out(session, fence)


@routes.route("DELETE", "/elders/{id}/geofences/{fence_id}", summary="Remove a geofence", response=GeofenceOut,
              roles=WRITERS, description="The answer is the fence as it was. Its alarms stay. Audited.")
async def delete(request: ApiRequest) -> GeofenceOut:
    async with request.require(DATABASE).transaction() as session:
        elder = await get_elder(session, request.params["id"])
        fence = await services.get_fence(session, elder.id, request.params["fence_id"], lock=True)
        gone = await services.fence_out(session, fence)
        await services.delete_fence(session, elder.id, fence.id, request.actor)
        return gone
