"""IVR prompts as sound files: synthesised with espeak-ng, or recorded by a person (recordings win).

Output: ``<out_dir>/<lang>/<id>.wav``, 8 kHz mono 16-bit PCM, which Asterisk plays without transcoding on a
narrow-band call. ``install_prompts`` copies them into the Asterisk instance (``<instance>/sounds``); the IVR
then plays them by absolute path without the extension. Building is incremental: a manifest keeps a hash of
each prompt's source (its text and voice, or the recording's bytes), and an output is rebuilt only when that
hash changes or the output is missing or older than the recording.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from callcenter.asterisk.runtime import AsteriskRuntime
from callcenter.config import Settings
from callcenter.ivr.flows import LANGUAGES
from callcenter.logs import get_logger

log = get_logger(__name__)

VOICES = {"zh-CN": "cmn", "en": "en"}  # espeak-ng voice per prompt language
SPEED = 150  # words per minute: a little slower than espeak-ng's 175, for elderly listeners
SAMPLE_RATE = 8000
MANIFEST = "manifest.json"
_SOX_OUTPUT = ["-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-e", "signed-integer"]


class PromptBuildError(RuntimeError):
    """A prompt could not be rendered; the message says which and why."""


@dataclasses.dataclass(frozen=True, slots=True)
class BuildReport:
    synthesised: tuple[str, ...]  # "<lang>/<id>" keys
    recorded: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]


def prompts_dir(settings: Settings) -> Path:
    """Where ``callcenter prompts build`` writes: ``<CC_DATA_DIR>/prompts``."""
    return settings.data_dir / "prompts"


def sounds_dir(runtime: AsteriskRuntime) -> Path:
    """The instance's prompt directory as Asterisk sees it (the IVR's prompt root)."""
    return runtime.instance_dir / "sounds"


def build_prompts(prompts: Mapping[str, Mapping[str, str]], out_dir: Path, *,
                  recorded_dir: Path | None = None) -> BuildReport:
    """Render every prompt in every language into ``out_dir``; skip those already up to date."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST
    old = _read_manifest(manifest_path)
    new: dict[str, str] = {}
    synthesised: list[str] = []
    recorded: list[str] = []
    unchanged: list[str] = []
    for prompt_id in sorted(prompts):
        for language in LANGUAGES:
            key = f"{language}/{prompt_id}"
            output = out_dir / language / f"{prompt_id}.wav"
            recording = recorded_dir / language / f"{prompt_id}.wav" if recorded_dir is not None else None
            if recording is not None and recording.is_file():
                fingerprint = "recorded:" + hashlib.sha256(recording.read_bytes()).hexdigest()
                newer_source = not output.exists() or output.stat().st_mtime_ns < recording.stat().st_mtime_ns
            else:
                recording = None
                text = prompts[prompt_id].get(language)
                if not text:
                    raise PromptBuildError(f"prompt {prompt_id!r} has no {language} text and no recording")
                source = f"espeak-ng\0{VOICES[language]}\0{SPEED}\0{text}"
                fingerprint = "espeak-ng:" + hashlib.sha256(source.encode()).hexdigest()
                newer_source = not output.exists()
            new[key] = fingerprint
            if not newer_source and old.get(key) == fingerprint:
                unchanged.append(key)
                continue
            output.parent.mkdir(parents=True, exist_ok=True)
            if recording is not None:
                _convert(recording, output)
                recorded.append(key)
            else:
                _synthesise(prompts[prompt_id][language], VOICES[language], output)
                synthesised.append(key)
            # Save as we go: an interrupted build keeps what it finished.
            _write_manifest(manifest_path, {**old, **new})
    removed = sorted(set(old) - set(new))
    for key in removed:
        (out_dir / f"{key}.wav").unlink(missing_ok=True)
    _write_manifest(manifest_path, new)
    report = BuildReport(tuple(synthesised), tuple(recorded), tuple(unchanged), tuple(removed))
    log.info("ivr.prompts_built", out_dir=str(out_dir), synthesised=len(synthesised), recorded=len(recorded),
             unchanged=len(unchanged), removed=len(removed))
    return report


def install_prompts(settings: Settings, runtime: AsteriskRuntime) -> int:
    """Copy the built prompts into the Asterisk instance's sounds directory; return how many files changed."""
    source = prompts_dir(settings)
    target = runtime.host_path(sounds_dir(runtime))
    copied = 0
    for language in LANGUAGES:
        for wav in sorted((source / language).glob("*.wav")):
            destination = target / language / wav.name
            if destination.exists() and destination.read_bytes() == wav.read_bytes():
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            partial = destination.with_name(f".{wav.name}.partial")
            shutil.copyfile(wav, partial)
            partial.chmod(0o644)
            partial.replace(destination)  # Asterisk never opens a half-copied file
            copied += 1
    log.info("ivr.prompts_installed", target=str(target), copied=copied)
    return copied


def _synthesise(text: str, voice: str, output: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="cc-prompt-") as tmp:
        text_file = Path(tmp) / "text.txt"
        text_file.write_text(text, encoding="utf-8")
        raw = Path(tmp) / "espeak.wav"
        _run(["espeak-ng", "-v", voice, "-s", str(SPEED), "-w", str(raw), "-f", str(text_file)], output)
        _convert(raw, output)


def _convert(source: Path, output: Path) -> None:
    partial = output.with_name(f".{output.stem}.partial.wav")  # sox picks the format from the extension
    try:
        _run(["sox", str(source), *_SOX_OUTPUT, str(partial)], output)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)


def _run(argv: list[str], output: Path) -> None:
    if shutil.which(argv[0]) is None:
        raise PromptBuildError(f"{argv[0]} not found: install the Debian packages espeak-ng and sox "
                               "(scripts/install-system-packages.sh)")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise PromptBuildError(f"{output}: {argv[0]} failed ({result.returncode}): {result.stderr.strip()}")


def _read_manifest(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(key): str(value) for key, value in data.items()} if isinstance(data, dict) else {}


def _write_manifest(path: Path, entries: Mapping[str, str]) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(dict(sorted(entries.items())), indent=1) + "\n", encoding="utf-8")
    partial.replace(path)
