"""/api/v1/elders: elders' files and their contacts. Read: staff but providers; write: admin, supervisor, agent;
delete and the civil-affairs roster import: admin, supervisor. Lists give summaries with numbers masked, a file
shows the resident ID masked but to an agent on a live call with the elder, and every read of a file is audited
(``access``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.context import DATABASE, centre_today
from callcenter.api.errors import ApiError, Invalid, NotFound, Unavailable
from callcenter.api.registry import ApiRequest, ApiRoutes, BinaryResponse
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.elders.access import (
    CONTACTS_READ,
    READ,
    REVEAL,
    ReadGrounds,
    grounds_for,
    live_call_with,
    record_read,
    sees_id_number_in_full,
)
from callcenter.elders.imports import RosterImportTasks
from callcenter.elders.models import Elder, RosterImport
from callcenter.elders.roster import MAX_BYTES, rejected_report
from callcenter.elders.schemas import (
    MASKABLE,
    ContactCreate,
    ContactList,
    ContactOut,
    ElderCreate,
    ElderOut,
    ElderPage,
    ElderPatch,
    ElderQuery,
    ElderSummary,
    ReadQuery,
    RevealOut,
    RevealRequest,
    RosterImportOut,
    RosterImportQuery,
)
from callcenter.elders.services import (
    NewContact,
    add_contact,
    create_elder,
    delete_elder,
    get_elder,
    search_elders,
    update_elder,
)
from callcenter.users.models import Role

routes = ApiRoutes("elders")
READERS = (Role.SUPERVISOR, Role.AGENT, Role.AUDITOR)
WRITERS = (Role.SUPERVISOR, Role.AGENT)
REGISTRARS = (Role.SUPERVISOR,)  # and admin: deleting files, importing the roster
IMPORTS = web.AppKey("elders_roster_imports", RosterImportTasks)
PREVIEW = 20  # rejected rows shown with an import's progress; all of them are in the CSV report


def _new_contact(body: ContactCreate) -> NewContact:
    return NewContact(role=body.role, name=body.name, phone=body.phone, priority=body.priority,
                      relationship=body.relationship)


async def _file_out(session: AsyncSession, request: ApiRequest, elder: Elder) -> ElderOut:
    """The file as this caller may see it: the resident ID masked unless they are an agent on a live call with the
    elder (``access.sees_id_number_in_full``). For the answers of writes, which their own entries audit."""
    grounds = ReadGrounds(live_call_id=await live_call_with(session, request.user.user_id, elder.id, now=utcnow()))
    return ElderOut.of(elder, id_number_in_full=sees_id_number_in_full(request.user.role, grounds))


async def _grounds(session: AsyncSession, request: ApiRequest, elder: Elder, *, call_id: int | None,
                   order_id: int | None) -> ReadGrounds:
    return await grounds_for(session, request.user.user_id, elder.id, call_id=call_id, order_id=order_id,
                             now=utcnow())


_MASKING = ("The resident ID is masked (`4110**********0025`, listed in `masked_fields`) for every role, except for "
            "an agent on a live call with the elder (a call not ended, about this elder, that the agent answered); "
            "POST /elders/{id}/reveal gives it in full, with a reason, audited.")
_READ_AUDIT = ("Every read is audited (who, when, from where, and why: `call_id` or `order_id` when given — each "
               "must exist and be about this elder, else 422 naming it — else the reader's live call with the "
               "elder, else none).")


@routes.route("POST", "/elders", summary="Register an elder, optionally with contacts", body=ElderCreate,
              response=ElderOut, status=201, roles=WRITERS, errors=(409,), description=_MASKING)
async def create(request: ApiRequest) -> ElderOut:
    body: ElderCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        elder = await create_elder(session, body.model_dump(exclude={"contacts"}),
                                   [_new_contact(c) for c in body.contacts], request.actor,
                                   today=centre_today(request.http.app))
        return await _file_out(session, request, elder)


@routes.route("GET", "/elders", summary="Find elders by name, phone or community", query=ElderQuery,
              response=ElderPage, roles=READERS,
              description="Each item is a summary with the minimum an operator needs to pick the right elder: id, "
                          "name, gender, birth year, community, district, care level, living situation, and the "
                          "phone number and resident ID masked (`139****9000`, `4110**********0025`). No address, "
                          "coordinates, health data, notes or contacts: the file is GET /elders/{id}, audited.")
async def index(request: ApiRequest) -> ElderPage:
    query: ElderQuery = request.query
    async with request.require(DATABASE).transaction(read_only=True) as session:
        rows, total = await search_elders(session, q=query.q, phone=query.phone, community=query.community,
                                          limit=query.limit, offset=query.offset)
        return ElderPage(items=[ElderSummary.of(elder) for elder in rows], total=total, limit=query.limit,
                         offset=query.offset)


@routes.route("GET", "/elders/{id}", summary="Read an elder's file with contacts", query=ReadQuery,
              response=ElderOut, roles=READERS, description=f"{_MASKING} {_READ_AUDIT}")
async def show(request: ApiRequest) -> ElderOut:
    query: ReadQuery = request.query
    async with request.require(DATABASE).transaction() as session:
        elder = await get_elder(session, request.params["id"])
        grounds = await _grounds(session, request, elder, call_id=query.call_id, order_id=query.order_id)
        out = ElderOut.of(elder, id_number_in_full=sees_id_number_in_full(request.user.role, grounds))
        in_full = [name for name in MASKABLE if getattr(elder, name) is not None and name not in out.masked_fields]
        record_read(session, request.actor, READ, elder.id, grounds, shown_in_full=in_full)
        return out


@routes.route("POST", "/elders/{id}/reveal", summary="Show masked fields of an elder's file in full, with a reason",
              body=RevealRequest, response=RevealOut, roles=READERS,
              description="Audited (`elder.reveal`: who, when, from where, the reason, the fields named, the call or "
                          "order given — each must exist and be about this elder, else 422 naming it). The reason "
                          "is at least 4 characters.")
async def reveal(request: ApiRequest) -> RevealOut:
    body: RevealRequest = request.body
    async with request.require(DATABASE).transaction() as session:
        elder = await get_elder(session, request.params["id"])
        grounds = await _grounds(session, request, elder, call_id=body.call_id, order_id=body.order_id)
        fields = sorted(set(body.fields))
        record_read(session, request.actor, REVEAL, elder.id, grounds, reason=body.reason, fields=fields)
        return RevealOut(elder_id=elder.id, id_number=elder.id_number if "id_number" in fields else None)


@routes.route("PATCH", "/elders/{id}", summary="Change fields of an elder's file", body=ElderPatch,
              response=ElderOut, roles=WRITERS, errors=(409,), description=_MASKING)
async def patch(request: ApiRequest) -> ElderOut:
    body: ElderPatch = request.body
    async with request.require(DATABASE).transaction() as session:
        elder = await update_elder(session, request.params["id"], body.changes(), request.actor,
                                   today=centre_today(request.http.app))
        return await _file_out(session, request, elder)


@routes.route("POST", "/elders/{id}/contacts", summary="Add a contact to an elder", body=ContactCreate,
              response=ContactOut, status=201, roles=WRITERS, errors=(409,),
              description="A second contact with the same role and priority is a conflict (409).")
async def create_contact(request: ApiRequest) -> ContactOut:
    body: ContactCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        contact = await add_contact(session, request.params["id"], _new_contact(body), request.actor)
        return ContactOut.model_validate(contact)


@routes.route("GET", "/elders/{id}/contacts", summary="List an elder's contacts", query=ReadQuery,
              response=ContactList, roles=READERS, description=_READ_AUDIT)
async def contacts(request: ApiRequest) -> ContactList:
    query: ReadQuery = request.query
    async with request.require(DATABASE).transaction() as session:
        elder = await get_elder(session, request.params["id"])
        grounds = await _grounds(session, request, elder, call_id=query.call_id, order_id=query.order_id)
        record_read(session, request.actor, CONTACTS_READ, elder.id, grounds, contacts=len(elder.contacts))
        return ContactList(items=[ContactOut.model_validate(c) for c in elder.contacts])


@routes.route("DELETE", "/elders/{id}", summary="Delete an elder's file with its contacts",
              response=ElderOut, roles=REGISTRARS, errors=(409,),
              description="Refused (409 `elder_has_history`) while calls, work orders, devices, supervision cases "
                          "or volunteer records refer to the elder: a file with history is kept. Audited. The "
                          f"answer is the file as it was. {_MASKING}")
async def delete(request: ApiRequest) -> ElderOut:
    async with request.require(DATABASE).transaction() as session:
        elder = await get_elder(session, request.params["id"])
        gone = await _file_out(session, request, elder)
        await delete_elder(session, elder.id, request.actor)
        return gone


# --- the civil-affairs roster import -------------------------------------------------------------------------

class TooLarge(ApiError):
    status = 413
    code = "body_too_large"


async def _read_limited(read: Any) -> bytes:
    """At most MAX_BYTES from a stream or part, read in pieces (the app's 2 MiB body cap is for JSON)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await read(256 * 1024):
        size += len(chunk)
        if size > MAX_BYTES:
            raise TooLarge(f"the roster file is larger than {MAX_BYTES // (1024 * 1024)} MiB: split it")
        chunks.append(chunk)
    return b"".join(chunks)


_TRUE = ("1", "true", "on", "yes")


async def _upload(request: ApiRequest) -> tuple[str, bytes, bool]:
    query: RosterImportQuery = request.query
    http = request.http
    if http.content_type.startswith("multipart/"):
        filename, data, dry_run = query.filename, None, query.dry_run
        reader = await http.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":
                filename = filename or part.filename
                data = await _read_limited(part.read_chunk)
            elif part.name == "dry_run":
                dry_run = (await part.text()).strip().lower() in _TRUE
        if data is None:
            raise Invalid("the multipart upload has no 'file' part", field="file")
    else:
        filename, data, dry_run = query.filename, await _read_limited(http.content.read), query.dry_run
    if not filename:
        raise Invalid("name the file (its extension says CSV or XLSX): ?filename=roster.csv", field="filename")
    if not data:
        raise Invalid("the roster file is empty", field="file")
    return filename, data, dry_run


def _import_out(row: RosterImport) -> RosterImportOut:
    fields = {name: getattr(row, name) for name in RosterImportOut.model_fields if name != "rejected_preview"}
    return RosterImportOut.model_validate({**fields, "rejected_preview": row.rejected_rows[:PREVIEW]})


async def _get_import(db: Database, import_id: int) -> RosterImport:
    async with db.transaction(read_only=True) as session:
        row = await session.get(RosterImport, import_id)
    if row is None:
        raise NotFound(f"no roster import {import_id}", field="id")
    return row


@routes.route("POST", "/elders/imports", summary="Import the civil-affairs roster (CSV or XLSX) in the background",
              query=RosterImportQuery, response=RosterImportOut, status=202, roles=REGISTRARS, errors=(413, 503),
              description="The file is the raw body (`?filename=roster.xlsx&dry_run=true`) or a multipart form "
                          "with a `file` part (and optionally `dry_run`). Answers 202 at once; poll "
                          "`GET /elders/imports/{id}`. CSV may be UTF-8 (with or without BOM) or GB18030. Rows match "
                          "elders by resident ID: new ones are created, differing ones updated, the rest unchanged; "
                          "bad rows are rejected with reasons. A fatal error imports nothing of the file.")
async def start_import(request: ApiRequest) -> RosterImportOut:
    filename, data, dry_run = await _upload(request)
    tasks = request.require(IMPORTS)
    try:
        import_id = await tasks.start(filename, data, dry_run=dry_run, actor=request.actor)
    except RuntimeError:
        raise Unavailable("the server is stopping: import the file again in a moment") from None
    return _import_out(await _get_import(request.require(DATABASE), import_id))


@routes.route("GET", "/elders/imports/{id}", summary="A roster import's progress and counts",
              response=RosterImportOut, roles=REGISTRARS)
async def show_import(request: ApiRequest) -> RosterImportOut:
    return _import_out(await _get_import(request.require(DATABASE), request.params["id"]))


REPORT = BinaryResponse("text/csv", headers=(("Content-Disposition", "attachment; the file's name with -rejected"),))


@routes.route("GET", "/elders/imports/{id}/rejected", summary="A roster import's rejected rows as CSV",
              response=REPORT, roles=REGISTRARS,
              description="UTF-8 with BOM (Excel opens it as is): the row number, the row as the file had it and "
                          "the reasons. Fix the rows in it and import it as a roster of its own.")
async def rejected(request: ApiRequest) -> web.StreamResponse:
    row = await _get_import(request.require(DATABASE), request.params["id"])
    stem = row.filename.rsplit(".", 1)[0] or "roster"
    name = f"{stem}-rejected.csv"
    return web.Response(body=rejected_report(row.rejected_rows), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": _disposition(name), "Cache-Control": "no-store"})


def _disposition(name: str) -> str:
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
