"""Staff accounts: bootstrap, password log-in (throttled by users.login_guard), creation with an optional phone
extension."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import Conflict, NotFound
from callcenter.audit.models import AuditEntry
from callcenter.audit.services import Actor, record
from callcenter.db.paging import paginate
from callcenter.db.retry import with_retry
from callcenter.db.session import Database
from callcenter.devices.services import sip_name_owner
from callcenter.logs import get_logger
from callcenter.users.login_guard import LoginBusy, LoginGuard, Refusal
from callcenter.users.models import Role, User
from callcenter.users.passwords import hash_password, sip_ha1, verify_password

log = get_logger(__name__)

ADMIN_USERNAME = "admin"
AUDIT_RETRY_SECONDS = 10.0


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
    # Too many wrong passwords for this username from this address (users.login_guard): 423.
    LOCKED = "locked"
    # Too many attempts from this address, or a guess spread over addresses, or too many waiting checks: 429.
    THROTTLED = "throttled"
    INACTIVE = "inactive"


@dataclasses.dataclass(frozen=True, slots=True)
class LoginResult:
    outcome: LoginOutcome
    user: User | None = None
    retry_after: int | None = None  # seconds, when LOCKED or THROTTLED


@functools.cache
def _decoy_hash() -> str:
    """Verified against for unknown usernames, so their answer takes as long as a wrong password's."""
    return hash_password("decoy-password-never-valid")


async def authenticate(db: Database, guard: LoginGuard, username: str, password: str, *,
                       source_ip: str | None) -> LoginResult:
    """Check a password log-in and audit it; returns, never raises, for every outcome.

    The password is checked with no transaction open (users.login_guard bounds how many run at once), and the
    audit entry is one short write afterwards: a flood of log-ins never holds the write lock an SOS needs. An
    unknown username goes through the same limits and the same hash as a known one."""
    username = username[:64]
    refused = await guard.admit(username, source_ip)
    if refused is None:
        async with db.transaction(read_only=True) as session:
            user = await session.scalar(select(User).where(User.username == username))
        stored_hash = user.password_hash if user is not None else _decoy_hash()
        try:
            right = await guard.check_password(functools.partial(verify_password, stored_hash, password))
        except LoginBusy:
            refused = await guard.busy(source_ip)
    if refused is not None:
        if refused.report:  # once a minute per address and kind: a flood is not a flood of log lines and writes
            log.warning("auth.login_refused", reason=refused.refusal.value, source_ip=source_ip,
                        retry_after=refused.retry_after)
            await _audit(db, Actor(None, username, source_ip), "auth.login_throttled", None,
                         {"reason": refused.refusal.value, "retry_after": refused.retry_after,
                          "note": "further refusals from this address in the next minute are not audited"})
        outcome = LoginOutcome.LOCKED if refused.refusal is Refusal.LOCKED else LoginOutcome.THROTTLED
        return LoginResult(outcome, retry_after=refused.retry_after)
    right = right and user is not None
    if right:
        await guard.succeeded(username, source_ip)
    else:
        await guard.failed(username, source_ip)
    if user is None or not right:
        action, details, result = ("auth.login_failed", {"reason": "unknown_user" if user is None else "bad_password"},
                                   LoginResult(LoginOutcome.BAD_CREDENTIALS))
    elif not user.active:
        action, details, result = "auth.login_failed", {"reason": "inactive"}, LoginResult(LoginOutcome.INACTIVE, user)
    else:
        action, details, result = "auth.login", {}, LoginResult(LoginOutcome.OK, user)
    if user is None:
        details["username"] = username
    await _audit(db, Actor(user.id if user else None, username, source_ip), action, user.id if user else None,
                 details)
    return result


async def _audit(db: Database, actor: Actor, action: str, user_id: int | None, details: dict[str, object]) -> None:
    """One short write, retried while the database is busy: a log-in is answered once it is on the record."""

    async def write() -> None:
        async with db.transaction() as session:
            record(session, actor, action=action, target_type="user", target_id=user_id, details=details)

    await with_retry(write, deadline=AUDIT_RETRY_SECONDS, in_order=True)


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
