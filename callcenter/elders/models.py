from __future__ import annotations

import datetime as dt
import enum
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.db.base import Base, UTCDateTime, str_enum, utcnow
from callcenter.db.sealed import Sealed

# The table the provider foreign keys point at must be in the metadata wherever these models are used.
from callcenter.providers import models as _providers  # noqa: F401
from callcenter.users import models as _users  # noqa: F401


class LivingSituation(enum.StrEnum):
    ALONE = "alone"  # 独居
    EMPTY_NEST = "empty_nest"  # 空巢
    WITH_SPOUSE = "with_spouse"
    WITH_FAMILY = "with_family"
    WITH_CAREGIVER = "with_caregiver"


class ContactRole(enum.StrEnum):
    RELATIVE = "relative"
    DOCTOR = "doctor"  # the community doctor
    SOCIAL_WORKER = "social_worker"  # the paired social worker
    VOLUNTEER = "volunteer"


# The blind index of elders' resident ID numbers (callcenter.db.sealed): look-ups and uniqueness.
ID_NUMBER_INDEX = "elders.id_number"


class Elder(Base):
    """An elder's file. Sensitive personal information (GB/T 35273: the resident ID, health, precise location) is
    sealed at rest (callcenter.db.sealed); the rest stays searchable."""

    __tablename__ = "elders"
    __blind_indexes__: ClassVar[dict[str, tuple[str, str]]] = {"id_number": ("id_number_digest", ID_NUMBER_INDEX)}

    id: Mapped[int] = mapped_column(primary_key=True)
    full_name: Mapped[str] = mapped_column(String(100))
    gender: Mapped[str | None] = mapped_column(String(10))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    # Resident ID number (居民身份证号); unique where known (by its digest), absent for elders registered from a call.
    id_number: Mapped[str | None] = mapped_column(Sealed("elders.id_number"))
    id_number_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    address: Mapped[str | None] = mapped_column(String(300))
    community: Mapped[str | None] = mapped_column(String(100), index=True)
    district: Mapped[str | None] = mapped_column(String(100))
    latitude: Mapped[float | None] = mapped_column(Sealed("elders.latitude", json=True))
    longitude: Mapped[float | None] = mapped_column(Sealed("elders.longitude", json=True))
    living_situation: Mapped[LivingSituation | None] = mapped_column(str_enum(LivingSituation, "living_situation"))
    # Care level 0 (independent) .. 5 (fully dependent), as in the local long-term-care assessment; each GB/T
    # 42195-2022 capability assessment sets it to its final level, 0 能力完好 .. 4 完全失能 (callcenter.health_records).
    care_level: Mapped[int | None] = mapped_column(Integer)
    conditions: Mapped[list[str]] = mapped_column(Sealed("elders.conditions", json=True), default=list)
    medications: Mapped[list[str]] = mapped_column(Sealed("elders.medications", json=True), default=list)
    allergies: Mapped[list[str]] = mapped_column(Sealed("elders.allergies", json=True), default=list)
    language: Mapped[str] = mapped_column(String(16), default="zh-CN")
    # The provider the elder chose (seed 6.1.3: preferred when an order is matched).
    preferred_provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("service_providers.id", ondelete="SET NULL"))
    notes: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    contacts: Mapped[list[Contact]] = relationship(
        back_populates="elder", order_by="Contact.priority", cascade="all, delete-orphan"
    )


class RosterImportStatus(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # a fatal error: nothing of the file was committed


class RosterImport(Base):
    """A bulk import of the civil-affairs roster (CSV or XLSX): its progress while it runs, its counts and the
    rejected rows with their reasons when done. Rows match existing elders by resident ID number, so importing
    the same file again changes nothing."""

    __tablename__ = "roster_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[RosterImportStatus] = mapped_column(str_enum(RosterImportStatus, "roster_import_status"),
                                                      default=RosterImportStatus.RUNNING)
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    processed_rows: Mapped[int] = mapped_column(Integer, default=0)
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    unchanged_count: Mapped[int] = mapped_column(Integer, default=0)
    rejected_count: Mapped[int] = mapped_column(Integer, default=0)
    # [{"row": 12, "id_number": ..., "errors": {"phone": "..."}}] — the rejected-rows report. Sealed: the rows carry
    # resident IDs and whatever else the file had.
    rejected_rows: Mapped[list[dict[str, Any]]] = mapped_column(Sealed("roster_imports.rejected_rows", json=True),
                                                                default=list)
    error: Mapped[str | None] = mapped_column(Text)
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        # Priority orders who is called first within one role (relative 1 before relative 2).
        UniqueConstraint("elder_id", "role", "priority"),
        Index("ix_contacts_phone", "phone"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    elder_id: Mapped[int] = mapped_column(ForeignKey("elders.id", ondelete="CASCADE"), index=True)
    role: Mapped[ContactRole] = mapped_column(str_enum(ContactRole, "contact_role"))
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(32))
    relationship_to_elder: Mapped[str | None] = mapped_column(String(50))
    priority: Mapped[int] = mapped_column(Integer, default=1)
    # Set when the contact is a paired volunteer (callcenter.volunteers): pairing adds it, unpairing removes it.
    # No FK constraint to avoid an import cycle with volunteers; the volunteers service keeps it consistent.
    volunteer_id: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    elder: Mapped[Elder] = relationship(back_populates="contacts")
