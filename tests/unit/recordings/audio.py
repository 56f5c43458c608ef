"""Real WAVs as MixMonitor writes them (8 kHz mono 16-bit), made with sox and espeak-ng."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def speech_like(path: Path, seconds: float) -> Path:
    """Pink noise shaped into the voice band and modulated at a syllable rate: speech-like to an encoder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth", f"{seconds}", "pinknoise",
                    "band", "-n", "700", "500", "tremolo", "4", "90", "gain", "-n", "-6"], check=True)
    return path


def speech(path: Path, seconds: float, workdir: Path) -> Path:
    """Mandarin speech from espeak-ng, repeated to ``seconds`` at 8 kHz."""
    workdir.mkdir(parents=True, exist_ok=True)
    raw = workdir / "espeak.wav"
    subprocess.run(["espeak-ng", "-v", "cmn", "-w", str(raw),
                    "您好，这里是居家养老服务热线，请问有什么可以帮您。我摔倒了，腿很疼，起不来。"
                    "请不要着急，我们马上联系一二零和您的家属，请您保持电话畅通。"], check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(path), "repeat", "10", "trim", "0",
                    f"{seconds}"], check=True)
    return path


def age(path: Path, seconds: float) -> Path:
    """Pretend the file was last written ``seconds`` ago (MixMonitor closed it then)."""
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path
