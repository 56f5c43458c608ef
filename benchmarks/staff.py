"""Staff for the desk benchmarks: agent and supervisor accounts (each agent with a SIP phone), the elders' doctor,
relative and social worker, the panels' bearer tokens, the agents' phones and their log-in to the queues.

All agents' phones share one UDP port: one SIPp run registers every extension from it, then one SIPp UAS on it
answers whichever phone Asterisk rings (rings ``ring_ms``, answers, stays until the caller's BYE).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import secrets
import subprocess
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select

from benchmarks.panels import Panel
from benchmarks.sipp_load import stop_sipp
from callcenter.api.tokens import TokenService
from callcenter.db.base import utcnow
from callcenter.db.session import Database
from callcenter.elders.models import Contact, ContactRole, Elder
from callcenter.users.models import Role, SessionKind, User
from callcenter.users.passwords import hash_password, sip_ha1
from callcenter.users.sessions import open_session
from tests import harness

REGISTER_SCENARIO = Path(__file__).parent / "sipp" / "register_many.xml"
# The phones' behaviour is the integration tests' answering phone: ring, answer, accept re-INVITEs, wait for BYE.
ANSWER_SCENARIO = harness.SIPP_DIR / "answer_until_bye.xml"
EXTENSION_BASE = 7000
# Each elder's contacts, dialled through the trunk: role → (name, number prefix).
CONTACTS = {ContactRole.DOCTOR: ("压测医生", "1880100"), ContactRole.RELATIVE: ("压测家属", "1880200"),
            ContactRole.SOCIAL_WORKER: ("压测社工", "1880300")}


@dataclasses.dataclass(frozen=True)
class StaffMember:
    username: str
    role: Role
    user_id: int
    extension: str | None = None
    sip_password: str | None = None


class StaffSeed:
    """For ``bench_stack(seed=...)``: ``agents`` agents with phones, ``supervisors`` supervisors, and a doctor,
    a relative and a social worker for every elder already seeded."""

    def __init__(self, agents: int, supervisors: int) -> None:
        self.agent_count = agents
        self.supervisor_count = supervisors
        self.members: list[StaffMember] = []

    @property
    def agents(self) -> list[StaffMember]:
        return [m for m in self.members if m.role is Role.AGENT]

    @property
    def supervisors(self) -> list[StaffMember]:
        return [m for m in self.members if m.role is Role.SUPERVISOR]

    async def __call__(self, db: Database) -> None:
        # One Argon2 hash for every account, of a password nobody knows: the panels get minted tokens
        # (panel_tokens), and hundreds of hashes would take minutes.
        password_hash = hash_password(secrets.token_urlsafe(16))
        phones: dict[str, tuple[str, str]] = {}
        async with db.transaction() as session:
            users: list[User] = []
            for n in range(1, self.agent_count + 1):
                username, extension, secret = f"bench-agent-{n:03d}", str(EXTENSION_BASE + n), f"bench-phone-{n:04d}"
                phones[username] = (extension, secret)
                users.append(User(username=username, password_hash=password_hash, role=Role.AGENT,
                                  extension=extension, sip_ha1=sip_ha1(extension, secret)))
            users += [User(username=f"bench-supervisor-{n:03d}", password_hash=password_hash, role=Role.SUPERVISOR)
                      for n in range(1, self.supervisor_count + 1)]
            session.add_all(users)
            for elder_id in (await session.scalars(select(Elder.id).order_by(Elder.id))).all():
                session.add_all(Contact(elder_id=elder_id, role=role, name=name, phone=f"{prefix}{elder_id:04d}",
                                        priority=1) for role, (name, prefix) in CONTACTS.items())
            await session.flush()
            self.members = [StaffMember(u.username, u.role, u.id, *phones.get(u.username, (None, None)))
                            for u in users]


def panel_tokens(stack: harness.Stack, members: Sequence[StaffMember]) -> list[Panel]:
    """One panel per member, with the bearer token a log-in would give it (same key file, same format and
    lifetime, a log-in session row of its own): minted here so that opening 500 panels does not cost 500 Argon2
    log-ins first."""
    tokens = TokenService.for_settings(stack.settings)

    async def mint(db: Database) -> list[Panel]:
        now = utcnow()
        panels = []
        async with db.transaction() as session:
            for member in members:
                user = await session.get(User, member.user_id)
                assert user is not None, member.username
                token, _ = await open_session(session, user, SessionKind.PANEL, tokens, source_ip="127.0.0.1",
                                              user_agent="benchmarks.panels", now=now)
                panels.append(Panel(member.username, member.role.value, token))
        return panels

    return list(stack.query(mint))


def answering_uas(port: int, ring_ms: int, workdir: Path, name: str) -> subprocess.Popen[bytes]:
    """A SIPp UAS on ``port`` that answers every call after ``ring_ms`` and stays until the BYE, until stopped."""
    harness.require_tools()
    workdir.mkdir(parents=True, exist_ok=True)
    argv = ["sipp", "-sf", str(ANSWER_SCENARIO), "-i", "127.0.0.1", "-p", str(port),
            "-mp", str(harness.free_sipp_media_port()), "-set", "ring_ms", str(ring_ms), "-nostdin",
            "-trace_err", "-error_file", str(workdir / f"{name}-errors.log")]
    return subprocess.Popen(argv, cwd=workdir, stdout=subprocess.DEVNULL,
                            stderr=(workdir / f"{name}-stderr.log").open("wb"))


class AgentPhones:
    """Every agent's phone on one port: registered in one SIPp run, then answered by one SIPp UAS."""

    def __init__(self, stack: harness.Stack, agents: Sequence[StaffMember], workdir: Path, ring_ms: int) -> None:
        self.stack = stack
        self.agents = list(agents)
        self.workdir = workdir
        self.ring_ms = ring_ms
        self.port = harness.free_udp_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.poll() is None else None

    def start(self) -> None:
        self.register()
        self.process = answering_uas(self.port, self.ring_ms, self.workdir, "agent-phones")

    def register(self, expires: int = 3600) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        injection = self.workdir / "phones.csv"
        injection.write_text("SEQUENTIAL\n" + "".join(f"{a.extension};{a.sip_password};\n" for a in self.agents),
                             encoding="ascii")
        errors = self.workdir / "register-errors.log"
        count = len(self.agents)
        argv = ["sipp", str(self.stack.settings.sip), "-sf", str(REGISTER_SCENARIO), "-inf", str(injection),
                "-i", "127.0.0.1", "-p", str(self.port), "-m", str(count), "-r", "50", "-l", "50",
                "-set", "expires", str(expires), "-timeout", f"{count // 20 + 30}s", "-nostdin",
                "-trace_err", "-error_file", str(errors)]
        result = subprocess.run(argv, cwd=self.workdir, capture_output=True, timeout=count // 20 + 60, check=False)
        if result.returncode != 0:
            log = errors.read_text(errors="replace")[-1500:] if errors.exists() else ""
            raise RuntimeError(f"registering {count} agents' phones failed ({result.returncode}): {log}"
                               f"{result.stderr.decode(errors='replace')[-500:]}")

    def stop(self) -> None:
        stop_sipp(self.process)
        self.process = None


def login_agents(stack: harness.Stack, usernames: Sequence[str], token: str, parallel: int = 8) -> list[str]:
    """Log the agents in to their queues through the REST API (as a supervisor's panel would); the failures."""

    def login(username: str) -> str | None:
        status, body = stack.api("POST", f"/api/v1/agents/{username}/login", token=token)
        return None if status == 200 else f"{username}: {status} {body}"

    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        return [failure for failure in pool.map(login, usernames) if failure]
