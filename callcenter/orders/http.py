"""/api/v1/work-orders: intake, the workflow's steps, the trail and the follow-up queue.

Centre staff (admin, supervisor, agent) see and move every order; auditors read; a provider-portal account (role
provider) sees only the orders dispatched to its own provider and takes only the provider's steps.

Lists (``GET /work-orders``, the follow-up queue) carry the minimum to pick an order: no description, no place,
no coordinates, and of the elder only whom to call back. Every answer that carries one order with its elder (the
detail, and the answers of intake, edits and steps) is a read of the elder's file, audited as ``elder.work_order``
with the order as its grounds (elders.access) in the answer's own transaction.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.context import DATABASE, centre_today, centre_zone
from callcenter.api.errors import Forbidden, Invalid, NotFound
from callcenter.api.registry import ApiRequest, ApiRoutes, Principal
from callcenter.audit.services import Actor
from callcenter.calls.models import Call
from callcenter.elders.access import ReadGrounds, record_read
from callcenter.elders.models import Elder
from callcenter.orders.models import WorkOrder, WorkOrderKind
from callcenter.orders.notify import ORDER_NOTIFIER, notice_for
from callcenter.orders.queries import find_orders, follow_up_queue, get_order
from callcenter.orders.schemas import (
    Action,
    ActionPayload,
    ActionRequest,
    ElderSummary,
    FollowUpElder,
    FollowUpItem,
    FollowUpQueue,
    WorkOrderCreate,
    WorkOrderDetail,
    WorkOrderPage,
    WorkOrderQuery,
    WorkOrderSummary,
    WorkOrderUpdate,
)
from callcenter.orders.services import raise_order, update_order
from callcenter.orders.workflow import WorkflowActor, allowed_actions, perform, visible_to
from callcenter.providers.models import ServiceProvider
from callcenter.providers.services import active_provider
from callcenter.users.models import Role

routes = ApiRoutes("work-orders")
CENTRE = (Role.SUPERVISOR, Role.AGENT)
READERS = (Role.SUPERVISOR, Role.AGENT, Role.AUDITOR, Role.PROVIDER)
# The audit action of an answer that showed an order's elder (``GET /audit?action=elder.`` lists it with the
# other reads of elders' files).
ELDER_READ = "elder.work_order"
# The order's own fields that say where the elder is: named in that entry beside the elder's.
_PLACE_FIELDS = ("location_text", "latitude", "longitude")


def workflow_actor(user: Principal, call_id: int | None = None) -> WorkflowActor:
    return WorkflowActor(user_id=user.user_id, label=user.username, role=user.role, provider_id=user.provider_id,
                         call_id=call_id)


def _provider_scope(user: Principal) -> int | None:
    if user.role is Role.PROVIDER:
        if user.provider_id is None:
            raise Forbidden("this provider account is not bound to a provider")
        return user.provider_id
    return None


async def _known_call(session: AsyncSession, call_id: int | None) -> None:
    """The call a request names exists: an unknown one is the request's error (422), not a foreign-key failure
    (which the API would answer as a concurrent change, 409)."""
    if call_id is not None and await session.get(Call, call_id) is None:
        raise Invalid(f"no call {call_id}", field="call_id")


async def order_detail(session: AsyncSession, order_id: int, actor: WorkflowActor, reader: Actor, *,
                       after_own_step: bool = False) -> WorkOrderDetail:
    """The order as ``actor`` may see it; when it shows the elder, the audit entry of ``reader``'s read of the
    elder's file, in ``session`` (which must be able to write). ``after_own_step``: the answer to a provider that
    just let the order go (declined it) — it learns the new status but no longer who has it, the elder or the
    trail."""
    order = await get_order(session, order_id)
    if not visible_to(order, actor):
        if not after_own_step:
            raise NotFound(f"no work order {order_id}", field="id")
        return WorkOrderDetail.model_validate(order).model_copy(update={
            "provider_id": None, "events": [], "receipt": None, "follow_up": None, "elder_id": None,
            "location_text": None, "latitude": None, "longitude": None, "description": None, "complaint": None})
    detail = WorkOrderDetail.model_validate(order)
    elder = await session.get(Elder, order.elder_id) if order.elder_id is not None else None
    summary = ElderSummary.model_validate(elder) if elder is not None else None
    if summary is not None:
        shown = [name for name, value in summary.model_dump().items() if name != "id" and value is not None]
        places = [name for name in _PLACE_FIELDS if getattr(detail, name) is not None]
        record_read(session, reader, ELDER_READ, summary.id, ReadGrounds(order_id=order.id),
                    fields=sorted(shown) + places)
    return detail.model_copy(update={"elder": summary, "allowed_actions": allowed_actions(order, actor)})


@routes.route("GET", "/work-orders", summary="List work orders, most urgent first", query=WorkOrderQuery,
              response=WorkOrderPage, roles=READERS)
async def index(request: ApiRequest) -> WorkOrderPage:
    """A provider account sees only the orders dispatched to its provider."""
    query: WorkOrderQuery = request.query
    own = _provider_scope(request.user)
    if own is not None and query.provider_id not in (None, own):
        return WorkOrderPage(items=[], total=0, limit=query.limit, offset=query.offset)
    async with request.require(DATABASE).transaction(read_only=True) as session:
        found = await find_orders(session, elder_id=query.elder_id, status=query.status, kind=query.kind,
                                  provider_id=own or query.provider_id, dispatched_only=own is not None,
                                  limit=query.limit, offset=query.offset)
        return WorkOrderPage.of(found, query)


@routes.route("POST", "/work-orders", summary="Take in a work order (intake)", body=WorkOrderCreate,
              response=WorkOrderDetail, status=201, roles=CENTRE, errors=(404,))
async def create(request: ApiRequest) -> WorkOrderDetail:
    """The kind's deadline is set (consultation 48 h, complaint 5 working days on the Chinese calendar or the
    forwarding body's earlier deadline, device fault 48 h, service request 72 h) unless ``due_at`` is given.
    A consultation answered on the call (``answer``) is closed at once."""
    body: WorkOrderCreate = request.body
    user = request.user
    actor = workflow_actor(user, body.call_id)
    tz = centre_zone(request.http.app)
    today = centre_today(request.http.app)
    async with request.require(DATABASE).transaction() as session:
        if body.elder_id is not None and await session.get(Elder, body.elder_id) is None:
            raise Invalid(f"no elder {body.elder_id}", field="elder_id")
        await _known_call(session, body.call_id)
        if body.provider_id is not None:
            if body.service is None:
                raise Invalid("choose the service needed before a provider", field="service")
            await active_provider(session, body.provider_id, body.service.value, today=today)
        complaint = body.complaint.model_dump(exclude_none=True) if body.complaint is not None else None
        about = complaint.get("about_provider_id") if complaint else None
        # Any registered provider, active or not: the ones complained about are often the ones suspended.
        if about is not None and await session.get(ServiceProvider, about) is None:
            raise Invalid(f"no provider {about}", field="complaint.about_provider_id")
        order = await raise_order(
            session, kind=body.kind, actor_label=user.username, actor_id=user.user_id, elder_id=body.elder_id,
            call_id=body.call_id, title=body.title, description=body.description, priority=body.priority,
            location_text=body.location_text, service=body.service.value if body.service else None,
            provider_id=body.provider_id, due_at=body.due_at, tz=tz,
            complaint=complaint if body.kind is WorkOrderKind.COMPLAINT else None)
        if body.answer is not None:
            await perform(session, order.id, Action.ANSWER, actor=actor, version=order.version,
                          payload=ActionPayload(answer=body.answer, call_id=body.call_id), tz=tz)
        order_id = order.id
    async with request.require(DATABASE).transaction() as session:
        return await order_detail(session, order_id, actor, request.actor)


@routes.route("GET", "/work-orders/{id}", summary="Read a work order with its trail and the steps you may take",
              response=WorkOrderDetail, roles=READERS,
              description="With its elder (name, phone, address, community) this is a read of the elder's file, "
                          "audited (`elder.work_order`, the order as its grounds), as is the answer of an intake, "
                          "edit or step that carries it.")
async def show(request: ApiRequest) -> WorkOrderDetail:
    _provider_scope(request.user)
    async with request.require(DATABASE).transaction() as session:
        return await order_detail(session, request.params["id"], workflow_actor(request.user), request.actor)


@routes.route("PATCH", "/work-orders/{id}", summary="Complete a work order during the call", body=WorkOrderUpdate,
              response=WorkOrderDetail, roles=CENTRE, errors=(404, 409))
async def update(request: ApiRequest) -> WorkOrderDetail:
    """Send the ``version`` you read; a stale one gets 409 and changes nothing. Each change lands on the trail."""
    body: WorkOrderUpdate = request.body
    user = request.user
    async with request.require(DATABASE).transaction() as session:
        await update_order(session, request.params["id"], version=body.version, changes=body.changes(),
                           actor_id=user.user_id, actor_label=user.username,
                           tz=centre_zone(request.http.app))
    async with request.require(DATABASE).transaction() as session:
        return await order_detail(session, request.params["id"], workflow_actor(user), request.actor)


@routes.route("POST", "/work-orders/{id}/actions", summary="Take a step in the order's workflow",
              body=ActionRequest, response=WorkOrderDetail, roles=(*CENTRE, Role.PROVIDER), errors=(404, 409))
async def act(request: ApiRequest) -> WorkOrderDetail:
    """The step must be allowed from the order's status for its kind and for you (``allowed_actions`` lists
    them); otherwise 409 ``illegal_transition`` and nothing changes. A stale ``version`` is 409 ``stale_version``.
    A provider account acts only on orders dispatched to its provider, and only the provider's steps."""
    body: ActionRequest = request.body
    _provider_scope(request.user)
    actor = workflow_actor(request.user, body.call_id)
    async with request.require(DATABASE).transaction() as session:
        await _known_call(session, body.call_id)
        order = await perform(session, request.params["id"], body.action, actor=actor, version=body.version,
                              payload=body.payload(), tz=centre_zone(request.http.app))
        notice = notice_for(order, body.action)
    if notice is not None:  # committed: the provider's portal hears of it now (orders.notify)
        request.require(ORDER_NOTIFIER).publish(notice)
    async with request.require(DATABASE).transaction() as session:
        return await order_detail(session, request.params["id"], actor, request.actor, after_own_step=True)


@routes.route("GET", "/follow-ups", summary="The follow-up queue: elders to call back about a finished service",
              response=FollowUpQueue, roles=CENTRE)
async def follow_ups(request: ApiRequest) -> FollowUpQueue:
    async with request.require(DATABASE).transaction(read_only=True) as session:
        orders = await follow_up_queue(session)
        elders = {o.elder_id: await session.get(Elder, o.elder_id) for o in orders if o.elder_id is not None}
        return FollowUpQueue(items=[_follow_up_item(o, elders.get(o.elder_id)) for o in orders])


def _follow_up_item(order: WorkOrder, elder: Elder | None) -> FollowUpItem:
    return FollowUpItem(order=WorkOrderSummary.model_validate(order),
                        elder=FollowUpElder.model_validate(elder) if elder is not None else None,
                        receipt=order.receipt, waiting_since=order.updated_at)
