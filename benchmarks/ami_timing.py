"""Timestamped AMI events, from a second, read-only AMI session (Asterisk's own clock: timestampevents = yes).

``AmiReader`` logs in with the platform's AMI user (events ``call`` and ``agent`` only) and hands every event to
``_handle`` in a background thread; the timestamps are Asterisk's, so this reader's own speed does not enter the
figures. Two readers build on it:

- ``AmiTimings``: answer → emergency-queue delay per channel (benchmarks/sos_load.py). The SOS dialplan answers
  before it calls the platform (Answer, MixMonitor, then AGI sos, then Queue), so the SIP answer time cannot show
  what the FastAGI costs. What the elder waits for is the queue: the time from the channel going Up (Newstate 6)
  to QueueCallerJoin, for `sos` and for the AGI-less baseline, is where the platform's work lands.
- ``AmiEventLog``: every event of the names asked for, kept with Asterisk's timestamp and the time this reader
  parsed it, and waitable (benchmarks/desk_load.py, benchmarks/conference_load.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import Collection

from benchmarks.waitlog import WaitableLog
from callcenter.asterisk.render import ami_credentials
from callcenter.config import Settings

CHANNEL_STATE_UP = "6"
CHANNEL_STATE_RINGING = "5"


class AmiReader:
    """A background AMI reader; subclasses say what to keep in ``_handle`` (called in the reader thread)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.error: str | None = None

    def start(self) -> None:
        credentials = ami_credentials(self._settings)
        sock = socket.create_connection((self._settings.ami.host, self._settings.ami.port), timeout=10)
        sock.sendall((f"Action: Login\r\nUsername: {credentials.username}\r\nSecret: {credentials.secret}\r\n"
                      "Events: call,agent\r\n\r\n").encode())
        sock.settimeout(None)
        self._socket = sock
        self._thread = threading.Thread(target=self._read, name=type(self).__name__, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
            self._socket.close()
            self._socket = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _read(self) -> None:
        assert self._socket is not None
        buffer = b""
        try:
            while True:
                chunk = self._socket.recv(65536)
                if not chunk:
                    return
                received = time.time()
                buffer += chunk
                *messages, buffer = buffer.split(b"\r\n\r\n")
                for raw in messages:
                    message = _parse(raw)
                    if message.get("Response") == "Error":
                        self.error = f"AMI login failed: {message.get('Message')}"
                    elif message.get("Event"):
                        self._handle(message, received)
        except OSError as error:
            if self._socket is not None:
                self.error = str(error)

    def _handle(self, message: dict[str, str], received: float) -> None:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class QueueDelay:
    exten: str  # what the device dialled: sos or sos-baseline
    seconds: float | None  # answered → joined the queue; None: hung up, answered but never queued


@dataclasses.dataclass
class _Channel:
    exten: str = ""
    up: float | None = None
    queued: bool = False


class AmiTimings(AmiReader):
    """``take()`` hands over (and forgets) the answer → queue delays measured so far."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._channels: dict[str, _Channel] = {}
        self._delays: list[QueueDelay] = []

    def take(self) -> list[QueueDelay]:
        with self._lock:
            delays, self._delays = self._delays, []
            return delays

    def _handle(self, message: dict[str, str], received: float) -> None:
        name, uniqueid = message.get("Event"), message.get("Uniqueid", "")
        if not uniqueid:
            return
        with self._lock:
            if name == "Newchannel":
                self._channels[uniqueid] = _Channel(exten=message.get("Exten", ""))
            elif name == "Newstate" and message.get("ChannelState") == CHANNEL_STATE_UP:
                channel = self._channels.get(uniqueid)
                if channel is not None and channel.up is None:
                    channel.up = timestamp(message)
            elif name == "QueueCallerJoin":
                channel = self._channels.get(uniqueid)
                joined = timestamp(message)
                if channel is not None and channel.up is not None and joined is not None and not channel.queued:
                    channel.queued = True
                    self._delays.append(QueueDelay(channel.exten, joined - channel.up))
            elif name == "Hangup":
                channel = self._channels.pop(uniqueid, None)
                if channel is not None and channel.up is not None and not channel.queued:
                    # Answered, then gone before the queue: with a busy platform the caller hung up in the AGI.
                    self._delays.append(QueueDelay(channel.exten, None))


@dataclasses.dataclass(frozen=True)
class AmiEvent:
    name: str
    at: float  # Asterisk's Timestamp (when Asterisk raised the event)
    received: float  # when this reader had it parsed (time.time(), the same clock)
    fields: dict[str, str]

    def get(self, key: str, default: str = "") -> str:
        return self.fields.get(key, default)


class AmiEventLog(AmiReader, WaitableLog[AmiEvent]):
    """Keeps every event named in ``names``; ``mark()`` + ``since(mark)`` cut out one run, ``wait_for`` waits."""

    def __init__(self, settings: Settings, names: Collection[str]) -> None:
        AmiReader.__init__(self, settings)
        WaitableLog.__init__(self)
        self._names = frozenset(names)

    def _handle(self, message: dict[str, str], received: float) -> None:
        name = message.get("Event", "")
        if name in self._names:
            at = timestamp(message)
            self.append(AmiEvent(name, at if at is not None else received, received, message))


def _parse(raw: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in raw.decode(errors="replace").split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep:
            fields.setdefault(key, value)
    return fields


def timestamp(message: dict[str, str]) -> float | None:
    try:
        return float(message["Timestamp"])
    except (KeyError, ValueError):
        return None
