"""/api/v1/volunteer-teams and /api/v1/volunteers: the volunteers registry (seed 5.11). Read: supervisors, agents,
auditors (and admins); write: supervisors and admins."""

from __future__ import annotations

from callcenter.api.context import DATABASE
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.api.schemas import PageQuery
from callcenter.users.models import Role
from callcenter.volunteers import services
from callcenter.volunteers.models import VolunteerTeam
from callcenter.volunteers.schemas import (
    FeedbackCreate,
    FeedbackOut,
    FeedbackPage,
    FeedbackQuery,
    PairingCreate,
    PairingList,
    PairingOut,
    ReviewRequest,
    ServiceRecordCreate,
    ServiceRecordOut,
    ServiceRecordPage,
    VolunteerCreate,
    VolunteerOut,
    VolunteerPage,
    VolunteerPatch,
    VolunteerQuery,
    VolunteerSummary,
    VolunteerTeamCreate,
    VolunteerTeamList,
    VolunteerTeamOut,
    VolunteerTeamPatch,
)

routes = ApiRoutes("volunteers")
READERS = (Role.SUPERVISOR, Role.AGENT, Role.AUDITOR)
WRITERS = (Role.SUPERVISOR,)  # and admins, who may do everything

# VolunteerOut's fields that are the volunteer's own columns; the others are computed.
_COLUMNS = tuple(name for name in VolunteerOut.model_fields
                 if name not in {"team_name", "reviewed_by", "summary", "masked_fields"})
_MASKING = ("The resident ID is masked (`4403**********2041`, listed in `masked_fields`) in lists for everyone, and "
            "in a file for those who do not manage volunteers (agents, auditors); supervisors and admins, who "
            "register and review volunteers, see it in full in a file.")


def _team_out(team: VolunteerTeam, volunteer_count: int) -> VolunteerTeamOut:
    return VolunteerTeamOut.model_validate(team).model_copy(update={"volunteer_count": volunteer_count})


def _volunteer_out(view: services.VolunteerView, *, id_number_in_full: bool) -> VolunteerOut:
    volunteer = view.volunteer
    out = VolunteerOut.model_validate({
        **{name: getattr(volunteer, name) for name in _COLUMNS},
        "team_name": volunteer.team.name if volunteer.team is not None else None,
        "reviewed_by": view.reviewed_by,
        "summary": VolunteerSummary.model_validate(view.summary),
    })
    return out if id_number_in_full else out.masked()


def _manages_volunteers(request: ApiRequest) -> bool:
    """Whether the caller registers and reviews volunteers, and so sees a file's resident ID in full."""
    return request.user.may(frozenset(WRITERS))


def _pairing_out(pairing: services.Pairing) -> PairingOut:
    return PairingOut(elder_id=pairing.elder.id, elder_name=pairing.elder.full_name,
                      community=pairing.elder.community, contact_id=pairing.contact.id,
                      priority=pairing.contact.priority, created_at=pairing.contact.created_at)


# ---- teams ------------------------------------------------------------------------------------------------------

@routes.route("POST", "/volunteer-teams", summary="Register a volunteer team", body=VolunteerTeamCreate,
              response=VolunteerTeamOut, status=201, roles=WRITERS, errors=(409,),
              description="A second team with the same name is a conflict (409).")
async def create_team(request: ApiRequest) -> VolunteerTeamOut:
    body: VolunteerTeamCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        return _team_out(await services.create_team(session, body.model_dump(), request.actor), 0)


@routes.route("GET", "/volunteer-teams", summary="List the volunteer teams by name", response=VolunteerTeamList,
              roles=READERS)
async def list_teams(request: ApiRequest) -> VolunteerTeamList:
    async with request.require(DATABASE).transaction() as session:
        teams = await services.list_teams(session)
        sizes = await services.team_sizes(session, [team.id for team in teams])
        return VolunteerTeamList(items=[_team_out(team, sizes.get(team.id, 0)) for team in teams])


@routes.route("GET", "/volunteer-teams/{id}", summary="Read a volunteer team", response=VolunteerTeamOut,
              roles=READERS)
async def show_team(request: ApiRequest) -> VolunteerTeamOut:
    async with request.require(DATABASE).transaction() as session:
        team = await services.get_team(session, request.params["id"])
        return _team_out(team, (await services.team_sizes(session, [team.id])).get(team.id, 0))


@routes.route("PATCH", "/volunteer-teams/{id}", summary="Change a volunteer team", body=VolunteerTeamPatch,
              response=VolunteerTeamOut, roles=WRITERS, errors=(409,))
async def patch_team(request: ApiRequest) -> VolunteerTeamOut:
    body: VolunteerTeamPatch = request.body
    async with request.require(DATABASE).transaction() as session:
        team = await services.update_team(session, request.params["id"], body.changes(), request.actor)
        return _team_out(team, (await services.team_sizes(session, [team.id])).get(team.id, 0))


# ---- volunteers -------------------------------------------------------------------------------------------------

@routes.route("POST", "/volunteers", summary="Register a volunteer (pending review)", body=VolunteerCreate,
              response=VolunteerOut, status=201, roles=WRITERS, errors=(409,),
              description="A resident ID already on another volunteer's file is a conflict (409); an unknown "
                          "team_id is invalid (422).")
async def create(request: ApiRequest) -> VolunteerOut:
    body: VolunteerCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        volunteer = await services.create_volunteer(session, body.stored(), request.actor)
        return _volunteer_out(await services.describe_one(session, volunteer), id_number_in_full=True)


@routes.route("GET", "/volunteers", summary="Find volunteers by name, phone, community, team or review status",
              query=VolunteerQuery, response=VolunteerPage, roles=READERS, description=_MASKING)
async def index(request: ApiRequest) -> VolunteerPage:
    query: VolunteerQuery = request.query
    async with request.require(DATABASE).transaction() as session:
        rows, total = await services.search_volunteers(
            session, name=query.name, phone=query.phone, community=query.community, team_id=query.team_id,
            review_status=query.review_status, limit=query.limit, offset=query.offset)
        views = await services.describe(session, rows)
        return VolunteerPage(items=[_volunteer_out(view, id_number_in_full=False) for view in views], total=total,
                             limit=query.limit, offset=query.offset)


@routes.route("GET", "/volunteers/{id}", summary="Read a volunteer's file with its summary", response=VolunteerOut,
              roles=READERS, description=_MASKING)
async def show(request: ApiRequest) -> VolunteerOut:
    async with request.require(DATABASE).transaction() as session:
        volunteer = await services.get_volunteer(session, request.params["id"])
        return _volunteer_out(await services.describe_one(session, volunteer),
                              id_number_in_full=_manages_volunteers(request))


@routes.route("PATCH", "/volunteers/{id}", summary="Change fields of a volunteer's file", body=VolunteerPatch,
              response=VolunteerOut, roles=WRITERS, errors=(409,),
              description="A new name or phone number is copied to the volunteer's rows among paired elders' "
                          "contacts.")
async def patch(request: ApiRequest) -> VolunteerOut:
    body: VolunteerPatch = request.body
    async with request.require(DATABASE).transaction() as session:
        volunteer = await services.update_volunteer(session, request.params["id"], body.changes(), request.actor)
        return _volunteer_out(await services.describe_one(session, volunteer), id_number_in_full=True)


@routes.route("POST", "/volunteers/{id}/review", summary="Approve, reject or suspend a volunteer",
              body=ReviewRequest, response=VolunteerOut, roles=WRITERS,
              description="The reviewer and the time are kept on the file. Rejecting or suspending needs a note "
                          "and removes the volunteer from every elder's contacts.")
async def review(request: ApiRequest) -> VolunteerOut:
    body: ReviewRequest = request.body
    async with request.require(DATABASE).transaction() as session:
        volunteer = await services.review(session, request.params["id"], body.status, body.note, request.actor)
        return _volunteer_out(await services.describe_one(session, volunteer), id_number_in_full=True)


# ---- service records and feedback --------------------------------------------------------------------------------

@routes.route("POST", "/volunteers/{id}/service-records", summary="Record a service the volunteer gave",
              body=ServiceRecordCreate, response=ServiceRecordOut, status=201, roles=WRITERS, errors=(409,),
              description="A volunteer never approved (pending, rejected) has given no service: 409 not_approved.")
async def create_service_record(request: ApiRequest) -> ServiceRecordOut:
    body: ServiceRecordCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        row = await services.add_service_record(session, request.params["id"], body.model_dump(), request.actor)
        return ServiceRecordOut.model_validate(row)


@routes.route("GET", "/volunteers/{id}/service-records", summary="The volunteer's service records, latest first",
              query=PageQuery, response=ServiceRecordPage, roles=READERS)
async def service_records(request: ApiRequest) -> ServiceRecordPage:
    query: PageQuery = request.query
    async with request.require(DATABASE).transaction() as session:
        found = await services.list_service_records(session, request.params["id"], limit=query.limit,
                                                    offset=query.offset)
        return ServiceRecordPage.of(found, query)


@routes.route("POST", "/volunteers/{id}/feedback", summary="Record an evaluation, a complaint or an award",
              body=FeedbackCreate, response=FeedbackOut, status=201, roles=WRITERS,
              description="An evaluation carries a rating from 1 to 5; complaints and awards carry none.")
async def create_feedback(request: ApiRequest) -> FeedbackOut:
    body: FeedbackCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        row = await services.add_feedback(session, request.params["id"], body.model_dump(), request.actor)
        return FeedbackOut.model_validate(row)


@routes.route("GET", "/volunteers/{id}/feedback", summary="Evaluations, complaints and awards, latest first",
              query=FeedbackQuery, response=FeedbackPage, roles=READERS)
async def feedback(request: ApiRequest) -> FeedbackPage:
    query: FeedbackQuery = request.query
    async with request.require(DATABASE).transaction() as session:
        found = await services.list_feedback(session, request.params["id"], kind=query.kind, limit=query.limit,
                                             offset=query.offset)
        return FeedbackPage.of(found, query)


# ---- pairings ---------------------------------------------------------------------------------------------------

@routes.route("GET", "/volunteers/{id}/pairings", summary="The elders the volunteer is paired with",
              response=PairingList, roles=READERS)
async def pairings(request: ApiRequest) -> PairingList:
    async with request.require(DATABASE).transaction() as session:
        found = await services.list_pairings(session, request.params["id"])
        return PairingList(items=[_pairing_out(p) for p in found])


@routes.route("POST", "/volunteers/{id}/pairings", summary="Pair an approved volunteer with an elder",
              body=PairingCreate, response=PairingOut, status=201, roles=WRITERS, errors=(409,),
              description="The volunteer joins the elder's contacts (role volunteer). A volunteer not approved "
                          "(409 not_approved), an existing pairing (409 already_paired) or a taken priority (409) "
                          "are refused; an unknown elder is invalid (422).")
async def create_pairing(request: ApiRequest) -> PairingOut:
    body: PairingCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        pairing = await services.pair(session, request.params["id"], body.elder_id, body.priority, request.actor)
        return _pairing_out(pairing)


@routes.route("DELETE", "/volunteers/{id}/pairings/{elder_id}", summary="End a pairing: the elder's contact goes",
              response=PairingList, roles=WRITERS,
              description="Answers the volunteer's remaining pairings.")
async def delete_pairing(request: ApiRequest) -> PairingList:
    async with request.require(DATABASE).transaction() as session:
        await services.unpair(session, request.params["id"], request.params["elder_id"], request.actor)
        found = await services.list_pairings(session, request.params["id"])
        return PairingList(items=[_pairing_out(p) for p in found])
