"""The data keys: sealing and opening, the key file, and noticing a rotation made by another process."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest

from callcenter.db.keyring import Keyring, KeyringError, KeySet, SealedValueError, load_or_create, write_key_file


def test_a_sealed_value_opens_only_for_its_purpose_and_unaltered() -> None:
    keyring = Keyring.ephemeral()
    sealed = keyring.seal(b"11010119400101001X", "elders.id_number")
    assert sealed.startswith(f"cc1:{keyring.current}:") and "1101011940" not in sealed
    assert keyring.open(sealed, "elders.id_number") == b"11010119400101001X"
    assert keyring.seal(b"same", "p") != keyring.seal(b"same", "p")  # a fresh nonce every time
    with pytest.raises(SealedValueError, match="another column"):
        keyring.open(sealed, "volunteers.id_number")
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(SealedValueError, match="altered"):
        keyring.open(flipped, "elders.id_number")
    with pytest.raises(SealedValueError, match="not sealed"):
        keyring.open("11010119400101001X", "elders.id_number")


def test_a_value_sealed_with_a_key_not_held_names_the_key() -> None:
    sealed = Keyring.ephemeral().seal(b"x", "p")
    with pytest.raises(KeyringError, match=f"key '{sealed.split(':')[1]}'"):
        Keyring.ephemeral().open(sealed, "p")


def test_blind_index_is_stable_per_purpose_and_key() -> None:
    keyring = Keyring.ephemeral()
    assert keyring.digest("11010119400101001X", "a") == keyring.digest("11010119400101001X", "a")
    assert keyring.digest("11010119400101001X", "a") != keyring.digest("11010119400101001X", "b")
    assert keyring.digest("11010119400101001X", "a") != Keyring.ephemeral().digest("11010119400101001X", "a")


def test_the_key_file_is_private_never_replaced_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "data-keys.json"
    keyring, made = load_or_create(path, may_create=True)
    assert made and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create(path, may_create=False)[0].current == keyring.current
    with pytest.raises(KeyringError, match="never overwritten"):
        Keyring.create(path)
    with pytest.raises(KeyringError, match="restore the key file"):
        load_or_create(tmp_path / "missing.json", may_create=False)
    assert not (tmp_path / "missing.json").exists()

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"format": "callcenter-data-keys/1", "current": "k", "keys": {"k": "c2hvcnQ"},
                                  "index_key": "c2hvcnQ"}))
    with pytest.raises(KeyringError, match="32 bytes"):
        Keyring.load(broken)
    broken.write_text("{not json")
    with pytest.raises(KeyringError, match="malformed"):
        Keyring.load(broken)
    broken.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(KeyringError, match="not a data key file"):
        Keyring.load(broken)


def test_a_running_keyring_picks_up_a_rotation_made_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "data-keys.json"
    platform = Keyring.create(path)
    platform.reload_seconds = 0.05
    old = platform.current
    rotated = platform.keys.with_new_current()
    write_key_file(path, rotated)
    other = Keyring.load(path)
    # A value the rotating process sealed opens at once (the unknown key makes the platform read the file).
    assert platform.open(other.seal(b"v", "p"), "p") == b"v"
    deadline = time.monotonic() + 5
    while platform.current == old and time.monotonic() < deadline:
        time.sleep(0.06)
    assert platform.current == rotated.current != old
    assert platform.key_ids() == {old, rotated.current}


def test_a_key_file_that_lost_keys_does_not_replace_the_ones_held(tmp_path: Path) -> None:
    path = tmp_path / "data-keys.json"
    keyring = Keyring.create(path)
    sealed = keyring.seal(b"v", "p")
    write_key_file(path, KeySet.generate())
    keyring.reload()
    assert keyring.open(sealed, "p") == b"v"
