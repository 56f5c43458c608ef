"""/api/v1/notifications: the SMS sent about a work order, an alarm or an elder, with their delivery state, for the
centre's staff who read orders and alarms (not providers: the messages name the family's numbers)."""

from __future__ import annotations

from callcenter.api.context import DATABASE
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.notifications.schemas import NotificationPage, NotificationQuery
from callcenter.notifications.services import list_messages
from callcenter.users.models import Role

routes = ApiRoutes("notifications")
READERS = (Role.SUPERVISOR, Role.AGENT, Role.AUDITOR)


@routes.route("GET", "/notifications", summary="List SMS and their delivery state, newest first",
              query=NotificationQuery, response=NotificationPage, roles=READERS)
async def index(request: ApiRequest) -> NotificationPage:
    """Filter by ``work_order_id``, ``alarm_id`` or ``elder_id`` (together: all of them). Numbers are masked."""
    query: NotificationQuery = request.query
    async with request.require(DATABASE).transaction(read_only=True) as session:
        found = await list_messages(session, work_order_id=query.work_order_id, alarm_id=query.alarm_id,
                                    elder_id=query.elder_id, limit=query.limit, offset=query.offset)
        return NotificationPage.of(found, query)
