"""Log-in throttling and the bounded password checker (seed 5.9; issue 12, fault 1).

A flood of log-ins must not delay an SOS. Before this guard, Argon2 ran inside the log-in's write transaction and
every wrong password wrote a failure count, so on SQLite about 60 concurrent wrong log-ins left SOS intake waiting
for the write lock until it gave up. Now nothing here touches the database: the counts live in memory, in the
moving windows of the ``limits`` library, and the password check holds no transaction.

Three limits, checked before any password is:

- **Per source address:** at most ``attempts_per_minute`` attempts a minute, whatever the usernames; past it the
  answer is 429 at once, costing neither a hash nor a write.
- **Per username and address:** ``FAILURES_TO_LOCK`` wrong passwords within ``LOCK_WINDOW`` lock that username for
  *that address only* (423). Someone guessing ``admin`` from one address never locks the real administrator out
  of another.
- **Per username, across addresses:** ``ACCOUNT_FAILURES`` wrong passwords within ``LOCK_WINDOW`` (a guess spread
  over many addresses) slow that username down (429) for every address that has not logged in as it successfully
  in this process's memory.

A username that does not exist is counted, checked and answered exactly like one that does (the password is
verified against a decoy hash), so no answer, status or timing tells whether an account exists.

Argon2 costs about 130 ms of one core and 64 MiB. It runs in a worker thread, ``hash_concurrency`` at a time, with
at most ``HASH_WAITERS`` attempts waiting for a turn; beyond that the answer is 429 "busy", at once, so a flood can
neither exhaust memory nor take both cores away from calls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web
from limits import RateLimitItem, RateLimitItemPerMinute, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

FAILURES_TO_LOCK = 5
ACCOUNT_FAILURES = 30
LOCK_WINDOW_MINUTES = 15
HASH_WAITERS = 8
# How long, and for how many accounts and addresses, a successful log-in exempts its address from the
# across-addresses limit of that account.
KNOWN_ADDRESS_SECONDS = 30 * 24 * 3600
KNOWN_ADDRESSES_PER_USER = 32
KNOWN_USERS = 10_000
UNKNOWN_ADDRESS = "unknown"
TARPIT_SECONDS = 5.0


class Refusal(enum.StrEnum):
    ADDRESS_THROTTLED = "address_throttled"
    ACCOUNT_THROTTLED = "account_throttled"
    LOCKED = "locked"
    BUSY = "busy"


@dataclasses.dataclass(frozen=True, slots=True)
class Refused:
    refusal: Refusal
    retry_after: int  # seconds
    # The first refusal of its kind from this address (and, for a lock, this username) in a minute: audited; the
    # rest only logged, so a flood does not become a flood of audit writes.
    report: bool


class LoginBusy(Exception):
    """Too many password checks are waiting: the attempt is refused without one."""


class LoginGuard:
    """One per platform process, shared by the API's and the panel's log-in."""

    def __init__(self, *, attempts_per_minute: int = 60, hash_concurrency: int = 1,
                 hash_waiters: int = HASH_WAITERS, clock: Callable[[], float] = time.time,
                 tarpit_seconds: float = TARPIT_SECONDS) -> None:
        # How long the answer to an address past its limit is held (users.http.login_flood_middleware).
        self.tarpit_seconds = tarpit_seconds
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_address: RateLimitItem = RateLimitItemPerMinute(attempts_per_minute)
        self._failures: RateLimitItem = parse(f"{FAILURES_TO_LOCK}/{LOCK_WINDOW_MINUTES} minutes")
        self._account_failures: RateLimitItem = parse(f"{ACCOUNT_FAILURES}/{LOCK_WINDOW_MINUTES} minutes")
        self._report_once: RateLimitItem = RateLimitItemPerMinute(1)
        self._hash_turns = asyncio.Semaphore(hash_concurrency)
        self._hash_capacity = hash_concurrency + hash_waiters
        self._hashing = 0
        self._clock = clock
        # username → {address: last successful log-in}, oldest user first.
        self._known: OrderedDict[str, dict[str, float]] = OrderedDict()
        # Addresses past their attempts a minute → until when (monotonic): refused before anything else is done.
        self._blocked: OrderedDict[str, float] = OrderedDict()
        self._refused_quietly: dict[str, int] = {}
        # username → the addresses its wrong passwords came from (bounded), so an admin's unlock can clear them.
        self._failed_from: OrderedDict[str, set[str]] = OrderedDict()
        self._last_flood_log: dict[str, float] = {}

    async def admit(self, username: str, address: str | None) -> Refused | None:
        """Count an attempt; ``None`` when its password may be checked, else why not and for how long."""
        address = address or UNKNOWN_ADDRESS
        if not await self._limiter.hit(self._per_address, "address", address):
            refused = await self._refused(Refusal.ADDRESS_THROTTLED, self._per_address, ("address", address), address)
            self._block(address, refused.retry_after)
            return refused
        if not await self._limiter.test(self._failures, "failures", username, address):
            return await self._refused(Refusal.LOCKED, self._failures, ("failures", username, address),
                                       f"{address} {username}")
        if (not await self._limiter.test(self._account_failures, "account", username)
                and not self._is_known(username, address)):
            return await self._refused(Refusal.ACCOUNT_THROTTLED, self._account_failures, ("account", username),
                                       address)
        return None

    def blocked(self, address: str | None) -> int | None:
        """Seconds left when ``address`` is past its attempts a minute, else None: the flood's fast path, checked
        before the request's body is even read (a dict lookup, no lock, no log line, no write)."""
        until = self._blocked.get(address or UNKNOWN_ADDRESS)
        if until is None:
            return None
        left = until - time.monotonic()
        if left <= 0:
            self._blocked.pop(address or UNKNOWN_ADDRESS, None)
            return None
        return max(1, math.ceil(left))

    def note_quiet_refusal(self, address: str | None) -> int | None:
        """Count a fast-path refusal; once a minute per address, the count since the last time (to be logged)."""
        address = address or UNKNOWN_ADDRESS
        self._refused_quietly[address] = self._refused_quietly.get(address, 0) + 1
        now = time.monotonic()
        if now - self._last_flood_log.get(address, -60.0) < 60:
            return None
        if len(self._last_flood_log) >= KNOWN_USERS:  # bounded: addresses quiet for a minute are forgotten
            self._last_flood_log = {a: at for a, at in self._last_flood_log.items() if now - at < 60}
        self._last_flood_log[address] = now
        return self._refused_quietly.pop(address)

    def _block(self, address: str, seconds: int) -> None:
        self._blocked[address] = time.monotonic() + seconds
        self._blocked.move_to_end(address)
        while len(self._blocked) > KNOWN_USERS:
            self._blocked.popitem(last=False)

    async def check_password(self, check: Callable[[], bool]) -> bool:
        """Run ``check`` (an Argon2 verification) in a worker thread when a turn is free; LoginBusy when too many
        are already waiting."""
        if self._hashing >= self._hash_capacity:
            raise LoginBusy
        self._hashing += 1
        try:
            async with self._hash_turns:
                return await asyncio.to_thread(check)
        finally:
            self._hashing -= 1

    async def busy(self, address: str | None) -> Refused:
        address = address or UNKNOWN_ADDRESS
        report = await self._limiter.hit(self._report_once, "report", Refusal.BUSY.value, address)
        return Refused(Refusal.BUSY, 5, report)

    async def failed(self, username: str, address: str | None) -> None:
        address = address or UNKNOWN_ADDRESS
        await self._limiter.hit(self._failures, "failures", username, address)
        await self._limiter.hit(self._account_failures, "account", username)
        addresses = self._failed_from.pop(username, set())
        if len(addresses) < KNOWN_ADDRESSES_PER_USER:
            addresses.add(address)
        self._failed_from[username] = addresses
        while len(self._failed_from) > KNOWN_USERS:
            self._failed_from.popitem(last=False)

    async def unlock(self, username: str) -> int:
        """An administrator's unlock: ``username``'s lock-outs from every address and its across-addresses count
        are cleared (the addresses' own attempts a minute are not: they are about the address, not the account).
        Returns how many addresses had failures on record."""
        addresses = self._failed_from.pop(username, set())
        for address in addresses:
            await self._limiter.clear(self._failures, "failures", username, address)
        await self._limiter.clear(self._account_failures, "account", username)
        return len(addresses)

    async def succeeded(self, username: str, address: str | None) -> None:
        """A right password: this address starts afresh for this username and is known from now on."""
        address = address or UNKNOWN_ADDRESS
        await self._limiter.clear(self._failures, "failures", username, address)
        now = self._clock()
        addresses = self._known.pop(username, {})
        addresses = {a: at for a, at in addresses.items() if now - at < KNOWN_ADDRESS_SECONDS and a != address}
        while len(addresses) >= KNOWN_ADDRESSES_PER_USER:
            del addresses[min(addresses, key=addresses.__getitem__)]
        addresses[address] = now
        self._known[username] = addresses
        while len(self._known) > KNOWN_USERS:
            self._known.popitem(last=False)

    def _is_known(self, username: str, address: str) -> bool:
        at = self._known.get(username, {}).get(address)
        return at is not None and self._clock() - at < KNOWN_ADDRESS_SECONDS

    async def _refused(self, refusal: Refusal, item: RateLimitItem, identifiers: tuple[str, ...],
                       reported_as: str) -> Refused:
        stats = await self._limiter.get_window_stats(item, *identifiers)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))  # the windows' own clock
        report = await self._limiter.hit(self._report_once, "report", refusal.value, reported_as)
        return Refused(refusal, retry_after, report)


# Log-in throttling, shared by the API's and the panel's log-in so their attempts add up.
LOGIN_GUARD = web.AppKey("login_guard", LoginGuard)
