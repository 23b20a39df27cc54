"""Content hashes of decoded audio, so labels and cached features survive renames and tag edits."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from bouncetag.audio import DecodedAudio, decode


def audio_fingerprint(decoded: DecodedAudio) -> str:
    """A hash of the decoded samples (16 kHz mono quantised to int16), not of the file bytes.

    Renaming, moving or rewriting a file's tags leaves it unchanged; editing the audio changes it.

    Args:
        decoded: the result of `bouncetag.audio.decode`.

    Returns:
        "a1:" followed by a sha1 hex digest (the prefix names the hashing scheme).
    """
    pcm = np.round(np.clip(decoded.samples, -1.0, 1.0) * 32767.0).astype("<i2")
    digest = hashlib.sha1(pcm.tobytes())
    digest.update(str(decoded.sample_rate).encode())
    return "a1:" + digest.hexdigest()


def file_fingerprint(path: Path | str) -> str:
    """Decode a file and hash its audio.

    Raises:
        AudioDecodeError: the file cannot be decoded.
    """
    return audio_fingerprint(decode(path))
