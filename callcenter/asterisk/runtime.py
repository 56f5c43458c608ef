"""Locate, install and run Asterisk.

Debian 12 ships no Asterisk package, so unless an Asterisk >= 20 is on PATH the project builds a private
Debian sid root (debootstrap) holding Asterisk 22 and runs it with chroot. The root lives outside the clone
(``CC_ASTERISK_ROOT``) so CI, tests and ``make run`` share one install. Each running Asterisk is an
*instance*: its own configuration, spool, run and log directories under ``/opt/callcenter/<instance>`` in
the root, so a test instance never collides with the one ``make run`` started.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from callcenter.config import Settings
from callcenter.processes import alive

MINIMUM_MAJOR_VERSION = 20
SID_PACKAGES = (
    "asterisk",
    "asterisk-core-sounds-en-wav",
    "asterisk-moh-opsound-wav",
    "sox",
    # SIPp 3.8, built with OpenSSL: the tests' devices and phones speak SIP over TLS with it (Debian 12's SIPp has
    # no TLS). About 30 MB with its dependencies (python3), far less than a second root for the tests would take.
    "sip-tester",
)
READY_MARKER = ".callcenter-ready"
INSTANCES_DIR = "/opt/callcenter"

Progress = Callable[[str], None]


class AsteriskRuntimeError(RuntimeError):
    """Installing or running Asterisk failed; the message says what to do about it."""


def _print_progress(message: str) -> None:
    print(f"[asterisk] {message}", file=sys.stderr, flush=True)


def debian_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt uses (``CC_DEBIAN_MIRROR`` wins): never a hard-coded host."""
    override = os.environ.get("CC_DEBIAN_MIRROR")
    if override:
        return override
    candidates: list[str] = []
    for path in sorted((sources_dir / "sources.list.d").glob("*.sources")):
        text = path.read_text(encoding="utf-8", errors="replace")
        for stanza in re.split(r"\n\s*\n", text):
            if re.search(r"^Enabled:\s*no", stanza, re.M | re.I):
                continue
            match = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            if match:
                candidates.append(match.group(1))
    for path in [sources_dir / "sources.list", *sorted((sources_dir / "sources.list.d").glob("*.list"))]:
        if path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                match = re.match(r"\s*deb\s+(?:\[[^]]*]\s+)?(\S+)", line)
                if match:
                    candidates.append(match.group(1))
    for uri in candidates:
        # The security archive has no sid suite; the main archive's path ends in /debian.
        if uri.rstrip("/").endswith("/debian"):
            return uri
    raise AsteriskRuntimeError(
        "no Debian mirror found in /etc/apt (this does not look like a Debian machine); "
        "install Asterisk >= 20 on PATH, or set CC_DEBIAN_MIRROR to a Debian mirror URL"
    )


@dataclasses.dataclass(frozen=True, slots=True)
class AsteriskRuntime:
    """Where Asterisk lives: ``root`` is the chroot, or ``None`` for an Asterisk on the host's PATH."""

    root: Path | None
    instance: str
    host_instances_dir: Path

    @classmethod
    def for_settings(cls, settings: Settings) -> AsteriskRuntime:
        if host_asterisk_version() is not None:
            return cls(None, settings.asterisk_instance, settings.data_dir / "asterisk")
        root = settings.asterisk_root
        return cls(root, settings.asterisk_instance, root / INSTANCES_DIR.lstrip("/"))

    # -- paths ------------------------------------------------------------------------------------
    @property
    def instance_dir(self) -> Path:
        """The instance directory as Asterisk sees it (inside the root)."""
        if self.root is None:
            return self.host_instances_dir / self.instance
        return Path(INSTANCES_DIR) / self.instance

    def host_path(self, inner: Path | str) -> Path:
        """Translate a path Asterisk sees into the same file as the host sees it."""
        inner = Path(inner)
        if self.root is None:
            return inner
        return self.root / inner.relative_to("/")

    @property
    def config_file(self) -> Path:
        return self.instance_dir / "etc" / "asterisk.conf"

    @property
    def module_dir(self) -> str:
        for candidate in ("/usr/lib/x86_64-linux-gnu/asterisk/modules", "/usr/lib/aarch64-linux-gnu/asterisk/modules",
                          "/usr/lib/asterisk/modules", "/usr/lib64/asterisk/modules"):
            if self.host_path(candidate).is_dir():
                return candidate
        raise AsteriskRuntimeError("Asterisk modules directory not found: run `callcenter asterisk install`")

    @property
    def pid_file(self) -> Path:
        return self.host_path(self.instance_dir / "run" / "asterisk.pid")

    @property
    def log_file(self) -> Path:
        return self.host_path(self.instance_dir / "log" / "console.log")

    def directories(self) -> dict[str, Path]:
        """asterisk.conf [directories] entries for this instance, as Asterisk sees them."""
        base = self.instance_dir
        return {
            "astetcdir": base / "etc",
            "astspooldir": base / "spool",
            "astrundir": base / "run",
            "astlogdir": base / "log",
            "astvarlibdir": base / "lib",
            "astdbdir": base / "lib",
            "astkeydir": base / "lib",
            "astdatadir": Path("/usr/share/asterisk"),
        }

    def make_instance_dirs(self) -> None:
        for inner in self.directories().values():
            if str(inner).startswith(str(self.instance_dir)):
                self.host_path(inner).mkdir(parents=True, exist_ok=True)
        # Asterisk does not create these itself: CDR CSV (the independent trail of every call) and keys.
        self.host_path(self.instance_dir / "log" / "cdr-csv").mkdir(parents=True, exist_ok=True)
        self.host_path(self.instance_dir / "log" / "cdr-custom").mkdir(parents=True, exist_ok=True)
        self.host_path(self.instance_dir / "lib" / "keys").mkdir(parents=True, exist_ok=True)

    # -- install ----------------------------------------------------------------------------------
    def is_installed(self) -> bool:
        if self.root is None:
            return True
        return (self.root / READY_MARKER).exists()

    def install(self, progress: Progress = _print_progress) -> None:
        if self.root is None:
            progress(f"using Asterisk {host_asterisk_version()} found on PATH")
            return
        if self.is_installed():
            missing = self.missing_packages()
            if missing:  # a root built before a package joined SID_PACKAGES gets it now, nothing else changes
                self._add_packages(missing, progress)
            progress(f"Asterisk root already installed at {self.root} ({self.version() or 'version unknown'})")
            return
        _require_superuser("building the Asterisk root")
        if shutil.which("debootstrap") is None:
            raise AsteriskRuntimeError("debootstrap is missing: apt-get install -y debootstrap (make run does this)")
        mirror = debian_mirror()
        partial = self.root.with_name(self.root.name + ".partial")
        _unmount_below(partial)
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        progress(f"[1/3] debootstrap Debian sid into {partial} from {mirror} (about a minute)")
        _run_streaming(["debootstrap", "--variant=minbase", "sid", str(partial), mirror], progress, "debootstrap")
        progress(f"[2/3] installing {' '.join(SID_PACKAGES)} in the root ({time.monotonic() - started:.0f}s so far)")
        _ensure_proc(partial)
        try:
            _apt_install(partial, SID_PACKAGES, progress)
        finally:
            _unmount_below(partial)
        if self.root.exists():
            _unmount_below(self.root)
            shutil.rmtree(self.root)
        partial.rename(self.root)
        (self.root / READY_MARKER).write_text(f"{self.version()}\n", encoding="utf-8")
        progress(f"[3/3] done in {time.monotonic() - started:.0f}s: {self.version()}")

    def missing_packages(self) -> list[str]:
        """The packages of SID_PACKAGES the root lacks, read from its dpkg database (no chroot, no root needed)."""
        if self.root is None:
            return []
        try:
            status = (self.root / "var/lib/dpkg/status").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return list(SID_PACKAGES)
        installed = set()
        for stanza in re.split(r"\n\s*\n", status):
            name = re.search(r"^Package:\s*(\S+)", stanza, re.M)
            if name and re.search(r"^Status:.*\binstall ok installed\b", stanza, re.M):
                installed.add(name.group(1))
        return [package for package in SID_PACKAGES if package not in installed]

    def _add_packages(self, packages: Sequence[str], progress: Progress) -> None:
        """Install ``packages`` into the existing root. Instances may be running from it, so /proc stays mounted
        (start() mounts it too) and nothing is removed or rebuilt."""
        assert self.root is not None
        _require_superuser(f"adding {' '.join(packages)} to the Asterisk root")
        progress(f"adding {' '.join(packages)} to the Asterisk root at {self.root}")
        _ensure_proc(self.root)
        _apt_install(self.root, packages, progress)

    def command(self, args: Sequence[str]) -> list[str]:
        """An argv running ``asterisk`` against this instance's configuration."""
        base = ["asterisk", "-C", str(self.config_file), *args]
        if self.root is None:
            return base
        return ["chroot", str(self.root), *base]

    def version(self) -> str | None:
        if self.root is None:
            return host_asterisk_version()
        try:
            out = subprocess.run(["chroot", str(self.root), "asterisk", "-V"], capture_output=True, text=True,
                                 timeout=30, check=False).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out or None

    # -- process ----------------------------------------------------------------------------------
    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def start(self, timeout: float = 60.0) -> int:
        """Start the instance in the background and wait until it is fully booted; returns its pid."""
        if not self.is_installed():
            raise AsteriskRuntimeError("Asterisk is not installed: run `callcenter asterisk install`")
        if not self.host_path(self.config_file).exists():
            raise AsteriskRuntimeError("no configuration rendered: run `callcenter asterisk render` first")
        running = self.pid()
        if running is not None:
            return running
        if self.root is not None:
            _ensure_proc(self.root)
        self.make_instance_dirs()
        log = self.log_file.open("ab")
        # -f: stay in the foreground of our detached child, so its pid is Asterisk's own pid.
        process = subprocess.Popen(self.command(["-f", "-n", "-g"]), stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AsteriskRuntimeError(
                    f"Asterisk exited with status {process.returncode} while starting; see {self.log_file}"
                )
            if self.cli("core waitfullybooted", timeout=5, check=False) is not None:
                return process.pid
            time.sleep(0.2)
        process.kill()
        raise AsteriskRuntimeError(f"Asterisk did not boot within {timeout:.0f}s; see {self.log_file}")

    def cli(self, command: str, timeout: float = 15, check: bool = True) -> str | None:
        """Run one CLI command on the running instance; ``None`` when it is not reachable (and not ``check``)."""
        try:
            result = subprocess.run(self.command(["-rx", command]), capture_output=True, text=True,
                                    timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            if check:
                raise AsteriskRuntimeError(f"Asterisk CLI {command!r} timed out") from None
            return None
        unreachable = result.returncode != 0 or "Unable to connect to remote asterisk" in result.stdout
        if unreachable:
            if check:
                raise AsteriskRuntimeError(f"Asterisk is not running (CLI {command!r}): {result.stdout.strip()}")
            return None
        return result.stdout

    def reload(self) -> None:
        """Apply a re-rendered configuration without dropping calls."""
        self.cli("core reload")

    def stop(self, timeout: float = 20.0) -> bool:
        """Stop the instance; returns False when it was not running."""
        pid = self.pid()
        if pid is None:
            return False
        self.cli("core stop now", timeout=timeout, check=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not alive(pid):
                return True
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
        return True


def host_asterisk_version() -> str | None:
    """The version of an Asterisk >= 20 on PATH, or None."""
    binary = shutil.which("asterisk")
    if binary is None or os.environ.get("CC_ASTERISK_IGNORE_PATH") == "1":
        return None
    try:
        out = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"Asterisk (\d+)\.", out)
    if match and int(match.group(1)) >= MINIMUM_MAJOR_VERSION:
        return out.strip()
    return None


def _require_superuser(what: str) -> None:
    if os.geteuid() != 0:
        raise AsteriskRuntimeError(f"{what} needs root (debootstrap, chroot and apt): run as root")


def _apt_install(root: Path, packages: Sequence[str], progress: Progress) -> None:
    """apt-get update and install ``packages`` (no recommends) inside ``root``, then drop the downloaded archives.
    The sid mirror's Release file may be past its Valid-Until date; another install into the same root (a second
    clone) holds dpkg's lock for a while, so wait for it rather than fail."""
    apt = ["chroot", str(root), "apt-get", "-o", "Acquire::Check-Valid-Until=false", "-o", "DPkg::Lock::Timeout=300",
           "-q"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run_streaming([*apt, "update"], progress, "apt-get update", env=env)
    _run_streaming([*apt, "install", "-y", "--no-install-recommends", *packages], progress, "apt-get install", env=env)
    _run_streaming(["chroot", str(root), "apt-get", "clean"], progress, "apt-get clean", env=env)


def _ensure_proc(root: Path) -> None:
    proc = root / "proc"
    proc.mkdir(exist_ok=True)
    if not (proc / "self").exists():
        subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)


def _unmount_below(root: Path) -> None:
    if not root.exists():
        return
    prefix = str(root.resolve())
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount_point in sorted((m for m in mounts if m == prefix or m.startswith(prefix + "/")), reverse=True):
        subprocess.run(["umount", "-l", mount_point], check=False)


def _run_streaming(argv: list[str], progress: Progress, what: str, env: dict[str, str] | None = None) -> None:
    """Run a long step, relaying its output lines as progress; a failure keeps the tail for the error."""
    tail: list[str] = []
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert process.stdout is not None
    for line in process.stdout:
        line = line.rstrip()
        if line:
            tail = [*tail[-19:], line]
            progress(f"  {what}: {line}")
    if process.wait() != 0:
        raise AsteriskRuntimeError(
            f"{what} failed (exit {process.returncode}). Last output:\n" + "\n".join(tail)
            + "\nCheck the network and the Debian mirror (CC_DEBIAN_MIRROR), "
            "then run `callcenter asterisk install` again."
        )
