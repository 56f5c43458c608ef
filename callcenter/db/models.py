"""Imports every domain's models so ``Base.metadata`` is complete (Alembic and tests use this)."""

from callcenter.agents.models import AgentSession
from callcenter.audit.models import AuditEntry
from callcenter.calls.models import Call, CallLeg
from callcenter.conferences.models import ConferenceParticipant
from callcenter.db.base import Base
from callcenter.devices.models import Device
from callcenter.elders.models import Contact, Elder, RosterImport
from callcenter.orders.models import Complaint, WorkOrder, WorkOrderEvent
from callcenter.providers.models import (
    ProviderApiKey,
    ProviderApiNonce,
    ProviderReport,
    ProviderStaff,
    ServiceProvider,
)
from callcenter.recordings.models import Recording
from callcenter.retention.models import RetentionLogEntry
from callcenter.supervision_cases.models import SupervisionCase, SupervisionUrging
from callcenter.users.models import User
from callcenter.volunteers.models import Volunteer, VolunteerFeedback, VolunteerServiceRecord, VolunteerTeam

metadata = Base.metadata

__all__ = [
    "AgentSession", "AuditEntry", "Call", "CallLeg", "Complaint", "ConferenceParticipant", "Contact", "Device", "Elder",
    "ProviderApiKey", "ProviderApiNonce", "ProviderReport", "ProviderStaff", "Recording", "RetentionLogEntry",
    "RosterImport", "ServiceProvider", "SupervisionCase", "SupervisionUrging", "User", "Volunteer",
    "VolunteerFeedback", "VolunteerServiceRecord", "VolunteerTeam", "WorkOrder", "WorkOrderEvent", "metadata",
]
