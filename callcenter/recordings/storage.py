"""Where recordings are kept: a small interface (``RecordingStore``) and its local-filesystem implementation.

The pipeline and the API only speak to the interface, so an object store (S3) can take the local disk's place
without either changing. Keys are relative, slash-separated paths such as ``2026/03/01/SOS-….ogg``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

CHUNK = 64 * 1024
_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")


class InvalidKey(ValueError):
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size_bytes: int
    sha256: str


class RecordingStore(Protocol):
    """Durable storage of finished recordings. ``put`` is atomic: a key holds a whole object or nothing."""

    @property
    def backend(self) -> str:
        """The name written to ``Recording.storage_backend``."""
        ...

    async def put(self, key: str, source: Path) -> StoredObject:
        """Store the file ``source`` under ``key`` (replacing any object there); size and SHA-256 as stored."""
        ...

    async def size(self, key: str) -> int | None:
        """The stored object's size in bytes, or None when there is none."""
        ...

    async def digest(self, key: str) -> str:
        """SHA-256 of the stored object, read back from storage."""
        ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The object's bytes from ``start`` to ``end`` inclusive (the end of the object when None), in chunks."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; no error when it is already gone."""
        ...

    async def set_legal_hold(self, key: str, held: bool) -> None:
        """Protect the object from the store's own expiry (S3's lifecycle rule), or lift that protection."""
        ...


def check_key(key: str) -> str:
    """Keys are relative paths of plain names: no '..', no absolute paths, no hidden files."""
    if not _KEY.match(key) or len(key) > 500:
        raise InvalidKey(f"not a valid storage key: {key!r}")
    return key


class LocalRecordingStore:
    """Files under one root directory, written as temp file + fsync + rename + directory fsync."""

    backend = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, source: Path) -> StoredObject:
        return await asyncio.to_thread(self._put, key, source)

    def _put(self, key: str, source: Path) -> StoredObject:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # A fixed temp name per key: a crash mid-copy leaves one .part that the retry overwrites, never a pile.
        partial = target.with_name(f".{target.name}.part")
        digest = hashlib.sha256()
        size = 0
        try:
            # The platform's user only, whatever the process's umask: an elder's call is personal data.
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with source.open("rb") as reader, os.fdopen(descriptor, "wb") as writer:
                while chunk := reader.read(CHUNK):
                    writer.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                writer.flush()
                os.fsync(writer.fileno())
        except BaseException:
            # On a full disk the half-written copy would hold the very space the next attempt needs.
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            raise
        partial.replace(target)
        _fsync_directory(target.parent)
        return StoredObject(key, size, digest.hexdigest())

    async def size(self, key: str) -> int | None:
        path = self.path(key)
        try:
            return (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None

    async def digest(self, key: str) -> str:
        return await asyncio.to_thread(file_sha256, self.path(key))

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(self.path(key).open, "rb")
        try:
            await asyncio.to_thread(handle.seek, start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                chunk = await asyncio.to_thread(handle.read, CHUNK if remaining is None else min(CHUNK, remaining))
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    async def set_legal_hold(self, key: str, held: bool) -> None:
        """Local files never expire on their own: only the retention engine deletes them, and it checks holds."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as reader:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable: without it a power cut can forget the new directory entry."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
