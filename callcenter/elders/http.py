"""/api/v1/elders: elders' files and their contacts. Read: staff but providers; write: admin, supervisor, agent."""

from __future__ import annotations

from callcenter.api.context import DATABASE
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.elders.schemas import (
    ContactCreate,
    ContactList,
    ContactOut,
    ElderCreate,
    ElderOut,
    ElderPage,
    ElderPatch,
    ElderQuery,
)
from callcenter.elders.services import (
    NewContact,
    add_contact,
    create_elder,
    get_elder,
    list_contacts,
    search_elders,
    update_elder,
)
from callcenter.users.models import Role

routes = ApiRoutes("elders")
READERS = (Role.SUPERVISOR, Role.AGENT, Role.AUDITOR)
WRITERS = (Role.SUPERVISOR, Role.AGENT)


def _new_contact(body: ContactCreate) -> NewContact:
    return NewContact(role=body.role, name=body.name, phone=body.phone, priority=body.priority,
                      relationship=body.relationship)


@routes.route("POST", "/elders", summary="Register an elder, optionally with contacts", body=ElderCreate,
              response=ElderOut, status=201, roles=WRITERS, errors=(409,))
async def create(request: ApiRequest) -> ElderOut:
    body: ElderCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        elder = await create_elder(session, body.model_dump(exclude={"contacts"}),
                                   [_new_contact(c) for c in body.contacts], request.actor)
        return ElderOut.model_validate(elder)


@routes.route("GET", "/elders", summary="Find elders by name, phone or community", query=ElderQuery,
              response=ElderPage, roles=READERS)
async def index(request: ApiRequest) -> ElderPage:
    query: ElderQuery = request.query
    async with request.require(DATABASE).transaction() as session:
        found = await search_elders(session, q=query.q, phone=query.phone, community=query.community,
                                    limit=query.limit, offset=query.offset)
        return ElderPage.of(found, query)


@routes.route("GET", "/elders/{id}", summary="Read an elder's file with contacts", response=ElderOut,
              roles=READERS)
async def show(request: ApiRequest) -> ElderOut:
    async with request.require(DATABASE).transaction() as session:
        return ElderOut.model_validate(await get_elder(session, request.params["id"]))


@routes.route("PATCH", "/elders/{id}", summary="Change fields of an elder's file", body=ElderPatch,
              response=ElderOut, roles=WRITERS, errors=(409,))
async def patch(request: ApiRequest) -> ElderOut:
    body: ElderPatch = request.body
    async with request.require(DATABASE).transaction() as session:
        elder = await update_elder(session, request.params["id"], body.changes(), request.actor)
        return ElderOut.model_validate(elder)


@routes.route("POST", "/elders/{id}/contacts", summary="Add a contact to an elder", body=ContactCreate,
              response=ContactOut, status=201, roles=WRITERS, errors=(409,),
              description="A second contact with the same role and priority is a conflict (409).")
async def create_contact(request: ApiRequest) -> ContactOut:
    body: ContactCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        contact = await add_contact(session, request.params["id"], _new_contact(body), request.actor)
        return ContactOut.model_validate(contact)


@routes.route("GET", "/elders/{id}/contacts", summary="List an elder's contacts", response=ContactList,
              roles=READERS)
async def contacts(request: ApiRequest) -> ContactList:
    async with request.require(DATABASE).transaction() as session:
        rows = await list_contacts(session, request.params["id"])
        return ContactList(items=[ContactOut.model_validate(c) for c in rows])
