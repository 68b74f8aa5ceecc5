"""Training the aligner's acoustic model on aligned speech: frame targets from phone segments, and `fit_model`.

Targets (`frame_targets`): frame `i` (centred at `i * 5 ms`) belongs to the segment that contains its centre. A
phone frame asks for the phone's articulatory targets on the features the phone specifies, and 0 on the silence
unit; a silence frame asks for 1 on the silence unit and nothing of the features. Targets and their mask travel
packed as one `(frames, 2 * outputs)` array.

`fit_model` trains (or fine-tunes) on random crops of `crop_frames` frames with a masked binary cross-entropy. It is
used twice: to pretrain the shipped model on teacher speech (`mlms_keras.align.pretrain`) and, in the corpus-level
pass, to adapt it to a corpus on that corpus's own Viterbi alignments (`mlms_keras.align.corpus`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from mlms_keras.align.features import FEATURE_SAMPLE_RATE, HOP_SAMPLES
from mlms_keras.align.model import AlignerConfig, AlignerModel, build_keras_model
from mlms_keras.align.phones import NUM_FEATURES, AlignmentPhones

__all__ = ["FitOptions", "fit_model", "frame_index", "frame_targets", "targets_from_units"]

FRAME_S = HOP_SAMPLES / FEATURE_SAMPLE_RATE


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """Settings of `fit_model`.

    Attributes:
        epochs: passes over the crops.
        crop_frames: frames per training crop (an utterance shorter than this is one zero-padded crop).
        batch_size: crops per step.
        learning_rate: Adam's step size.
        seed: seeds the crop offsets, the shuffling and the initial weights.
    """

    epochs: int = 20
    crop_frames: int = 400
    batch_size: int = 16
    learning_rate: float = 2e-3
    seed: int = 0


def frame_index(seconds: float) -> int:
    """The first frame whose centre is at or after `seconds` (the frame a segment starting there begins with)."""
    return int(math.ceil(seconds / FRAME_S - 1e-6))


def frame_targets(kinds: list, num_frames: int, phones: AlignmentPhones) -> np.ndarray:
    """Packed targets `(num_frames, 2 * (NUM_FEATURES + 1))` from `(start_frame, end_frame, phone index or None)`
    entries (None = silence) in time order; frames no entry covers are silence."""
    outputs = NUM_FEATURES + 1
    packed = np.zeros((num_frames, 2 * outputs), np.float32)
    packed[:, NUM_FEATURES] = 1.0  # silence target
    packed[:, outputs + NUM_FEATURES] = 1.0  # silence mask
    for start, end, phone in kinds:
        start, end = max(0, start), min(num_frames, end)
        if end <= start or phone is None:
            continue
        packed[start:end, :NUM_FEATURES] = phones.targets[phone]
        packed[start:end, NUM_FEATURES] = 0.0
        if phones.known[phone]:  # an unknown phone teaches "not silence" only
            packed[start:end, outputs : outputs + NUM_FEATURES] = phones.target_mask[phone]
    return packed


def targets_from_units(units, num_frames: int, phones: AlignmentPhones) -> np.ndarray:
    """Packed targets from a Viterbi path (`mlms_keras.align.viterbi.PathUnits.units`)."""
    entries = [(start, end, index if kind == "phone" else None) for kind, index, start, end in units]
    return frame_targets(entries, num_frames, phones)


def _crops(examples, crop_frames: int, rng: np.random.Generator):
    inputs, targets = [], []
    for features, packed in examples:
        frames = features.shape[0]
        if frames <= crop_frames:
            starts = [0]
        else:
            offset = int(rng.integers(0, crop_frames))  # non-overlapping crops, shifted every epoch
            starts = list(range(offset, frames - crop_frames + 1, crop_frames))
            starts.append(int(rng.integers(0, offset + 1)) if offset else frames - crop_frames)
        for start in starts:
            x = np.zeros((crop_frames, features.shape[1]), np.float32)
            y = np.zeros((crop_frames, packed.shape[1]), np.float32)
            piece = slice(start, start + crop_frames)
            x[: features[piece].shape[0]] = features[piece]
            y[: packed[piece].shape[0]] = packed[piece]
            inputs.append(x)
            targets.append(y)
    return np.stack(inputs), np.stack(targets)


def _masked_bce(y_true, y_pred):
    import keras

    outputs = keras.ops.shape(y_pred)[-1]
    target, mask = y_true[..., :outputs], y_true[..., outputs:]
    probability = keras.ops.clip(y_pred, 1e-6, 1.0 - 1e-6)
    loss = -(target * keras.ops.log(probability) + (1.0 - target) * keras.ops.log(1.0 - probability))
    return keras.ops.sum(mask * loss, axis=-1) / keras.ops.cast(outputs, "float32")


def fit_model(
    examples: list,
    model: AlignerModel | None = None,
    config: AlignerConfig | None = None,
    options: FitOptions | None = None,
    metadata: dict | None = None,
    verbose: int = 0,
) -> tuple[AlignerModel, list]:
    """Train a new model (`model=None`) or fine-tune `model` on `(features, packed targets)` examples.

    Args:
        examples: `(features (frames, 40), packed (frames, 2 * outputs))` pairs (`frame_targets`).
        model: the model to start from, or `None` for fresh weights of `config`.
        config: sizes of a fresh model (default `AlignerConfig()`).
        options: `FitOptions`.
        metadata: kept in the returned model (emission settings, training record).
        verbose: Keras's verbosity.

    Returns:
        `(the trained AlignerModel, the loss per epoch)`.
    """
    import keras

    options = options or FitOptions()
    if not examples:
        raise ValueError("no training examples; the aligner needs aligned utterances to train on.")
    keras.utils.set_random_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    if model is None:
        config = config or AlignerConfig()
        network = build_keras_model(config)
    else:
        config = model.config
        network = model.to_keras()
    network.compile(optimizer=keras.optimizers.Adam(options.learning_rate, clipnorm=1.0), loss=_masked_bce)
    losses = []
    for _ in range(options.epochs):
        inputs, targets = _crops(examples, options.crop_frames, rng)
        history = network.fit(inputs, targets, batch_size=options.batch_size, epochs=1, shuffle=True, verbose=verbose)
        losses.append(float(history.history["loss"][-1]))
    merged = dict((model.metadata if model is not None else {}) | (metadata or {}))
    return AlignerModel.from_keras(network, config, merged), losses
