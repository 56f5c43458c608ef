"""Agents log in and out of queues and pause, through the one AMI client; the registry follows from events."""

from __future__ import annotations

from sqlalchemy import select

from callcenter.agents.state import AgentRegistry, AgentState
from callcenter.audit.models import AuditEntry
from callcenter.db.session import Database
from callcenter.logs import get_logger
from callcenter.telephony.ami import AmiActionFailed, AmiClient
from callcenter.users.models import Role, User

log = get_logger(__name__)

# Agents answer SOS and hotline calls; supervisors on duty take SOS overflow (seed 5.1, GB/T 33358's 15 s).
QUEUES_BY_ROLE: dict[Role, tuple[str, ...]] = {
    Role.AGENT: ("emergency", "hotline"),
    Role.SUPERVISOR: ("supervisors",),
    Role.ADMIN: ("supervisors",),
}


class AgentError(Exception):
    """A request about an agent that cannot be carried out; ``field`` names the culprit for the API."""

    def __init__(self, message: str, *, status: int = 409, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


class AgentService:
    def __init__(self, db: Database, ami: AmiClient, registry: AgentRegistry) -> None:
        self._db = db
        self._ami = ami
        self._registry = registry
        ami.on_login(self.resync)

    async def _user(self, username: str) -> User:
        async with self._db.transaction() as session:
            user = await session.scalar(select(User).where(User.username == username))
        if user is None:
            raise AgentError(f"no user {username!r}", status=404, field="username")
        if not user.active:
            raise AgentError(f"user {username!r} is disabled", field="username")
        if user.role not in QUEUES_BY_ROLE:
            raise AgentError(f"a {user.role.value} does not take calls", field="username")
        if not user.extension:
            raise AgentError(f"user {username!r} has no phone extension", status=422, field="extension")
        return user

    async def _audit(self, actor: str, action: str, username: str, details: dict[str, object]) -> None:
        async with self._db.transaction() as session:
            session.add(AuditEntry(actor_label=actor, action=action, target_type="agent", target_id=username,
                                   details=details))

    def state(self, username: str) -> AgentState | None:
        return self._registry.get(username)

    async def login(self, username: str, *, actor: str) -> None:
        user = await self._user(username)
        interface = f"PJSIP/{user.extension}"
        for queue in QUEUES_BY_ROLE[user.role]:
            try:
                await self._ami.send_action({
                    "Action": "QueueAdd", "Queue": queue, "Interface": interface, "MemberName": user.username,
                    "StateInterface": interface, "Paused": "false",
                })
            except AmiActionFailed as error:
                # Already a member: logging in twice is not an error for the agent.
                if "Already there" not in str(error):
                    raise
        log.info("agent.login", username=username, interface=interface, queues=QUEUES_BY_ROLE[user.role])
        await self._audit(actor, "agent.login", username, {"interface": interface})

    async def logout(self, username: str, *, actor: str) -> None:
        user = await self._user(username)
        interface = f"PJSIP/{user.extension}"
        for queue in QUEUES_BY_ROLE[user.role]:
            try:
                await self._ami.send_action({"Action": "QueueRemove", "Queue": queue, "Interface": interface})
            except AmiActionFailed as error:
                if "Not there" not in str(error):
                    raise
        log.info("agent.logout", username=username, interface=interface)
        await self._audit(actor, "agent.logout", username, {"interface": interface})

    async def pause(self, username: str, reason: str, *, actor: str) -> None:
        if not reason.strip():
            raise AgentError("a pause needs a reason", status=422, field="reason")
        await self._set_paused(username, True, reason.strip(), actor)

    async def unpause(self, username: str, *, actor: str) -> None:
        await self._set_paused(username, False, "", actor)

    async def _set_paused(self, username: str, paused: bool, reason: str, actor: str) -> None:
        user = await self._user(username)
        interface = f"PJSIP/{user.extension}"
        state = self._registry.get(username)
        if state is None or not state.logged_in:
            raise AgentError(f"{username!r} is not logged in to any queue", field="username")
        action = {"Action": "QueuePause", "Interface": interface, "Paused": "true" if paused else "false"}
        if reason:
            action["Reason"] = reason
        await self._ami.send_action(action)
        log.info("agent.pause" if paused else "agent.unpause", username=username, reason=reason or None)
        await self._audit(actor, "agent.pause" if paused else "agent.unpause", username, {"reason": reason})

    async def resync(self) -> None:
        """After every AMI (re)login: re-learn queue membership from Asterisk, the source of truth."""
        response = await self._ami.send_action({"Action": "QueueStatus"}, timeout=15)
        self._registry.forget_all()
        # The list's events carry our ActionID, so they come back in the response, not through subscriptions.
        for message in response if isinstance(response, list) else [response]:
            if message.get("Event") == "QueueMember":
                await self._registry.handle(message)
