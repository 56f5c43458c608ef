"""Health of the platform: which parts work, and whether SOS handling itself is impaired.

Each check is *critical* or not. A critical check failing means an SOS is no longer handled as it must be, and
readiness (``/healthz``, ``/healthz/ready``) answers 503; a non-critical one failing leaves readiness at 200 with
status ``degraded`` and the check listed, so a monitor pages someone without an orchestrator taking the only
process that holds the AMI link out of service. Why each check is or is not critical: docs/reliability.md.

* ``ami`` (critical): without the AMI session the platform sees no call — no call log, no screen-pop, no wallboard,
  no emergency-queue safety net, no abandoned-SOS callback — although Asterisk still queues the elder.
* ``fastagi`` (critical): the dialplan queues an SOS without it and the AMI safety net still raises the order, but
  the overflow loses its last step (the elder's relative is dialled only with the number the ``sos`` AGI sets)
  and the hotline its menu; and the listener lives in this process, so not listening means the process is broken.
* ``database`` (not critical): SOS intake gives up after ``CC_SOS_INTAKE_SECONDS`` and the elder is queued and
  answered anyway; the order may be written late (the safety net's retries, the CDR reconciliation).
* ``spool``, ``storage``, ``data`` free space (not critical, ``system.disk``): the SOS is answered and queued; only
  recordings (and, for ``data``, SQLite's writes) are at risk.
* ``journal`` (not critical, ``callcenter.journal.JournalProbe``): call events and SOS intakes the database did not
  take wait in the local journal and are replayed in order once it answers; a backlog means the call log is
  behind, not that an SOS is lost — it is the mechanism that keeps SOS handling going while the database is away.
* ``mqtt`` (not critical, ``MqttProbe``): the devices' channel for alarms, positions, readings and heartbeats. An SOS
  is a call, never an MQTT message; a device repeats what is not acknowledged, so an outage delays alarms and loses
  none. MQTT off (by CC_MQTT_URL=off, or no ``mosquitto`` installed) is a configuration, not a failure: the line
  passes and says ``off`` and why.
* further probes plug in through ``probes``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Protocol

from callcenter.contract import Check, HealthProbe
from callcenter.db.session import Database
from callcenter.telephony.mqtt import MqttClient, MqttState

# A database that does not answer SELECT 1 within this is reported down; the answer must not wait for it longer.
DATABASE_TIMEOUT = 3.0
PROBE_TIMEOUT = 8.0


class _Connected(Protocol):
    @property
    def connected(self) -> bool: ...


class _Listening(Protocol):
    @property
    def listening(self) -> bool: ...


@dataclasses.dataclass(frozen=True, slots=True)
class HealthReport:
    checks: dict[str, Check]

    @property
    def ok(self) -> bool:
        """Every check passes."""
        return all(check.ok for check in self.checks.values())

    @property
    def ready(self) -> bool:
        """Every SOS-critical check passes: the platform handles an SOS as it must."""
        return all(check.ok for check in self.checks.values() if check.critical)

    @property
    def status(self) -> str:
        """``ok``; ``degraded`` (ready, something non-critical failing); ``down`` (an SOS-critical part failing)."""
        if not self.ready:
            return "down"
        return "ok" if self.ok else "degraded"

    @property
    def failing(self) -> list[str]:
        return [name for name, check in self.checks.items() if not check.ok]

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "ready": self.ready,
            "failing": self.failing,
            "checks": {name: {"ok": c.ok, "critical": c.critical, "detail": c.detail, **c.facts}
                       for name, c in self.checks.items()},
        }


class HealthService:
    def __init__(self, db: Database, ami: _Connected, fastagi: _Listening, *, ami_label: str, agi_label: str,
                 probes: Sequence[HealthProbe] = ()) -> None:
        self._db = db
        self._ami = ami
        self._fastagi = fastagi
        self._ami_label = ami_label
        self._agi_label = agi_label
        self._probes = list(probes)

    def add_probe(self, probe: HealthProbe) -> None:
        self._probes.append(probe)

    async def check(self) -> HealthReport:
        database, *probed = await asyncio.gather(self._database(), *(self._probe(p) for p in self._probes))
        ami = Check(self._ami.connected,
                    f"logged in to {self._ami_label}" if self._ami.connected else f"not connected to {self._ami_label}",
                    critical=True)
        fastagi = Check(self._fastagi.listening,
                        f"listening on {self._agi_label}" if self._fastagi.listening else "not listening",
                        critical=True)
        checks = {"ami": ami, "fastagi": fastagi, "database": database}
        for found in probed:
            checks.update(found)
        return HealthReport(checks)

    async def _database(self) -> Check:
        try:
            await self._db.ping(timeout=DATABASE_TIMEOUT)
            return Check(True, f"{self._db.backend} reachable")
        except Exception as error:
            return Check(False, f"{self._db.backend} unreachable: {type(error).__name__}: {error}"[:300])

    @staticmethod
    async def _probe(probe: HealthProbe) -> dict[str, Check]:
        name = type(probe).__name__
        try:
            return await asyncio.wait_for(probe.health_checks(), PROBE_TIMEOUT)
        except Exception as error:
            # A probe that breaks is itself a finding, never a reason for the health answer to fail.
            return {name: Check(False, f"{name} failed: {type(error).__name__}: {error}"[:300])}



class MqttProbe:
    """The ``mqtt`` line: connected (and every subscription granted), not connected (failing), or off (passing,
    saying why), with the transport's counters (refused and dropped messages) for a monitoring system."""

    def __init__(self, mqtt: MqttClient) -> None:
        self._mqtt = mqtt

    async def health_checks(self) -> dict[str, Check]:
        state = self._mqtt.state
        ok = state is MqttState.OFF or (state is MqttState.CONNECTED and not self._mqtt.refused_filters)
        facts: dict[str, object] = {"state": state.value}
        if state is not MqttState.OFF:
            facts.update(self._mqtt.counters.as_dict())
        return {"mqtt": Check(ok, self._mqtt.describe(), facts=facts)}
