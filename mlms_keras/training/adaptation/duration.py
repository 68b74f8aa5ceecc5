"""Adapting a duration model (`mlms_keras.models.duration`) to a new language and speaker of a prepared dataset.

The recipe is `mlms zoo train-duration --adapt`'s (`mlms_keras.training.duration.train_duration_on_prepared`): a
new language code and a new speaker output layer copied from the closest trained speaker (`closest_speaker` on the
new speaker's training phonemes, each trained speaker tried with its own language), trained with the paper's
variant (`adapt`), each phase keeping its best dev epoch. Here it runs on a model that is already loaded (a zoo
voice's, grown to the dataset's features by `mlms_keras.models.growth.grow_model_inputs`) and, like the acoustic
adaptation, resumes after a kill: a working folder holds the `BackupAndRestore` state and the history.

`duration_pair_metrics` scores the adapted pair on a split with the *model's* ids (the dataset numbers its own
languages and speakers), with the definitions of `mlms_keras.training.duration.evaluate_duration_model`: whole
frames, silence and pause rows excluded.

Example:
    >>> result, history = adapt_duration_on_prepared(model, stats, "data/sv", "sv", "sv-f2", "work/duration",
    ...                                              AdaptationOptions(variant="v1"))      # doctest: +SKIP
    >>> duration_pair_metrics(model, stats, "data/sv", "sv", "sv-f2", result.language_id, result.speaker_id)
    ... # doctest: +SKIP
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np

from mlms_keras.data.manifest import Manifest
from mlms_keras.data.pipeline import read_utterances
from mlms_keras.evaluation.metrics import duration_rmse_frames
from mlms_keras.models.duration import DurationStatistics, predict_durations, silence_rows
from mlms_keras.training.adaptation.driver import AdaptationOptions, AdaptationResult, adapt_resumably
from mlms_keras.training.duration import load_duration_dataset

__all__ = ["adapt_duration_on_prepared", "duration_pair_metrics"]


def adapt_duration_on_prepared(
    model: keras.Model,
    statistics: DurationStatistics,
    dataset_path,
    language: str,
    speaker: str,
    out_dir,
    options: AdaptationOptions | None = None,
    *,
    candidates: list[tuple[int, int]] | None = None,
    verbose="auto",
) -> tuple[AdaptationResult, dict]:
    """Adapts a loaded duration model to one language and speaker of a prepared dataset, resumably (module docstring).

    Args:
        model: a duration model whose inputs are the dataset's phoneme features (`layout.dimension`); grown in
            place by one language code and one speaker output layer.
        statistics: its `DurationStatistics`, for the dataset's feature layout (`layout_fingerprint`).
        dataset_path: prepared dataset with the pair's train and dev splits.
        language, speaker: the dataset's language code and speaker name.
        out_dir: the working folder (`history.json`, and `backup/` while unfinished).
        options: the variant, `epochs_per_phase`, `batch_size`, `learning_rate`, `seed` and `steps_per_epoch`
            (default `AdaptationOptions()`).
        candidates: `(language id, speaker id)` pairs of `model` that `closest_speaker` tries (None: all).
        verbose: passed to `fit`.

    Returns:
        `(result, history)`: the `AdaptationResult` (with `speaker_distance`) and the per-epoch history.
    """
    out_dir = Path(out_dir)
    manifest = Manifest.load(dataset_path)
    options = options or AdaptationOptions()

    def data(split, **settings):
        return load_duration_dataset(
            manifest,
            split,
            statistics,
            options.batch_size,
            languages=[language],
            speakers=[speaker],
            seed=options.seed,
            **settings,
        )

    train_data = data("train", repeat=options.steps_per_epoch is not None)
    return adapt_resumably(
        model,
        train_data,
        data("dev"),
        lambda: data("train", shuffle=False),
        options,
        out_dir,
        candidates=candidates,
        verbose=verbose,
    )


def duration_pair_metrics(
    model: keras.Model,
    statistics: DurationStatistics,
    dataset_path,
    language: str,
    speaker: str,
    language_id: int,
    speaker_id: int,
    split: str = "dev",
) -> dict:
    """Duration RMSE (frames) and correlation of one (language, speaker) of a prepared split, with the model's ids.

    Args:
        model, statistics: the duration model and its statistics (for the dataset's layout).
        dataset_path: prepared dataset folder.
        language, speaker: the dataset's language code and speaker name whose utterances are scored.
        language_id, speaker_id: their ids in `model`.
        split: usually `"dev"`.

    Returns:
        dict: `duration_rmse_frames`, `duration_corr` and `phonemes` (the speech phonemes scored).

    Raises:
        ValueError: the split has no utterance of the pair.
    """
    layout = Manifest.load(dataset_path).layout
    references, predictions = [], []
    for record in read_utterances(dataset_path, split):
        if record["language_code"] != language or record["speaker_name"] != speaker:
            continue
        features = record["phoneme_linguistic"]
        predicted = predict_durations(model, statistics, features, language_id, speaker_id, layout)
        speech = ~silence_rows(features, layout)
        references.append(np.asarray(record["durations"])[speech].astype(np.float64))
        predictions.append(predicted[speech].astype(np.float64))
    if not references:
        raise ValueError(f"{dataset_path}: split {split!r} has no utterance of {language}/{speaker}")
    reference, predicted = np.concatenate(references), np.concatenate(predictions)
    return {
        "duration_rmse_frames": duration_rmse_frames(reference, predicted),
        "duration_corr": float(np.corrcoef(reference, predicted)[0, 1]) if reference.size > 1 else math.nan,
        "phonemes": int(reference.size),
    }
