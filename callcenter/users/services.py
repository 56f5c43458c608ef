"""Staff accounts: bootstrap, password login with lockout, creation with an optional phone extension."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import functools

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import Conflict, NotFound
from callcenter.audit.models import AuditEntry
from callcenter.audit.services import Actor, record
from callcenter.db.paging import paginate
from callcenter.devices.services import sip_name_owner
from callcenter.users.models import Role, User
from callcenter.users.passwords import hash_password, sip_ha1, verify_password

ADMIN_USERNAME = "admin"
# Five wrong passwords in a row lock the account for 15 minutes: enough for a typo-prone night shift, far too
# few to guess a password.
MAX_FAILED_LOGINS = 5
LOCKOUT = dt.timedelta(minutes=15)


async def ensure_admin(session: AsyncSession, password: str) -> bool:
    """Create the first admin account with ``password`` if no admin exists; True when one was created.

    An existing admin's password is never changed from the environment: rotating it is a logged-in action.
    """
    existing = await session.scalar(select(User.id).where(User.role == Role.ADMIN).limit(1))
    if existing is not None:
        return False
    admin = User(username=ADMIN_USERNAME, display_name="系统管理员", password_hash=hash_password(password),
                 role=Role.ADMIN)
    session.add(admin)
    await session.flush()
    session.add(AuditEntry(actor_label="system", action="user.bootstrap_admin", target_type="user",
                           target_id=str(admin.id), details={"username": ADMIN_USERNAME}))
    return True


class LoginOutcome(enum.StrEnum):
    OK = "ok"
    BAD_CREDENTIALS = "bad_credentials"
    LOCKED = "locked"
    INACTIVE = "inactive"


@dataclasses.dataclass(frozen=True, slots=True)
class LoginResult:
    outcome: LoginOutcome
    user: User | None = None
    locked_until: dt.datetime | None = None


@functools.cache
def _decoy_hash() -> str:
    """Verified against for unknown usernames, so their answer takes as long as a wrong password's."""
    return hash_password("decoy-password-never-valid")


async def authenticate(session: AsyncSession, username: str, password: str, *, source_ip: str | None,
                       now: dt.datetime) -> LoginResult:
    """Check a password login and record it. Returns (never raises) so the caller commits the failure count and
    the audit entry even when the login is refused. Argon2 runs in a thread: it must not stall calls."""
    user = await session.scalar(select(User).where(User.username == username).with_for_update())
    actor = Actor(user.id if user else None, username, source_ip)
    audit = functools.partial(record, session, actor, target_type="user", target_id=user.id if user else None)
    if user is None:
        await asyncio.to_thread(verify_password, _decoy_hash(), password)
        audit(action="auth.login_failed", details={"username": username[:64], "reason": "unknown_user"})
        return LoginResult(LoginOutcome.BAD_CREDENTIALS)
    if user.locked_until is not None and user.locked_until > now:
        audit(action="auth.login_locked", details={"locked_until": user.locked_until.isoformat()})
        return LoginResult(LoginOutcome.LOCKED, user, user.locked_until)
    if user.locked_until is not None:  # the lock has run out: a fresh count
        user.locked_until, user.failed_logins = None, 0
    if not await asyncio.to_thread(verify_password, user.password_hash, password):
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            audit(action="auth.lockout", details={"failed_logins": user.failed_logins,
                                                  "locked_until": user.locked_until.isoformat()})
            return LoginResult(LoginOutcome.LOCKED, user, user.locked_until)
        audit(action="auth.login_failed", details={"reason": "bad_password", "failed_logins": user.failed_logins})
        return LoginResult(LoginOutcome.BAD_CREDENTIALS, user)
    if not user.active:
        audit(action="auth.login_failed", details={"reason": "inactive"})
        return LoginResult(LoginOutcome.INACTIVE, user)
    user.failed_logins = 0
    audit(action="auth.login", details={})
    return LoginResult(LoginOutcome.OK, user)


async def active_user(session: AsyncSession, user_id: int) -> User | None:
    user = await session.get(User, user_id)
    return user if user is not None and user.active else None


async def create_user(session: AsyncSession, *, username: str, password: str, role: Role, display_name: str | None,
                      extension: str | None, sip_password: str | None, actor: Actor) -> User:
    if await session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"username {username!r} is taken", field="username")
    if extension is not None:
        owner = await sip_name_owner(session, extension)
        if owner is not None:
            raise Conflict(f"extension {extension} is already used by a {owner}", field="extension")
    user = User(username=username, display_name=display_name, role=role,
                password_hash=await asyncio.to_thread(hash_password, password), extension=extension,
                sip_ha1=sip_ha1(extension, sip_password) if extension and sip_password else None)
    session.add(user)
    await session.flush()
    record(session, actor, action="user.create", target_type="user", target_id=user.id,
           details={"username": username, "role": role.value, "extension": extension})
    return user


async def get_user(session: AsyncSession, username: str) -> User:
    user = await session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username!r}", field="username")
    return user


async def list_users(session: AsyncSession, *, role: Role | None, limit: int, offset: int) -> tuple[list[User], int]:
    statement = select(User).order_by(User.id)
    if role is not None:
        statement = statement.where(User.role == role)
    return await paginate(session, statement, limit=limit, offset=offset)
