"""Augmentation of training speech, against the gap between espeak-ng voices and real ones.

- `world_transform`: WORLD analysis and resynthesis with the F0 scaled (pitch) and the spectral envelope warped
  along frequency (vocal-tract length), timing untouched, so the labels stay exact;
- `add_noise`: white, pink or brown noise at a given SNR (dB, measured over the whole utterance);
- `add_reverb`: convolution with a synthetic room response (exponentially decaying noise, RT60 in seconds).

`augment` draws a random combination of the three from a numpy `Generator`.
"""

from __future__ import annotations

import numpy as np
import pyworld

__all__ = ["add_noise", "add_reverb", "augment", "world_transform"]


def world_transform(
    wave: np.ndarray, sample_rate: int, pitch_factor: float = 1.0, warp_factor: float = 1.0
) -> np.ndarray:
    """Resynthesise `(samples,)` float audio with F0 times `pitch_factor` and the envelope warped by `warp_factor`
    (> 1 moves formants up, as a shorter vocal tract does). Returns the same number of samples, float32."""
    wave64 = np.asarray(wave, np.float64)
    f0, times = pyworld.dio(wave64, sample_rate, f0_floor=50.0, f0_ceil=700.0, frame_period=5.0)
    f0 = pyworld.stonemask(wave64, f0, times, sample_rate)
    envelope = pyworld.cheaptrick(wave64, f0, times, sample_rate)
    aperiodicity = pyworld.d4c(wave64, f0, times, sample_rate)
    bins = np.arange(envelope.shape[1], dtype=np.float64)
    source = np.clip(bins / warp_factor, 0, envelope.shape[1] - 1)
    warped = np.empty_like(envelope)
    for frame in range(envelope.shape[0]):
        warped[frame] = np.interp(source, bins, envelope[frame])
    out = pyworld.synthesize(f0 * pitch_factor, warped, aperiodicity, sample_rate, frame_period=5.0)
    out = np.pad(out, (0, max(0, wave64.size - out.size)))[: wave64.size]
    peak = np.max(np.abs(out)) or 1.0
    return (out * min(1.0, 0.95 / peak)).astype(np.float32)


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator, colour: str = "white") -> np.ndarray:
    """`wave` plus noise at `snr_db` dB below its mean power; `colour` `"white"`, `"pink"` or `"brown"`."""
    wave = np.asarray(wave, np.float32)
    noise = rng.standard_normal(wave.size)
    if colour != "white":
        spectrum = np.fft.rfft(noise)
        frequency = np.maximum(np.fft.rfftfreq(wave.size), 1.0 / wave.size)
        spectrum /= np.sqrt(frequency) if colour == "pink" else frequency
        noise = np.fft.irfft(spectrum, n=wave.size)
    signal_power = float(np.mean(wave.astype(np.float64) ** 2)) or 1e-12
    noise *= np.sqrt(signal_power / (10.0 ** (snr_db / 10.0)) / (np.mean(noise**2) or 1e-12))
    return (wave + noise).astype(np.float32)


def add_reverb(wave: np.ndarray, sample_rate: int, rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """`wave` convolved with a synthetic room response of reverberation time `rt60_s` (same length, float32)."""
    length = int(rt60_s * sample_rate)
    time = np.arange(length) / sample_rate
    response = rng.standard_normal(length) * np.exp(-6.9 * time / rt60_s)
    response[0] = 1.0 / max(0.1, 1.0 - 0.5 * rt60_s)  # a direct path above the tail
    response /= np.sqrt(np.sum(response**2))
    size = wave.size + length
    out = np.fft.irfft(np.fft.rfft(wave, n=size) * np.fft.rfft(response, n=size), n=size)[: wave.size]
    out *= np.sqrt(np.mean(np.square(wave, dtype=np.float64)) / max(np.mean(out**2), 1e-20))  # keep the level
    peak = np.max(np.abs(out))
    return (out * (0.95 / peak if peak > 0.95 else 1.0)).astype(np.float32)


def augment(wave: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A random augmentation: WORLD pitch (x0.6-1.6) and envelope warp (0.85-1.18) with probability 0.6, reverb
    (RT60 0.15-0.6 s) with probability 0.25, then noise at 5-40 dB SNR (white, pink or brown) with probability
    0.8."""
    out = np.asarray(wave, np.float32)
    if rng.random() < 0.6:
        out = world_transform(
            out, sample_rate, float(np.exp(rng.uniform(np.log(0.6), np.log(1.6)))), rng.uniform(0.85, 1.18)
        )
    if rng.random() < 0.25:
        out = add_reverb(out, sample_rate, rng.uniform(0.15, 0.6), rng)
    if rng.random() < 0.8:
        out = add_noise(out, rng.uniform(5.0, 40.0), rng, str(rng.choice(["white", "pink", "brown"])))
    return out
