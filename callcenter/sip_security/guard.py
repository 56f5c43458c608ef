"""Counting failed SIP authentications per source address, from Asterisk's security events; free of I/O.

Asterisk 22 (res_pjsip) raises, on the AMI ``security`` class, for each request it refuses:

* ``ChallengeResponseFailed`` when a request's credentials are wrong. An account that does not exist is challenged
  like a real one (PJSIP's "artificial" endpoint, so that a guesser cannot tell which accounts exist); its failed
  answer has the account ``<unknown>`` and comes with an ``InvalidAccountID`` of the same request;
* ``InvalidAccountID`` for every request naming an account (endpoint) that does not exist;
* ``InvalidPassword`` is raised by other services (AMI log-ins); read the same way should a PJSIP one ever come;
* ``SuccessfulAuth`` when a request authenticates.

A **failure** is a request refused for a wrong password (``ChallengeResponseFailed`` of an existing account,
``InvalidPassword``) or for an unknown account (``InvalidAccountID``; the ``<unknown>`` challenge failure that
comes with it is the same request, not counted twice). A guess at an unknown account with credentials is two
requests naming it, so two failures.

**Trusted addresses.** A UDP source address costs nothing to forge, and none of the failures above needs an answer
from the address it names: one forged packet raises each. So an address from which a device or phone
*authenticated* within ``TRUST`` is never banned (its failures are still counted and reported): authenticating
takes Asterisk's nonce, which is bound to the address it was sent to, so only who receives packets there can.
That keeps a care home whose pendants share one NAT address from being banned by a stranger forging that address,
or by one of its own pendants with a wrong password. Asterisk 22 leaves the nonce out of ``ChallengeSent``
(``Challenge:`` is empty), so the failures themselves cannot be tied to a nonce sent to their address.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import ipaddress
from collections.abc import Mapping

PASSWORD_FAILURES = ("ChallengeResponseFailed", "InvalidPassword")
EVENTS = ("InvalidAccountID", "SuccessfulAuth", *PASSWORD_FAILURES)
SERVICE = "PJSIP"
UNKNOWN_ACCOUNT = "<unknown>"
MAX_ACCOUNTS = 5  # account names remembered per address
MAX_ACCOUNT_LENGTH = 64
MAX_ADDRESSES = 10_000  # addresses counted (or trusted) at once; the least recently seen go first
# How long a successful authentication keeps its address from being banned: a day covers devices that register
# rarely or were offline for a while.
TRUST = dt.timedelta(hours=24)


def remote_address(value: str) -> str | None:
    """The IP address of a security event's ``RemoteAddress`` (``IPV4/UDP/203.0.113.9/5060``), normalised."""
    parts = value.split("/")
    if len(parts) < 4:
        return None
    try:
        address = ipaddress.ip_address(parts[2].strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


@dataclasses.dataclass(frozen=True, slots=True)
class Offence:
    """An address that reached the threshold: what a ban is made of."""

    address: str
    failures: int
    first_failure_at: dt.datetime
    accounts: tuple[str, ...]
    trusted: bool = False  # a device or phone authenticated from it within TRUST: reported, not banned


@dataclasses.dataclass(frozen=True, slots=True)
class Policy:
    failures: int  # 0: off
    window: dt.timedelta


class FailureTracker:
    """Failed authentications per address in a moving window, and the addresses that authenticated lately."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._failures: collections.OrderedDict[str, collections.deque[dt.datetime]] = collections.OrderedDict()
        self._accounts: dict[str, list[str]] = {}
        self._trusted: collections.OrderedDict[str, dt.datetime] = collections.OrderedDict()

    def observe(self, event: Mapping[str, str], at: dt.datetime) -> Offence | None:
        """Take one security event; an ``Offence`` when its address is at or over the threshold."""
        if event.get("Service") != SERVICE:
            return None  # AMI log-ins and other services: not SIP, not banned by the SIP ACL
        address = remote_address(event.get("RemoteAddress", ""))
        if address is None:
            return None
        name, account = event.get("Event", ""), event.get("AccountID", "")
        if name == "SuccessfulAuth":
            self._remember(self._trusted, address, at)
            return None
        if name == "InvalidAccountID" or (name in PASSWORD_FAILURES and account != UNKNOWN_ACCOUNT):
            self._remember_account(address, account)
            return self._count(address, at)
        return None

    def trusted(self, address: str, at: dt.datetime) -> bool:
        since = self._trusted.get(address)
        return since is not None and at - since <= TRUST

    def forget(self, address: str) -> None:
        """Start counting afresh (the address was banned: its next ban needs a full count again)."""
        self._failures.pop(address, None)
        self._accounts.pop(address, None)

    def failures(self, address: str, at: dt.datetime) -> int:
        times = self._failures.get(address)
        if not times:
            return 0
        self._drop_old(times, at)
        return len(times)

    # -- internals -------------------------------------------------------------------------------------------------
    def _count(self, address: str, at: dt.datetime) -> Offence | None:
        times = self._failures.pop(address, None) or collections.deque()
        self._failures[address] = times  # most recently failing last
        times.append(at)
        self._drop_old(times, at)
        while len(self._failures) > MAX_ADDRESSES:
            oldest, _ = self._failures.popitem(last=False)
            self._accounts.pop(oldest, None)
        if self.policy.failures <= 0 or len(times) < self.policy.failures:
            return None
        return Offence(address, len(times), times[0], tuple(self._accounts.get(address, [])),
                       trusted=self.trusted(address, at))

    def _drop_old(self, times: collections.deque[dt.datetime], at: dt.datetime) -> None:
        while times and at - times[0] > self.policy.window:
            times.popleft()

    @staticmethod
    def _remember(book: collections.OrderedDict[str, dt.datetime], address: str, at: dt.datetime) -> None:
        book[address] = at
        book.move_to_end(address)
        while len(book) > MAX_ADDRESSES:
            book.popitem(last=False)

    def _remember_account(self, address: str, account: str) -> None:
        account = account[:MAX_ACCOUNT_LENGTH]
        if not account or account == UNKNOWN_ACCOUNT:
            return
        if address not in self._accounts and len(self._accounts) >= MAX_ADDRESSES:
            del self._accounts[next(iter(self._accounts))]  # the longest known goes: memory stays bounded
        known = self._accounts.setdefault(address, [])
        if account not in known and len(known) < MAX_ACCOUNTS:
            known.append(account)
