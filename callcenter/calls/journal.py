"""The call log's journal (``callcenter.journal``): its directory and its entry kinds (applied by ``replay``)."""

from __future__ import annotations

from pathlib import Path

AMI_EVENT = "ami_event"  # an AMI call event the database could not take within its retries
SOS_INTAKE = "sos_intake"  # an SOS intake past its deadline


def journal_directory(data_dir: Path) -> Path:
    return data_dir / "journal"
