"""Applying database changes (devices, agents' phones) to the running Asterisk: render, then reload — no restart."""

from __future__ import annotations

import asyncio

from callcenter.asterisk.render import render
from callcenter.asterisk.runtime import AsteriskRuntime
from callcenter.config import Settings
from callcenter.db.session import Database
from callcenter.logs import get_logger
from callcenter.telephony.ami import AmiClient

log = get_logger(__name__)


class AsteriskProvisioner:
    """Serialises re-renders so two API calls never interleave half-written files, then reloads PJSIP over AMI."""

    def __init__(self, settings: Settings, db: Database, ami: AmiClient) -> None:
        self._settings = settings
        self._db = db
        self._ami = ami
        self._lock = asyncio.Lock()

    async def apply(self) -> None:
        """Make Asterisk serve what the database says now. Raises if AMI is down (the change is kept in the DB
        and takes effect at the next successful apply or Asterisk start)."""
        async with self._lock:
            runtime = await asyncio.to_thread(AsteriskRuntime.for_settings, self._settings)
            await render(self._settings, runtime, self._db)
            await self._ami.send_action({"Action": "Reload", "Module": "res_pjsip.so"}, timeout=10)
            log.info("asterisk.provisioned", instance=runtime.instance)
