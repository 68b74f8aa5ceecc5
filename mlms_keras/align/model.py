"""The aligner's acoustic model: log-mel frames -> articulatory-feature and silence posteriors per frame.

Architecture (`AlignerConfig`): three 1-D convolutions (ReLU, kernel 5, dilations 1, 2, 4: 25 frames = 125 ms of
context), a bidirectional GRU, and a sigmoid output layer with one unit per panphon feature plus one for silence.
It is trained in Keras (`build_keras_model`, `mlms_keras.align.training`) and runs in numpy (`AlignerModel`):
inference needs no TensorFlow, so corpus workers fork cheaply and `mlms align` on one file starts fast. The numpy
forward pass equals Keras's (`tests/align/test_model.py` checks it against `keras.Model.predict`).

Saved form (a folder): `aligner.json` (format `mlms-aligner`: the config, the emission settings, the training
record and the sha256 of the weights) and `weights.npz` (one array per Keras weight, named `layer/index`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from mlms_keras.align.features import NUM_MELS
from mlms_keras.align.phones import NUM_FEATURES
from mlms_keras.utils.fileio import atomic_output, atomic_write_json
from mlms_keras.utils.jsonfile import read_versioned_json
from mlms_keras.zoo.registry import check_sha256, sha256_of

__all__ = [
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "AlignerConfig",
    "AlignerModel",
    "build_keras_model",
]

MODEL_FORMAT = "mlms-aligner"
MODEL_FORMAT_VERSION = 1
CONFIG_NAME = "aligner.json"
WEIGHTS_NAME = "weights.npz"


@dataclasses.dataclass(frozen=True)
class AlignerConfig:
    """Sizes of the acoustic model.

    Attributes:
        num_mels: input bands (40 log-mel bands, `mlms_keras.align.features`).
        conv_filters: filters of each convolution.
        conv_kernel: kernel width (frames).
        dilations: one convolution per entry, with this dilation.
        gru_units: units of each direction of the bidirectional GRU.
        num_outputs: panphon features + 1 silence unit.
    """

    num_mels: int = NUM_MELS
    conv_filters: int = 96
    conv_kernel: int = 5
    dilations: tuple[int, ...] = (1, 2, 4)
    gru_units: int = 64
    num_outputs: int = NUM_FEATURES + 1

    @classmethod
    def from_dict(cls, data: dict) -> AlignerConfig:
        """From `dataclasses.asdict` output (lists become tuples)."""
        data = dict(data)
        data["dilations"] = tuple(data["dilations"])
        return cls(**data)


def build_keras_model(config: AlignerConfig):
    """The Keras form of the model: input `(batch, frames, num_mels)`, output `(batch, frames, num_outputs)`
    sigmoid probabilities. Layer names match the numpy weights (`conv0`.., `bigru`, `output`)."""
    import keras

    inputs = keras.Input((None, config.num_mels), name="log_mel")
    hidden = inputs
    for index, dilation in enumerate(config.dilations):
        hidden = keras.layers.Conv1D(
            config.conv_filters,
            config.conv_kernel,
            padding="same",
            dilation_rate=dilation,
            activation="relu",
            name=f"conv{index}",
        )(hidden)
    hidden = keras.layers.Bidirectional(
        keras.layers.GRU(config.gru_units, return_sequences=True), merge_mode="concat", name="bigru"
    )(hidden)
    outputs = keras.layers.Dense(config.num_outputs, activation="sigmoid", name="output")(hidden)
    return keras.Model(inputs, outputs, name="aligner")


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # stable for large |x|


def _conv_same(x, kernel, bias, dilation):
    """Keras `Conv1D(padding="same")` on `(frames, channels)`: kernel `(width, in, out)`."""
    width = kernel.shape[0]
    total = dilation * (width - 1)
    padded = np.pad(x, ((total // 2, total - total // 2), (0, 0)))
    frames = x.shape[0]
    out = np.broadcast_to(bias, (frames, kernel.shape[2])).astype(np.float32).copy()
    for tap in range(width):
        out += padded[tap * dilation : tap * dilation + frames] @ kernel[tap]
    return out


def _gru(x, kernel, recurrent, bias, reverse):
    """Keras `GRU(reset_after=True)` over `(frames, in)` -> `(frames, units)`; gate order z, r, h."""
    units = recurrent.shape[0]
    inputs = x @ kernel + bias[0]
    outputs = np.empty((x.shape[0], units), np.float32)
    state = np.zeros(units, np.float32)
    rec_bias = bias[1]
    order = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    for step in order:
        inner = state @ recurrent + rec_bias
        gates = _sigmoid(inputs[step, : 2 * units] + inner[: 2 * units])
        update, reset = gates[:units], gates[units:]
        candidate = np.tanh(inputs[step, 2 * units :] + reset * inner[2 * units :])
        state = update * state + (1.0 - update) * candidate
        outputs[step] = state
    return outputs


class AlignerModel:
    """The acoustic model with its weights, for inference in numpy.

    Attributes:
        config: the `AlignerConfig`.
        weights: `{name: array}` as saved (`conv0/0` kernel, `conv0/1` bias, `bigru/0..5`, `output/0..1`).
        metadata: the rest of `aligner.json` (emission settings, training record).
    """

    def __init__(self, config: AlignerConfig, weights: dict, metadata: dict | None = None):
        self.config = config
        self.weights = {name: np.asarray(value, np.float32) for name, value in weights.items()}
        self.metadata = dict(metadata or {})

    @classmethod
    def from_keras(cls, model, config: AlignerConfig, metadata: dict | None = None) -> AlignerModel:
        """Copy the weights of a `build_keras_model` model."""
        weights = {}
        for layer in model.layers:
            for index, value in enumerate(layer.get_weights()):
                weights[f"{layer.name}/{index}"] = value
        return cls(config, weights, metadata)

    def to_keras(self):
        """A `build_keras_model` model holding these weights (for fine-tuning)."""
        model = build_keras_model(self.config)
        for layer in model.layers:
            count = len(layer.get_weights())
            if count:
                layer.set_weights([self.weights[f"{layer.name}/{index}"] for index in range(count)])
        return model

    def posteriors(self, features: np.ndarray) -> np.ndarray:
        """Per-frame probabilities: `(frames, num_mels)` normalised log-mel -> `(frames, num_outputs)` float32.

        Columns `0..NUM_FEATURES-1` are P(feature is +), the last column is P(silence).
        """
        hidden = np.asarray(features, np.float32)
        if hidden.ndim != 2 or hidden.shape[1] != self.config.num_mels:
            raise ValueError(f"features must be (frames, {self.config.num_mels}), got shape {hidden.shape}")
        w = self.weights
        for index, dilation in enumerate(self.config.dilations):
            hidden = np.maximum(_conv_same(hidden, w[f"conv{index}/0"], w[f"conv{index}/1"], dilation), 0.0)
        forward = _gru(hidden, w["bigru/0"], w["bigru/1"], w["bigru/2"], reverse=False)
        backward = _gru(hidden, w["bigru/3"], w["bigru/4"], w["bigru/5"], reverse=True)
        hidden = np.concatenate([forward, backward], axis=1)
        return _sigmoid(hidden @ w["output/0"] + w["output/1"]).astype(np.float32)

    def save(self, folder: str | os.PathLike) -> None:
        """Write `weights.npz` then `aligner.json` (with the weights' sha256) into `folder`, atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_output(folder / WEIGHTS_NAME) as temporary, open(temporary, "wb") as handle:
            np.savez(handle, **{name: self.weights[name] for name in sorted(self.weights)})
        payload = {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            **self.metadata,
            "config": dataclasses.asdict(self.config),
            "files": {WEIGHTS_NAME: sha256_of(folder / WEIGHTS_NAME)},
        }
        atomic_write_json(folder / CONFIG_NAME, payload)

    @classmethod
    def load(cls, folder: str | os.PathLike, sha256: str | None = None) -> AlignerModel:
        """Read a saved model, checking the weights against the sha256 in `aligner.json`.

        Args:
            folder: the model folder.
            sha256: when given, `aligner.json` must have this sha256 too (the zoo pins it).

        Raises:
            FileNotFoundError: no `aligner.json` there.
            ValueError: a hash mismatch or a file of another format.
        """
        folder = Path(folder)
        config_path = folder / CONFIG_NAME
        if not config_path.is_file():
            raise FileNotFoundError(
                f"{config_path}: no aligner model here; give a folder written by AlignerModel.save."
            )
        if sha256 is not None:
            check_sha256(config_path, sha256, f"aligner {folder.name}/{CONFIG_NAME}")
        data = read_versioned_json(
            config_path,
            MODEL_FORMAT,
            MODEL_FORMAT_VERSION,
            "aligner model",
            "rebuild it with mlms_keras.align.pretrain",
        )
        files = data.get("files", {})
        if WEIGHTS_NAME not in files:
            raise ValueError(f"{config_path}: lists no sha256 for {WEIGHTS_NAME}; the model cannot be verified.")
        check_sha256(folder / WEIGHTS_NAME, files[WEIGHTS_NAME], f"aligner {folder.name}/{WEIGHTS_NAME}")
        with np.load(folder / WEIGHTS_NAME, allow_pickle=False) as archive:
            weights = {name: archive[name] for name in archive.files}
        metadata = {key: value for key, value in data.items() if key not in ("format", "format_version", "config")}
        metadata.pop("files", None)
        return cls(AlignerConfig.from_dict(data["config"]), weights, metadata)
