"""Call-log archive files: gzip-compressed JSON lines, one call a line, each with a SHA-256 sidecar.

``<CC_DATA_DIR>/archive/call-log-<run time>-<run>-<batch>.jsonl.gz`` and ``….jsonl.gz.sha256`` (the format of
``sha256sum``, so ``sha256sum -c`` checks it). Both are written as a temporary file, fsynced and renamed, so a file
under its final name is always whole; the directory and files are readable by the platform's user only (call
logs hold phone numbers). A line holds the call and everything of its log: legs, conference parties, recordings
(their rows: the audio was deleted months before), and the work orders that referred to it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import decimal
import enum
import gzip
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.calls.models import Call, CallLeg
from callcenter.conferences.models import ConferenceParticipant
from callcenter.orders.models import WorkOrder, WorkOrderEvent
from callcenter.recordings.models import Recording
from callcenter.recordings.storage import _fsync_directory

FORMAT = 1
SUFFIX = ".jsonl.gz"


@dataclasses.dataclass(frozen=True, slots=True)
class ArchiveFile:
    path: Path
    sha256: str
    calls: int


def archive_name(now: dt.datetime, run_id: str, batch: int) -> str:
    return f"call-log-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{run_id}-{batch:05d}{SUFFIX}"


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


async def call_log_lines(session: AsyncSession, call_ids: Iterable[int], *, rule: str,
                         archived_at: dt.datetime) -> list[str]:
    """The JSON lines of these calls' logs, in call id order."""
    ids = sorted(set(call_ids))
    calls = (await session.scalars(select(Call).where(Call.id.in_(ids)).order_by(Call.id))).all()
    legs = await _by_call(session, CallLeg, ids, CallLeg.id)
    parties = await _by_call(session, ConferenceParticipant, ids, ConferenceParticipant.id)
    recordings = await _by_call(session, Recording, ids, Recording.id)
    orders: dict[int, dict[int, WorkOrder]] = {}
    referring = select(WorkOrder).where(WorkOrder.call_id.in_(ids) | WorkOrder.id.in_(
        select(WorkOrderEvent.work_order_id).where(WorkOrderEvent.call_id.in_(ids))))
    mentions = (await session.execute(select(WorkOrderEvent.work_order_id, WorkOrderEvent.call_id)
                                      .where(WorkOrderEvent.call_id.in_(ids)))).all()
    for order in (await session.scalars(referring.order_by(WorkOrder.id))).all():
        for call_id in {order.call_id, *(call for order_id, call in mentions if order_id == order.id)}:
            if call_id in ids:
                orders.setdefault(call_id, {})[order.id] = order
    lines = []
    for call in calls:
        line = {
            "format": FORMAT, "rule": rule, "archived_at": archived_at.isoformat(), "call": row(call),
            "legs": [row(leg) for leg in legs.get(call.id, [])],
            "conference_participants": [row(party) for party in parties.get(call.id, [])],
            "recordings": [row(recording) for recording in recordings.get(call.id, [])],
            "work_orders": [{"id": order.id, "number": order.number, "kind": order.kind.value,
                             "status": order.status.value} for order in orders.get(call.id, {}).values()],
        }
        lines.append(json.dumps(line, ensure_ascii=False, sort_keys=True))
    return lines


async def _by_call(session: AsyncSession, model: Any, ids: list[int], order: Any) -> dict[int, list[Any]]:
    grouped: dict[int, list[Any]] = {}
    for item in (await session.scalars(select(model).where(model.call_id.in_(ids)).order_by(order))).all():
        grouped.setdefault(item.call_id, []).append(item)
    return grouped


def row(instance: object) -> dict[str, Any]:
    """Every column of an ORM row, as JSON values."""
    return {attribute.key: _json(getattr(instance, attribute.key))
            for attribute in inspect(instance).mapper.column_attrs}


def _json(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def write_archive(path: Path, lines: list[str]) -> ArchiveFile:
    """Write the file and then its checksum, each atomically; returns the checksum."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    digest = hashlib.sha256()
    partial = path.with_name(f".{path.name}.part")
    # mtime=0 and no file name inside: the same lines always give the same bytes.
    with _private(partial) as raw, gzip.GzipFile(filename="", mode="wb", fileobj=_Hashing(raw, digest),
                                                 mtime=0) as compressed:
        for line in lines:
            compressed.write(line.encode("utf-8") + b"\n")
    partial.replace(path)
    checksum = digest.hexdigest()
    partial_sum = sidecar(path).with_name(f".{sidecar(path).name}.part")
    with _private(partial_sum) as raw:
        raw.write(f"{checksum}  {path.name}\n".encode())
    partial_sum.replace(sidecar(path))
    _fsync_directory(path.parent)
    return ArchiveFile(path, checksum, len(lines))


def read_archive(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


class _Hashing:
    """A write-only file object that hashes what passes through it."""

    def __init__(self, raw: Any, digest: Any) -> None:
        self._raw = raw
        self._digest = digest

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        return int(self._raw.write(data))

    def flush(self) -> None:
        self._raw.flush()


@contextlib.contextmanager
def _private(path: Path) -> Any:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw:
        yield raw
        raw.flush()
        os.fsync(raw.fileno())
