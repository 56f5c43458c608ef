"""The platform's single AMI connection.

panoramisk's ``Manager`` parses AMI and matches responses by ActionID well, but four behaviours are unsafe
for a call centre and are removed here:

* its pinger sends ``Ping`` and never checks for the ``Pong``: a half-dead socket looks healthy for ever.
  ``AmiClient`` runs its own heartbeat with a deadline and drops the connection when it is missed;
* ``send_action`` has no timeout: here every action has one (``AmiTimeout``);
* actions still unanswered when the connection drops are re-sent after the reconnect (a duplicate Originate
  rings a person twice): here they fail with ``AmiConnectionLost`` — the outcome is unknown and the caller
  decides, never the transport. That includes an action with part of its answer in (an asynchronous Originate
  "successfully queued", its OriginateResponse still to come), which panoramisk silently drops on a disconnect,
  leaving its caller to wait out the whole timeout not knowing whether a phone rings;
* events are dispatched as independent tasks, so a call's Hangup can be handled before its Newchannel: here each
  subscriber gets the events of its patterns in arrival order, one at a time, from its own queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeAlias

from panoramisk import Manager
from panoramisk.message import Message

from callcenter.logs import get_logger

log = get_logger(__name__)

# What domains type their AMI events (and lists of response messages) with, so none of them imports panoramisk:
# the library stays swappable behind this package. Called with a mapping, it builds one (a replayed journal entry).
AmiEvent: TypeAlias = Message
EventHandler = Callable[[AmiEvent], Awaitable[None]]


class AmiError(RuntimeError):
    pass


class AmiNotConnected(AmiError):
    """No authenticated AMI session right now: nothing was sent."""


class AmiTimeout(AmiError):
    """The action was sent but no complete response arrived in time; it will not be re-sent."""


class AmiConnectionLost(AmiError):
    """The connection dropped after the action was sent: its outcome is unknown and it is never re-sent."""


class AmiActionFailed(AmiError):
    def __init__(self, action: str, response: AmiEvent) -> None:
        super().__init__(f"AMI {action} failed: {response.get('Message', response)}")
        self.response = response


class _GuardedManager(Manager):  # type: ignore[misc]
    """panoramisk's Manager with its re-send and blind-ping behaviours switched off."""

    # A few seconds, not tens: a restarted Asterisk has empty queues until the platform logs in again and puts the
    # agents back (agents.services resync), and every SOS in between falls through to the fallback. One attempt
    # every 3 s on the loopback AMI port costs Asterisk nothing, even when it stays down for hours.
    MAX_RECONNECT_DELAY = 3.0

    def __init__(self, on_state_change: Callable[[], None], **config: Any) -> None:
        super().__init__(**config)
        self._on_state_change = on_state_change
        self.stopped = False
        # Every action sent on the current connection and not yet fully answered: (ActionID → (name, future)).
        self.in_flight: dict[str, tuple[str, asyncio.Future[Any]]] = {}
        self.base_reconnect_delay = float(self.reconnect_timeout)

    def _back_off(self) -> None:
        """Each failed attempt doubles the wait before the next (up to ``MAX_RECONNECT_DELAY``); a successful
        login resets it, so a restarting Asterisk is found within a second and a dead one is not hammered."""
        self.reconnect_timeout = min(self.MAX_RECONNECT_DELAY, self.reconnect_timeout * 2)

    def ping(self) -> None:
        # AmiClient's heartbeat replaces this; panoramisk's version never looks at the answer.
        return None

    async def send_awaiting_actions(self, *_: Any) -> None:
        self._fail_awaiting()

    def _fail_awaiting(self) -> None:
        while self.awaiting_actions:
            action = self.awaiting_actions.popleft()
            if not action.future.done():
                action.future.set_exception(
                    AmiConnectionLost(f"AMI connection lost before {action['Action']} was answered")
                )
        # Those panoramisk dropped from its books because part of their answer had come (see the module's notes).
        while self.in_flight:
            _, (name, future) = self.in_flight.popitem()
            if not future.done():
                future.set_exception(AmiConnectionLost(f"AMI connection lost before {name} was fully answered"))

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        if self.stopped:  # a reconnect timer that fires after AmiClient.stop()
            return None
        return super().connect(*args, **kwargs)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.authenticated = False
        if not self.stopped:  # panoramisk's version schedules the reconnect
            super().connection_lost(exc)
            self._back_off()
        self._fail_awaiting()
        self._on_state_change()

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if self.stopped:  # the connection attempt completed after AmiClient.stop(): close it unused
            if not f.cancelled() and f.exception() is None:
                f.result()[0].close()
            return
        failed = f.cancelled() or f.exception() is not None
        super().connection_made(f)  # on failure panoramisk schedules the next attempt at the current delay
        if failed:
            self._back_off()
        self._fail_awaiting()

    def login(self, future: asyncio.Future[Any]) -> bool:
        try:
            ok = bool(super().login(future))
        except Exception as error:  # the connection dropped during login
            log.warning("ami.login_interrupted", error=str(error))
            ok = False
        if ok:
            self.reconnect_timeout = self.base_reconnect_delay
        else:
            log.error("ami.login_failed", detail="check the AMI username and secret")
        self._on_state_change()
        return ok


class _Subscription:
    def __init__(self, patterns: Iterable[str], handler: EventHandler, maxsize: int) -> None:
        self.regex = re.compile("|".join(fnmatch.translate(p) for p in patterns), re.I)
        self.handler = handler
        self.queue: asyncio.Queue[Message] = asyncio.Queue(maxsize)
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        while True:
            event = await self.queue.get()
            try:
                await self.handler(event)
            except Exception:
                # Not ``event=``: structlog's first argument is already called ``event``.
                log.exception("ami.event_handler_failed", handler=getattr(self.handler, "__qualname__", "?"),
                              ami_event=event.get("Event"), uniqueid=event.get("Uniqueid"),
                              linkedid=event.get("Linkedid"))


class AmiClient:
    """Owns the AMI socket: connects, logs in, keeps it alive, reconnects, and serves actions and events."""

    def __init__(self, host: str, port: int, username: str, secret: str, *, action_timeout: float = 10.0,
                 heartbeat_interval: float = 5.0, heartbeat_timeout: float = 3.0, login_timeout: float = 10.0,
                 reconnect_delay: float = 1.0, event_queue_size: int = 100_000, boot_timeout: float = 60.0) -> None:
        self.host = host
        self.port = port
        self.action_timeout = action_timeout
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.login_timeout = login_timeout
        self.boot_timeout = boot_timeout
        # Set by Asterisk's FullyBooted (sent at login once it has booted, else when it finishes), cleared when the
        # connection goes; the login number tells a waiter of a dropped connection that its turn has passed.
        self._booted = asyncio.Event()
        self._logins = 0
        self._event_queue_size = event_queue_size
        self._subscriptions: list[_Subscription] = []
        self._login_callbacks: list[Callable[[], Awaitable[None]]] = []
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._callback_tasks: set[asyncio.Task[None]] = set()  # referenced until done, so never garbage-collected
        self._boot_waiters: set[asyncio.Task[None]] = set()
        self._last_pong: float | None = None
        self._was_connected = False
        self._manager = _GuardedManager(
            self._state_changed, host=host, port=port, username=username, secret=secret, events="on",
            ping_delay=3600, reconnect_timeout=reconnect_delay, forgetable_actions=(), on_login=self._logged_in,
        )
        self._manager.register_event("*", self._dispatch)

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        self._manager.loop = asyncio.get_running_loop()
        for subscription in self._subscriptions:
            subscription.task = asyncio.create_task(subscription.run())
        self._manager.connect()
        self._heartbeat_task = asyncio.create_task(self._heartbeat())

    async def stop(self) -> None:
        tasks = [t for t in [self._heartbeat_task, *(s.task for s in self._subscriptions), *self._boot_waiters]
                 if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # No reconnect once our side closed the socket; actions still unanswered fail now, not at their timeout.
        self._manager.stopped = True
        self._manager.close()
        self._manager.authenticated = False
        self._manager._fail_awaiting()

    async def wait_connected(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.connected:
            if time.monotonic() > deadline:
                raise AmiNotConnected(f"no AMI session with {self.host}:{self.port} after {timeout:.0f}s")
            await asyncio.sleep(0.05)

    @property
    def reconnect_delay(self) -> float:
        """Seconds before the next connection attempt (grows while Asterisk stays unreachable)."""
        return float(self._manager.reconnect_timeout)

    @property
    def connected(self) -> bool:
        """Logged in, and the last heartbeat (if one is due) was answered in time."""
        protocol = self._manager.protocol
        return bool(self._manager.authenticated and protocol is not None and not protocol.closed)

    # -- events -----------------------------------------------------------------------------------
    def subscribe(self, patterns: Iterable[str], handler: EventHandler) -> None:
        """Deliver events whose name matches one of ``patterns`` (shell-style) to ``handler``, in order."""
        self._subscriptions.append(_Subscription(patterns, handler, self._event_queue_size))

    def on_login(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` after every successful (re)login, once Asterisk is fully booted: the place to
        resynchronise state."""
        self._login_callbacks.append(callback)

    def _dispatch(self, _manager: Manager, event: Message) -> None:
        name = event.get("Event", "")
        if name == "FullyBooted":
            self._booted.set()
        for subscription in self._subscriptions:
            if subscription.regex.match(name):
                try:
                    subscription.queue.put_nowait(event)
                except asyncio.QueueFull:
                    log.error("ami.event_queue_full", ami_event=name, uniqueid=event.get("Uniqueid"),
                              linkedid=event.get("Linkedid"))

    def _logged_in(self, _manager: Manager) -> None:
        log.info("ami.logged_in", host=self.host, port=self.port)
        self._last_pong = time.monotonic()
        self._logins += 1
        waiter = asyncio.ensure_future(self._when_booted(self._logins))
        self._boot_waiters.add(waiter)
        waiter.add_done_callback(self._boot_waiters.discard)

    async def _when_booted(self, login: int) -> None:
        """Run the login callbacks once Asterisk says it is fully booted. A restarting Asterisk accepts AMI logins
        while it is still loading modules: a resync then would find no QueueStatus ("Invalid/unknown command")
        and put nobody back in the queues. Without FullyBooted within ``boot_timeout`` they run all the same."""
        try:
            await asyncio.wait_for(self._booted.wait(), self.boot_timeout)
        except TimeoutError:
            log.warning("ami.fully_booted_missing", host=self.host, port=self.port, timeout=self.boot_timeout)
        if login != self._logins or not self.connected:
            return  # that connection is gone; the next login runs them
        for callback in self._login_callbacks:
            task = asyncio.ensure_future(self._run_login_callback(callback))
            self._callback_tasks.add(task)
            task.add_done_callback(self._callback_tasks.discard)

    async def _run_login_callback(self, callback: Callable[[], Awaitable[None]]) -> None:
        try:
            await callback()
        except Exception:
            log.exception("ami.login_callback_failed", callback=getattr(callback, "__qualname__", "?"))

    def _state_changed(self) -> None:
        if not self.connected:
            self._booted.clear()  # the next connection may reach an Asterisk that is starting again
        if self._was_connected and not self.connected:
            log.warning("ami.disconnected", host=self.host, port=self.port)
        self._was_connected = self.connected

    # -- actions ----------------------------------------------------------------------------------
    async def send_action(self, action: dict[str, Any], timeout: float | None = None,
                          *, check: bool = True, single: bool = False) -> AmiEvent | list[AmiEvent]:
        """Send one action and wait for its complete response, at most ``timeout`` seconds.

        ``single``: the answer is one message. panoramisk guesses multi-message answers from the text, and some
        single answers look like lists to it (QueueAdd's "Added interface to queue"), so it would wait for ever.
        """
        if not self.connected:
            raise AmiNotConnected(f"AMI is not connected; {action.get('Action')} was not sent")
        name = str(action.get("Action"))
        sent = dict(action)
        future = self._manager.send_action(sent, as_list=False if single else None)
        key = str(sent.get("ActionID") or id(future))
        self._manager.in_flight[key] = (name, future)
        future.add_done_callback(lambda _: self._manager.in_flight.pop(key, None))
        try:
            response = await asyncio.wait_for(asyncio.shield(future), timeout or self.action_timeout)
        except TimeoutError:
            self._forget(future)
            raise AmiTimeout(f"AMI {name} got no response within {timeout or self.action_timeout:.1f}s") from None
        except asyncio.CancelledError:
            # Our caller gave up: make sure nobody ever sees, or re-sends, this action again.
            self._forget(future)
            raise
        if check:
            first = response[0] if isinstance(response, list) else response
            if first.get("Response") in ("Error", "Fail", "Failure"):
                raise AmiActionFailed(name, first)
        return response  # type: ignore[no-any-return]

    def _forget(self, future: asyncio.Future[Any]) -> None:
        """Drop a timed-out action so a late answer is ignored and a reconnect never re-sends it."""
        protocol = self._manager.protocol
        if protocol is None:
            return
        for key, pending in list(protocol.responses.items()):
            if pending.future is future:
                protocol.responses.pop(key, None)
        if not future.done():
            future.cancel()

    async def _heartbeat(self) -> None:
        awaiting_login_since: float | None = None
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            if not self.connected:
                protocol = self._manager.protocol
                socket_open = protocol is not None and not protocol.closed
                if not socket_open:
                    awaiting_login_since = None
                    continue
                # A peer that accepts the socket but never answers Login would otherwise hold us for ever.
                awaiting_login_since = awaiting_login_since or time.monotonic()
                if time.monotonic() - awaiting_login_since > self.login_timeout:
                    log.error("ami.login_timeout", host=self.host, port=self.port, timeout=self.login_timeout)
                    awaiting_login_since = None
                    protocol.transport.abort()
                continue
            awaiting_login_since = None
            try:
                await self.send_action({"Action": "Ping"}, timeout=self.heartbeat_timeout)
                self._last_pong = time.monotonic()
            except AmiError as error:
                log.error("ami.heartbeat_missed", error=str(error), host=self.host, port=self.port)
                protocol = self._manager.protocol
                if protocol is not None and not protocol.closed:
                    # abort() triggers connection_lost, which fails pending actions and reconnects.
                    protocol.transport.abort()
