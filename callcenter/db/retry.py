"""A unit of work retried on the errors of a busy, restarting or unreachable database, within a deadline.

SOS intake and the AMI handlers that are its safety net must not give up on the first "database is locked" or
dropped connection, nor wait for ever on a stalled one: they retry with a short backoff (tenacity) and stop at a
deadline, after which the caller goes on without the database (the dialplan queues the SOS anyway).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_delay, wait_exponential

from callcenter.db.session import DatabaseBusy

T = TypeVar("T")


def is_transient(error: BaseException) -> bool:
    """An error that a later attempt may not meet: a lock, no turn to write, a connection lost or refused, a
    timeout. Not an integrity or programming error: those would fail again."""
    if isinstance(error, DatabaseBusy | OperationalError | InterfaceError | TimeoutError | ConnectionError | OSError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def is_transient_or_race(error: BaseException) -> bool:
    """Transient, or a unique-key race with another writer storing the same call: the next attempt finds its row."""
    return is_transient(error) or isinstance(error, IntegrityError)


async def with_retry(work: Callable[[], Awaitable[T]], *, deadline: float,
                     retry_on: Callable[[BaseException], bool] = is_transient,
                     on_retry: Callable[[BaseException, int], None] | None = None,
                     in_order: bool = False) -> T:
    """``work()`` until it succeeds, fails for good (its error), or ``deadline`` seconds pass: TimeoutError at the
    deadline, even in the middle of an attempt that hangs (which is left to finish or fail on its own).

    ``in_order``: the caller's units of work must apply in sequence (AMI events of one call), so an attempt in
    flight at the deadline is waited for rather than left behind; no new attempt starts after the deadline."""

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        if on_retry is not None and error is not None:
            on_retry(error, state.attempt_number)

    async def attempts() -> T:
        async for attempt in AsyncRetrying(retry=retry_if_exception(retry_on), reraise=True,
                                           stop=stop_after_delay(deadline),
                                           wait=wait_exponential(multiplier=0.02, max=0.5),
                                           before_sleep=before_sleep):
            with attempt:
                return await work()
        raise AssertionError("unreachable: tenacity either returns, re-raises or retries")  # pragma: no cover

    if in_order:
        return await attempts()
    running = asyncio.ensure_future(attempts())
    try:
        return await asyncio.wait_for(asyncio.shield(running), deadline)
    except BaseException:
        # The caller goes on without waiting, and the attempt in flight is left to end by itself, never cancelled:
        # a statement stuck in SQLite's busy wait or on a stalled socket ends when its busy timeout or statement
        # timeout runs out, and cancelling it mid-statement leaves the driver's connection unable to close. No new
        # attempt starts after the deadline. If the one in flight still succeeds, its work is done once: callers
        # pass idempotent work.
        running.add_done_callback(_consume_outcome)
        raise


def _consume_outcome(task: asyncio.Future[object]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not report it as never retrieved
