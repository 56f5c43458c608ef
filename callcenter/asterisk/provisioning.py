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
        self.pending = False
        # A change made while AMI was down is applied as soon as the link is back.
        ami.on_login(self._retry_pending)

    async def apply(self) -> None:
        """Make Asterisk serve what the database says now. Raises if AMI is down (the change is kept in the DB,
        marked pending, and applied at the next AMI login, the next successful apply or an Asterisk start)."""
        async with self._lock:
            self.pending = True
            runtime = await asyncio.to_thread(AsteriskRuntime.for_settings, self._settings)
            await render(self._settings, runtime, self._db)
            await self._ami.send_action({"Action": "Reload", "Module": "res_pjsip.so"}, timeout=10)
            self.pending = False
            log.info("asterisk.provisioned", instance=runtime.instance)

    async def _retry_pending(self) -> None:
        if self.pending:
            log.warning("asterisk.provisioning_retry")
            await self.apply()
