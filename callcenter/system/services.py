"""Health of the platform's three lifelines: the AMI session, the FastAGI listener and the database."""

from __future__ import annotations

import dataclasses
from typing import Protocol

from callcenter.db.session import Database


class _Connected(Protocol):
    @property
    def connected(self) -> bool: ...


class _Listening(Protocol):
    @property
    def listening(self) -> bool: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    detail: str


@dataclasses.dataclass(frozen=True, slots=True)
class HealthReport:
    checks: dict[str, Check]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "status": "ok" if self.ok else "degraded",
            "checks": {name: {"ok": c.ok, "detail": c.detail} for name, c in self.checks.items()},
        }


class HealthService:
    def __init__(self, db: Database, ami: _Connected, fastagi: _Listening, *, ami_label: str, agi_label: str) -> None:
        self._db = db
        self._ami = ami
        self._fastagi = fastagi
        self._ami_label = ami_label
        self._agi_label = agi_label

    async def check(self) -> HealthReport:
        try:
            await self._db.ping()
            database = Check(True, f"{self._db.backend} reachable")
        except Exception as error:
            database = Check(False, f"{self._db.backend} unreachable: {type(error).__name__}: {error}"[:300])
        ami = Check(self._ami.connected,
                    f"logged in to {self._ami_label}" if self._ami.connected else f"not connected to {self._ami_label}")
        fastagi = Check(self._fastagi.listening,
                        f"listening on {self._agi_label}" if self._fastagi.listening else "not listening")
        return HealthReport({"ami": ami, "fastagi": fastagi, "database": database})
