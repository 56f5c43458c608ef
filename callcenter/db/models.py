"""Imports every domain's models so ``Base.metadata`` is complete (Alembic and tests use this)."""

from callcenter.audit.models import AuditEntry
from callcenter.calls.models import Call, CallLeg
from callcenter.conferences.models import ConferenceParticipant
from callcenter.db.base import Base
from callcenter.devices.models import Device
from callcenter.elders.models import Contact, Elder
from callcenter.orders.models import WorkOrder, WorkOrderEvent
from callcenter.providers.models import ServiceProvider
from callcenter.recordings.models import Recording
from callcenter.retention.models import RetentionLogEntry
from callcenter.users.models import User

metadata = Base.metadata

__all__ = [
    "AuditEntry", "Call", "CallLeg", "ConferenceParticipant", "Contact", "Device", "Elder", "Recording",
    "RetentionLogEntry", "ServiceProvider", "User", "WorkOrder", "WorkOrderEvent", "metadata",
]
