"""The phoneme duration model: how many 5 ms frames each phoneme lasts, for a given language and speaker.

It is the acoustic model's idea one level up (Li & Zen 2016 model acoustics; durations follow the same recipe,
as in Zen & Sak 2015): phoneme-level linguistic vectors (the `FeatureLayout` rows, sil/pau included) go through
the cluster-adaptive towers, whose language code selects the language's point in the language space, and a
speaker-dependent recurrent output layer gives one number per phoneme, the duration in frames (normalised). It
is literally `build_mlms_model` with `input_dim = layout.dimension` and `output_dim = 1`, run over phonemes
instead of frames, so everything that works on the acoustic model works here: masking of padded rows,
`add_language` / `add_speaker`, the adaptation variants v1-v4 of `mlms_keras.training.adaptation`, and streaming.
The towers' LSTMs are unidirectional, so a phoneme's duration sees the phonemes before it and, through the
quinphone identity and structure features, two phonemes ahead and the position in the syllable, word and phrase.

This module is the model side: configuration, builder, normalisation statistics (`DurationStatistics`, and their
JSON file) and prediction. Computing the statistics on a prepared dataset, the training batches, training,
adaptation and evaluation are in `mlms_keras.training.duration`.

Normalisation (`DurationStatistics`, computed on the train split): inputs follow the acoustic inputs' rule of
`mlms_keras.data.manifest` (phoneme-identity one-hots left as 0/1 so a real phoneme row is never all zero, other
features to zero mean and unit variance, near-constant dimensions only centred); the target is
`(frames - mean) / std` with the mean and std of the training phonemes' durations, pauses included.

The silences that open and close an utterance are not learnt (weight 0 in the loss): their length is the
recording's (the teacher corpus draws 150-350 ms at random), not the text's. Synthesis gives them the training
mean (`DurationStatistics.edge_silence_frames`), at most `SENTENCE_EDGE_SILENCE_FRAMES`: the teacher pauses about
320 ms between two sentences (espeak-ng, measured at the teacher speakers' rates: 332 ms in English, 309 ms in
French) and starts speaking at once, while the teacher corpus's random padding made the training mean 54 frames
(270 ms) per edge, so a voice put 540 ms between its sentences and 270 ms before its first. That padding, not the
phonemes, was the "20 % slower" of `teacher-small` (`mlms eval-voice`: its speech spans, without the edge
silences, are 0.98 of the teacher's in its training languages; the whole waves 1.13).

Example:
    >>> stats = load_duration_statistics("runs/duration/duration_statistics.json")      # doctest: +SKIP
    >>> model = keras.models.load_model("runs/duration/duration.keras")                 # doctest: +SKIP
    >>> predict_durations(model, stats, layout.phoneme_features("Hello.", "en-us"), 0, 0, layout)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from mlms_keras.models.acoustic import MLMSConfig, build_mlms_model
from mlms_keras.utils.fileio import atomic_write_json
from mlms_keras.utils.jsonfile import read_versioned_json

__all__ = [
    "DURATION_PRESETS",
    "SENTENCE_EDGE_SILENCE_FRAMES",
    "SILENCE_IDENTITIES",
    "STATISTICS_FORMAT",
    "STATISTICS_FORMAT_VERSION",
    "DurationStatistics",
    "build_duration_model",
    "duration_config",
    "edge_silences",
    "frames_from_outputs",
    "load_duration_statistics",
    "predict_durations",
    "save_duration_statistics",
    "silence_rows",
]

#: Sizes of the duration model's towers (a phoneme needs far less capacity than a 49-dim frame).
DURATION_PRESETS = {
    "small": dict(language_space_dim=3, relu_units=64, lstm_layers=2, lstm_cells=64, lstm_projection=32),
    "tiny": dict(language_space_dim=2, relu_units=8, lstm_layers=1, lstm_cells=8, lstm_projection=4),
}
STATISTICS_FORMAT = "mlms-duration-statistics"
STATISTICS_FORMAT_VERSION = 1
#: Longest opening or closing silence of a synthesised sentence (frames): half the teacher's pause between two
#: sentences (module docstring), so that a voice separates its sentences as the teacher does.
SENTENCE_EDGE_SILENCE_FRAMES = 32
#: The identity features of the silences (`silence_rows`).
SILENCE_IDENTITIES = ("C_phoneme=sil", "C_phoneme=pau")


def duration_config(preset: str, phoneme_dim: int, num_languages: int, num_speakers: int, **overrides) -> MLMSConfig:
    """An `MLMSConfig` for a duration model: `DURATION_PRESETS[preset]` sizes, one output per phoneme.

    Args:
        preset: "small" (zoo voices) or "tiny" (tests).
        phoneme_dim: D_phone, the phoneme-level feature dimension (`FeatureLayout.dimension`).
        num_languages, num_speakers: table sizes.
        **overrides: any other `MLMSConfig` field.
    """
    if preset not in DURATION_PRESETS:
        raise ValueError(f"Unknown duration preset {preset!r}; choose one of {sorted(DURATION_PRESETS)}")
    values = dict(
        DURATION_PRESETS[preset],
        input_dim=int(phoneme_dim),
        num_languages=int(num_languages),
        num_speakers=int(num_speakers),
        output_dim=1,
    )
    values.update(overrides)
    return MLMSConfig(**values)


def build_duration_model(
    config: MLMSConfig, stateful: bool = False, batch_size: int | None = None, jit_recurrence: str = "training"
):
    """The duration model: `build_mlms_model(config)` named "duration" (see the module docstring).

    Args:
        config: an `MLMSConfig` with `input_dim` = D_phone and `output_dim` = 1 (`duration_config`).
        stateful, batch_size, jit_recurrence: as in `build_mlms_model`.

    Returns:
        A Functional `keras.Model`: inputs `{"linguistic": (batch, phonemes, D_phone) float32 normalised phoneme
        rows, "language": (batch,) int32, "speaker": (batch,) int32}`, output `(batch, phonemes, 1)`:
        normalised durations. All-zero rows are padding.
    """
    if config.output_dim != 1:
        raise ValueError(f"A duration model has output_dim=1 (frames per phoneme); got output_dim={config.output_dim}")
    return build_mlms_model(
        config, stateful=stateful, batch_size=batch_size, jit_recurrence=jit_recurrence, name="duration"
    )


@dataclasses.dataclass
class DurationStatistics:
    """Normalisation of the duration model's inputs and target (train split).

    Attributes:
        input_mean, input_std: (D_phone,) float32; the model sees `(phoneme_features - mean) / std`.
        duration_mean, duration_std: frames; the model's output `y` means `y * std + mean` frames.
        layout_fingerprint: the `FeatureLayout` the features were built with.
        count: training phonemes the statistics come from.
        edge_silence_frames: mean length of the silences that open and close the training utterances; they
            are not learnt (their length is the recording's, not the text's) and synthesis uses this value.
    """

    input_mean: np.ndarray
    input_std: np.ndarray
    duration_mean: float
    duration_std: float
    layout_fingerprint: str
    count: int
    edge_silence_frames: float = 40.0

    @property
    def input_dim(self) -> int:
        """D_phone."""
        return int(self.input_mean.shape[0])

    def normalise_inputs(self, phoneme_features):
        """(..., D_phone) raw phoneme rows -> normalised float32."""
        return ((np.asarray(phoneme_features, np.float32) - self.input_mean) / self.input_std).astype(np.float32)

    def normalise_durations(self, frames):
        """Durations in frames -> the model's target units."""
        return ((np.asarray(frames, np.float32) - self.duration_mean) / self.duration_std).astype(np.float32)

    def denormalise_durations(self, outputs):
        """Model outputs -> durations in frames (float, unrounded)."""
        return np.asarray(outputs, np.float64) * self.duration_std + self.duration_mean

    def to_dict(self) -> dict:
        """JSON-serialisable form; `from_dict` inverts it."""
        return {
            "format": STATISTICS_FORMAT,
            "input_mean": self.input_mean.tolist(),
            "input_std": self.input_std.tolist(),
            "duration_mean": float(self.duration_mean),
            "duration_std": float(self.duration_std),
            "layout_fingerprint": self.layout_fingerprint,
            "count": int(self.count),
            "edge_silence_frames": float(self.edge_silence_frames),
        }

    @classmethod
    def from_dict(cls, data: dict) -> DurationStatistics:
        """The statistics of a `to_dict` dict (a zoo voice's `metadata.json` holds one)."""
        if not isinstance(data, dict) or data.get("format") != STATISTICS_FORMAT:
            raise ValueError(f"Not duration statistics (expected format {STATISTICS_FORMAT!r})")
        return cls(
            np.asarray(data["input_mean"], np.float32),
            np.asarray(data["input_std"], np.float32),
            float(data["duration_mean"]),
            float(data["duration_std"]),
            str(data["layout_fingerprint"]),
            int(data["count"]),
            float(data.get("edge_silence_frames", 40.0)),
        )


def predict_durations(
    model, stats: DurationStatistics, phoneme_features, language: int, speaker: int, layout
) -> np.ndarray:
    """Durations in whole frames for one utterance.

    Args:
        model: a duration model (`build_duration_model`, trained).
        stats: its `DurationStatistics`.
        phoneme_features: (P, D_phone) raw phoneme rows (`FeatureLayout.phoneme_features`), sil/pau included.
        language, speaker: the model's ids.
        layout: the `FeatureLayout` of the rows (to find the opening and closing silences).

    Returns:
        (P,) int64 frames (`frames_from_outputs`).
    """
    features = np.asarray(phoneme_features, np.float32)
    if features.ndim != 2 or features.shape[1] != stats.input_dim:
        raise ValueError(f"phoneme_features must be (phonemes, {stats.input_dim}), got shape {features.shape}")
    inputs = {
        "linguistic": stats.normalise_inputs(features)[None],
        "language": np.array([language], np.int32),
        "speaker": np.array([speaker], np.int32),
    }
    outputs = np.asarray(model(inputs, training=False))[0, :, 0]
    return frames_from_outputs(outputs, stats, edge_silences(features, layout))


def edge_silences(phoneme_features, layout) -> np.ndarray:
    """(P,) bool: the first and last rows when they are silences (their length is set, not predicted)."""
    silent = silence_rows(phoneme_features, layout)
    edges = np.zeros_like(silent)
    edges[[0, -1]] = True
    return silent & edges


def frames_from_outputs(outputs, stats: DurationStatistics, edge_silence) -> np.ndarray:
    """Duration-model outputs (P,) -> whole frames (P,) int64: rounded, at least 0, edge silences set to
    `stats.edge_silence_frames` (rounded) but at most `SENTENCE_EDGE_SILENCE_FRAMES`, at least one frame in total."""
    frames = np.maximum(np.rint(stats.denormalise_durations(outputs)), 0).astype(np.int64)
    frames[np.asarray(edge_silence, bool)] = min(int(round(stats.edge_silence_frames)), SENTENCE_EDGE_SILENCE_FRAMES)
    if frames.sum() == 0:
        frames[int(np.argmax(outputs))] = 1
    return frames


def silence_rows(phoneme_features, layout) -> np.ndarray:
    """(P,) bool: rows that are sil or pau (from their `C_phoneme=sil|pau` identity, raw or normalised)."""
    columns = [layout.index(name) for name in SILENCE_IDENTITIES]
    return np.asarray(phoneme_features)[:, columns].max(axis=1) > 0.5


def save_duration_statistics(stats: DurationStatistics, path) -> None:
    """Writes `stats` as JSON (`STATISTICS_FORMAT`, version `STATISTICS_FORMAT_VERSION`) atomically."""
    atomic_write_json(path, {**stats.to_dict(), "format_version": STATISTICS_FORMAT_VERSION}, indent=None)


def load_duration_statistics(path) -> DurationStatistics:
    """Reads statistics written by `save_duration_statistics`; errors name the file and say what to do.

    Files written before the format had a version (no `"format_version"`) read as version 1.
    """
    what, remedy = "duration-statistics file", "train the duration model again (`mlms zoo train-duration`)"
    try:
        data = read_versioned_json(path, STATISTICS_FORMAT, STATISTICS_FORMAT_VERSION, what=what, remedy=remedy)
    except ValueError:
        data = _unversioned_statistics(path)
        if data is None:
            raise
    try:
        return DurationStatistics.from_dict(data)
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not valid duration statistics ({error!r}); {remedy}") from error


def _unversioned_statistics(path) -> dict | None:
    """The content of a statistics file from before `"format_version"` was written, else None."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("format") == STATISTICS_FORMAT and "format_version" not in data:
        return data
    return None
