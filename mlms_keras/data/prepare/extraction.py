"""One utterance's features, aligned frame-exactly, and the training moments the normalisation is built from.

`extract_utterance` checks the audio (`check_usable_audio`: not longer than `--max-seconds`, not silent; resampled
down first under `mlms prepare --resample`), runs WORLD analysis (`mlms_keras.vocoder.analyze`) on it and builds the
frame-level linguistic features (`features_for_label_file` + `expand_to_frames`) from the alignment, fitted to WORLD's
frame count by the rule of `mlms_keras.data.prepare.alignment`. It needs no TensorFlow, so worker processes run it.

**Training moments.** The normalisation statistics of the train split are combined from per-utterance moments
(count, mean, sum of squared deviations; Chan, Golub & LeVeque's pairwise update): exact to float64 rounding and
combinable in any grouping, so shards can be extracted in any order, by any number of workers, and resumed.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from mlms_keras import vocoder
from mlms_keras.data.prepare.alignment import DEFAULT_MAX_FRAME_MISMATCH, fit_durations_to_frames
from mlms_keras.frontend import linguistic
from mlms_keras.vocoder import audio

if TYPE_CHECKING:
    from mlms_keras.data.readers import CorpusItem
    from mlms_keras.frontend.layout import FeatureLayout

__all__ = [
    "DEFAULT_MAX_SECONDS",
    "SILENCE_PEAK_DBFS",
    "PreparedUtterance",
    "check_usable_audio",
    "combine_moments",
    "extract_utterance",
    "frame_moments",
    "moments_from_json",
    "moments_to_json",
]


#: Longest utterance `mlms prepare` accepts by default, in seconds (`--max-seconds`).
DEFAULT_MAX_SECONDS = 30.0
#: Audio whose peak stays below this level (dB re full scale) is silent: skipped. -60 dBFS is far below any
#: recording of speech (the teacher corpus's dither is at -80 dBFS RMS; its speech peaks near 0 dBFS).
SILENCE_PEAK_DBFS = -60.0


@dataclasses.dataclass
class PreparedUtterance:
    """Features of one utterance, aligned frame-exactly.

    Attributes:
        linguistic: `(frames, input_dim)` float32 frame-level linguistic features (unnormalised).
        acoustic: `(frames, 49)` float32 WORLD features (`AcousticFeatures.to_vector` layout).
        phoneme_linguistic: `(phonemes, D_phone)` float32 phoneme-level features (sil/pau rows included).
        durations: `(phonemes,)` int64 frames per phoneme, summing to frames.
        sample_rate: Hz of the analysed audio.
    """

    linguistic: np.ndarray
    acoustic: np.ndarray
    phoneme_linguistic: np.ndarray
    durations: np.ndarray
    sample_rate: int


def extract_utterance(
    item: CorpusItem,
    layout: FeatureLayout,
    f0_range_hz: tuple[float, float],
    f0_method: str = "harvest",
    max_frame_mismatch: int = DEFAULT_MAX_FRAME_MISMATCH,
    *,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    sample_rate_hz: int | None = None,
) -> PreparedUtterance:
    """WORLD analysis and frame-level linguistic features of one `CorpusItem`, aligned frame-exactly.

    Args:
        item: a `mlms_keras.data.readers.CorpusItem` with an `alignment_path`.
        layout: the `FeatureLayout`.
        f0_range_hz: `(floor, ceiling)` in Hz for the speaker.
        f0_method: `"harvest"` or `"dio"`.
        max_frame_mismatch: see `fit_durations_to_frames`.
        max_seconds: longest utterance accepted, in seconds (`None`: any length).
        sample_rate_hz: resample the audio down to this rate first (soxr; `vocoder.audio.load`); `None`: keep
            the file's rate.

    Raises:
        ValueError: (or a subclass) naming the file: no alignment, corrupt audio, longer than `max_seconds`,
            silent (peak below `SILENCE_PEAK_DBFS`), a rate below `sample_rate_hz`, unparsable labels, text and
            alignment disagree, too large a frame mismatch, a frame without phoneme identity.
    """
    if item.alignment_path is None:
        raise ValueError(
            f"{item.wav_path}: no alignment (.lab or .TextGrid) beside the wav or in labels/; align the "
            "corpus first (e.g. with the Montreal Forced Aligner)."
        )
    aligned = linguistic.features_for_label_file(
        item.text, item.language, item.alignment_path, layout, utterance_id=item.utterance_id
    )
    wave, sample_rate = audio.load(item.wav_path, target_sample_rate=sample_rate_hz)
    check_usable_audio(wave, sample_rate, item.wav_path, max_seconds)
    features = vocoder.analyze(
        wave, sample_rate, f0_method=f0_method, f0_floor=f0_range_hz[0], f0_ceil=f0_range_hz[1], name=str(item.wav_path)
    )
    durations = fit_durations_to_frames(
        aligned.durations_frames,
        aligned.start_frame,
        features.num_frames,
        max_frame_mismatch,
        name=f"{item.utterance_id} ({item.alignment_path})",
    )
    frames = linguistic.expand_to_frames(aligned.phoneme_features, durations)
    acoustic = features.to_vector()
    if frames.shape[0] != acoustic.shape[0]:  # the rule guarantees this; a failure is a bug, not bad data
        raise RuntimeError(f"{item.utterance_id}: {frames.shape[0]} linguistic vs {acoustic.shape[0]} acoustic frames")
    identity = _centre_identity_mask(layout, item.language)
    if not np.all(frames[:, : layout.dimension][:, identity].any(axis=1)):
        raise ValueError(
            f"{item.alignment_path}: a frame has no phoneme identity; the layout does not cover the "
            f"phonemes of {item.language!r}."
        )
    return PreparedUtterance(frames, acoustic, aligned.phoneme_features.astype(np.float32), durations, int(sample_rate))


def check_usable_audio(wave: np.ndarray, sample_rate: int, name, max_seconds: float | None) -> None:
    """Raises `ValueError` naming `name` when `wave` is no training material: longer than `max_seconds`, or silent.

    Args:
        wave: `(samples,)` float waveform in [-1, 1].
        sample_rate: Hz.
        name: the file, for the message.
        max_seconds: longest accepted duration in seconds (`None`: any).
    """
    seconds = len(wave) / sample_rate
    if max_seconds is not None and seconds > max_seconds:
        raise ValueError(
            f"{name}: {seconds:.1f} s long, more than the {max_seconds:g} s limit (a long utterance takes memory "
            "and time out of proportion in training); split it, or raise --max-seconds"
        )
    peak = float(np.max(np.abs(wave))) if len(wave) else 0.0
    if peak < 10 ** (SILENCE_PEAK_DBFS / 20):
        level = "digital zero" if peak == 0 else f"peak {20 * np.log10(peak):.1f} dBFS"
        raise ValueError(
            f"{name}: silent audio ({level}, below {SILENCE_PEAK_DBFS} dBFS): nothing to learn from; check the "
            "recording"
        )


def _centre_identity_mask(layout: FeatureLayout, language: str) -> np.ndarray:
    names = layout.feature_names
    return np.array([name.startswith("C_phoneme=") for name in names]) & layout.language_mask(language)


# Training moments ------------------------------------------------------------------------------------------------
def frame_moments(frames) -> dict:
    """`{"count", "mean", "m2"}` of `(frames, dims)` values, in float64 (`m2`: sum of squared deviations)."""
    frames = np.asarray(frames, np.float64)
    mean = frames.mean(axis=0)
    return {"count": int(frames.shape[0]), "mean": mean, "m2": ((frames - mean) ** 2).sum(axis=0)}


def combine_moments(first: dict | None, second: dict | None) -> dict | None:
    """The moments of two groups of frames together (either may be `None` or empty)."""
    if first is None or first["count"] == 0:
        return second
    if second is None or second["count"] == 0:
        return first
    count = first["count"] + second["count"]
    delta = second["mean"] - first["mean"]
    return {
        "count": count,
        "mean": first["mean"] + delta * (second["count"] / count),
        "m2": first["m2"] + second["m2"] + delta**2 * (first["count"] * second["count"] / count),
    }


def moments_to_json(moments: dict | None) -> dict | None:
    """Moments -> a JSON-ready dict (lists of floats)."""
    if moments is None:
        return None
    return {"count": moments["count"], "mean": moments["mean"].tolist(), "m2": moments["m2"].tolist()}


def moments_from_json(data: dict | None) -> dict | None:
    """The inverse of `moments_to_json`."""
    if data is None:
        return None
    return {"count": int(data["count"]), "mean": np.asarray(data["mean"]), "m2": np.asarray(data["m2"])}
