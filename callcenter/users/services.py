"""Staff accounts: bootstrap, password log-in (throttled by users.login_guard), creation with an optional phone
extension."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import Conflict, Forbidden, Invalid, NotFound
from callcenter.audit.models import AuditEntry
from callcenter.audit.services import Actor, record
from callcenter.db.base import utcnow
from callcenter.db.paging import paginate
from callcenter.db.retry import with_retry
from callcenter.db.session import Database
from callcenter.devices.services import sip_name_owner
from callcenter.logs import get_logger
from callcenter.users import second_factor
from callcenter.users.login_guard import LoginBusy, LoginGuard, Refusal
from callcenter.users.models import Role, User
from callcenter.users.passwords import hash_password, sip_ha1, verify_password, weakness
from callcenter.users.sessions import EndReason, SessionsEnded, end_sessions

log = get_logger(__name__)

ADMIN_USERNAME = "admin"
AUDIT_RETRY_SECONDS = 10.0


class WeakAdminPassword(ValueError):
    """CC_ADMIN_PASSWORD breaks the password policy: the first administrator is not created with it."""


async def ensure_admin(session: AsyncSession, password: str) -> bool:
    """Create the first admin account with ``password`` if no admin exists; True when one was created.

    An existing admin's password is never changed from the environment: rotating it is a logged-in action. The
    first one is held to the same policy as every other password (``WeakAdminPassword``).
    """
    existing = await session.scalar(select(User.id).where(User.role == Role.ADMIN).limit(1))
    if existing is not None:
        return False
    if (reason := await asyncio.to_thread(weakness, password, [ADMIN_USERNAME])) is not None:
        raise WeakAdminPassword(f"CC_ADMIN_PASSWORD: {reason}")
    admin = User(username=ADMIN_USERNAME, display_name="系统管理员", password_hash=hash_password(password),
                 role=Role.ADMIN)
    session.add(admin)
    await session.flush()
    session.add(AuditEntry(actor_label="system", action="user.bootstrap_admin", target_type="user",
                           target_id=str(admin.id), details={"username": ADMIN_USERNAME}))
    return True


class CodeReplayed(Exception):
    """A second-factor code already spent (its time step is not newer than the account's last)."""


class LoginOutcome(enum.StrEnum):
    OK = "ok"
    BAD_CREDENTIALS = "bad_credentials"
    # Too many wrong passwords for this username from this address (users.login_guard): 423.
    LOCKED = "locked"
    # Too many attempts from this address, or a guess spread over addresses, or too many waiting checks: 429.
    THROTTLED = "throttled"
    INACTIVE = "inactive"
    # The password was right but the account has a second factor and no code came: ask for it (401 otp_required).
    OTP_REQUIRED = "otp_required"


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
                       source_ip: str | None, otp: str | None = None) -> LoginResult:
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
    otp_step: int | None = None
    bad_otp = False
    if right and user is not None and user.totp_enabled_at is not None and user.totp_secret and otp:
        otp_step = second_factor.accepted_step(user.totp_secret, otp, utcnow(), user.totp_last_step)
        bad_otp = otp_step is None
        right = not bad_otp  # a wrong code counts as a wrong password
    otp_missing = right and user is not None and user.totp_enabled_at is not None and not otp
    if right and not otp_missing:
        await guard.succeeded(username, source_ip)
    elif not right:
        await guard.failed(username, source_ip)
    if user is None or not right:
        reason = "unknown_user" if user is None else ("bad_otp" if bad_otp else "bad_password")
        action, details, result = ("auth.login_failed", {"reason": reason},
                                   LoginResult(LoginOutcome.BAD_CREDENTIALS))
    elif not user.active:
        action, details, result = "auth.login_failed", {"reason": "inactive"}, LoginResult(LoginOutcome.INACTIVE, user)
    elif otp_missing:
        action, details, result = ("auth.login_otp_asked", {}, LoginResult(LoginOutcome.OTP_REQUIRED, user))
    else:
        action, details, result = "auth.login", {"second_factor": otp_step is not None}, LoginResult(
            LoginOutcome.OK, user)
    if user is None:
        details["username"] = username
    actor = Actor(user.id if user else None, username, source_ip)
    try:
        await _audit(db, actor, action, user.id if user else None, details,
                     otp_step=otp_step if result.outcome is LoginOutcome.OK else None)
    except CodeReplayed:  # the same code won a concurrent log-in a moment ago
        await _audit(db, actor, "auth.login_failed", user.id if user else None, {"reason": "otp_replayed"})
        return LoginResult(LoginOutcome.BAD_CREDENTIALS)
    return result


async def _audit(db: Database, actor: Actor, action: str, user_id: int | None, details: dict[str, object], *,
                 otp_step: int | None = None) -> None:
    """One short write, retried while the database is busy: a log-in is answered once it is on the record. With
    ``otp_step``, the second factor's code is spent in the same write (never accepted twice)."""

    async def write() -> None:
        async with db.transaction() as session:
            if otp_step is not None and user_id is not None:
                spent = await session.execute(
                    update(User).where(User.id == user_id,
                                       or_(User.totp_last_step.is_(None), User.totp_last_step < otp_step))
                    .values(totp_last_step=otp_step))
                if spent.rowcount != 1:  # type: ignore[attr-defined]
                    raise CodeReplayed
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
    await require_strong(password, "password", username, display_name)
    user = User(username=username, display_name=display_name, role=role, password_changed_at=utcnow(),
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


async def require_strong(password: str, field: str, *user_inputs: str | None) -> None:
    """``Invalid`` naming ``field`` when ``password`` breaks the policy (users.passwords)."""
    reason = await asyncio.to_thread(weakness, password, user_inputs)
    if reason is not None:
        raise Invalid(f"{field}: {reason}", field=field)


async def _active_admins(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count(User.id)).where(User.role == Role.ADMIN, User.active)) or 0)


@dataclasses.dataclass(frozen=True, slots=True)
class UserChange:
    """What ``update_user`` changed, and the sessions it ended (to tell the open WebSockets once committed)."""

    user: User
    changed: dict[str, object]
    ended: SessionsEnded | None


async def update_user(session: AsyncSession, username: str, *, values: dict[str, object], actor: Actor) -> UserChange:
    """An administrator's change of an account: display name, language, role, active. Disabling or re-roling ends
    every session of the account. The last active administrator can be neither disabled nor re-roled, and a
    provider's portal account stays one (its provider owns it)."""
    user = await get_user(session, username)
    changed = {name: value for name, value in values.items() if getattr(user, name) != value}
    role = changed.get("role")
    if role is not None and (role is Role.PROVIDER or user.role is Role.PROVIDER):
        raise Conflict("a provider's portal account cannot change role, and no staff account can become one: "
                       "portal accounts are created for their provider", field="role")
    losing_admin = user.role is Role.ADMIN and user.active and (role is not None or changed.get("active") is False)
    if losing_admin and await _active_admins(session) <= 1:
        raise Conflict("this is the last active administrator: make another account admin first",
                       field="role" if role is not None else "active")
    for name, value in changed.items():
        setattr(user, name, value)
    ended = None
    if "role" in changed or changed.get("active") is False:
        reason = EndReason.ROLE_CHANGED if "role" in changed else EndReason.DISABLED
        ended = await end_sessions(session, user.id, reason, utcnow())
    if changed:
        record(session, actor, action="user.update", target_type="user", target_id=user.id,
               details={name: getattr(value, "value", value) for name, value in changed.items()})
    return UserChange(user, changed, ended)


async def reset_password(session: AsyncSession, username: str, password: str, *, actor: Actor) -> UserChange:
    """An administrator sets a new password (a forgotten one): every session of the account ends."""
    user = await get_user(session, username)
    await require_strong(password, "password", user.username, user.display_name)
    user.password_hash = await asyncio.to_thread(hash_password, password)
    user.password_changed_at = utcnow()
    ended = await end_sessions(session, user.id, EndReason.PASSWORD_RESET, utcnow())
    record(session, actor, action="user.password_reset", target_type="user", target_id=user.id)
    return UserChange(user, {"password": True}, ended)


async def change_own_password(db: Database, guard: LoginGuard, user_id: int, current: str, new: str, *,
                              actor: Actor, keep_session: str | None) -> SessionsEnded | None:
    """The account's own change: the current password must be right (checked like a log-in's, and a wrong one
    counts towards its lock-out); every other session of the account ends, this one stays."""
    async with db.transaction(read_only=True) as session:
        user = await session.get(User, user_id)
        if user is None:
            raise NotFound("no such account")
        stored, username, display_name = user.password_hash, user.username, user.display_name
    refused = await guard.admit(username, actor.source_ip)
    if refused is not None:
        raise Forbidden(f"too many attempts: try again in {refused.retry_after} seconds",
                        code="too_many_attempts", field="current_password")
    try:
        right = await guard.check_password(functools.partial(verify_password, stored, current))
    except LoginBusy:
        raise Forbidden("the server is busy checking passwords: try again in a few seconds",
                        code="too_many_attempts", field="current_password") from None
    if not right:
        await guard.failed(username, actor.source_ip)
        async with db.transaction() as session:
            record(session, actor, action="user.password_change_refused", target_type="user", target_id=user_id)
        raise Forbidden("the current password is wrong", code="bad_password", field="current_password")
    if new == current:
        raise Invalid("new_password: must differ from the current password", field="new_password")
    await require_strong(new, "new_password", username, display_name)
    new_hash = await asyncio.to_thread(hash_password, new)
    async with db.transaction() as session:
        user = await session.get(User, user_id)
        if user is None:
            raise NotFound("no such account")
        user.password_hash = new_hash
        user.password_changed_at = utcnow()
        ended = await end_sessions(session, user_id, EndReason.PASSWORD_CHANGED, utcnow(), keep=keep_session)
        record(session, actor, action="user.password_change", target_type="user", target_id=user_id)
    return ended


async def start_second_factor(session: AsyncSession, user_id: int, *, actor: Actor) -> tuple[User, str]:
    """A new TOTP secret for the account (admins and auditors), pending until a code from it is confirmed; an
    enabled second factor is replaced only by an administrator's reset first."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("no such account")
    if user.role not in second_factor.ROLES:
        raise Forbidden("a second factor is offered to admin and auditor accounts", code="not_offered")
    if user.totp_enabled_at is not None:
        raise Conflict("the second factor is already on: an administrator resets it first (a lost phone)",
                       field="totp")
    user.totp_secret = second_factor.new_secret()
    user.totp_last_step = None
    record(session, actor, action="user.totp_setup", target_type="user", target_id=user.id)
    return user, second_factor.provisioning_uri(user.totp_secret, user.username)


async def confirm_second_factor(session: AsyncSession, user_id: int, code: str, *, actor: Actor) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("no such account")
    if user.totp_secret is None:
        raise Conflict("set the second factor up first (POST /api/v1/auth/totp)", field="code")
    if user.totp_enabled_at is not None:
        raise Conflict("the second factor is already on", field="code")
    now = utcnow()
    step = second_factor.accepted_step(user.totp_secret, code, now, user.totp_last_step)
    if step is None:
        raise Invalid("code: not the current code of this secret (check the phone's clock)", field="code")
    user.totp_enabled_at = now
    user.totp_last_step = step
    record(session, actor, action="user.totp_enabled", target_type="user", target_id=user.id)
    return user


async def reset_second_factor(session: AsyncSession, username: str, *, actor: Actor) -> User:
    """An administrator turns an account's second factor off (a lost phone); the account may set it up again."""
    user = await get_user(session, username)
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    record(session, actor, action="user.totp_reset", target_type="user", target_id=user.id)
    return user
