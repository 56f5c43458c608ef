"""The panel's vendored browser libraries (``make vendor``) are the npm packages package-lock.json pins, byte for
byte: nothing edited by hand, nothing from a CDN, and the panel serves them from its own static files."""

from __future__ import annotations

import json
import re
from pathlib import Path

from callcenter.contract import Page
from callcenter.web.assets import VENDOR_DIRECTORY, StaticFiles

ROOT = Path(__file__).resolve().parents[3]
MAKEFILE = ROOT / "Makefile"


def _vendored() -> list[str]:
    """The package files ``make vendor`` copies (its VENDORED list), as paths under node_modules."""
    found = re.search(r"^VENDORED := (.+)$", MAKEFILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert found is not None, "the Makefile lists what it vendors"
    return found.group(1).split()


def test_every_vendored_file_is_its_pinned_packages_file_byte_for_byte() -> None:
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    wanted = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))["dependencies"]
    files = _vendored()
    assert {file.split("/")[0] for file in files} == set(wanted)  # every library vendored, and only those
    # `make test` installs node_modules from the lock (npm ci) before the tests run; without it this fails.
    assert (ROOT / "node_modules").is_dir(), "node_modules is missing: run `make lint-js` (npm ci) first"
    for file in files:
        package = file.split("/")[0]
        assert lock["packages"][f"node_modules/{package}"]["version"] == wanted[package], package
        installed = json.loads((ROOT / "node_modules" / package / "package.json").read_text(encoding="utf-8"))
        assert installed["version"] == wanted[package], package
        copy = VENDOR_DIRECTORY / Path(file).name
        assert copy.read_bytes() == (ROOT / "node_modules" / file).read_bytes(), f"{copy} differs: run make vendor"
    assert sorted(path.name for path in VENDOR_DIRECTORY.iterdir()) == sorted(Path(file).name for file in files)


def test_the_vendored_files_are_served_by_name_like_the_shared_ones() -> None:
    static = StaticFiles.of([Page("/elders", "elders", ROOT / "callcenter" / "elders")])
    for file in _vendored():
        name = Path(file).name
        assert static.files[name] == VENDOR_DIRECTORY / name
        assert static.url(name).startswith(f"/static/{name}?v=")
