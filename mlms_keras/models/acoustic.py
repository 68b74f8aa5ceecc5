"""Model builders: the MLMS acoustic model (Li & Zen 2016) and its single-language baseline.

`build_mlms_model(config)` composes `ClusterAdaptiveTowers` and `SpeakerRNNOutput` into a Functional
model with inputs `linguistic (batch, frames, input_dim)`, `language (batch,)`, `speaker (batch,)`
and output `acoustic (batch, frames, output_dim)`. Padded frames are all-zero rows of `linguistic`:
a `Masking` layer turns them into a mask, the recurrent layers hold their state there, and Keras
drops them from the loss.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import keras

from mlms_keras.layers import ClusterAdaptiveTowers, SpeakerRNNOutput
from mlms_keras.layers.towers import CODE_INITS
from mlms_keras.utils.validation import check_integer

__all__ = [
    "ACOUSTIC_DIM",
    "PRESETS",
    "MLMSConfig",
    "build_mlms_model",
    "build_slss_model",
    "config_of",
    "reset_streaming_state",
]

#: Vocoder parameters per 5 ms frame: 40 mcep + lf0 + vuv + 7 bap (paper sec. 3).
ACOUSTIC_DIM = 49

#: The smallest value of each integer field of `MLMSConfig` (L = 0 is the SLSS baseline's mean tower alone).
_INTEGER_FIELDS = {
    "input_dim": 1,
    "num_languages": 1,
    "num_speakers": 1,
    "language_space_dim": 0,
    "relu_units": 1,
    "lstm_layers": 1,
    "lstm_cells": 1,
    "lstm_projection": 1,
    "output_dim": 1,
}


@dataclasses.dataclass(frozen=True)
class MLMSConfig:
    """Sizes of an MLMS acoustic model.

    Attributes:
        input_dim: frame-level linguistic feature dimension D.
        num_languages: U, languages with a code vector.
        num_speakers: S, speakers with an output layer.
        language_space_dim: L, basis towers (paper: 6).
        relu_units: ReLU projection units per tower (paper: 256).
        lstm_layers: LSTMP layers per tower (paper: 3).
        lstm_cells: memory cells per LSTMP layer (paper: 256).
        lstm_projection: LSTMP projection size, the hidden size fed to the output layers (paper: 128).
        output_dim: vocoder parameters per frame (49).
        code_init: `"random"`, `"one_hot"` or `"one_hot_fixed"` (paper sec. 4.1).

    Raises:
        ValueError: a size is not an integer in its range, or `code_init` is unknown (the message
            names the field and the value received).

    Example:

    >>> config = MLMSConfig.preset("tiny", input_dim=6, num_languages=3, num_speakers=4)
    >>> config.language_space_dim, config.lstm_projection
    (2, 8)
    """

    input_dim: int
    num_languages: int
    num_speakers: int
    language_space_dim: int
    relu_units: int = 256
    lstm_layers: int = 3
    lstm_cells: int = 256
    lstm_projection: int = 128
    output_dim: int = ACOUSTIC_DIM
    code_init: str = "random"

    def __post_init__(self) -> None:
        for name, minimum in _INTEGER_FIELDS.items():
            # Stored as a Python int (a numpy integer passes the check), so `to_dict` is plain JSON.
            object.__setattr__(self, name, check_integer(name, getattr(self, name), minimum))
        if self.code_init not in CODE_INITS:
            raise ValueError(f"`code_init` must be one of {CODE_INITS}. Received: code_init={self.code_init!r}")

    @classmethod
    def preset(
        cls, name: str, input_dim: int, num_languages: int = 6, num_speakers: int = 8, **overrides: Any
    ) -> MLMSConfig:
        """A named size preset.

        - `"paper"`: exactly sec. 4.1: mean tower + 6 basis towers, ReLU 256, 3 LSTMP layers of
          256 cells projected to 128, 49 outputs (about 7.8 M parameters at input_dim 400).
        - `"small"`: for zoo voices trained on 2 CPU cores: L=3, ReLU 128, 3 LSTMP layers of
          128 cells projected to 64 (about 1.3 M parameters at input_dim 400, 5 MB).
        - `"tiny"`: for tests: L=2, ReLU 16, 2 LSTMP layers of 16 cells projected to 8.

        Args:
            name: preset name.
            input_dim: linguistic feature dimension D (from the feature layout).
            num_languages, num_speakers: table sizes (paper: 6 training languages, 8 speakers).
            **overrides: any other field.
        """
        sizes = PRESETS.get(name)
        if sizes is None:
            raise ValueError(f"Unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        values = dict(sizes, input_dim=input_dim, num_languages=num_languages, num_speakers=num_speakers)
        values.update(overrides)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MLMSConfig:
        """Inverse of `to_dict`; unknown keys are an error naming them."""
        unknown = set(values) - {field.name for field in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"Unknown MLMSConfig fields {sorted(unknown)}")
        return cls(**values)

    def __str__(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


#: Named sizes for `MLMSConfig.preset`.
PRESETS = {
    "paper": dict(language_space_dim=6, relu_units=256, lstm_layers=3, lstm_cells=256, lstm_projection=128),
    "small": dict(language_space_dim=3, relu_units=128, lstm_layers=3, lstm_cells=128, lstm_projection=64),
    "tiny": dict(language_space_dim=2, relu_units=16, lstm_layers=2, lstm_cells=16, lstm_projection=8),
}


def _tower_sizes(config: MLMSConfig) -> dict[str, int]:
    return dict(
        relu_units=config.relu_units,
        lstm_layers=config.lstm_layers,
        lstm_cells=config.lstm_cells,
        lstm_projection=config.lstm_projection,
    )


def _inputs(config: MLMSConfig, batch_size: int | None) -> dict[str, keras.KerasTensor]:
    return {
        "linguistic": keras.Input(shape=(None, config.input_dim), batch_size=batch_size, name="linguistic"),
        "language": keras.Input(shape=(), batch_size=batch_size, dtype="int32", name="language"),
        "speaker": keras.Input(shape=(), batch_size=batch_size, dtype="int32", name="speaker"),
    }


def build_mlms_model(
    config: MLMSConfig,
    stateful: bool = False,
    batch_size: int | None = None,
    jit_recurrence: str = "training",
    name: str = "mlms",
) -> keras.Model:
    """Builds the MLMS acoustic model of Li & Zen (2016), Figure 1.

    Args:
        config: an `MLMSConfig`.
        stateful: build the streaming variant: recurrent state carries over between calls, so
            feeding an utterance in chunks gives the same output as one pass. Needs `batch_size`.
            Call `reset_streaming_state(model)` between utterances.
        batch_size: static batch size (required when stateful).
        jit_recurrence: when the towers' time loops run through XLA (`"training"`, `"always"`,
            `"never"`; see `ClusterAdaptiveTowers`).
        name: model name.

    Returns:
        A Functional `keras.Model`: inputs `{"linguistic": (batch, frames, input_dim) float32,
        "language": (batch,) int32, "speaker": (batch,) int32}`, output `acoustic`
        `(batch, frames, output_dim)` in normalised units. All-zero input frames are padding.

    Example:

    >>> model = build_mlms_model(MLMSConfig.preset("tiny", input_dim=6, num_languages=3, num_speakers=4))
    >>> model.output_shape
    (None, None, 49)
    """
    if stateful and batch_size is None:
        raise ValueError("`stateful=True` needs `batch_size` (e.g. batch_size=1 for streaming synthesis)")
    inputs = _inputs(config, batch_size)
    frames = keras.layers.Masking(mask_value=0.0, name="padding_mask")(inputs["linguistic"])
    hidden = ClusterAdaptiveTowers(
        num_languages=config.num_languages,
        language_space_dim=config.language_space_dim,
        code_init=config.code_init,
        stateful=stateful,
        jit_recurrence=jit_recurrence,
        name="towers",
        **_tower_sizes(config),
    )(frames, inputs["language"])
    acoustic = SpeakerRNNOutput(config.num_speakers, config.output_dim, stateful=stateful, name="acoustic")(
        hidden, inputs["speaker"]
    )
    return keras.Model(inputs, acoustic, name=name)


def build_slss_model(
    config: MLMSConfig,
    stateful: bool = False,
    batch_size: int | None = None,
    jit_recurrence: str = "training",
    name: str = "slss",
) -> keras.Model:
    """Builds the paper's single-language single-speaker baseline (sec. 4.1) with the same tower structure.

    One tower (ReLU projection + LSTMP layers, the sizes of `config`) and one recurrent output
    layer. It takes the same inputs as `build_mlms_model`, so the same `tf.data` pipelines feed it,
    and ignores `language` and `speaker` (train it on one language-speaker pair).

    Args:
        config: an `MLMSConfig`; `num_languages`, `num_speakers`, `language_space_dim` and
            `code_init` are ignored.
        stateful, batch_size, jit_recurrence, name: as in `build_mlms_model`.

    Returns:
        A Functional `keras.Model` with the inputs and output of `build_mlms_model`.
    """
    if stateful and batch_size is None:
        raise ValueError("`stateful=True` needs `batch_size`")
    inputs = _inputs(config, batch_size)
    frames = keras.layers.Masking(mask_value=0.0, name="padding_mask")(inputs["linguistic"])
    hidden = ClusterAdaptiveTowers(
        num_languages=1,
        language_space_dim=0,
        stateful=stateful,
        jit_recurrence=jit_recurrence,
        name="towers",
        **_tower_sizes(config),
    )(frames)
    acoustic = SpeakerRNNOutput(1, config.output_dim, stateful=stateful, name="acoustic")(hidden)
    return keras.Model(inputs, acoustic, name=name)


def reset_streaming_state(model: keras.Model) -> None:
    """Zeros the carried state of every stateful layer in `model` (start of a new utterance)."""
    for layer in model.layers:
        if hasattr(layer, "reset_states"):
            layer.reset_states()


def config_of(model: keras.Model) -> MLMSConfig:
    """Recovers the `MLMSConfig` of a model built by `build_mlms_model` (after adaptation too)."""
    towers = model.get_layer("towers")
    speakers = model.get_layer("acoustic")
    return MLMSConfig(
        input_dim=towers.input_dim,
        num_languages=towers.num_languages,
        num_speakers=speakers.num_speakers,
        language_space_dim=towers.language_space_dim,
        relu_units=towers.relu_units,
        lstm_layers=towers.lstm_layers,
        lstm_cells=towers.lstm_cells,
        lstm_projection=towers.lstm_projection,
        output_dim=speakers.output_dim,
        code_init=towers.code_init,
    )
