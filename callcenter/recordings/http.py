"""/api/v1/recordings: recordings' metadata and their audio, only through the authenticated API.

Readers: admin, supervisor, auditor; agents see the recordings of calls they answered. Every audio access
(who, which recording, which bytes) is on the audit trail, committed before the first byte is sent.
"""

from __future__ import annotations

from aiohttp import web

from callcenter.api.context import DATABASE, RECORDINGS
from callcenter.api.errors import Unavailable
from callcenter.api.ranges import parse_range
from callcenter.api.registry import ApiRequest, ApiRoutes, BinaryResponse
from callcenter.audit import services as audit
from callcenter.logs import get_logger
from callcenter.recordings.formats import CONTENT_TYPES
from callcenter.recordings.models import Recording
from callcenter.recordings.queries import RecordingSearch, calls_of, find_recordings, get_recording
from callcenter.recordings.schemas import RecordingItem, RecordingOut, RecordingPage, RecordingQuery
from callcenter.recordings.storage import RecordingStore
from callcenter.users.models import Role

log = get_logger(__name__)

routes = ApiRoutes("recordings")
READERS = (Role.SUPERVISOR, Role.AUDITOR, Role.AGENT)
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


@routes.route("GET", "/recordings/{id}", summary="Read a recording's metadata", response=RecordingOut,
              roles=READERS)
async def show(request: ApiRequest) -> RecordingOut:
    async with request.require(DATABASE).transaction() as session:
        return RecordingOut.model_validate(await get_recording(session, request.user, request.params["id"]))


@routes.route("GET", "/recordings/{id}/audio", summary="Play or download a recording's audio", response=AUDIO,
              roles=READERS, errors=(416, 503),
              description="Supports one HTTP byte range (`Range: bytes=a-b`, `bytes=a-`, `bytes=-n`): 206 with "
                          "Content-Range; a range outside the audio is 416. Every access is audited.")
async def audio(request: ApiRequest) -> web.StreamResponse:
    stores = request.http.app.get(RECORDINGS)
    if stores is None:
        raise Unavailable("recording storage is not configured here")
    header = request.http.headers.get("Range")
    async with request.require(DATABASE).transaction() as session:
        recording = await get_recording(session, request.user, request.params["id"])
        # The row's own backend: a recording stored before a switch of CC_RECORDING_STORAGE still plays.
        store = stores.get(recording.storage_backend)
        size = await _stored_size(store, recording)
        if size is None:
            log.error("recording.audio_missing", recording_id=recording.id, serial=recording.serial_number,
                      backend=recording.storage_backend, key=recording.storage_key)
            raise Unavailable(f"the audio of recording {recording.id} cannot be read from storage; logged")
        byte_range = parse_range(header, size)
        start, end = (byte_range.start, byte_range.end) if byte_range else (0, size - 1)
        audit.record(session, request.actor, action="recording.audio", target_type="recording",
                     target_id=recording.id, details={"serial_number": recording.serial_number, "range": header,
                                                      "bytes": f"{start}-{end}/{size}"})
        key, serial = recording.storage_key, recording.serial_number
        content_type = CONTENT_TYPES.get(recording.audio_format, "application/octet-stream")
    response = web.StreamResponse(status=206 if byte_range else 200, headers={
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-store",
        "Content-Disposition": f'inline; filename="{serial}.{key.rsplit(".", 1)[-1]}"',
        **({"Content-Range": byte_range.content_range} if byte_range else {}),
    })
    response.content_type = content_type
    response.content_length = end - start + 1 if size else 0
    await response.prepare(request.http)
    try:
        if size and store is not None:
            async for chunk in store.read(key, start, end):
                await response.write(chunk)
        await response.write_eof()
    except ConnectionResetError:  # players abort range requests all the time while seeking
        log.debug("recording.audio_aborted", serial=serial)
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
