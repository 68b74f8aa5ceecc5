"""What WORLD synthesis may be given and may return: broken audio is an error, never a file.

Acoustic features that a model predicts can be finite yet far outside speech (a diverged or mismatched model, a
voice whose statistics were edited). WORLD then does not fail: a spectral envelope that overflows to inf (mel
cepstra c1..c39 around 10) or underflows to 0 (c0 around -400) makes it return NaN, and a merely loud envelope
(c0 a few units above speech) makes samples thousands of times full scale, which clipping turns into a square
wave of clicks. `mlms_keras.vocoder.synthesize` therefore checks, before it returns anything a writer could save:

| check | limit | outcome |
|---|---|---|
| features | finite | `ValueError` naming the array and the first bad index |
| spectral envelope from the mel cepstra | finite and > 0 at every frequency | `ValueError` naming the frames |
| waveform | finite | `ValueError` |
| waveform peak | at most `EXTREME_PEAK` (4x, 12 dB over full scale) | `ValueError` naming the peak |
| waveform peak | above 1 and at most `EXTREME_PEAK` | clipped to [-1, 1] with a warning (a slightly hot frame) |

Natural speech normalised to full scale has envelope powers between about 1e-17 and 20 and synthesises back
below full scale, so the checks never touch a voice's normal output (the shipped voice stays bit-identical).
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["EXTREME_PEAK", "check_envelope", "check_finite", "check_synthesized"]

logger = logging.getLogger(__name__)

#: Largest waveform peak (in units of full scale) that is clipped rather than refused.
EXTREME_PEAK = 4.0

_ADVICE = (
    "the acoustic features are far outside speech (a diverged or mismatched model, or edited voice statistics); "
    "nothing was written"
)


def check_finite(array: np.ndarray, name: str) -> None:
    """Raises `ValueError` naming `name`, the count and the first index of NaN or inf values in `array`."""
    bad = ~np.isfinite(array)
    if bad.any():
        where = np.argwhere(bad)[0]
        raise ValueError(
            f"{name}: {int(bad.sum())} NaN or inf values (first at index {tuple(int(i) for i in where)}). "
            "Fix the source (e.g. a diverged model or corrupt file) before vocoding."
        )


def _frames(indices: np.ndarray) -> str:
    shown = ", ".join(str(int(i)) for i in indices[:5])
    return shown + (f" and {len(indices) - 5} more" if len(indices) > 5 else "")


def check_envelope(spectrogram: np.ndarray, name: str) -> None:
    """Raises `ValueError` unless every value of `spectrogram` `(frames, bins)` (power) is finite and positive.

    WORLD synthesis of an envelope with inf or 0 returns NaN for the whole wave.
    """
    bad = ~(np.isfinite(spectrogram) & (spectrogram > 0.0))  # NaN fails both comparisons
    if bad.any():
        frames = np.flatnonzero(bad.any(axis=-1))
        with np.errstate(divide="ignore", invalid="ignore"):
            decibels = 10.0 * np.log10(spectrogram[frames])
        decibels = decibels[~np.isnan(decibels)]
        span = f"{decibels.min():.0f} to {decibels.max():.0f} dB" if decibels.size else "NaN"
        raise ValueError(
            f"{name}: the spectral envelope overflows or vanishes ({span}) in {len(frames)} of "
            f"{spectrogram.shape[0]} frames (frames {_frames(frames)}): {_ADVICE}."
        )


def check_synthesized(wave: np.ndarray, name: str) -> np.ndarray:
    """The checked waveform `(samples,)`: `ValueError` for non-finite samples or a peak above `EXTREME_PEAK`;
    a peak in (1, `EXTREME_PEAK`] is clipped to [-1, 1] with a warning."""
    if not np.all(np.isfinite(wave)):
        raise ValueError(f"{name}: WORLD synthesis returned {int(np.sum(~np.isfinite(wave)))} NaN samples: {_ADVICE}.")
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    if peak > EXTREME_PEAK:
        raise ValueError(
            f"{name}: the synthesized wave peaks at {peak:.3g} times full scale (more than {EXTREME_PEAK:g}): "
            f"{_ADVICE}."
        )
    if peak > 1.0:
        logger.warning("%s: synthesized peak %.3f exceeds full scale; clipping", name, peak)
    return np.clip(wave, -1.0, 1.0)
