"""Prompt rendering: real espeak-ng and sox output, 8 kHz mono 16-bit; incremental; recordings win."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

from callcenter.asterisk.runtime import AsteriskRuntime
from callcenter.config import Settings
from callcenter.ivr.prompts import MANIFEST, build_prompts, install_prompts, prompts_dir, sounds_dir

PROMPTS = {
    "hello": {"zh-CN": "您好，请按1。", "en": "Hello, press 1."},
    "bye": {"zh-CN": "再见。", "en": "Goodbye."},
}


def wav_format(path: Path) -> tuple[int, int, int, float]:
    with wave.open(str(path), "rb") as wav:
        return wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.getnframes() / wav.getframerate()


def test_every_prompt_becomes_an_8khz_mono_16bit_wav_per_language(tmp_path: Path) -> None:
    report = build_prompts(PROMPTS, tmp_path / "out")
    assert sorted(report.synthesised) == ["en/bye", "en/hello", "zh-CN/bye", "zh-CN/hello"]
    for language in ("zh-CN", "en"):
        for prompt_id in PROMPTS:
            rate, channels, width, seconds = wav_format(tmp_path / "out" / language / f"{prompt_id}.wav")
            assert (rate, channels, width) == (8000, 1, 2)
            assert 0.3 < seconds < 10
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert set(manifest) == {"en/bye", "en/hello", "zh-CN/bye", "zh-CN/hello"}


def test_building_again_changes_only_what_changed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_prompts(PROMPTS, out)
    untouched = (out / "en" / "bye.wav").stat().st_mtime_ns
    again = build_prompts(PROMPTS, out)
    assert (again.synthesised, again.recorded, len(again.unchanged)) == ((), (), 4)

    edited = {**PROMPTS, "hello": {**PROMPTS["hello"], "en": "Hello there, press 1."}}
    (out / "zh-CN" / "bye.wav").unlink()
    report = build_prompts(edited, out)
    assert sorted(report.synthesised) == ["en/hello", "zh-CN/bye"]
    assert (out / "en" / "bye.wav").stat().st_mtime_ns == untouched

    removed = build_prompts({"hello": edited["hello"]}, out)
    assert sorted(removed.removed) == ["en/bye", "zh-CN/bye"]
    assert not (out / "en" / "bye.wav").exists()


def test_a_recording_wins_over_synthesis_and_is_converted(tmp_path: Path) -> None:
    recorded = tmp_path / "recorded"
    (recorded / "zh-CN").mkdir(parents=True)
    recording = recorded / "zh-CN" / "hello.wav"
    # A studio recording: 44.1 kHz stereo, 1.5 s of a tone.
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", "-b", "16", str(recording), "synth", "1.5", "sine", "440"],
                   check=True)
    out = tmp_path / "out"
    report = build_prompts(PROMPTS, out, recorded_dir=recorded)
    assert report.recorded == ("zh-CN/hello",)
    assert "en/hello" in report.synthesised
    rate, channels, width, seconds = wav_format(out / "zh-CN" / "hello.wav")
    assert (rate, channels, width) == (8000, 1, 2)
    assert abs(seconds - 1.5) < 0.01

    assert build_prompts(PROMPTS, out, recorded_dir=recorded).recorded == ()
    # A newer recording replaces the converted one.
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(recording), "synth", "0.5", "sine", "300"],
                   check=True)
    os.utime(recording, ns=((out / "zh-CN" / "hello.wav").stat().st_mtime_ns + 10**9,) * 2)
    assert build_prompts(PROMPTS, out, recorded_dir=recorded).recorded == ("zh-CN/hello",)
    assert abs(wav_format(out / "zh-CN" / "hello.wav")[3] - 0.5) < 0.01
    # Withdrawing the recording brings the synthesised voice back.
    recording.unlink()
    assert build_prompts(PROMPTS, out, recorded_dir=recorded).synthesised == ("zh-CN/hello",)


def test_install_copies_into_the_instance_sounds_dir(tmp_path: Path) -> None:
    settings = Settings.from_env({"CC_DATA_DIR": str(tmp_path / "data")})
    runtime = AsteriskRuntime(tmp_path / "root", "unit", tmp_path / "root" / "opt" / "callcenter")
    build_prompts(PROMPTS, prompts_dir(settings))
    assert install_prompts(settings, runtime) == 4
    assert sounds_dir(runtime) == Path("/opt/callcenter/unit/sounds")  # as Asterisk sees it, in its root
    installed = tmp_path / "root" / "opt" / "callcenter" / "unit" / "sounds" / "zh-CN" / "hello.wav"
    assert installed.read_bytes() == (prompts_dir(settings) / "zh-CN" / "hello.wav").read_bytes()
    assert install_prompts(settings, runtime) == 0


def test_cli_prompts_build(tmp_path: Path) -> None:
    env = {**os.environ, "CC_DATA_DIR": str(tmp_path / "data"), "CC_ASTERISK_ROOT": str(tmp_path / "root"),
           "CC_ASTERISK_INSTANCE": "clitest", "CC_ASTERISK_IGNORE_PATH": "1"}
    run = subprocess.run([sys.executable, "-m", "callcenter", "prompts", "build"], capture_output=True, text=True,
                         env=env, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert "0 unchanged" in run.stdout
    assert wav_format(tmp_path / "data" / "prompts" / "zh-CN" / "sos-reassure.wav")[:3] == (8000, 1, 2)
    assert (tmp_path / "root" / "opt" / "callcenter" / "clitest" / "sounds" / "en" / "welcome-known.wav").exists()
    again = subprocess.run([sys.executable, "-m", "callcenter", "prompts", "build"], capture_output=True, text=True,
                           env=env, timeout=60, check=False)
    assert "0 synthesised" in again.stdout
    assert "0 prompt files installed" in again.stdout
