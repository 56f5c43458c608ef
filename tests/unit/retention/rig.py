"""Building retention scenarios: calls, recordings with real stored objects, orders; the clock is a parameter."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from callcenter.calls.models import Call, CallKind, CallLeg, Disposition
from callcenter.conferences.models import ConferenceParticipant, PartyRole, PartyState
from callcenter.db.session import Database
from callcenter.orders.models import WorkOrder, WorkOrderEvent, WorkOrderKind, WorkOrderStatus
from callcenter.recordings.models import Recording
from callcenter.recordings.s3 import RETENTION_TAG
from callcenter.recordings.storage import RecordingStore
from callcenter.retention.engine import RetentionEngine, RetentionPolicy
from callcenter.retention.models import RetentionLogEntry

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)
RECORDING_FLOOR = NOW - dt.timedelta(days=92)
CALL_LOG_FLOOR = NOW - dt.timedelta(days=1095)
_serials = itertools.count(1)


@dataclasses.dataclass
class Rig:
    db: Database
    store: RecordingStore
    tmp_path: Path
    expiry: str = "archive"
    keys: dict[int, str] = dataclasses.field(default_factory=dict)  # recording id → storage key
    s3: Any = None  # a plain S3 client, when the store is S3's

    async def tag(self, recording_id: int) -> str | None:
        """The retention tag of the recording's S3 object (the lifecycle rule expires ``standard`` ones)."""
        store: Any = self.store
        answer = await asyncio.to_thread(self.s3.get_object_tagging, Bucket=store.bucket,
                                         Key=store.object_key(self.keys[recording_id]))
        return next((tag["Value"] for tag in answer["TagSet"] if tag["Key"] == RETENTION_TAG), None)

    def policy(self, **changes: Any) -> RetentionPolicy:
        values: dict[str, Any] = {"recording_days": 92, "call_log_days": 1095, "call_log_expiry": self.expiry,
                                  "archive_dir": self.tmp_path / "data" / "archive",
                                  "lock_file": self.tmp_path / "data" / "retention.lock"}
        return RetentionPolicy(**{**values, **changes})

    def engine(self, stores: object = None, **changes: Any) -> RetentionEngine:
        """``stores``: a store, or a registry of them; the rig's own by default."""
        return RetentionEngine(self.db, stores or self.store, self.policy(**changes), batch_size=3)

    async def call(self, *, ended: dt.datetime, minutes: float = 5, legs: int = 2, party: bool = False) -> int:
        started = ended - dt.timedelta(minutes=minutes)
        serial = next(_serials)
        async with self.db.transaction() as session:
            call = Call(linkedid=f"{serial}.1", kind=CallKind.SOS, caller_number="17700000501", started_at=started,
                        answered_at=started + 5 * SECOND, ended_at=ended, disposition=Disposition.ANSWERED,
                        legs=[CallLeg(uniqueid=f"{serial}.{n + 1}", channel=f"PJSIP/dev-{n}", started_at=started,
                                      ended_at=ended) for n in range(legs)])
            session.add(call)
            await session.flush()
            if party:
                session.add(ConferenceParticipant(call_id=call.id, room=f"sos-{serial}", role=PartyRole.DOCTOR,
                                                  number="13900000000", state=PartyState.LEFT, created_at=started,
                                                  joined_at=started, left_at=ended))
            return call.id

    async def recording(self, *, created: dt.datetime, call_id: int | None = None, expires: dt.datetime | None = None,
                        days: int = 92, deleted: bool = False, held: bool = False) -> int:
        serial = f"SOS-{created:%Y%m%d%H%M%S}-{next(_serials)}"
        key = f"{created:%Y/%m/%d}/{serial}.ogg"
        size = sha = None
        if not deleted:
            source = self.tmp_path / f"{serial}.ogg"
            source.write_bytes(b"OggS" + serial.encode() * 20)
            stored = await self.store.put(key, source)
            size, sha = stored.size_bytes, stored.sha256
        async with self.db.transaction() as session:
            recording = Recording(serial_number=serial, call_id=call_id, storage_backend=self.store.backend,
                                  storage_key=key, audio_format="ogg/opus", duration_seconds=3.0, size_bytes=size,
                                  sha256=sha, created_at=created,
                                  expires_at=expires or created + dt.timedelta(days=days), legal_hold=held,
                                  deleted_at=created + dt.timedelta(days=days) if deleted else None)
            session.add(recording)
            await session.flush()
            self.keys[recording.id] = key
            return recording.id

    async def order(self, *, call_id: int | None, status: WorkOrderStatus = WorkOrderStatus.CLOSED,
                    kind: WorkOrderKind = WorkOrderKind.EMERGENCY, mentions: tuple[int, ...] = ()) -> int:
        async with self.db.transaction() as session:
            order = WorkOrder(number=f"WO-{next(_serials):06d}", kind=kind, status=status, call_id=call_id,
                              title="SOS", created_at=NOW - dt.timedelta(days=1200))
            session.add(order)
            await session.flush()
            session.add(WorkOrderEvent(work_order_id=order.id, actor_label="system", action="created", call_id=call_id))
            session.add_all(WorkOrderEvent(work_order_id=order.id, actor_label="agent01", action="follow_up_call",
                                           call_id=mentioned) for mentioned in mentions)
            return order.id

    async def hold(self, model: type[Call] | type[WorkOrder], target_id: int, held: bool = True) -> None:
        async with self.db.transaction() as session:
            target = await session.get(model, target_id)
            assert target is not None
            target.legal_hold = held
            target.legal_hold_reason = "court order 2030-17" if held else None

    async def get(self, model: type, target_id: int) -> Any:
        async with self.db.transaction() as session:
            return await session.get(model, target_id)

    async def count(self, model: type, *where: Any) -> int:
        async with self.db.transaction() as session:
            return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    async def log(self) -> list[RetentionLogEntry]:
        async with self.db.transaction() as session:
            return list((await session.scalars(select(RetentionLogEntry).order_by(RetentionLogEntry.id))).all())

    async def stored(self, recording_id: int) -> bool:
        """The recording's object is in the store (its row may be gone with its call log)."""
        return await self.store.size(self.keys[recording_id]) is not None
