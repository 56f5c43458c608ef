"""Log-in sessions (seed 5.9; issue 14): every bearer token names a row of ``user_sessions``, so a log-out, a
revocation, a disabled account, a changed role or a new password ends tokens, panel pages and open WebSockets at
once.

A token is still signed (api.tokens), so a forged one is refused before any query. A signed token is then accepted
only while its session row is live: not revoked, not expired, its account active with the token's role, and — for a
provider's portal account — its provider active. That check is one indexed read per request, the same read that
already re-loaded the user.

Open WebSockets are not requests: when sessions end, ``SessionEvents`` tells this process's sockets (the desk's and
the provider portal's), which close those sockets with ``SESSION_ENDED_CLOSE`` at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import secrets
from collections.abc import Callable, Iterable

from aiohttp import web
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.api.errors import NotFound, Unauthorized
from callcenter.api.tokens import TokenClaims, TokenService
from callcenter.logs import get_logger
from callcenter.providers.models import ServiceProvider
from callcenter.users.models import Role, SessionKind, User, UserSession

log = get_logger(__name__)

# Close code of a WebSocket whose session ended (RFC 6455 leaves 4000–4999 to applications): the page goes to the
# log-in form rather than reconnecting.
SESSION_ENDED_CLOSE = 4401
# Rows of sessions that ended this long ago are purged when their account next logs in.
KEEP_ENDED = dt.timedelta(days=30)
USER_AGENT_MAX = 200


class EndReason(enum.StrEnum):
    LOGOUT = "logout"
    REVOKED = "revoked"
    DISABLED = "disabled"
    ROLE_CHANGED = "role_changed"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 (a reason, not a password)
    PASSWORD_RESET = "password_reset"  # noqa: S105
    PROVIDER_DEACTIVATED = "provider_deactivated"


@dataclasses.dataclass(frozen=True, slots=True)
class SessionsEnded:
    """Sessions of one account that ended, by id."""

    user_id: int
    session_ids: frozenset[str]
    reason: str

    def covers(self, user_id: int, session_id: str | None) -> bool:
        return user_id == self.user_id and session_id in self.session_ids


Listener = Callable[[SessionsEnded], None]


class SessionEvents:
    """In-process notices of ended sessions, for whatever holds a session open past its request (WebSockets)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def ended(self, notice: SessionsEnded) -> None:
        for listener in self._listeners:
            try:
                listener(notice)
            except Exception:  # one socket owner's bug must not keep the others' sockets open
                log.exception("users.session_listener_failed", reason=notice.reason)


SESSION_EVENTS = web.AppKey("user_session_events", SessionEvents)


def new_session_id() -> str:
    return secrets.token_urlsafe(16)


async def open_session(session: AsyncSession, user: User, kind: SessionKind, tokens: TokenService, *,
                       source_ip: str | None, user_agent: str | None, now: dt.datetime) -> tuple[str, UserSession]:
    """A new session row for ``user`` and the bearer token that names it (added to the caller's transaction)."""
    await session.execute(delete(UserSession).where(UserSession.user_id == user.id,
                                                    UserSession.expires_at < now - KEEP_ENDED))
    session_id = new_session_id()
    token, expires_at = tokens.issue(user.id, user.role, session_id, now)
    row = UserSession(id=session_id, user_id=user.id, kind=kind, source_ip=source_ip,
                      user_agent=(user_agent or "")[:USER_AGENT_MAX] or None, created_at=now, expires_at=expires_at)
    session.add(row)
    await session.flush()
    return token, row


async def authenticated_user(session: AsyncSession, claims: TokenClaims, now: dt.datetime) -> User:
    """The account a verified token speaks for, while its session is live; ``Unauthorized`` saying why not."""
    found = (await session.execute(
        select(User, UserSession).join(UserSession, UserSession.user_id == User.id)
        .where(UserSession.id == claims.session_id, User.id == claims.user_id))).first()
    if found is None:
        raise Unauthorized("this session no longer exists: log in again", code="invalid_token")
    user, row = found
    if row.revoked_at is not None:
        raise Unauthorized(f"this session was ended ({row.revoked_reason or EndReason.REVOKED}): log in again",
                           code="session_ended")
    if row.expires_at <= now:
        raise Unauthorized("this session expired: log in again", code="invalid_token")
    if not user.active:
        raise Unauthorized("this account no longer exists or is disabled", code="invalid_token")
    if user.role is not claims.role:
        raise Unauthorized("the account's role changed since this token was issued: log in again",
                           code="invalid_token")
    # A portal account bound to no provider authenticates but is refused by every route (it has no data of its own).
    if user.role is Role.PROVIDER and user.provider_id is not None:
        active = await session.scalar(select(ServiceProvider.active).where(ServiceProvider.id == user.provider_id))
        if not active:
            raise Unauthorized("this account's service provider is not active", code="provider_inactive")
    return user


async def live_sessions(session: AsyncSession, user_id: int, now: dt.datetime) -> list[UserSession]:
    return list((await session.scalars(
        select(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None),
                                  UserSession.expires_at > now)
        .order_by(UserSession.created_at.desc(), UserSession.id))).all())


async def end_sessions(session: AsyncSession, user_id: int, reason: str, now: dt.datetime, *,
                       only: Iterable[str] | None = None, keep: str | None = None) -> SessionsEnded | None:
    """Revoke ``user_id``'s live sessions — ``only`` these, or all but ``keep`` — in the caller's transaction. The
    notice to hand to ``SessionEvents.ended`` once it commits; None when nothing was live."""
    statement = (update(UserSession)
                 .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None),
                        UserSession.expires_at > now)
                 .values(revoked_at=now, revoked_reason=reason)
                 .returning(UserSession.id))
    wanted = None if only is None else frozenset(only)
    if wanted is not None:
        statement = statement.where(UserSession.id.in_(wanted))
    if keep is not None:
        statement = statement.where(UserSession.id != keep)
    ended = frozenset((await session.scalars(statement)).all())
    return SessionsEnded(user_id, ended, reason) if ended else None


async def end_one(session: AsyncSession, user_id: int, session_id: str, reason: str,
                  now: dt.datetime) -> SessionsEnded:
    """Revoke one live session of ``user_id``; NotFound if it is not one."""
    notice = await end_sessions(session, user_id, reason, now, only=[session_id])
    if notice is None:
        raise NotFound(f"no live session {session_id!r} of this account", field="session_id")
    return notice


async def end_provider_sessions(session: AsyncSession, provider_id: int, now: dt.datetime) -> list[SessionsEnded]:
    """A provider was deactivated: every session of its portal accounts ends (their tokens were already refused
    while it is inactive; this closes their open pages and keeps them closed if it is reactivated)."""
    accounts = (await session.scalars(select(User.id).where(User.provider_id == provider_id))).all()
    notices = [await end_sessions(session, user_id, EndReason.PROVIDER_DEACTIVATED, now) for user_id in accounts]
    return [notice for notice in notices if notice is not None]
