"""The panel's page sessions and CSRF tokens.

A page session is kept in this process (``SessionStore``); the browser holds only a random session id, signed
(itsdangerous, HMAC-SHA256 with a key derived from the API token key) in an HttpOnly, SameSite=Strict cookie.
The session carries the bearer token the page's JavaScript uses for the REST API and the WebSocket: it was issued
at log-in for this session only and is written into the page, never into a URL (but the WebSocket's ``?token=``).
A restart of the platform ends every page session (the page sends its agent back to the log-in form); calls,
queues and screen-pops are not affected.

CSRF: every state-changing page request (log-in, log-out) must carry a token derived from the session id
(``csrf_token`` form field or ``X-CSRF-Token`` header). The log-in form has no session yet, so ``GET /login``
gives the browser a signed random nonce cookie and the form a token derived from it: a form posted from
another site has neither.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets

from itsdangerous import BadSignature

from callcenter.api.tokens import signer
from callcenter.users.models import Role

SESSION_COOKIE = "cc_session"
LOGIN_COOKIE = "cc_login"  # the pre-log-in nonce that the log-in form's CSRF token is bound to
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
MAX_SESSIONS = 10_000  # beyond any centre's staff; bounds memory if something logs in in a loop


class Signer:
    """Signs short ASCII values (``value.mac``) and derives CSRF tokens; constant-time checks throughout."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the session signing key must be at least 32 bytes")
        self._cookies = signer(key, "cookie")
        self._csrf = signer(key, "csrf")

    def sign(self, value: str) -> str:
        return self._cookies.sign(value).decode("ascii")

    def unsign(self, signed: str | None) -> str | None:
        """The value if ``signed`` carries our signature, else None (malformed, forged, or not ASCII)."""
        if not signed or not signed.isascii():
            return None
        try:
            return self._cookies.unsign(signed).decode("ascii")
        except BadSignature:
            return None

    def csrf_for(self, nonce: str) -> str:
        return self._csrf.get_signature(nonce).decode("ascii")

    def csrf_ok(self, nonce: str, token: str | None) -> bool:
        return bool(token) and self._csrf.verify_signature(nonce, token)


def new_nonce() -> str:
    return secrets.token_urlsafe(32)


@dataclasses.dataclass(frozen=True, slots=True)
class PanelSession:
    id: str
    user_id: int
    username: str
    display_name: str | None
    role: Role
    api_token: str  # the bearer token issued for this session; it expires with it
    login_session_id: str  # the users.sessions row the token names: a log-out or a revocation ends it
    expires_at: dt.datetime
    csrf_token: str


class SessionStore:
    """Page sessions by id, in memory (one platform process serves the panel)."""

    def __init__(self, signer: Signer, max_sessions: int = MAX_SESSIONS) -> None:
        self.signer = signer
        self._max = max_sessions
        self._sessions: dict[str, PanelSession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, *, user_id: int, username: str, display_name: str | None, role: Role, api_token: str,
               login_session_id: str, expires_at: dt.datetime, now: dt.datetime) -> tuple[PanelSession, str]:
        """A new session (always a fresh id: a session id known before log-in is never promoted) and the
        cookie value that names it."""
        self._prune(now)
        if len(self._sessions) >= self._max:
            # Drop the session closest to its end rather than refuse a log-in during a shift.
            oldest = min(self._sessions.values(), key=lambda s: s.expires_at)
            del self._sessions[oldest.id]
        session_id = new_nonce()
        session = PanelSession(id=session_id, user_id=user_id, username=username, display_name=display_name,
                               role=role, api_token=api_token, login_session_id=login_session_id,
                               expires_at=expires_at,
                               csrf_token=self.signer.csrf_for(session_id))
        self._sessions[session_id] = session
        return session, self.signer.sign(session_id)

    def get(self, cookie: str | None, now: dt.datetime) -> PanelSession | None:
        session_id = self.signer.unsign(cookie)
        if session_id is None:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires_at <= now:
            del self._sessions[session_id]
            return None
        return session

    def drop(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def _prune(self, now: dt.datetime) -> None:
        for session_id in [s.id for s in self._sessions.values() if s.expires_at <= now]:
            del self._sessions[session_id]
