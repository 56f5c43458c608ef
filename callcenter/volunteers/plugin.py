"""The volunteers domain: teams, volunteers, their service records and feedback, and the registry page."""

from __future__ import annotations

from pathlib import Path

from callcenter.contract import Contribution, NavLink, Page, PageContent, PageRequest, Plugin, PluginContext
from callcenter.volunteers import http
from callcenter.volunteers.models import (
    FeedbackKind,
    ReviewStatus,
    Volunteer,
    VolunteerFeedback,
    VolunteerServiceRecord,
    VolunteerTeam,
)


async def volunteers_page(_request: PageRequest) -> PageContent:
    """The volunteers registry (``static/volunteers.js`` over ``/api/v1/volunteers``): find, register and edit
    volunteers, review them, record services and feedback, pair them with elders."""
    return PageContent(values={"statuses": [status.value for status in ReviewStatus],
                               "kinds": [kind.value for kind in FeedbackKind]})


# For those who may change the registry; anyone else signed in gets a 403 page, anonymous visitors the log-in.
VOLUNTEERS_PAGE = Page("/volunteers", "volunteers", Path(__file__).parent, content=volunteers_page, css=True,
                       roles=http.routes.roles_for("POST", "/volunteers"),
                       nav=NavLink("common.nav.volunteers", "nav-volunteers"))


def load(_ctx: PluginContext) -> Contribution:
    return Contribution(routes=http.routes, pages=[VOLUNTEERS_PAGE])


plugin = Plugin("volunteers", load, models=(VolunteerTeam, Volunteer, VolunteerServiceRecord, VolunteerFeedback))
