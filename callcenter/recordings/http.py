"""/api/v1/recordings: recordings' metadata and their audio, only through the authenticated API.

Readers: admin, supervisor, auditor; agents see the recordings of calls they answered. Every audio access
(who, which recording, which bytes) is on the audit trail, committed before the first byte is sent.

A recording of a call about an elder is part of that elder's file: reading one recording with its call
(``GET /recordings/{id}``) and every replay or download are also audited as reads of the elder's file
(``elder.recording``, elders.access), with the call as their grounds, in the read's own transaction. The library's
list is not: like every list it carries a summary of each call, and playing one is the read.
"""

from __future__ import annotations

import dataclasses

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.context import DATABASE, TOKENS
from callcenter.api.errors import Forbidden, Unauthorized, Unavailable
from callcenter.api.ranges import ByteRange, header_for_log, parse_range
from callcenter.api.registry import ApiRequest, ApiRoutes, BinaryResponse, Principal
from callcenter.audit import services as audit
from callcenter.audit.queries import find_entries
from callcenter.db.base import utcnow
from callcenter.elders.access import ReadGrounds, record_read
from callcenter.logs import get_logger
from callcenter.recordings.access import DOWNLOAD_ACTION, GRANT_TTL, REPLAY_ACTION, Grant, GrantSigner, may_download
from callcenter.recordings.backends import RECORDINGS, RecordingStores
from callcenter.recordings.formats import CONTENT_TYPES
from callcenter.recordings.models import Recording
from callcenter.recordings.queries import RecordingSearch, calls_of, elder_of, find_recordings, get_recording
from callcenter.recordings.schemas import (
    AccessList,
    AudioQuery,
    PlaybackLink,
    PlaybackRequest,
    RecordingItem,
    RecordingOut,
    RecordingPage,
    RecordingQuery,
    StreamQuery,
)
from callcenter.recordings.storage import RecordingStore
from callcenter.users.models import Role
from callcenter.users.services import active_user

log = get_logger(__name__)

routes = ApiRoutes("recordings")
READERS = (Role.SUPERVISOR, Role.AUDITOR, Role.AGENT)
# The library page, which searches everyone's recordings: agents read the API only for the calls they answered.
LIBRARY_USERS = (Role.SUPERVISOR, Role.AUDITOR)  # and admins, always
# The audit action of a read of an elder's file through one of the elder's calls' recordings (``GET
# /audit?action=elder.`` lists it with the other reads of elders' files).
ELDER_READ = "elder.recording"
# What the library shows of a call that is the elder's (named in that entry, never their values).
_CALL_FIELDS = ("elder_name", "caller_number", "callee_number")
AUDIO = BinaryResponse("audio/ogg", statuses=(200, 206), headers=(
    ("Accept-Ranges", "always `bytes`"),
    ("Content-Range", "on 206: `bytes <first>-<last>/<size>`"),
))


@routes.route("GET", "/recordings", summary="Search the recordings library, newest first", query=RecordingQuery,
              response=RecordingPage, roles=READERS,
              description="Filters: date range, elder, phone number, agent, queue, work order, SOS or not. "
                          "Agents see only the recordings of calls they answered.")
async def index(request: ApiRequest) -> RecordingPage:
    query: RecordingQuery = request.query
    search = RecordingSearch(call_id=query.call_id, since=query.since, until=query.until, elder_id=query.elder_id,
                             phone=query.phone, agent=query.agent, queue=query.queue,
                             work_order_id=query.work_order_id, sos=query.sos)
    async with request.require(DATABASE).transaction() as session:
        rows, total = await find_recordings(session, request.user, search, limit=query.limit, offset=query.offset)
        calls = await calls_of(session, rows)
        items = [RecordingItem.model_validate({**RecordingOut.model_validate(r).model_dump(),
                                               "call": calls.get(r.call_id) if r.call_id else None}) for r in rows]
        return RecordingPage(items=items, total=total, limit=query.limit, offset=query.offset)


@routes.route("GET", "/recordings/{id}", summary="Read a recording's metadata with its call", response=RecordingItem,
              roles=READERS,
              description="A call about an elder makes this a read of the elder's file: audited (`elder.recording`, "
                          "the call as its grounds).")
async def show(request: ApiRequest) -> RecordingItem:
    async with request.require(DATABASE).transaction() as session:
        recording = await get_recording(session, request.user, request.params["id"])
        call = (await calls_of(session, [recording])).get(recording.call_id) if recording.call_id else None
        if call is not None and isinstance(elder_id := call["elder_id"], int):
            record_read(session, request.actor, ELDER_READ, elder_id, ReadGrounds(call_id=recording.call_id),
                        recording=recording.id, fields=[name for name in _CALL_FIELDS if call[name] is not None])
        return RecordingItem.model_validate({**RecordingOut.model_validate(recording).model_dump(), "call": call})


async def _record_heard(session: AsyncSession, request: ApiRequest, recording: Recording, *, download: bool) -> None:
    """A replay or download of the recording of a call about an elder: a read of the elder's file too, audited
    under the elder beside the recording's own entry (which holds the reason)."""
    elder_id = await elder_of(session, recording)
    if elder_id is not None:
        record_read(session, request.actor, ELDER_READ, elder_id, ReadGrounds(call_id=recording.call_id),
                    recording=recording.id, access=_action(download), fields=["audio"])


def _check_download(request: ApiRequest, download: bool) -> None:
    if download and not may_download(request.user.role):
        raise Forbidden("your role may replay recordings but not download them")


def _action(download: bool) -> str:
    return DOWNLOAD_ACTION if download else REPLAY_ACTION


async def _locate(stores: RecordingStores, recording: Recording) -> tuple[RecordingStore, int]:
    # The row's own backend: a recording stored before a switch of CC_RECORDING_STORAGE still plays.
    store = stores.get(recording.storage_backend)
    size = await _stored_size(store, recording)
    if store is None or size is None:
        log.error("recording.audio_missing", recording_id=recording.id, serial=recording.serial_number,
                  backend=recording.storage_backend, key=recording.storage_key)
        raise Unavailable(f"the audio of recording {recording.id} cannot be read from storage; logged")
    return store, size


@routes.route("GET", "/recordings/{id}/audio", summary="Play or download a recording's audio, giving a reason",
              query=AudioQuery, response=AUDIO, roles=READERS, errors=(416, 503),
              description="Supports one HTTP byte range (`Range: bytes=a-b`, `bytes=a-`, `bytes=-n`): 206 with "
                          "Content-Range; a range outside the audio is 416. `reason` is required; every request "
                          "is audited with it and the bytes served. Browsers use `POST …/playback` instead.")
async def audio(request: ApiRequest) -> web.StreamResponse:
    query: AudioQuery = request.query
    _check_download(request, query.download)
    header = request.http.headers.get("Range")
    async with request.require(DATABASE).transaction() as session:
        recording = await get_recording(session, request.user, request.params["id"])
        store, size = await _locate(request.http.app[RECORDINGS], recording)
        byte_range = parse_range(header, size)
        start, end = (byte_range.start, byte_range.end) if byte_range else (0, size - 1)
        audit.record(session, request.actor, action=_action(query.download), target_type="recording",
                     target_id=recording.id, details={"serial_number": recording.serial_number, "reason": query.reason,
                                                      "range": header_for_log(header),
                                                      "bytes": f"{start}-{end}/{size}"})
        await _record_heard(session, request, recording, download=query.download)
        media = _Media(recording.storage_key, recording.serial_number, recording.audio_format)
    return await _stream(request.http, store, media, size, byte_range, download=query.download)


@routes.route("POST", "/recordings/{id}/playback", summary="A signed, short-lived link to replay or download",
              body=PlaybackRequest, response=PlaybackLink, status=201, roles=READERS, errors=(503,))
async def playback(request: ApiRequest) -> PlaybackLink:
    """For the browser's audio element, which cannot send a bearer token: the access and its reason are audited
    here, once; the link then serves byte ranges (seeking) for 15 minutes, for you and this recording only."""
    body: PlaybackRequest = request.body
    _check_download(request, body.download)
    now = utcnow()
    async with request.require(DATABASE).transaction() as session:
        recording = await get_recording(session, request.user, request.params["id"])
        await _locate(request.http.app[RECORDINGS], recording)
        entry = audit.record(session, request.actor, action=_action(body.download), target_type="recording",
                             target_id=recording.id, details={"serial_number": recording.serial_number,
                                                              "reason": body.reason, "via": "playback link"})
        await _record_heard(session, request, recording, download=body.download)
        await session.flush()
        grant = Grant(recording.id, request.user.user_id, body.download, entry.id, now + GRANT_TTL)
    token = _signer(request.http).issue(grant)
    return PlaybackLink(url=f"/api/v1/recordings/{grant.recording_id}/stream?grant={token}",
                        expires_at=grant.expires_at)


@routes.route("GET", "/recordings/{id}/stream", summary="Stream through a playback link (byte ranges)",
              query=StreamQuery, response=AUDIO, roles=None, errors=(401, 403, 404, 416, 503),
              description="No bearer token: the signed grant from `POST …/playback` authorises it, for its user "
                          "(re-checked on every request) and recording, until it expires.")
async def stream(request: ApiRequest) -> web.StreamResponse:
    query: StreamQuery = request.query
    recording_id = request.params["id"]
    grant = _signer(request.http).verify(query.grant, recording_id, utcnow())
    header = request.http.headers.get("Range")
    async with request.require(DATABASE).transaction() as session:
        user = await active_user(session, grant.user_id)
        if user is None:
            raise Unauthorized("this account no longer exists or is disabled", code="invalid_token")
        if grant.download and not may_download(user.role):
            raise Forbidden("your role may no longer download recordings")
        recording = await get_recording(session, Principal(user.id, user.username, user.role), recording_id)
        store, size = await _locate(request.http.app[RECORDINGS], recording)
        media = _Media(recording.storage_key, recording.serial_number, recording.audio_format)
    byte_range = parse_range(header, size)
    log.info("recording.stream", recording_id=recording_id, access_id=grant.access_id, user=user.username,
             range=header_for_log(header))
    return await _stream(request.http, store, media, size, byte_range, download=grant.download)


@routes.route("GET", "/recordings/{id}/accesses", summary="Who replayed or downloaded a recording, when and why",
              response=AccessList, roles=(Role.AUDITOR,))
async def accesses(request: ApiRequest) -> AccessList:
    async with request.require(DATABASE).transaction() as session:
        recording = await get_recording(session, request.user, request.params["id"])
        found, _ = await find_entries(session, action="recording.", target_type="recording",
                                      target_id=str(recording.id), limit=1000)
        return AccessList.model_validate({"items": found})


@dataclasses.dataclass(frozen=True, slots=True)
class _Media:
    key: str
    serial: str
    audio_format: str


def _signer(http: web.Request) -> GrantSigner:
    return GrantSigner(http.app[TOKENS].derived_key("recording-playback"))


async def _stream(http: web.Request, store: RecordingStore, media: _Media, size: int, byte_range: ByteRange | None,
                  *, download: bool) -> web.StreamResponse:
    start, end = (byte_range.start, byte_range.end) if byte_range else (0, size - 1)
    disposition = "attachment" if download else "inline"
    response = web.StreamResponse(status=206 if byte_range else 200, headers={
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-store",
        "Content-Disposition": f'{disposition}; filename="{media.serial}.{media.key.rsplit(".", 1)[-1]}"',
        **({"Content-Range": byte_range.content_range} if byte_range else {}),
    })
    response.content_type = CONTENT_TYPES.get(media.audio_format, "application/octet-stream")
    response.content_length = end - start + 1 if size else 0
    await response.prepare(http)
    try:
        if size:
            async for chunk in store.read(media.key, start, end):
                await response.write(chunk)
        await response.write_eof()
    except ConnectionResetError:  # players abort range requests all the time while seeking
        log.debug("recording.audio_aborted", serial=media.serial)
    return response


async def _stored_size(store: RecordingStore | None, recording: Recording) -> int | None:
    """The stored object's size; None when it cannot be read here (no such backend, no object, store down)."""
    if store is None:
        return None
    try:
        return await store.size(recording.storage_key)
    except Exception as error:  # S3 unreachable or refusing: a 503 for the player, the cause in the log
        log.error("recording.store_unreachable", recording_id=recording.id, backend=recording.storage_backend,
                  error=str(error)[-300:], error_type=type(error).__name__)
        return None
