"""A real small filesystem for disk-full tests: a tmpfs mounted on a directory (root only), and a file that fills it.

A full tmpfs refuses writes with ENOSPC exactly as a full disk does, while still letting empty files be created
(inodes are counted apart): what MixMonitor meets on a full spool.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

FILLER = ".filler"


@contextlib.contextmanager
def mounted(directory: Path, size_kb: int) -> Iterator[Path]:
    """``directory`` on a tmpfs of ``size_kb`` KiB for the block; unmounted (lazily if still busy) afterwards."""
    if os.geteuid() != 0:
        raise RuntimeError("disk-full tests mount a tmpfs and must run as root (as make test does)")
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs", str(directory)], check=True)
    try:
        yield directory
    finally:
        if subprocess.run(["umount", str(directory)], check=False, capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(directory)], check=False)


def free_bytes(directory: Path) -> int:
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


def fill(directory: Path, leave_kb: int = 0) -> Path:
    """Take all the free space of ``directory``'s filesystem but ``leave_kb`` KiB, with one preallocated file."""
    filler = directory / FILLER
    with contextlib.suppress(FileNotFoundError):
        filler.unlink()
    size = free_bytes(directory) - leave_kb * 1024
    if size > 0:
        subprocess.run(["fallocate", "-l", str(size), str(filler)], check=True)
    return filler


def free(directory: Path) -> None:
    """Give the space back."""
    with contextlib.suppress(FileNotFoundError):
        (directory / FILLER).unlink()
