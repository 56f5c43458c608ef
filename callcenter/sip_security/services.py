"""The SIP guard: bans an address in Asterisk's PJSIP ACL when it fails authentication too often, and lifts the ban
when it expires or an admin lifts it.

How a ban reaches Asterisk: the ban is a ``sip_bans`` row; the Asterisk configuration is rendered from the database
(``pjsip_acl.conf``: an ``acl`` object denying every address under a ban in force) and PJSIP is reloaded over the one
AMI connection — both by the provisioner (``asterisk.provisioning``), the same path a new device takes. When AMI is
down the change waits in the database and the provisioner applies it at the next AMI login.

How it ends: each ban has ``expires_at``. A timer per ban (and a sweep every ``SWEEP_SECONDS``, and one at start)
marks the bans past their time lifted (``lifted_by="expiry"``), audits them and re-applies the configuration. A
render never includes a ban past its time anyway, so nothing keeps an address out longer than meant. Failures are
counted in memory (a restart starts counting afresh); bans are in the database, so a restart keeps them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import ipaddress
from collections.abc import Callable

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import Conflict, NotFound
from callcenter.audit.services import Actor, record
from callcenter.config import Network, Settings
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.devices.services import Provisioner, Provisioning, apply_provisioning
from callcenter.logs import get_logger
from callcenter.periodic import PeriodicJob
from callcenter.sip_security.guard import FailureTracker, Offence, Policy
from callcenter.sip_security.models import SipBan
from callcenter.telephony.ami import AmiEvent

log = get_logger(__name__)

GUARD_ACTOR = Actor(None, "sip-guard")
SWEEP_SECONDS = 30.0
EXPIRY = "expiry"


@dataclasses.dataclass(frozen=True, slots=True)
class GuardSettings:
    failures: int
    window: dt.timedelta
    duration: dt.timedelta
    exempt: tuple[Network, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> GuardSettings:
        return cls(settings.sip_ban_failures, dt.timedelta(seconds=settings.sip_ban_window_seconds),
                   dt.timedelta(seconds=settings.sip_ban_seconds), tuple(settings.sip_ban_exempt))

    def exempts(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in network for network in self.exempt)


@dataclasses.dataclass(frozen=True, slots=True)
class Lifted:
    ban: SipBan
    provisioning: Provisioning


class SipGuard:
    """Reads the security events (an AMI subscriber: one event at a time, in order), keeps the bans and their
    expiry. Web handlers call ``lift``; only the provisioner talks to Asterisk."""

    def __init__(self, db: Database, provisioner: Provisioner, config: GuardSettings, *,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._db = db
        self._provisioner = provisioner
        self.config = config
        self._clock = clock
        self.tracker = FailureTracker(Policy(config.failures, config.window))
        self._banned: dict[str, dt.datetime] = {}  # address → until, for the bans in force
        self._withheld: dict[str, dt.datetime] = {}  # address → when a withheld ban was last logged
        self._lock = asyncio.Lock()  # bans, lifts and sweeps one at a time: each renders the whole ACL
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self.sweeper = PeriodicJob("sip-ban-expiry", self.sweep, first_run_seconds=0.5,
                                   interval_seconds=SWEEP_SECONDS)

    # -- lifecycle (a Job) -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Learn the bans in force (a restart keeps them); the sweeper lifts those that expired meanwhile."""
        async with self._db.transaction(read_only=True) as session:
            for ban in await active_bans(session):
                self._banned[ban.address] = ban.expires_at
                self._schedule(ban)
        await self.sweeper.start()

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        await self.sweeper.stop()

    # -- events ----------------------------------------------------------------------------------------------------
    async def handle(self, event: AmiEvent) -> None:
        offence = self.tracker.observe(event, self._clock())
        if offence is None or offence.address in self._banned:
            return
        if self.config.exempts(offence.address):
            self._withhold(offence, "exempt")
        elif offence.trusted:
            self._withhold(offence, "authenticated_lately")
        else:
            await self.ban(offence)

    async def ban(self, offence: Offence) -> SipBan | None:
        """Record the ban (audited), then have Asterisk deny the address; None if one is already in force."""
        now = self._clock()
        async with self._lock:
            try:
                async with self._db.transaction() as session:
                    ban = SipBan(address=offence.address, failures=offence.failures, accounts=list(offence.accounts),
                                 first_failure_at=offence.first_failure_at, banned_at=now,
                                 expires_at=now + self.config.duration)
                    session.add(ban)
                    await session.flush()
                    record(session, GUARD_ACTOR, action="sip_ban.create", target_type="sip_ban", target_id=ban.id,
                           details={"address": ban.address, "failures": ban.failures,
                                    "window_seconds": int(self.config.window.total_seconds()),
                                    "until": ban.expires_at.isoformat(), "accounts": ban.accounts})
            except IntegrityError:  # a ban for it is already in force (made by another path): nothing to add
                log.info("sip_security.already_banned", address=offence.address)
                return None
            self._banned[ban.address] = ban.expires_at
            self.tracker.forget(ban.address)
            self._schedule(ban)
            provisioning = await apply_provisioning(self._provisioner, reason="sip_ban.create", target=ban.address)
        log.warning("sip_security.banned", address=ban.address, failures=ban.failures,
                    until=ban.expires_at.isoformat(), asterisk=provisioning.value)
        return ban

    # -- lifting ---------------------------------------------------------------------------------------------------
    async def lift(self, ban_id: int, actor: Actor) -> Lifted:
        """An admin lifts a ban before its time (audited); Asterisk serves the address again at once."""
        async with self._lock:
            async with self._db.transaction() as session:
                ban = await session.get(SipBan, ban_id, with_for_update=True)
                if ban is None:
                    raise NotFound(f"no SIP ban {ban_id}", field="id")
                if ban.lifted_at is not None or ban.expires_at <= self._clock():
                    raise Conflict(f"SIP ban {ban_id} is no longer in force", field="id", code="not_in_force")
                ban.lifted_at, ban.lifted_by = self._clock(), actor.label
                record(session, actor, action="sip_ban.lift", target_type="sip_ban", target_id=ban.id,
                       details={"address": ban.address, "until": ban.expires_at.isoformat()})
            self._forget(ban)
            provisioning = await apply_provisioning(self._provisioner, reason="sip_ban.lift", target=ban.address)
        log.info("sip_security.lifted", address=ban.address, by=actor.label, asterisk=provisioning.value)
        return Lifted(ban, provisioning)

    async def sweep(self) -> int:
        """Lift every ban past its time (audited as the guard's) and re-apply the ACL; how many were lifted."""
        async with self._lock:
            now = self._clock()
            async with self._db.transaction() as session:
                expired = (await session.scalars(
                    select(SipBan).where(SipBan.lifted_at.is_(None), SipBan.expires_at <= now).order_by(SipBan.id)
                )).all()
                for ban in expired:
                    ban.lifted_at, ban.lifted_by = now, EXPIRY
                    record(session, GUARD_ACTOR, action="sip_ban.expired", target_type="sip_ban", target_id=ban.id,
                           details={"address": ban.address, "until": ban.expires_at.isoformat()})
            if not expired:
                return 0
            for ban in expired:
                self._forget(ban)
            provisioning = await apply_provisioning(self._provisioner, reason="sip_ban.expired",
                                                    target=",".join(ban.address for ban in expired))
        for ban in expired:
            log.info("sip_security.expired", address=ban.address, asterisk=provisioning.value)
        return len(expired)

    # -- internals -------------------------------------------------------------------------------------------------
    def _schedule(self, ban: SipBan) -> None:
        """Sweep the moment ``ban`` expires (the periodic sweep is the fallback)."""
        delay = max(0.0, (ban.expires_at - self._clock()).total_seconds()) + 0.05
        with contextlib.suppress(RuntimeError):  # no running loop: the periodic sweep will see to it
            self._timers[ban.id] = asyncio.get_running_loop().call_later(delay, self.sweeper.run_soon)

    def _forget(self, ban: SipBan) -> None:
        if self._banned.get(ban.address) == ban.expires_at:
            del self._banned[ban.address]
        timer = self._timers.pop(ban.id, None)
        if timer is not None:
            timer.cancel()

    def _withhold(self, offence: Offence, reason: str) -> None:
        """An address over the threshold that is not banned (exempt, or a device authenticated from it lately):
        logged once a window."""
        now = self._clock()
        last = self._withheld.get(offence.address)
        if last is not None and now - last < self.config.window:
            return
        if len(self._withheld) > 1000:
            self._withheld.clear()
        self._withheld[offence.address] = now
        log.warning("sip_security.ban_withheld", address=offence.address, failures=offence.failures, reason=reason)


async def active_bans(session: AsyncSession, now: dt.datetime | None = None) -> list[SipBan]:
    """The bans in force, oldest first."""
    return list((await session.scalars(
        select(SipBan).where(SipBan.lifted_at.is_(None), SipBan.expires_at > (now or utcnow())).order_by(SipBan.id)
    )).all())


SIP_GUARD = web.AppKey("sip_guard", SipGuard)
