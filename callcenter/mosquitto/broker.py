"""The platform-managed Mosquitto: one broker per data dir, like the Asterisk instance has its own directories.

Everything lives in ``$CC_DATA_DIR/mosquitto/``, private to the platform's user (the broker runs as that user, as
Asterisk does: the files stay 0600): ``mosquitto.conf`` and ``acl`` (rendered at every ``callcenter mqtt start``),
``passwd`` (the accounts: the platform's and one per device, hashes only, written by ``mosquitto_passwd``),
``data/`` (the broker's persistence: sessions and the messages queued for them), ``mosquitto.log`` and
``mosquitto.pid``.

Accounts: anonymous clients are refused; a device's MQTT username is its id (``device_topics.mqtt_username``) and
the ACL lets it publish only under ``cc/devices/<its id>/`` and read only its own replies; the platform's account
reads and writes every device's topics. The password file is replaced atomically under a lock (the platform and a
``callcenter`` command may both write it); a running broker re-reads it and the ACL on SIGHUP, without dropping a
connection.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from callcenter.config import HostPort, Settings
from callcenter.processes import alive
from callcenter.telephony import device_topics

# Messages the platform never reads (over CC_MQTT_MAX_PAYLOAD_BYTES) still reach it up to this size, so it counts
# and answers them; past it the broker drops the device's connection.
MAX_PACKET_BYTES = 1024 * 1024
# Messages the broker keeps for a client that is away (the platform restarting; a device asleep). An alarm is a few
# hundred bytes: 100,000 of them are tens of MB at most.
MAX_QUEUED_MESSAGES = 100_000
# A persistent session of a client that does not come back for this long is dropped with what waits for it.
SESSION_EXPIRY = "14d"
# The broker writes its persistence file this often (seconds) and at a clean stop.
AUTOSAVE_SECONDS = 60
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_RELOADED = "Reloading config."


class MosquittoError(RuntimeError):
    """Running or configuring the managed broker failed; the message says what to do about it."""


def _find(name: str) -> Path | None:
    # /usr/sbin is not on a normal user's PATH, and Debian puts the broker there.
    found = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"]))
    return Path(found) if found else None


def mosquitto_binary() -> Path | None:
    """The ``mosquitto`` broker, if installed (Debian: package mosquitto, /usr/sbin/mosquitto)."""
    return _find("mosquitto")


def mosquitto_passwd_binary() -> Path | None:
    return _find("mosquitto_passwd")


def connect_host(bind: HostPort) -> str:
    """Where the platform reaches a broker listening on ``bind``: a wildcard address is reached on loopback."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(bind.host, bind.host)


def _check_username(username: str) -> str:
    if not _USERNAME.fullmatch(username):
        raise ValueError(f"MQTT username {username!r}: letters, digits, '.', '_' and '-' only")
    return username


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, mode 0600 (a reader sees the old file or the new one)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    temporary = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.chmod(0o600)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _deadline_loop(timeout: float, step: float = 0.05) -> Iterator[None]:
    """Yield until ``timeout`` seconds have passed, ``step`` apart: a bounded wait for another process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        yield
        time.sleep(step)


@dataclasses.dataclass(frozen=True, slots=True)
class MosquittoBroker:
    """The managed broker's files and process. ``directory`` is ``$CC_DATA_DIR/mosquitto`` for the platform; tests
    make their own on a free port the same way."""

    directory: Path
    bind: HostPort
    platform_username: str

    @classmethod
    def for_settings(cls, settings: Settings) -> MosquittoBroker:
        return cls(settings.data_dir / "mosquitto", settings.mqtt_bind, settings.mqtt_username)

    # -- paths ------------------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def password_file(self) -> Path:
        return self.directory / "passwd"

    @property
    def acl_file(self) -> Path:
        return self.directory / "acl"

    @property
    def persistence_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        return self.directory / "mosquitto.log"

    @property
    def pid_file(self) -> Path:
        return self.directory / "mosquitto.pid"

    @property
    def connect_host(self) -> str:
        return connect_host(self.bind)

    @property
    def telemetry_username(self) -> str:
        """The telemetry process's account: one of its own, because a client id is its username here and two
        connections with one client id would take each other's session in turn."""
        return f"{self.platform_username}-telemetry"

    # -- rendering --------------------------------------------------------------------------------
    def config_text(self) -> str:
        if any(ch.isspace() for ch in str(self.directory)):
            raise MosquittoError(f"{self.directory}: mosquitto.conf cannot name a path with spaces; move CC_DATA_DIR")
        # The broker runs as the user that starts it; as root it would switch to "mosquitto", which cannot read the
        # platform's private files, so it is told to stay who it is.
        user = pwd.getpwuid(os.geteuid()).pw_name
        return "\n".join([
            "# Rendered by callcenter (callcenter/mosquitto/broker.py) at every `callcenter mqtt start`:",
            "# edits are lost.",
            "per_listener_settings false",
            "allow_anonymous false",
            f"password_file {self.password_file}",
            f"acl_file {self.acl_file}",
            f"listener {self.bind.port} {self.bind.host}",
            "set_tcp_nodelay true",
            f"max_packet_size {MAX_PACKET_BYTES}",
            f"max_queued_messages {MAX_QUEUED_MESSAGES}",
            f"persistent_client_expiration {SESSION_EXPIRY}",
            # A client id is its username, so a device cannot take over (and disconnect) another one's session.
            "use_username_as_clientid true",
            "persistence true",
            f"persistence_location {self.persistence_dir}/",
            f"autosave_interval {AUTOSAVE_SECONDS}",
            # Connections name devices' addresses: not written to the log (no personal data in logs).
            "connection_messages false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S%z",
            f"user {user}",
            "",
        ])

    def acl_text(self) -> str:
        own = device_topics.ROOT + "/%u/"
        return "\n".join([
            "# Rendered by callcenter (callcenter/mosquitto/broker.py): edits are lost.",
            "# Topics and payloads: docs/device-protocol.md.",
            "# A device's username is its id: it publishes only under its own cc/devices/<id>/ and reads only its",
            "# replies there.",
            *(f"pattern write {own}{kind}" for kind in device_topics.DEVICE_MESSAGES),
            *(f"pattern read {own}{kind}" for kind in device_topics.PLATFORM_MESSAGES),
            "",
            "# The platform's own account: what every device sends, every device's replies, and what the platform's",
            "# processes tell each other.",
            f"user {self.platform_username}",
            f"topic readwrite {device_topics.ALL_DEVICES}",
            f"topic readwrite {device_topics.ALL_INTERNAL}",
            "",
            "# The telemetry process's account (callcenter/telemetry.py): devices' readings, their answers, and the",
            "# platform's internal topics it tells the platform's process things on.",
            f"user {self.telemetry_username}",
            f"topic read {device_topics.device_filter(device_topics.READING)}",
            f"topic write {device_topics.ROOT}/+/{device_topics.ACK}",
            f"topic write {device_topics.ALL_INTERNAL}",
            "",
        ])

    def render(self, platform_password: str, telemetry_password: str) -> None:
        """Write the configuration and the ACL, and put the platform's and the telemetry process's accounts in the
        password file (devices' accounts are kept; any other account — a platform username used before — is
        dropped)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        self.persistence_dir.mkdir(exist_ok=True)
        _write_private(self.config_file, self.config_text())
        _write_private(self.acl_file, self.acl_text())
        hashed = self.hash_password(_check_username(self.platform_username), platform_password)
        telemetry_hashed = self.hash_password(_check_username(self.telemetry_username), telemetry_password)

        def change(accounts: dict[str, str]) -> dict[str, str]:
            kept = {user: line for user, line in accounts.items() if user.isdigit()}
            return {self.platform_username: hashed, self.telemetry_username: telemetry_hashed, **kept}

        self._update_passwords(change)

    # -- accounts ---------------------------------------------------------------------------------
    def hash_password(self, username: str, password: str) -> str:
        """The password file's hash of ``password`` (PBKDF2-SHA512, as ``mosquitto_passwd`` makes it). The
        password goes to it on stdin, never on a command line other users can read."""
        if "\n" in password or "\r" in password or not password:
            raise ValueError("an MQTT password is one non-empty line")
        binary = mosquitto_passwd_binary()
        if binary is None:
            raise MosquittoError("mosquitto_passwd is not installed (Debian package mosquitto)")
        self.directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.directory, prefix=".hash-") as work:
            target = Path(work) / "passwd"
            result = subprocess.run([str(binary), "-c", str(target), username], input=f"{password}\n{password}\n",
                                    capture_output=True, text=True, timeout=30, check=False)
            line = target.read_text(encoding="utf-8").strip() if target.exists() else ""
        user, _, hashed = line.partition(":")
        if result.returncode != 0 or user != username or not hashed:
            raise MosquittoError(f"mosquitto_passwd failed (exit {result.returncode}): {result.stderr.strip()[:200]}")
        return hashed

    def set_password(self, username: str, password: str) -> None:
        """Add the account or change its password; a running broker takes it at once (SIGHUP)."""
        hashed = self.hash_password(_check_username(username), password)
        self._update_passwords(lambda accounts: {**accounts, username: hashed})
        self.reload()

    def remove_account(self, username: str) -> bool:
        """Remove the account (False: there was none); a running broker refuses it from now on."""
        _check_username(username)
        removed = False

        def change(accounts: dict[str, str]) -> dict[str, str]:
            nonlocal removed
            removed = username in accounts
            return {user: line for user, line in accounts.items() if user != username}

        self._update_passwords(change)
        if removed:
            self.reload()
        return removed

    def accounts(self) -> list[str]:
        """The usernames in the password file."""
        return list(self._read_passwords())

    def _read_passwords(self) -> dict[str, str]:
        try:
            text = self.password_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        accounts = {}
        for line in text.splitlines():
            user, sep, hashed = line.strip().partition(":")
            if sep and user and not user.startswith("#"):
                accounts[user] = hashed
        return accounts

    def _update_passwords(self, change: Callable[[dict[str, str]], dict[str, str]]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "passwd.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            accounts = change(self._read_passwords())
            _write_private(self.password_file, "".join(f"{user}:{hashed}\n" for user, hashed in accounts.items()))

    # -- process ----------------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The running broker's pid, or None. A pid file left by a broker that died (and a pid since reused by an
        unrelated process) is not trusted: the process must be mosquitto with this configuration."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not alive(pid):
            return None
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        if not command or not command[0].endswith(b"mosquitto") or str(self.config_file).encode() not in command:
            return None
        return pid

    def start(self, timeout: float = 10.0) -> int:
        """Start the broker in the background (it outlives this process) and wait until it accepts connections;
        returns its pid. A running one is left as it is."""
        binary = mosquitto_binary()
        if binary is None:
            raise MosquittoError("mosquitto is not installed (Debian package mosquitto): apt-get install mosquitto")
        if not self.config_file.exists():
            raise MosquittoError("no broker configuration rendered: run `callcenter mqtt start`")
        running = self.pid()
        if running is not None:
            return running
        if self._accepts_connections():
            raise MosquittoError(f"{self.bind} is already taken by another process: set CC_MQTT_BIND to a free port")
        with self.log_file.open("ab") as log:
            process = subprocess.Popen([str(binary), "-c", str(self.config_file)], stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        _write_private(self.pid_file, f"{process.pid}\n")
        for _ in _deadline_loop(timeout):
            if process.poll() is not None:
                raise MosquittoError(f"mosquitto exited with status {process.returncode} while starting: "
                                     f"{self.log_tail()}")
            if self._accepts_connections():
                return process.pid
        process.kill()
        raise MosquittoError(f"mosquitto did not listen on {self.bind} within {timeout:.0f}s: {self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the broker (it saves its persistence file first); False when it was not running."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        for _ in _deadline_loop(timeout):
            if not alive(pid):
                break
        else:
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        return True

    def reload(self, timeout: float = 5.0) -> bool:
        """Make a running broker re-read its password file and ACL (SIGHUP; connections stay) and wait until it
        has: it logs the reload as it starts it, and takes no new connection before it is done. False when the
        broker is not running (it reads the files when it starts)."""
        pid = self.pid()
        if pid is None:
            return False
        before = self._log_size()
        os.kill(pid, signal.SIGHUP)
        for _ in _deadline_loop(timeout, step=0.01):
            if _RELOADED in self._log_since(before):
                return True
        raise MosquittoError(f"mosquitto (pid {pid}) did not reload within {timeout:.0f}s: {self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_file.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return "no log"

    def _log_size(self) -> int:
        try:
            return self.log_file.stat().st_size
        except FileNotFoundError:
            return 0

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_file.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def _accepts_connections(self) -> bool:
        try:
            with socket.create_connection((self.connect_host, self.bind.port), timeout=0.5):
                return True
        except OSError:
            return False
