"""The local recording store: atomic puts, ranged reads, keys that cannot leave the root."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.recordings.storage import InvalidKey, LocalRecordingStore, file_sha256

DATA = bytes(range(256)) * 1000  # 256 000 bytes: several read chunks


async def _collect(store: LocalRecordingStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, start, end)])


async def test_put_read_ranges_size_delete(tmp_path: Path) -> None:
    source = tmp_path / "source.ogg"
    source.write_bytes(DATA)
    store = LocalRecordingStore(tmp_path / "store")
    stored = await store.put("2026/03/01/SOS-1.ogg", source)
    assert stored.size_bytes == len(DATA)
    assert stored.sha256 == file_sha256(source) == await store.digest("2026/03/01/SOS-1.ogg")
    assert (tmp_path / "store/2026/03/01/SOS-1.ogg").read_bytes() == DATA
    assert (tmp_path / "store/2026/03/01/SOS-1.ogg").stat().st_mode & 0o777 == 0o600  # the platform's only
    assert await store.size("2026/03/01/SOS-1.ogg") == len(DATA)
    assert await _collect(store, "2026/03/01/SOS-1.ogg") == DATA
    assert await _collect(store, "2026/03/01/SOS-1.ogg", 70_000, 200_000) == DATA[70_000:200_001]
    assert await _collect(store, "2026/03/01/SOS-1.ogg", len(DATA) - 1) == DATA[-1:]
    # A put over an existing key replaces it whole and leaves no temp file behind.
    source.write_bytes(b"shorter")
    await store.put("2026/03/01/SOS-1.ogg", source)
    assert await _collect(store, "2026/03/01/SOS-1.ogg") == b"shorter"
    assert [p.name for p in (tmp_path / "store/2026/03/01").iterdir()] == ["SOS-1.ogg"]
    await store.delete("2026/03/01/SOS-1.ogg")
    await store.delete("2026/03/01/SOS-1.ogg")  # already gone: no error
    assert await store.size("2026/03/01/SOS-1.ogg") is None


@pytest.mark.parametrize("key", ["../x.ogg", "/etc/passwd", "2026/../../x", ".hidden", "a//b", "a/.b", "", "a\\b"])
def test_keys_stay_inside_the_root(tmp_path: Path, key: str) -> None:
    with pytest.raises(InvalidKey):
        LocalRecordingStore(tmp_path).path(key)
