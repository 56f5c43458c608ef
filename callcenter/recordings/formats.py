"""The stored audio format: Opus in Ogg, which browsers play (Chromium, Firefox, Safari 17+)."""

from __future__ import annotations

AUDIO_FORMAT = "ogg/opus"  # Recording.audio_format
EXTENSION = "ogg"
CONTENT_TYPES = {AUDIO_FORMAT: "audio/ogg"}
# Narrowband telephone speech (8 kHz) stays clear at 12 kbit/s: ~88 KB a minute of speech (target ≤ 120 KB).
OPUS_BITRATE = "12k"
OPUS_PARAMETERS = ["-ac", "1", "-application", "voip", "-vbr", "constrained"]
