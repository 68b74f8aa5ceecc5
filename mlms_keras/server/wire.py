"""Audio on the wire: float samples -> 16-bit PCM bytes, and the RIFF/WAV header (for a known length, or for a
stream whose length is not known yet)."""

from __future__ import annotations

import struct

import numpy as np

__all__ = ["BYTES_PER_SAMPLE", "STREAMING_SIZE", "pcm16", "wav_header"]

BYTES_PER_SAMPLE = 2
#: The size fields of a streamed WAV: "unknown, read to the end" (what ffmpeg and most streaming servers write;
#: libsndfile, Python's `wave` and browsers read the data up to the end of the stream).
STREAMING_SIZE = 0xFFFFFFFF


def pcm16(samples: np.ndarray) -> bytes:
    """(samples,) float in [-1, 1] -> signed 16-bit little-endian bytes (values beyond full scale are clipped)."""
    scaled = np.clip(np.asarray(samples, np.float32), -1.0, 1.0) * 32767.0
    return np.rint(scaled).astype("<i2").tobytes()


def wav_header(sample_rate: int, num_samples: int | None = None) -> bytes:
    """The 44-byte header of a mono 16-bit PCM WAV file.

    Args:
        sample_rate: Hz.
        num_samples: samples that follow; None for a stream of unknown length (`STREAMING_SIZE` in both size
            fields).

    Returns:
        44 bytes.
    """
    data_size = STREAMING_SIZE if num_samples is None else num_samples * BYTES_PER_SAMPLE
    riff_size = STREAMING_SIZE if num_samples is None else 36 + data_size
    byte_rate = sample_rate * BYTES_PER_SAMPLE
    return (
        struct.pack("<4sI4s", b"RIFF", riff_size, b"WAVE")
        + struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, sample_rate, byte_rate, BYTES_PER_SAMPLE, 16)
        + struct.pack("<4sI", b"data", data_size)
    )
