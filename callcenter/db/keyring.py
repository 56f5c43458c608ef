"""The data keys that seal sensitive personal information at rest (GB/T 35273, GB/T 45574): resident ID numbers,
health conditions, medications, allergies and precise locations (callcenter.db.sealed).

One JSON file, ``CC_DATA_KEY_FILE`` (mode 0600), holds every data key by id, which one seals new values
(``current``), and the key of the blind index that lets an ID number be looked up without being readable. Old keys
stay in the file after ``callcenter keys rotate`` so that backups taken before the rotation still open.

AES-256-GCM (the ``cryptography`` package): authenticated, so a value altered in the database, or moved to another
column, fails to open instead of reading as something else. Each value carries the id of the key that sealed it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = "callcenter-data-keys/1"
PREFIX = "cc1"  # the sealed-value format: cc1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>
NONCE_BYTES = 12
KEY_BYTES = 32
# How often a running platform looks at the key file for a rotation made by `callcenter keys rotate` elsewhere;
# the rotation waits this long before its last pass, so nothing sealed with the old key is left behind.
RELOAD_SECONDS = 5.0


class KeyringError(RuntimeError):
    """The key file is missing, unreadable or malformed, or a value names a key it does not hold."""


class SealedValueError(KeyringError):
    """A stored value is not a sealed value of this platform, or fails its authentication."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key_id() -> str:
    """Short (it is stored with every value), unique enough among the few keys a deployment ever has, and
    sortable by creation day for a person reading the file."""
    return time.strftime("%Y%m%d", time.gmtime()) + secrets.token_hex(3)


@dataclass(frozen=True)
class KeySet:
    current: str
    keys: Mapping[str, bytes]
    index_key: bytes

    @classmethod
    def generate(cls) -> KeySet:
        kid = new_key_id()
        return cls(current=kid, keys={kid: secrets.token_bytes(KEY_BYTES)}, index_key=secrets.token_bytes(KEY_BYTES))

    def with_new_current(self) -> KeySet:
        kid = new_key_id()
        while kid in self.keys:
            kid = new_key_id()
        return KeySet(current=kid, keys={**self.keys, kid: secrets.token_bytes(KEY_BYTES)}, index_key=self.index_key)

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "current": self.current,
                           "keys": {kid: _b64(key) for kid, key in self.keys.items()},
                           "index_key": _b64(self.index_key)}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str) -> KeySet:
        try:
            document = json.loads(text)
            if document.get("format") != FORMAT:
                raise KeyringError(f"{source}: not a data key file (format {document.get('format')!r}, "
                                   f"expected {FORMAT!r})")
            keys = {str(kid): _unb64(value) for kid, value in document["keys"].items()}
            index_key = _unb64(document["index_key"])
            current = str(document["current"])
        except KeyringError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as error:
            raise KeyringError(f"{source}: malformed data key file ({type(error).__name__})") from None
        if current not in keys:
            raise KeyringError(f"{source}: the current key {current!r} is not among its keys")
        bad = sorted(kid for kid, key in keys.items() if len(key) != KEY_BYTES or ":" in kid)
        if bad or len(index_key) != KEY_BYTES:
            raise KeyringError(f"{source}: keys must be {KEY_BYTES} bytes with ids without ':' ({bad or 'index_key'})")
        return cls(current=current, keys=keys, index_key=index_key)


def write_key_file(path: Path, keys: KeySet, *, replace: bool = True) -> None:
    """Atomically, mode 0600 from the first byte (never readable by others, even for a moment). ``replace=False``:
    FileExistsError when the file exists, even if another process made it a moment ago (two first starts)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(keys.to_json())
            stream.flush()
            os.fsync(stream.fileno())
        if replace:
            temporary.replace(path)
        else:
            path.hardlink_to(temporary)  # fails where the name exists: never a second key under one name
    finally:
        temporary.unlink(missing_ok=True)


class Keyring:
    """Seals and opens values with the keys of one key file (or of memory: :meth:`ephemeral`).

    A running platform notices a rotation made by another process: a value sealed with a key it does not hold makes
    it read the file again at once, and it looks for a new current key at most every ``RELOAD_SECONDS``."""

    def __init__(self, keys: KeySet, path: Path | None = None, *, reload_seconds: float = RELOAD_SECONDS) -> None:
        self._keys = keys
        self.reload_seconds = reload_seconds
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.keys.items()}
        self.path = path
        self._mtime = self._stat()
        self._checked = time.monotonic()

    @classmethod
    def ephemeral(cls) -> Keyring:
        """Keys that live only in memory: for tests and throwaway databases, never for data that must be read
        again after the process ends."""
        return cls(KeySet.generate())

    @classmethod
    def load(cls, path: Path, *, reload_seconds: float = RELOAD_SECONDS) -> Keyring:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KeyringError(f"CC_DATA_KEY_FILE {path} does not exist") from None
        except OSError as error:
            raise KeyringError(f"CC_DATA_KEY_FILE {path} cannot be read: {error.strerror}") from None
        return cls(KeySet.from_json(text, f"CC_DATA_KEY_FILE {path}"), path, reload_seconds=reload_seconds)

    @classmethod
    def create(cls, path: Path) -> Keyring:
        """A new key file; refuses to replace one (its keys are the only way to read what they sealed)."""
        keys = KeySet.generate()
        try:
            write_key_file(path, keys, replace=False)
        except FileExistsError:
            raise KeyringError(f"CC_DATA_KEY_FILE {path} exists already: it is never overwritten") from None
        return cls(keys, path)

    @property
    def keys(self) -> KeySet:
        return self._keys

    @property
    def current(self) -> str:
        self._maybe_reload()
        return self._keys.current

    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys.keys)

    def _stat(self) -> float | None:
        if self.path is None:
            return None
        try:
            return self.path.stat().st_mtime
        except OSError:
            return None

    def _maybe_reload(self) -> None:
        if self.path is None or time.monotonic() - self._checked < self.reload_seconds:
            return
        self._checked = time.monotonic()
        if self._stat() != self._mtime:
            self.reload()

    def reload(self) -> None:
        """Read the file again; a file that cannot be read now keeps the keys already held (a rotation writes the
        file by rename, so a reader never sees half of it)."""
        if self.path is None:
            return
        try:
            fresh = Keyring.load(self.path)
        except KeyringError:
            return
        missing = set(self._keys.keys) - set(fresh._keys.keys)
        if missing:
            # Keys only ever get added by rotation; a file that lost some is not trusted to replace these.
            return
        self._keys, self._ciphers, self._mtime = fresh._keys, fresh._ciphers, fresh._mtime
        self._checked = time.monotonic()

    def seal(self, plaintext: bytes, purpose: str) -> str:
        """``purpose`` (e.g. ``elders.id_number``) is authenticated with the value: a value copied into another
        column does not open there."""
        kid = self.current
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._ciphers[kid].encrypt(nonce, plaintext, purpose.encode())
        return f"{PREFIX}:{kid}:{_b64(nonce + sealed)}"

    @staticmethod
    def key_id_of(value: str) -> str:
        parts = value.split(":", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            raise SealedValueError("a stored value is not sealed (cc1:…): was the database written around the "
                                   "platform, or migrated without its keys?")
        return parts[1]

    def open(self, value: str, purpose: str) -> bytes:
        kid = self.key_id_of(value)
        if kid not in self._ciphers:
            self.reload()
            if kid not in self._ciphers:
                where = f"CC_DATA_KEY_FILE {self.path}" if self.path else "this process's keys"
                raise KeyringError(f"a stored value was sealed with key {kid!r}, which {where} does not hold: "
                                   "restore the key file that has it")
        try:
            raw = _unb64(value.split(":", 2)[2])
            return self._ciphers[kid].decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], purpose.encode())
        except (InvalidTag, ValueError, binascii.Error):
            raise SealedValueError(f"a stored {purpose} value fails its authentication: it was altered, or "
                                   "belongs to another column") from None

    def digest(self, value: str, purpose: str) -> str:
        """The blind index of ``value``: equal values give equal digests, so the database can look a value up and
        keep it unique, but the digest does not give the value back without the index key."""
        return hmac.new(self._keys.index_key, f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()


def load_or_create(path: Path, *, may_create: bool) -> tuple[Keyring, bool]:
    """The key file's keyring; a new file only where ``may_create`` (nothing sealed exists yet). True when made."""
    if path.exists():
        return Keyring.load(path), False
    if not may_create:
        raise KeyringError(f"CC_DATA_KEY_FILE {path} does not exist, but the database holds sealed personal data: "
                           "restore the key file from its backup (a new key cannot read what the old one sealed)")
    try:
        return Keyring.create(path), True
    except KeyringError:
        if path.exists():  # another process made it first: use that one
            return Keyring.load(path), False
        raise
