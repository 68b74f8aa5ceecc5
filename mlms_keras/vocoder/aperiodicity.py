"""The 7-band aperiodicity coder: WORLD's aperiodicity spectrum <-> 7 band values in dB (frame slice `42:49`).

WORLD's own coder (`pyworld.code_aperiodicity`) has one band per 3 kHz: 1 band at 16 kHz, 2 at 22.05 kHz. Ours
splits 0 Hz..Nyquist into 7 bands equally spaced on the HTK mel scale (`mel = 2595 log10(1 + f / 700)`), codes
each band as the mean dB aperiodicity of the FFT bins inside it, and decodes by linear interpolation (in dB, over
linear frequency) between band centres, held flat beyond the outer centres. Values are clipped to D4C's own
range, -60 dB (fully periodic floor) to 0 dB (noise). The edges (Hz, rounded) for the supported rates, from
`band_edges_hz`:

| rate (Hz) | edges (Hz) |
|---|---|
| 16 000 | 0, 303, 738, 1 361, 2 254, 3 535, 5 370, 8 000 |
| 22 050 | 0, 347, 866, 1 642, 2 804, 4 541, 7 139, 11 025 |
| 24 000 | 0, 359, 902, 1 724, 2 967, 4 848, 7 694, 12 000 |
| 44 100 | 0, 451, 1 193, 2 412, 4 417, 7 714, 13 136, 22 050 |
| 48 000 | 0, 465, 1 238, 2 524, 4 663, 8 223, 14 146, 24 000 |

(The exact numbers come from `band_edges_hz`; `tests/vocoder/test_vocoder.py` checks this table against it.)

Note that D4C itself estimates aperiodicity only at knots every 3 kHz (0 Hz fixed at -60 dB, Nyquist at 0 dB) and
interpolates linearly in dB between them, so at 16 kHz the 7 bands sample a curve with one free knot (3 kHz):
the bands are a fixed-size, rate-independent layout for the model, not extra resolution from the analysis.

The band layout is defined from `MIN_SAMPLE_RATE` (16 kHz) up; `check_sample_rate` is the one sample-rate check
of the vocoder (`mlms_keras.vocoder.world` uses it too).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MIN_SAMPLE_RATE",
    "NUM_BAP",
    "band_centres_hz",
    "band_edges_hz",
    "check_sample_rate",
    "code_band_aperiodicity",
    "decode_band_aperiodicity",
]

NUM_BAP = 7
MIN_SAMPLE_RATE = 16000

# Aperiodicity is clipped to D4C's own range: -60 dB (fully periodic floor) .. 0 dB (noise).
_BAP_FLOOR_DB = -60.0
_BAP_CEIL_DB = 0.0


def check_sample_rate(sample_rate: float, name: str) -> None:
    """Raise `ValueError` naming `name` unless `sample_rate` is a number of Hz >= `MIN_SAMPLE_RATE`."""
    if not np.isscalar(sample_rate) or sample_rate <= 0:
        raise ValueError(f"{name}: sample rate must be a positive number of Hz, got {sample_rate!r}.")
    if sample_rate < MIN_SAMPLE_RATE:
        raise ValueError(
            f"{name}: sample rate {sample_rate} Hz is below the supported minimum of {MIN_SAMPLE_RATE} Hz "
            "(telephone-band audio lacks the spectrum the 40 mel-cepstra and 7 aperiodicity bands describe). "
            "Use audio recorded at 16 kHz or more; upsampling does not restore the missing band."
        )


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def band_edges_hz(sample_rate: float) -> np.ndarray:
    """The 8 edges (Hz), shape `(8,)`, of the 7 aperiodicity bands: 0 .. Nyquist equally spaced on the HTK mel scale."""
    check_sample_rate(sample_rate, "sample_rate")
    nyquist = sample_rate / 2.0
    return _mel_to_hz(np.linspace(0.0, _hz_to_mel(nyquist), NUM_BAP + 1))


def band_centres_hz(sample_rate: float) -> np.ndarray:
    """The 7 band centres (Hz), shape `(7,)`: mel midpoints of `band_edges_hz`, where decoding anchors each band."""
    mel_edges = _hz_to_mel(band_edges_hz(sample_rate))
    return _mel_to_hz((mel_edges[:-1] + mel_edges[1:]) / 2.0)


def code_band_aperiodicity(aperiodicity: np.ndarray, sample_rate: float) -> np.ndarray:
    """WORLD aperiodicity `(frames, fft_size // 2 + 1)`, ratio in [0, 1] -> band aperiodicity `(frames, 7)` in dB."""
    aperiodicity = np.asarray(aperiodicity, dtype=np.float64)
    num_bins = aperiodicity.shape[-1]
    frequencies = np.linspace(0.0, sample_rate / 2.0, num_bins)
    aperiodicity_db = 20.0 * np.log10(np.clip(aperiodicity, 10.0 ** (_BAP_FLOOR_DB / 20.0), 1.0))
    band_index = np.clip(np.searchsorted(band_edges_hz(sample_rate), frequencies, side="right") - 1, 0, NUM_BAP - 1)
    coded = np.empty(aperiodicity.shape[:-1] + (NUM_BAP,))
    for band in range(NUM_BAP):
        coded[..., band] = aperiodicity_db[..., band_index == band].mean(axis=-1)
    return coded


def decode_band_aperiodicity(bap_db: np.ndarray, sample_rate: float, fft_size: int) -> np.ndarray:
    """Band aperiodicity `(frames, 7)` dB -> WORLD aperiodicity `(frames, fft_size // 2 + 1)`, ratio in [0, 1]."""
    bap_db = np.clip(np.asarray(bap_db, dtype=np.float64), _BAP_FLOOR_DB, _BAP_CEIL_DB)
    frequencies = np.linspace(0.0, sample_rate / 2.0, fft_size // 2 + 1)
    centres = band_centres_hz(sample_rate)
    decoded_db = np.stack([np.interp(frequencies, centres, frame) for frame in bap_db.reshape(-1, NUM_BAP)])
    return 10.0 ** (decoded_db.reshape(bap_db.shape[:-1] + (-1,)) / 20.0)
