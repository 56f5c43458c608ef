"""The log-in guard's limits (per address, per username and address, per username across addresses) and its
bounded password checker, and that a password check holds no database transaction."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import select

from callcenter.audit.models import AuditEntry
from callcenter.db.session import Database
from callcenter.users.login_guard import ACCOUNT_FAILURES, FAILURES_TO_LOCK, LoginBusy, LoginGuard, Refusal
from callcenter.users.models import Role, User
from callcenter.users.passwords import hash_password
from callcenter.users.services import LoginOutcome, authenticate

PASSWORD = "correct-horse-battery"


async def test_an_address_past_its_attempts_a_minute_is_refused_and_others_are_not() -> None:
    guard = LoginGuard(attempts_per_minute=5)
    answers = [await guard.admit(f"user{i}", "127.0.0.2") for i in range(6)]
    assert answers[:5] == [None] * 5
    refused = answers[5]
    assert refused is not None and refused.refusal is Refusal.ADDRESS_THROTTLED
    assert 1 <= refused.retry_after <= 60 and refused.report
    again = await guard.admit("user9", "127.0.0.2")
    assert again is not None and not again.report  # one audit entry a minute per address and kind
    assert await guard.admit("user0", "127.0.0.1") is None


async def test_wrong_passwords_lock_a_username_for_that_address_only() -> None:
    guard = LoginGuard()
    for _ in range(FAILURES_TO_LOCK):
        assert await guard.admit("admin", "127.0.0.2") is None
        await guard.failed("admin", "127.0.0.2")
    locked = await guard.admit("admin", "127.0.0.2")
    assert locked is not None and locked.refusal is Refusal.LOCKED and 14 * 60 < locked.retry_after <= 15 * 60
    assert await guard.admit("admin", "127.0.0.1") is None  # the real administrator, elsewhere
    assert await guard.admit("agent01", "127.0.0.2") is None  # another username from the same address


async def test_a_right_password_clears_the_count_of_its_address() -> None:
    guard = LoginGuard()
    for _ in range(2):
        for _ in range(FAILURES_TO_LOCK - 1):
            await guard.failed("agent01", "127.0.0.1")
        await guard.succeeded("agent01", "127.0.0.1")
    assert await guard.admit("agent01", "127.0.0.1") is None


async def test_a_guess_spread_over_addresses_slows_the_username_except_where_it_logged_in_before() -> None:
    guard = LoginGuard()
    await guard.succeeded("admin", "127.0.0.1")
    for i in range(ACCOUNT_FAILURES):
        address = f"127.0.1.{i + 1}"
        assert await guard.admit("admin", address) is None
        await guard.failed("admin", address)
    throttled = await guard.admit("admin", "127.0.2.1")
    assert throttled is not None and throttled.refusal is Refusal.ACCOUNT_THROTTLED
    assert await guard.admit("admin", "127.0.0.1") is None  # the administrator's own desk still gets in


async def test_password_checks_run_one_at_a_time_and_a_full_waiting_line_is_refused_at_once() -> None:
    guard = LoginGuard(hash_concurrency=1, hash_waiters=1)
    release = threading.Event()
    running: list[int] = []

    def slow_check(n: int) -> Callable[[], bool]:
        def check() -> bool:
            running.append(n)
            release.wait(10)
            return True
        return check

    first = asyncio.create_task(guard.check_password(slow_check(1)))
    second = asyncio.create_task(guard.check_password(slow_check(2)))
    for _ in range(200):  # bounded: the first check reaches its thread within moments
        if running:
            break
        await asyncio.sleep(0.01)
    assert running == [1]
    with pytest.raises(LoginBusy):
        await guard.check_password(slow_check(3))
    release.set()
    assert await asyncio.wait_for(asyncio.gather(first, second), 10) == [True, True]
    assert running == [1, 2]


class _HeldGuard(LoginGuard):
    """Holds every password check until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.checking = asyncio.Event()
        self.release = asyncio.Event()

    async def check_password(self, check: Callable[[], bool]) -> bool:
        self.checking.set()
        await self.release.wait()
        return await super().check_password(check)


async def test_a_password_being_checked_holds_no_transaction(db: Database) -> None:
    async with db.transaction() as session:
        session.add(User(username="agent01", role=Role.AGENT, password_hash=hash_password(PASSWORD)))
    guard = _HeldGuard()
    login = asyncio.create_task(authenticate(db, guard, "agent01", PASSWORD, source_ip="127.0.0.2"))
    await asyncio.wait_for(guard.checking.wait(), 10)
    # An SOS's write goes through while the log-in is in its password check.
    async with asyncio.timeout(2), db.transaction() as session:
        session.add(User(username="agent02", role=Role.AGENT, password_hash="x"))
    guard.release.set()
    result = await asyncio.wait_for(login, 10)
    assert result.outcome is LoginOutcome.OK
    async with db.transaction(read_only=True) as session:
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert actions == ["auth.login"]
