"""Secrets the platform generates for itself once per data dir (the API token key, the AMI secret, the MQTT
platform account's password): made on first use, readable by the platform's user only, never replaced."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def generated_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret in ``path`` (stripped), written as ``make()`` with mode 0600 in a 0700 directory if the file does
    not exist yet. Two processes starting at once both read the one that was written first."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process won the race: use its secret
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(make())
    return path.read_text().strip()
