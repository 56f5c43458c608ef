"""/api/v1/calls/{id}/legal-hold and /api/v1/work-orders/{id}/legal-hold: admins and auditors place, read and lift
legal holds. A hold keeps the call's (or the order's calls') log and recordings from retention; every change is
audited, and on a work order it is also on the order's trail."""

from __future__ import annotations

from callcenter.api.context import DATABASE
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.db.base import utcnow
from callcenter.recordings.backends import RECORDINGS
from callcenter.recordings.models import Recording
from callcenter.retention import holds
from callcenter.retention.schemas import LegalHoldIn, LegalHoldOut, LegalHoldRelease
from callcenter.users.models import Role

routes = ApiRoutes("legal-holds")
HOLDERS = (Role.AUDITOR,)  # and admins, always
PATHS = {"call": "/calls/{id}/legal-hold", "work_order": "/work-orders/{id}/legal-hold"}
NAMES = {"call": "a call", "work_order": "a work order (a complaint is one)"}


def _out(kind: str, target: holds.HoldTarget, calls: set[int], recordings: list[Recording]) -> LegalHoldOut:
    return LegalHoldOut(target_type=kind, target_id=target.id, legal_hold=target.legal_hold,
                        reason=target.legal_hold_reason, held_by=target.legal_hold_by, held_at=target.legal_hold_at,
                        call_ids=sorted(calls), recording_ids=[recording.id for recording in recordings])


async def _read(request: ApiRequest, kind: str) -> LegalHoldOut:
    async with request.require(DATABASE).transaction() as session:
        target = await holds.get_target(session, kind, request.params["id"])
        calls = await holds.protected_call_ids(session, target)
        return _out(kind, target, calls, await holds.recordings_of(session, calls))


async def _change(request: ApiRequest, kind: str, *, place: bool) -> LegalHoldOut:
    async with request.require(DATABASE).transaction() as session:
        target = await holds.get_target(session, kind, request.params["id"], lock=True)
        calls = await holds.protected_call_ids(session, target)
        # Locked: a retention run deciding about one of these recordings decides before the hold or sees it.
        recordings = await holds.recordings_of(session, calls, lock=True)
        if place:
            body: LegalHoldIn = request.body
            holds.set_hold(session, target, reason=body.reason, actor=request.actor, now=utcnow())
        else:
            query: LegalHoldRelease = request.query
            holds.clear_hold(session, target, reason=query.reason, actor=request.actor)
        await session.flush()
        still = await holds.held_call_ids(session, calls)  # after lifting, other holds may still protect some
        out = _out(kind, target, calls, recordings)
    await _tag(request, recordings, {r.id for r in recordings if r.legal_hold or r.call_id in still})
    return out


async def _tag(request: ApiRequest, recordings: list[Recording], held: set[int]) -> None:
    """Stores that expire objects on their own (S3's lifecycle rule) learn of the hold at once; a failure is
    logged, and the next retention run tags again."""
    stores = request.http.app[RECORDINGS]
    if recordings:
        await holds.tag_recordings(holds.store_lookup(stores), recordings, held)


def _declare(kind: str) -> None:
    path, name = PATHS[kind], NAMES[kind]

    async def read(request: ApiRequest) -> LegalHoldOut:
        return await _read(request, kind)

    async def place(request: ApiRequest) -> LegalHoldOut:
        """Placing a hold on a held target re-words it. Audited."""
        return await _change(request, kind, place=True)

    async def lift(request: ApiRequest) -> LegalHoldOut:
        """The reason is required. Lifting a hold that is not there changes nothing. Audited."""
        return await _change(request, kind, place=False)

    for handler in (read, place, lift):
        handler.__name__ = f"{handler.__name__}_{kind}"
    routes.route("GET", path, summary=f"Read the legal hold on {name}", response=LegalHoldOut,
                 roles=HOLDERS)(read)
    routes.route("PUT", path, summary=f"Place a legal hold on {name}: its call logs and recordings are kept",
                 body=LegalHoldIn, response=LegalHoldOut, roles=HOLDERS)(place)
    routes.route("DELETE", path, summary=f"Lift the legal hold on {name}", query=LegalHoldRelease,
                 response=LegalHoldOut, roles=HOLDERS)(lift)


for _kind in PATHS:
    _declare(_kind)
