"""The new (language, speaker) pair of an adaptation: growing the model by one language code and one speaker output
layer, choosing the closest trained speaker to start from, and giving the adaptation data the pair's ids.

"Closest" is concrete (`closest_speaker`): for each candidate (language u, speaker s) of the trained model, run the
model with language u and speaker s on the new speaker's data and pool the squared error over all non-padded
frames and all 49 outputs (`mlms_keras.training.losses.masked_squared_error_sums_numpy`); the closest speaker is
the s of the pair with the lowest mean. Its output layer is the new speaker's starting point
(`SpeakerRNNOutput.add_speaker(copy_from=s)`).
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from mlms_keras.models.inference import predict
from mlms_keras.training.losses import frame_mask, masked_squared_error_sums_numpy

__all__ = [
    "SEARCH_BATCHES",
    "SpeakerDistance",
    "add_language_and_speaker",
    "check_dataset_pair",
    "closest_speaker",
    "with_ids",
]

#: Batches of the new speaker's data `closest_speaker` scores by default: every candidate runs over each batch, so
#: the search would otherwise cost as many forward passes over the corpus as there are candidates; a sample of
#: this size already ranks the speakers.
SEARCH_BATCHES = 4


def with_ids(dataset: tf.data.Dataset, language: int, speaker: int) -> tf.data.Dataset:
    """Maps a `tf.data` dataset of `(inputs, targets[, mask])` so every sequence has this language and speaker id.

    Adaptation data is one language and one speaker, but a prepared dataset numbers them in its own tables;
    this puts the adapted model's ids in (e.g. the id `add_language` returned).

    Args:
        dataset: batched elements `({"linguistic", "language" (batch,), "speaker" (batch,)}, acoustic, ...)`.
        language, speaker: the model's ids.
    """

    def replace(inputs, *rest):
        inputs = dict(inputs)
        inputs["language"] = tf.fill(tf.shape(inputs["language"]), tf.cast(language, inputs["language"].dtype))
        inputs["speaker"] = tf.fill(tf.shape(inputs["speaker"]), tf.cast(speaker, inputs["speaker"].dtype))
        return (inputs, *rest)

    return dataset.map(replace)


@dataclasses.dataclass
class SpeakerDistance:
    """Result of `closest_speaker`.

    Attributes:
        speaker: id of the existing speaker whose output layer predicts the new data best.
        language: the language id used with it (the pair with the lowest MSE).
        mse: that pair's masked MSE (normalised units, pooled over frames and the 49 dimensions).
        table: dict `(language, speaker) -> mse` for every candidate pair.
    """

    speaker: int
    language: int
    mse: float
    table: dict


def closest_speaker(
    model: keras.Model,
    dataset,
    candidates: list[tuple[int, int]] | None = None,
    max_batches: int | None = SEARCH_BATCHES,
) -> SpeakerDistance:
    """Finds the existing speaker whose output layer best fits a new speaker's data (see the module docstring).

    Use the new speaker's *training* data here, so that the dev set stays untouched for model selection.

    Args:
        model: a trained MLMS model.
        dataset: iterable of `(inputs, targets[, mask])` batches of the new speaker (ids are overridden).
        candidates: list of `(language, speaker)` pairs to try; default: every language with every speaker.
            A good choice is each speaker with its own training language (what `mlms adapt` passes).
        max_batches: use only the first `max_batches` batches (None: all).

    Returns:
        A `SpeakerDistance`.
    """
    towers, speakers = model.get_layer("towers"), model.get_layer("acoustic")
    if candidates is None:
        candidates = [(u, s) for u in range(towers.num_languages) for s in range(speakers.num_speakers)]
    candidates = [(int(u), int(s)) for u, s in candidates]
    if not candidates:
        raise ValueError("`candidates` is empty; give at least one (language, speaker) pair")
    error_sums = dict.fromkeys(candidates, 0.0)
    valid_frames = 0.0
    for batch_index, element in enumerate(dataset):
        if max_batches is not None and batch_index >= max_batches:
            break
        inputs, targets = element[0], np.asarray(element[1])
        keep = frame_mask(np.asarray(inputs["linguistic"]))
        batch_size = keep.shape[0]
        for language, speaker in candidates:
            trial = dict(inputs)
            trial["language"] = np.full((batch_size,), language, "int32")
            trial["speaker"] = np.full((batch_size,), speaker, "int32")
            predicted = predict(model, trial)
            error_sum, valid = masked_squared_error_sums_numpy(targets, predicted, keep)
            error_sums[(language, speaker)] += error_sum
        valid_frames += valid
    if valid_frames == 0:
        raise ValueError("closest_speaker: the dataset has no non-padded frames; check the adaptation data")
    table = {pair: total / valid_frames for pair, total in error_sums.items()}
    (language, speaker), mse = min(table.items(), key=lambda item: item[1])
    return SpeakerDistance(speaker=speaker, language=language, mse=mse, table=table)


def add_language_and_speaker(
    model: keras.Model, copy_speaker_from: int | None = None, initial_code=None
) -> tuple[int, int]:
    """Grows a trained MLMS model by one language code (random by default) and one speaker output layer.

    Args:
        model: model from `build_mlms_model`.
        copy_speaker_from: existing speaker id whose output layer initialises the new one; None: fresh
            initialisation (Glorot forward matrix, zero recurrence and bias).
        initial_code: optional (L,) start value of the new code; random (normal, stddev 1/sqrt(L)) otherwise.

    Returns:
        `(language_id, speaker_id)` of the new pair. Recompile the model before training it.
    """
    language_id = model.get_layer("towers").add_language(initial_code=initial_code)
    speaker_id = model.get_layer("acoustic").add_speaker(copy_from=copy_speaker_from)
    return language_id, speaker_id


def check_dataset_pair(manifest, language: str, speaker: str) -> None:
    """Checks that a prepared dataset (`Manifest`) has `language` and `speaker`, and that the speaker speaks it.

    Raises:
        ValueError: naming the dataset's tables, or the speaker's language there.
    """
    manifest.language_id(language)
    manifest.speaker_id(speaker)  # both raise naming the dataset's tables
    if manifest.speakers[speaker]["language"] != language:
        raise ValueError(
            f"speaker {speaker!r} speaks {manifest.speakers[speaker]['language']!r} in {manifest.folder}, "
            f"not {language!r}"
        )
