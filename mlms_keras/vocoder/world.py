"""WORLD analysis and synthesis through the 49-dim acoustic frame of docs/architecture.md.

One frame every 5 ms holds 49 numbers:

| slice | dims | meaning |
|---|---|---|
| `0:40` | 40 | mel-cepstrum c0..c39 of WORLD's CheapTrick envelope, all-pass alpha = `mcepalpha(fs)` |
| `40` | 1 | lf0: natural log of F0 in Hz, *continuous* (unvoiced frames interpolated, Yu & Young 2011) |
| `41` | 1 | vuv: 1 voiced, 0 unvoiced |
| `42:49` | 7 | band aperiodicity in dB (20 log10 of D4C's amplitude ratio), `mlms_keras.vocoder.aperiodicity` |

**Frames.** `num_frames_for(num_samples, sample_rate) = int(1000 * num_samples / sample_rate / 5) + 1`, the count
WORLD's dio and harvest return (frame `i` is centred on sample `round(i * 0.005 * sample_rate)`). Align linguistic
frames to this exactly. `synthesize` returns `int(num_frames * 0.005 * sample_rate)` samples.

**7-band aperiodicity.** WORLD's own coder gives 1 band at 16 kHz and 2 at 22.05 kHz; ours gives 7 bands equally
spaced on the mel scale at every rate. `mlms_keras.vocoder.aperiodicity` has the coder and the band edges.

**F0 range.** Per speaker: pass `f0_floor` / `f0_ceil` from `F0_RANGE_HZ[sex]`, or measure it from the speaker's
data with `estimate_f0_range`. A range too wide invites octave errors; too narrow clips real pitch.

**Postfilter.** `synthesize` applies the Merlin/HTS cepstral postfilter (`postfilter`) with
`DEFAULT_POSTFILTER_BETA`; see that constant for the measured reason.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import logging
import os
from collections.abc import Iterable

import numpy as np
import pysptk
import pyworld
from tqdm import tqdm

from mlms_keras.vocoder import audio
from mlms_keras.vocoder.aperiodicity import (
    NUM_BAP,
    check_sample_rate,
    code_band_aperiodicity,
    decode_band_aperiodicity,
)
from mlms_keras.vocoder.limits import check_envelope, check_synthesized
from mlms_keras.vocoder.limits import check_finite as _check_finite

__all__ = [
    "BAP",
    "DEFAULT_POSTFILTER_BETA",
    "DEFAULT_SAMPLE_RATE",
    "F0_RANGE_HZ",
    "FEATURE_DIM",
    "FRAME_PERIOD_MS",
    "LF0",
    "MCEP",
    "NUM_MCEP",
    "SUPPORTED_SAMPLE_RATES",
    "VUV",
    "AcousticFeatures",
    "analyze",
    "analyze_files",
    "clipped_fraction",
    "continuous_lf0",
    "estimate_f0_range",
    "frame_energy",
    "mcep_alpha",
    "mcep_to_spectrum",
    "num_frames_for",
    "postfilter",
    "synthesize",
]

logger = logging.getLogger(__name__)

FRAME_PERIOD_MS = 5.0
NUM_MCEP = 40
FEATURE_DIM = NUM_MCEP + 2 + NUM_BAP  # 49
MCEP = slice(0, NUM_MCEP)
LF0 = NUM_MCEP
VUV = NUM_MCEP + 1
BAP = slice(NUM_MCEP + 2, FEATURE_DIM)

DEFAULT_SAMPLE_RATE = 22050
SUPPORTED_SAMPLE_RATES = (16000, 22050, 24000, 44100, 48000)

# Default analysis F0 range (Hz) per speaker sex. Female voices rarely go below 100 Hz or above 500 Hz in read
# speech; male voices rarely below 60 Hz or above 300 Hz. `"unknown"` is WORLD's own wide default (71-800 Hz),
# which covers both at a higher risk of octave errors; pass a measured range per speaker when you have one.
F0_RANGE_HZ = {"female": (100.0, 500.0), "male": (60.0, 300.0), "unknown": (71.0, 800.0)}


def estimate_f0_range(
    voiced_f0_hz: np.ndarray | Iterable[float], limits_hz: tuple[float, float] = (40.0, 1000.0)
) -> tuple[float, float]:
    """A speaker's analysis F0 range from a first pass over their audio (De Looze & Hirst's two-pass recipe).

    Args:
        voiced_f0_hz: F0 values (Hz) of voiced frames from a first analysis with a wide range (e.g. dio with
            `F0_RANGE_HZ["unknown"]`), pooled over several of the speaker's files.
        limits_hz: the result is clamped into this interval.

    Returns:
        `(f0_floor, f0_ceil)` = (0.75 * first quartile, 1.5 * third quartile), in Hz.
    """
    voiced_f0_hz = np.asarray(voiced_f0_hz, dtype=np.float64)
    voiced_f0_hz = voiced_f0_hz[voiced_f0_hz > 0]
    if voiced_f0_hz.size < 10:
        raise ValueError(
            f"voiced_f0_hz: need at least 10 voiced frames to estimate an F0 range, got {voiced_f0_hz.size}; "
            "pool more of the speaker's files or use F0_RANGE_HZ."
        )
    first_quartile, third_quartile = np.percentile(voiced_f0_hz, [25, 75])
    floor = float(np.clip(0.75 * first_quartile, *limits_hz))
    ceil = float(np.clip(1.5 * third_quartile, *limits_hz))
    return floor, ceil


# Multiplier on c2..c39 in `postfilter` (Merlin's `pf_coef`; HTS writes it as 1 + beta, with beta = 0.4).
# 1.0 switches the postfilter off. Measured reason (`benchmarks/bench_vocoder.py`, JSON key `postfilter_sweep`,
# on pysptk's CMU ARCTIC clip): models trained with a squared error over-smooth the envelope, which shows as a
# global variance (GV) of c2..c39 below natural speech. Simulating that by pulling each frame's c2..c39 30% of the
# way to the utterance mean (GV ratio 0.49 of natural), beta = 1.4 brings the GV ratio back to 0.96; 1.2 leaves
# 0.71 and 1.6 overshoots to 1.25. Distance measures (log-spectral distance, MCD) never reward the postfilter,
# since it is a perceptual correction, so for copy-synthesis of *natural* features pass `postfilter_beta=1.0`: on
# the clip, beta 1.4 raises copy-synthesis MCD from 3.30 to 4.72 dB (dio) and from 3.10 to 4.54 dB (harvest), and
# harvest's re-analysis of post-filtered speech makes octave errors (F0 RMSE 5.8 -> 20.2 Hz), so judge
# post-filtered output by listening, not by re-analysed F0.
DEFAULT_POSTFILTER_BETA = 1.4

# Runs of this many consecutive samples at full scale count as clipping.
_CLIP_RUN = 3
_FULL_SCALE = 0.999


def num_frames_for(num_samples: int, sample_rate: float) -> int:
    """Frames WORLD analysis yields for `num_samples` samples at `sample_rate` Hz with 5 ms frames.

    `int(1000.0 * num_samples / sample_rate / 5.0) + 1`, computed in float64 exactly as WORLD does.
    """
    return int(1000.0 * int(num_samples) / float(sample_rate) / FRAME_PERIOD_MS) + 1


@functools.cache  # pysptk searches for it on every call (about 0.1 s)
def mcep_alpha(sample_rate: float) -> float:
    """All-pass constant of the mel-cepstrum at `sample_rate` Hz (`pysptk.util.mcepalpha`; 0.455 at 22.05 kHz)."""
    return float(pysptk.util.mcepalpha(int(sample_rate)))


def continuous_lf0(f0_hz: np.ndarray, fill_value_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """F0 `(frames,)` Hz with 0 for unvoiced -> `(lf0, vuv)`: `(frames,)` continuous log-Hz and `(frames,)` 0/1.

    Unvoiced runs between voiced frames are linearly interpolated in the log domain; leading and trailing runs hold
    the nearest voiced value. With no voiced frame at all, lf0 is `log(fill_value_hz)` everywhere.
    """
    f0_hz = np.asarray(f0_hz, dtype=np.float64)
    voiced = f0_hz > 0.0
    if not voiced.any():
        return np.full(f0_hz.shape, np.log(fill_value_hz)), voiced.astype(np.float64)
    frame_index = np.arange(f0_hz.shape[0])
    lf0 = np.interp(frame_index, frame_index[voiced], np.log(f0_hz[voiced]))
    return lf0, voiced.astype(np.float64)


@dataclasses.dataclass
class AcousticFeatures:
    """WORLD parameters of one utterance in the frame layout of docs/architecture.md.

    Attributes:
        mcep: `(frames, 40)` mel-cepstrum c0..c39 (natural-log amplitude units), alpha = `mcep_alpha(sample_rate)`.
        lf0: `(frames,)` continuous log F0, log-Hz.
        vuv: `(frames,)` 1.0 voiced, 0.0 unvoiced.
        bap: `(frames, 7)` band aperiodicity, dB (-60 .. 0).
        sample_rate: Hz of the audio the features describe.
    """

    mcep: np.ndarray
    lf0: np.ndarray
    vuv: np.ndarray
    bap: np.ndarray
    sample_rate: int

    @property
    def num_frames(self) -> int:
        """Number of 5 ms frames."""
        return int(self.lf0.shape[0])

    def to_vector(self) -> np.ndarray:
        """The `(frames, 49)` float32 matrix: mcep, lf0, vuv, bap."""
        return np.concatenate([self.mcep, self.lf0[:, None], self.vuv[:, None], self.bap], axis=1).astype(np.float32)

    @classmethod
    def from_vector(
        cls, vector: np.ndarray, sample_rate: int = DEFAULT_SAMPLE_RATE, name: str = "vector"
    ) -> AcousticFeatures:
        """Inverse of `to_vector`: a `(frames, 49)` matrix -> `AcousticFeatures`. `vuv` is thresholded at 0.5.

        Raises `ValueError` naming `name` if the shape is wrong or any value is NaN or inf.
        """
        vector = np.asarray(vector, dtype=np.float64)
        if vector.ndim != 2 or vector.shape[1] != FEATURE_DIM:
            raise ValueError(f"{name}: expected shape (frames, {FEATURE_DIM}), got {vector.shape}.")
        _check_finite(vector, name)
        return cls(
            mcep=vector[:, MCEP].copy(),
            lf0=vector[:, LF0].copy(),
            vuv=(vector[:, VUV] > 0.5).astype(np.float64),
            bap=vector[:, BAP].copy(),
            sample_rate=int(sample_rate),
        )


def clipped_fraction(wave: np.ndarray) -> float:
    """Fraction of samples (0..1) inside runs of >= 3 consecutive samples at |x| >= 0.999 full scale."""
    at_full_scale = np.abs(np.asarray(wave)) >= _FULL_SCALE
    if not at_full_scale.any():
        return 0.0
    # Lengths of runs of consecutive full-scale samples.
    padded = np.concatenate([[0], at_full_scale.astype(np.int8), [0]])
    starts = np.flatnonzero(np.diff(padded) == 1)
    ends = np.flatnonzero(np.diff(padded) == -1)
    lengths = ends - starts
    return float(lengths[lengths >= _CLIP_RUN].sum()) / at_full_scale.size


def _validate_wave(wave, sample_rate, name, max_clipped_fraction):
    check_sample_rate(sample_rate, name)
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise ValueError(f"{name}: expected a mono wave of shape (samples,), got shape {wave.shape}; mix to mono.")
    if wave.size == 0:
        raise ValueError(f"{name}: the wave is empty (0 samples); nothing to analyse.")
    if not np.issubdtype(wave.dtype, np.floating):
        raise ValueError(
            f"{name}: expected float samples in [-1, 1], got dtype {wave.dtype}; scale integer PCM (e.g. / 32768)."
        )
    _check_finite(wave, name)
    peak = float(np.max(np.abs(wave)))
    if peak > 1.0 + 1e-6:
        raise ValueError(f"{name}: peak amplitude {peak:.3f} exceeds full scale 1.0; normalise or rescale the wave.")
    fraction = clipped_fraction(wave)
    if fraction > max_clipped_fraction:
        raise ValueError(
            f"{name}: {100 * fraction:.2f}% of samples are clipped (runs at full scale), above the allowed "
            f"{100 * max_clipped_fraction:.2f}%. Clipping corrupts the spectral envelope; re-record or drop the file, "
            "or raise max_clipped_fraction to accept it."
        )
    if fraction > 0:
        logger.warning("%s: %.3f%% of samples are clipped", name, 100 * fraction)
    return np.ascontiguousarray(wave, dtype=np.float64)


def analyze(
    wave: np.ndarray,
    sample_rate: float,
    f0_method: str = "harvest",
    f0_floor: float = F0_RANGE_HZ["unknown"][0],
    f0_ceil: float = F0_RANGE_HZ["unknown"][1],
    max_clipped_fraction: float = 0.01,
    name: str = "wave",
) -> AcousticFeatures:
    """WORLD analysis of one utterance into 49-dim frames.

    Args:
        wave: `(samples,)` float in [-1, 1], mono, at its native rate (never upsampled).
        sample_rate: Hz, >= 16 000.
        f0_method: `"harvest"` (robust, RTF ~0.17 per core) or `"dio"` (dio + stonemask, ~20x faster).
        f0_floor: the low end of the speaker's F0 search range in Hz (see `F0_RANGE_HZ`).
        f0_ceil: the high end of that range in Hz.
        max_clipped_fraction: largest fraction of clipped samples accepted (see `clipped_fraction`).
        name: how errors refer to the input (e.g. the file path).

    Returns:
        `AcousticFeatures` with `num_frames_for(len(wave), sample_rate)` frames. A silent or fully unvoiced wave
        gives all-unvoiced frames with `lf0 = log(sqrt(f0_floor * f0_ceil))`.

    Raises:
        ValueError: naming `name`: rate < 16 kHz, empty, non-float, NaN/inf, beyond full scale, too clipped, bad F0
            range or method.
    """
    wave = _validate_wave(wave, sample_rate, name, max_clipped_fraction)
    if not 0 < f0_floor < f0_ceil < sample_rate / 2:
        raise ValueError(f"{name}: need 0 < f0_floor < f0_ceil < Nyquist, got f0_floor={f0_floor}, f0_ceil={f0_ceil}.")
    sample_rate = int(sample_rate)
    if f0_method == "harvest":
        f0, times = pyworld.harvest(wave, sample_rate, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=FRAME_PERIOD_MS)
    elif f0_method == "dio":
        f0, times = pyworld.dio(wave, sample_rate, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=FRAME_PERIOD_MS)
        f0 = pyworld.stonemask(wave, f0, times, sample_rate)
    else:
        raise ValueError(f"{name}: f0_method must be 'harvest' or 'dio', got {f0_method!r}.")
    expected_frames = num_frames_for(wave.size, sample_rate)
    if f0.shape[0] != expected_frames:  # the data pipeline aligns linguistic frames to num_frames_for
        raise RuntimeError(f"{name}: WORLD returned {f0.shape[0]} frames, expected {expected_frames}.")
    spectrogram = pyworld.cheaptrick(wave, f0, times, sample_rate, f0_floor=f0_floor)
    aperiodicity = pyworld.d4c(wave, f0, times, sample_rate, fft_size=(spectrogram.shape[1] - 1) * 2)
    mcep = pysptk.sp2mc(spectrogram, order=NUM_MCEP - 1, alpha=mcep_alpha(sample_rate))
    lf0, vuv = continuous_lf0(f0, fill_value_hz=np.sqrt(f0_floor * f0_ceil))
    return AcousticFeatures(
        mcep=mcep,
        lf0=lf0,
        vuv=vuv,
        bap=code_band_aperiodicity(aperiodicity, sample_rate),
        sample_rate=sample_rate,
    )


def frame_energy(mcep: np.ndarray, alpha: float, fft_length: int = 1024) -> np.ndarray:
    """Energy r0 `(frames,)` of each frame's response: the mean of `|H(e^jw)|^2` over the full frequency circle.

    Evaluates `log|H| = sum_m c_m cos(m * beta(w))` on `fft_length` points, where beta is the all-pass warped
    frequency, so it needs no truncated unwarping (Merlin's `freqt -M 511 | c2acr` computes the same r0).
    """
    mcep = np.asarray(mcep, dtype=np.float64)
    omega = 2.0 * np.pi * np.arange(fft_length // 2 + 1) / fft_length
    warped = omega + 2.0 * np.arctan(alpha * np.sin(omega) / (1.0 - alpha * np.cos(omega)))
    log_amplitude = mcep @ np.cos(np.outer(np.arange(mcep.shape[-1]), warped))
    power = np.exp(2.0 * log_amplitude)
    return (power[..., 0] + power[..., -1] + 2.0 * power[..., 1:-1].sum(axis=-1)) / fft_length


def mcep_to_spectrum(mcep: np.ndarray, alpha: float, fft_size: int) -> np.ndarray:
    """Power spectrum `(frames, fft_size // 2 + 1)` of mel-cepstra: `|H|^2`, `log|H(w)| = sum_m c_m cos(m beta(w))`.

    beta is the all-pass warped frequency (as in `frame_energy`). Equals `pysptk.mc2sp(mcep, alpha, fft_size)`
    (to 1e-13 in log at 22.05 kHz) as one matrix product instead of a per-frame `freqt`, about 6x faster.
    """
    mcep = np.asarray(mcep, dtype=np.float64)
    omega = 2.0 * np.pi * np.arange(fft_size // 2 + 1) / fft_size
    warped = omega + 2.0 * np.arctan(alpha * np.sin(omega) / (1.0 - alpha * np.cos(omega)))
    return np.exp(2.0 * (mcep @ np.cos(np.outer(np.arange(mcep.shape[-1]), warped))))


def postfilter(
    mcep: np.ndarray, alpha: float, beta: float = DEFAULT_POSTFILTER_BETA, fft_length: int = 1024
) -> np.ndarray:
    """Merlin/HTS cepstral postfilter: multiply c2..cN by `beta`, then restore each frame's energy r0.

    Merlin converts to MLSA coefficients, adds `0.5 * ln(r0 / r0_filtered)` to b0 and converts back; since
    `b2mc(mc2b(c))` changes only c0 when b0 moves, we add that term to c0 directly (same result, vectorised).

    Args:
        mcep: `(frames, order + 1)` mel-cepstrum.
        alpha: its all-pass constant (`mcep_alpha(sample_rate)`).
        beta: weight on c2 and up; 1.0 returns the input unchanged.
        fft_length: frequency points for the energy (`frame_energy`).

    Returns:
        `(frames, order + 1)` post-filtered mel-cepstrum.
    """
    mcep = np.asarray(mcep, dtype=np.float64)
    if beta == 1.0:
        return mcep.copy()
    filtered = mcep.copy()
    filtered[..., 2:] *= beta
    filtered[..., 0] += 0.5 * np.log(frame_energy(mcep, alpha, fft_length) / frame_energy(filtered, alpha, fft_length))
    return filtered


def synthesize(
    features: AcousticFeatures | np.ndarray,
    sample_rate: float | None = None,
    postfilter_beta: float = DEFAULT_POSTFILTER_BETA,
    name: str = "features",
) -> np.ndarray:
    """WORLD synthesis from `AcousticFeatures` (or a `(frames, 49)` matrix).

    Args:
        features: `AcousticFeatures`, or a `(frames, 49)` array in `to_vector` layout.
        sample_rate: Hz; defaults to `features.sample_rate` (or `DEFAULT_SAMPLE_RATE` for a bare array).
        postfilter_beta: see `DEFAULT_POSTFILTER_BETA`; 1.0 disables the postfilter (use that for natural features).
        name: how errors refer to the input.

    Returns:
        `(int(frames * 0.005 * sample_rate),)` float64 wave, clipped to [-1, 1].

    Raises:
        ValueError: naming `name`: NaN or inf features, or features so far outside speech that WORLD would return
            NaN or a wave more than `mlms_keras.vocoder.limits.EXTREME_PEAK` times full scale (that module's
            table); nothing broken is ever returned.
    """
    if not isinstance(features, AcousticFeatures):
        features = AcousticFeatures.from_vector(features, sample_rate or DEFAULT_SAMPLE_RATE, name=name)
    elif sample_rate is not None and int(sample_rate) != int(features.sample_rate):
        raise ValueError(
            f"{name}: features were analysed at {features.sample_rate} Hz but sample_rate={sample_rate} was asked "
            "for; the mel-cepstral alpha and band edges depend on the rate, so synthesize at the analysis rate."
        )
    sample_rate = int(sample_rate or features.sample_rate)
    check_sample_rate(sample_rate, name)
    for field in ("mcep", "lf0", "vuv", "bap"):
        _check_finite(np.asarray(getattr(features, field)), f"{name}.{field}")
    mcep = np.asarray(features.mcep, dtype=np.float64)
    if mcep.ndim != 2 or mcep.shape[1] != NUM_MCEP or features.bap.shape != (mcep.shape[0], NUM_BAP):
        raise ValueError(
            f"{name}: mcep must be (frames, {NUM_MCEP}) and bap (frames, {NUM_BAP}); "
            f"got {mcep.shape} and {features.bap.shape}."
        )
    alpha = mcep_alpha(sample_rate)
    fft_size = pyworld.get_cheaptrick_fft_size(sample_rate)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):  # check_envelope reports
        if postfilter_beta != 1.0:
            mcep = postfilter(mcep, alpha, postfilter_beta)
        spectrogram = np.ascontiguousarray(mcep_to_spectrum(mcep, alpha, fft_size))
    check_envelope(spectrogram, name)
    aperiodicity = np.ascontiguousarray(decode_band_aperiodicity(features.bap, sample_rate, fft_size))
    f0 = np.where(np.asarray(features.vuv) > 0.5, np.exp(np.asarray(features.lf0, dtype=np.float64)), 0.0)
    wave = pyworld.synthesize(np.ascontiguousarray(f0), spectrogram, aperiodicity, sample_rate, FRAME_PERIOD_MS)
    return check_synthesized(wave, name)


def _analyze_file(path, target_sample_rate, analysis_options):
    wave, sample_rate = audio.load(path, target_sample_rate=target_sample_rate)
    return analyze(wave, sample_rate, name=os.fspath(path), **analysis_options)


def analyze_files(
    paths: Iterable[str | os.PathLike],
    target_sample_rate: int | None = None,
    workers: int | None = None,
    progress: bool = True,
    **analysis_options,
) -> tuple[dict[str, AcousticFeatures], list[tuple[str, str]]]:
    """Analyse many audio files in parallel (one process per core).

    Args:
        paths: audio file paths.
        target_sample_rate: Hz to downsample to (never up; see `mlms_keras.vocoder.audio.load`), `None` for native
            rates.
        workers: processes; `None` uses every core (`os.cpu_count()`).
        progress: show a tqdm progress bar.
        **analysis_options: passed to `analyze` (`f0_method`, `f0_floor`, `f0_ceil`, `max_clipped_fraction`).

    Returns:
        `(results, skipped)`: `results` maps path -> `AcousticFeatures` for the files that worked, in input order;
        `skipped` lists `(path, reason)` for each file that failed (logged as a warning, the rest carry on).
    """
    paths = [os.fspath(path) for path in paths]
    workers = workers or os.cpu_count() or 1
    results, skipped = {}, []
    outcomes = {}
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_analyze_file, path, target_sample_rate, analysis_options): path for path in paths}
        for future in tqdm(
            concurrent.futures.as_completed(futures), total=len(futures), disable=not progress, desc="WORLD analysis"
        ):
            path = futures[future]
            try:
                outcomes[path] = future.result()
            except Exception as error:  # one bad file must not stop the batch
                reason = f"{type(error).__name__}: {error}"
                logger.warning("skipping %s: %s", path, reason)
                outcomes[path] = reason
    for path in paths:
        outcome = outcomes[path]
        if isinstance(outcome, AcousticFeatures):
            results[path] = outcome
        else:
            skipped.append((path, outcome))
    return results, skipped
