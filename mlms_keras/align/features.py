"""The aligner's acoustic input: log-mel frames every 5 ms at 16 kHz, normalised per utterance.

Frame `i` is centred on time `i * 5 ms` (the same grid as WORLD's frames, `mlms_keras.vocoder.num_frames_for`),
so a boundary between frames `i - 1` and `i` sits at `(i - 0.5) * 5 ms`. Audio is resampled to 16 kHz first (every
supported corpus rate is at least that, and the band above 8 kHz adds little for phone boundaries), windowed with a
25 ms Hann window (512-point FFT) and mapped to 40 mel bands between 50 and 7,600 Hz (HTK mel scale). Each band is
then normalised to zero mean and unit variance over the utterance (cepstral mean and variance normalisation),
which removes most of the channel and level differences between a teacher voice and a recording.
"""

from __future__ import annotations

import functools

import numpy as np

from mlms_keras.vocoder import audio

__all__ = [
    "FEATURE_SAMPLE_RATE",
    "HOP_SAMPLES",
    "NUM_MELS",
    "frame_count",
    "frame_times",
    "log_mel",
    "normalise",
    "to_feature_rate",
]

FEATURE_SAMPLE_RATE = 16000
HOP_SAMPLES = 80  # 5 ms at 16 kHz
WINDOW_SAMPLES = 400  # 25 ms
FFT_SIZE = 512
NUM_MELS = 40
MEL_RANGE_HZ = (50.0, 7600.0)
_POWER_FLOOR = 1e-8  # about -80 dB below a full-scale sine: the teacher corpus's dither level


def to_feature_rate(wave: np.ndarray, sample_rate: int, name: str = "wave") -> np.ndarray:
    """Mono float32 `(samples,)` at `sample_rate` Hz -> `(samples16,)` at 16 kHz.

    Raises:
        ValueError: the rate is below 16 kHz (upsampled audio has an empty band that the features would model),
            or the wave is not one-dimensional.
    """
    wave = np.asarray(wave, np.float32)
    if wave.ndim != 1:
        raise ValueError(f"{name}: expected a mono (samples,) wave, got shape {wave.shape}; average the channels.")
    if int(sample_rate) < FEATURE_SAMPLE_RATE:
        raise ValueError(
            f"{name}: sample rate {sample_rate} Hz is below the aligner's 16 kHz; record or export at 16 kHz or more."
        )
    return audio.resample(wave, int(sample_rate), FEATURE_SAMPLE_RATE, name=name)


def frame_count(samples16: int) -> int:
    """Frames of a `samples16`-sample wave at 16 kHz: one every 5 ms from time 0, `samples16 // 80 + 1`."""
    return int(samples16) // HOP_SAMPLES + 1


def frame_times(num_frames: int) -> np.ndarray:
    """Centre time in seconds of each frame: `(num_frames,)` float64, `i * 0.005`."""
    return np.arange(num_frames) * (HOP_SAMPLES / FEATURE_SAMPLE_RATE)


@functools.cache
def _mel_filterbank() -> np.ndarray:
    """`(FFT_SIZE // 2 + 1, NUM_MELS)` triangular HTK-mel filters (area-normalised)."""

    def mel(hz):
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    def hz(mels):
        return 700.0 * (10.0 ** (np.asarray(mels) / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(MEL_RANGE_HZ[0]), mel(MEL_RANGE_HZ[1]), NUM_MELS + 2))
    bins = np.fft.rfftfreq(FFT_SIZE, 1.0 / FEATURE_SAMPLE_RATE)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= 2.0 / (upper - lower)
    return weights.T.astype(np.float32)


def log_mel(wave16: np.ndarray) -> np.ndarray:
    """Natural-log mel power of a 16 kHz wave: `(frame_count(samples), 40)` float32, frame `i` centred at `i * 5 ms`."""
    wave16 = np.asarray(wave16, np.float32)
    num_frames = frame_count(wave16.size)
    half = WINDOW_SAMPLES // 2
    padded = np.pad(wave16, (half, half + HOP_SAMPLES), mode="constant")
    starts = np.arange(num_frames) * HOP_SAMPLES
    frames = np.lib.stride_tricks.sliding_window_view(padded, WINDOW_SAMPLES)[starts]
    window = np.hanning(WINDOW_SAMPLES).astype(np.float32)
    spectrum = np.fft.rfft(frames * window, n=FFT_SIZE, axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    return np.log(power @ _mel_filterbank() + _POWER_FLOOR).astype(np.float32)


def normalise(features: np.ndarray) -> np.ndarray:
    """Per-band zero mean and unit variance over the utterance: `(frames, bands)` -> the same shape, float32."""
    features = np.asarray(features, np.float32)
    mean = features.mean(axis=0, keepdims=True)
    std = features.std(axis=0, keepdims=True)
    return ((features - mean) / np.maximum(std, 1e-3)).astype(np.float32)
