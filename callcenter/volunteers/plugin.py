"""The volunteers domain: teams, volunteers, their service records and feedback."""

from __future__ import annotations

from callcenter.contract import Contribution, Plugin, PluginContext
from callcenter.volunteers import http
from callcenter.volunteers.models import Volunteer, VolunteerFeedback, VolunteerServiceRecord, VolunteerTeam


def load(_ctx: PluginContext) -> Contribution:
    return Contribution(routes=http.routes)


plugin = Plugin("volunteers", load, models=(VolunteerTeam, Volunteer, VolunteerServiceRecord, VolunteerFeedback))
