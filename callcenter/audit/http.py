"""/api/v1/audit: the audit trail, for administrators and auditors (seed 4.2.4, 7.5)."""

from __future__ import annotations

from callcenter.api.context import DATABASE
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.audit.queries import find_entries
from callcenter.audit.schemas import AuditPage, AuditQuery
from callcenter.users.models import Role

routes = ApiRoutes("audit")


@routes.route("GET", "/audit", summary="Search the audit log (who did what, when, to what)", query=AuditQuery,
              response=AuditPage, roles=(Role.AUDITOR,))
async def index(request: ApiRequest) -> AuditPage:
    query: AuditQuery = request.query
    async with request.require(DATABASE).transaction() as session:
        found = await find_entries(session, action=query.action, actor=query.actor, target_type=query.target_type,
                                   target_id=query.target_id, since=query.since, until=query.until,
                                   limit=query.limit, offset=query.offset)
        return AuditPage.of(found, query)
