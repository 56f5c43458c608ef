"""The Asterisk root's packages: an installed root lacking one of SID_PACKAGES (built before it joined) is found
from the root's dpkg database, so the next `callcenter asterisk install` adds it; a complete root is left alone."""

from __future__ import annotations

from pathlib import Path

from callcenter.asterisk.runtime import READY_MARKER, SID_PACKAGES, AsteriskRuntime


def _root(tmp_path: Path, status: str) -> AsteriskRuntime:
    root = tmp_path / "root"
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(status, encoding="utf-8")
    (root / READY_MARKER).write_text("Asterisk 22\n", encoding="utf-8")
    return AsteriskRuntime(root, "unit", root / "opt/callcenter")


def _stanza(package: str, status: str = "install ok installed") -> str:
    return f"Package: {package}\nStatus: {status}\nPriority: optional\nVersion: 1.0\n\n"


def test_packages_missing_or_only_configured_are_found_from_the_dpkg_database(tmp_path: Path) -> None:
    status = "".join(_stanza(p) for p in SID_PACKAGES if p not in ("sip-tester", "sox"))
    status += _stanza("sox", "deinstall ok config-files")  # removed, its configuration kept: not installed
    status += _stanza("sip-tester-doc")  # a name starting alike is another package
    runtime = _root(tmp_path, status)
    assert runtime.missing_packages() == ["sox", "sip-tester"]


def test_a_complete_root_is_left_alone_by_install(tmp_path: Path) -> None:
    runtime = _root(tmp_path, "".join(_stanza(p) for p in SID_PACKAGES))
    assert runtime.missing_packages() == []
    said: list[str] = []
    runtime.install(said.append)  # nothing to add: apt is not run
    assert len(said) == 1 and said[0].startswith(f"Asterisk root already installed at {runtime.root}"), said


def test_a_root_without_a_dpkg_database_lacks_everything_and_asterisk_on_path_needs_nothing(tmp_path: Path) -> None:
    assert AsteriskRuntime(tmp_path / "nowhere", "unit", tmp_path).missing_packages() == list(SID_PACKAGES)
    assert AsteriskRuntime(None, "unit", tmp_path).missing_packages() == []
