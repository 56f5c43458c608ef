"""The channels SMS go out on: a small protocol every channel implements, and the registry of channels by name.

A channel is handed one message at a time (``Outgoing``) and answers what became of that attempt
(``Submitted`` or ``Refused``); it never retries by itself — the service does, with its backoff, so an attempt is
counted and seen in the database. A channel that hears of deliveries later (SMPP's delivery receipts) reports each
through the ``ReceiptSink`` it was given, and says so with ``receipts = True``: only then does the service wait for
a receipt and give up on one that never comes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Protocol

from callcenter.contract import Check


@dataclasses.dataclass(frozen=True, slots=True)
class Outgoing:
    """One attempt at one message: its row's id (the correlation every channel carries), the number, the text,
    and for template-based gateways the template's key and the values it was rendered with."""

    message_id: int
    recipient: str
    body: str
    template: str
    values: dict[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class Submitted:
    """The SMSC or gateway took the message under its own id."""

    provider_message_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class Refused:
    """The attempt failed: ``reason`` in words (no number, no text), ``permanent`` when another attempt cannot
    succeed (a malformed destination), so the message fails at once."""

    reason: str
    permanent: bool = False


Attempt = Submitted | Refused


@dataclasses.dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt: the provider's message id, its final status word (DELIVRD, UNDELIV, EXPIRED, …), the
    network's error code, and the time the network reached that status (None when it gave none that parsed)."""

    provider_message_id: str
    status: str
    error: str
    done_at: dt.datetime | None


# Called by a channel for every receipt, before it acknowledges it: if it raises, the receipt is not acknowledged
# and the SMSC sends it again.
ReceiptSink = Callable[[str, Receipt], Awaitable[None]]
# Called by a channel the moment its peer took a message, before anything else is read from that peer (so a
# receipt that follows at once finds the provider's id stored): (message_id, provider_message_id).
AcceptSink = Callable[[int, str], Awaitable[None]]


class Channel(Protocol):
    name: str
    receipts: bool  # it reports delivery receipts (the service then expires messages that never get one)

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, message: Outgoing) -> Attempt:
        """One attempt; returns within the channel's own timeout, never raises for the peer's failures."""
        ...

    def check(self) -> Check:
        """Its /healthz line (connected, bound, the last failure), quick and without I/O."""
        ...


class Channels:
    """Channels by name; the service sends on the one CC_SMS_CHANNEL names."""

    def __init__(self, channels: Iterable[Channel] = ()) -> None:
        self._channels: dict[str, Channel] = {}
        for channel in channels:
            self.add(channel)

    def add(self, channel: Channel) -> None:
        if channel.name in self._channels:
            raise ValueError(f"an SMS channel named {channel.name!r} is already registered")
        self._channels[channel.name] = channel

    def get(self, name: str) -> Channel | None:
        return self._channels.get(name)

    def __iter__(self) -> Iterator[Channel]:
        return iter(list(self._channels.values()))
