"""ClusterAdaptiveTowers: the mean tower plus L language basis towers of Li & Zen (2016), Eq. 1.

All towers run as one computation; their weights live in `mlms_keras.layers.tower_weights` (`TowerStack`,
`LanguageCodes`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from mlms_keras.layers.lstmp import LSTMPState
from mlms_keras.layers.lstmp_loops import lstmp_sequence
from mlms_keras.layers.serialization import SERIALIZATION_PACKAGE
from mlms_keras.layers.streaming import StreamingState
from mlms_keras.layers.tower_weights import LanguageCodes, LSTMPWeights, TowerStack
from mlms_keras.layers.validation import checked_ids
from mlms_keras.utils.validation import check_integer

__all__ = ["CODE_INITS", "JIT_RECURRENCE_MODES", "ClusterAdaptiveTowers"]

CODE_INITS = ("random", "one_hot", "one_hot_fixed")
JIT_RECURRENCE_MODES = ("training", "always", "never")


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class ClusterAdaptiveTowers(keras.layers.Layer):
    """Cluster-adaptive towers: a mean tower plus L language basis towers weighted by a language code.

    Computes `h_t^(u) = M_mean(x_1..x_t) + sum_l lambda_l^(u) M_l(x_1..x_t)` (Li & Zen 2016, Eq. 1).
    Every tower is a ReLU projection followed by `lstm_layers` LSTMP layers (sec. 2, 4.1). All L+1
    towers run as one computation: the input-side matrix products are done for all frames and all
    towers at once, outside the time loop, and one loop steps every tower's recurrence together
    through a batched matmul over the tower axis.

    The mean tower (`mean_tower`), the basis towers (`basis_towers`) and the language codes
    (`language_codes`) are separate sub-layers, so the adaptation variants (sec. 4.2) can freeze
    each with `trainable = False`.

    Args:
        num_languages: U, number of language codes.
        language_space_dim: L, number of basis towers (0 gives a mean tower only: the SLSS baseline).
        relu_units: units of each tower's ReLU projection (256 in the paper).
        lstm_layers: LSTMP layers per tower (3 in the paper).
        lstm_cells: memory cells per LSTMP layer (256 in the paper).
        lstm_projection: recurrent projection size, the output size P (128 in the paper).
        code_init: `"random"` (default, the paper's best), `"one_hot"` or `"one_hot_fixed"`
            (held constant; requires L == U).
        stateful: carry the recurrent state across calls for streaming (needs a static batch size).
        added_languages: languages appended by `add_language` after training (kept in the config so
            a saved adapted model rebuilds with the right codes).
        jit_recurrence: when the time loops run through XLA: `"training"` (default; training
            batches come in a few bucketed shapes, so the per-shape compile pays off), `"always"`
            (also inference: fastest for fixed shapes, but every new length compiles, ~0.5-1 s), or
            `"never"`.

    Call arguments:
        frames: `(batch, frames, input_dim)` frame-level linguistic features.
        language: `(batch,)` integer language ids in `[0, num_languages)`. May be omitted when
            `language_space_dim == 0`.
        frames_mask: optional `(batch, frames)` boolean (Keras passes it from a `Masking` layer).
            Masked frames hold the recurrent state and give zero output.
        training: Python boolean. In training the LSTMP loops keep what the hand-written backward
            pass needs (and, with `jit_recurrence="training"`, run through XLA); in inference they
            do only the forward work.

    Returns:
        `(batch, frames, lstm_projection)` language-dependent hidden activations `h^(u)`.

    Example:

    >>> towers = ClusterAdaptiveTowers(num_languages=3, language_space_dim=2, relu_units=8,
    ...                                lstm_layers=2, lstm_cells=8, lstm_projection=4)
    >>> tuple(towers(np.zeros((2, 5, 6), "float32"), np.array([0, 2])).shape)
    (2, 5, 4)

    Reference: Li & Zen (2016), Eq. 1; Sak et al. (2014) for LSTMP.
    """

    def __init__(
        self,
        num_languages: int,
        language_space_dim: int,
        relu_units: int = 256,
        lstm_layers: int = 3,
        lstm_cells: int = 256,
        lstm_projection: int = 128,
        code_init: str = "random",
        stateful: bool = False,
        added_languages: int = 0,
        jit_recurrence: str = "training",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        num_languages = check_integer("num_languages", num_languages)
        language_space_dim = check_integer("language_space_dim", language_space_dim, minimum=0)
        relu_units = check_integer("relu_units", relu_units)
        lstm_layers = check_integer("lstm_layers", lstm_layers)
        lstm_cells = check_integer("lstm_cells", lstm_cells)
        lstm_projection = check_integer("lstm_projection", lstm_projection)
        added_languages = check_integer("added_languages", added_languages, minimum=0)
        if jit_recurrence not in JIT_RECURRENCE_MODES:
            raise ValueError(
                f"`jit_recurrence` must be one of {JIT_RECURRENCE_MODES}. Received: jit_recurrence={jit_recurrence!r}"
            )
        if code_init not in CODE_INITS:
            raise ValueError(f"`code_init` must be one of {CODE_INITS}. Received: code_init={code_init!r}")
        base_languages = num_languages - added_languages
        if code_init == "one_hot_fixed" and language_space_dim != base_languages:
            raise ValueError(
                "`code_init='one_hot_fixed'` needs language_space_dim == num_languages; received "
                f"language_space_dim={language_space_dim}, num_languages={base_languages}"
            )
        if code_init == "one_hot" and language_space_dim < base_languages:
            raise ValueError(
                "`code_init='one_hot'` needs language_space_dim >= num_languages to give each language its own "
                f"axis; received language_space_dim={language_space_dim}, num_languages={base_languages}. "
                "Use code_init='random'."
            )
        self.num_languages = num_languages
        self.language_space_dim = language_space_dim
        self.relu_units = relu_units
        self.lstm_layers = lstm_layers
        self.lstm_cells = lstm_cells
        self.lstm_projection = lstm_projection
        self.code_init = code_init
        self.stateful = stateful
        self.added_languages = added_languages
        self.jit_recurrence = jit_recurrence
        self.supports_masking = True
        sizes = dict(
            relu_units=relu_units, lstm_layers=lstm_layers, lstm_cells=lstm_cells, lstm_projection=lstm_projection
        )
        self.mean_tower = TowerStack(1, name="mean_tower", **sizes)
        self.basis_towers: TowerStack | None = None
        self.language_codes: LanguageCodes | None = None
        if self.language_space_dim > 0:
            self.basis_towers = TowerStack(self.language_space_dim, name="basis_towers", **sizes)
            self.language_codes = LanguageCodes(
                num_languages, language_space_dim, code_init, added_languages, name="language_codes"
            )
        self._streaming_state: StreamingState | None = None
        self.input_dim: int | None = None

    @property
    def num_towers(self) -> int:
        """The mean tower plus the L basis towers."""
        return 1 + self.language_space_dim

    def build(self, frames_shape: tuple[int | None, ...], language_shape: tuple[int | None, ...] | None = None) -> None:
        if len(frames_shape) != 3:
            raise ValueError(
                f"`frames` must have shape (batch, frames, features); received shape {tuple(frames_shape)}"
            )
        if frames_shape[-1] is None:
            raise ValueError("`frames` needs a known feature dimension (last axis); received None")
        self.input_dim = int(frames_shape[-1])
        self.mean_tower.build(frames_shape)
        if self.basis_towers is not None:
            self.basis_towers.build(frames_shape)
            self.language_codes.build()
        if self.stateful:
            batch_size = frames_shape[0]
            if batch_size is None:
                raise ValueError("`stateful=True` needs a static batch size: pass `batch_size` to keras.Input")
            self._streaming_state = StreamingState(self._zero_state(batch_size))

    def _zero_state(self, batch_size) -> list[LSTMPState]:
        """One zero `LSTMPState` per LSTMP layer, tower-major: `(towers, batch, units)`."""
        return [
            LSTMPState(
                projection=tf.zeros((self.num_towers, batch_size, self.lstm_projection), self.compute_dtype),
                cells=tf.zeros((self.num_towers, batch_size, self.lstm_cells), self.compute_dtype),
            )
            for _ in range(self.lstm_layers)
        ]

    def reset_states(self) -> None:
        """Zeros the streaming state (start of a new utterance). Only for `stateful=True`."""
        if self._streaming_state is not None:
            self._streaming_state.reset()

    def add_language(self, initial_code: Sequence[float] | np.ndarray | None = None) -> int:
        """Adds a language: one new trainable code row, every existing weight untouched.

        Args:
            initial_code: optional `(L,)` start value; random (as `code_init="random"`) when omitted.

        Returns:
            The new language's id (the previous `num_languages`).
        """
        if self.language_codes is None:
            raise ValueError("This layer has no language space (language_space_dim=0); it cannot add languages")
        if not self.built:
            raise ValueError("Build the layer (call it once) before adding a language")
        language = self.language_codes.add_language(initial_code)
        self.num_languages = self.language_codes.num_languages
        self.added_languages = self.language_codes.added_languages
        return language

    def _stacked(self, weights: Callable[[TowerStack], Any]) -> Any:
        """Concatenates one weight of the mean and basis towers on the tower axis (mean tower first)."""
        stacks = [self.mean_tower] + ([self.basis_towers] if self.basis_towers is not None else [])
        parts = [weights(stack) for stack in stacks]
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=0)

    def _stacked_lstm_weights(self, layer: int) -> LSTMPWeights:
        """The weights of LSTMP layer `layer` of every tower, on one tower axis."""
        return LSTMPWeights(
            **{
                field: self._stacked(lambda stack, field=field: getattr(stack.lstm_weights[layer], field))
                for field in LSTMPWeights._fields
            }
        )

    def _check_language(self, language):
        if language is None:
            if self.language_space_dim > 0:
                raise ValueError("`language` is required when language_space_dim > 0")
            return None
        return checked_ids(language, self.num_languages, "language", "add_language")

    def call(self, frames, language=None, frames_mask=None, training: bool | None = None):
        if frames.shape[-1] != self.input_dim:
            raise ValueError(
                f"`frames` must have {self.input_dim} features (last axis); received shape {tuple(frames.shape)}"
            )
        language = self._check_language(language)
        batch_size, num_frames = ops.shape(frames)[0], ops.shape(frames)[1]
        towers = self.num_towers
        mask = None if frames_mask is None else ops.transpose(ops.cast(frames_mask, "bool"))  # (frames, batch)

        # Input-side products for every frame and tower at once, time-major rows (frame, batch).
        flat_frames = ops.reshape(ops.transpose(frames, (1, 0, 2)), (1, -1, self.input_dim))
        layer_input = ops.relu(
            ops.matmul(flat_frames, self._stacked(lambda stack: stack.relu_kernel))
            + self._stacked(lambda stack: stack.relu_bias)[:, None, :]
        )  # (towers, frames * batch, relu_units)

        jit_compile = self.jit_recurrence == "always" or (self.jit_recurrence == "training" and bool(training))
        state = self._streaming_state.read() if self.stateful else tuple(self._zero_state(batch_size))
        final_state = []
        for j, layer_state in enumerate(state):
            weights = self._stacked_lstm_weights(j)
            gate_inputs = ops.matmul(layer_input, weights.kernel) + weights.bias[:, None, :]
            gate_inputs = ops.transpose(
                ops.reshape(gate_inputs, (towers, num_frames, batch_size, 4 * self.lstm_cells)), (1, 0, 2, 3)
            )  # (frames, towers, batch, 4 * cells)

            outputs, final_projection, final_cells = lstmp_sequence(
                gate_inputs,
                weights.recurrent_kernel,
                weights.projection_kernel,
                layer_state.projection,
                layer_state.cells,
                mask,
                jit_compile=jit_compile,
                save_for_backward=bool(training),
            )
            final_state.append(LSTMPState(final_projection, final_cells))
            layer_input = ops.reshape(ops.transpose(outputs, (1, 0, 2, 3)), (towers, -1, self.lstm_projection))
        if self.stateful:
            self._streaming_state.write(final_state)

        # Eq. 1: weight 1 for the mean tower, lambda_l(u) for basis tower l.
        tower_weights = ops.ones((batch_size, 1), dtype=outputs.dtype)
        if self.language_codes is not None:
            codes = ops.take(self.language_codes.matrix(), language, axis=0)
            tower_weights = ops.concatenate([tower_weights, ops.cast(codes, outputs.dtype)], axis=1)
        return ops.einsum("tkbp,bk->btp", outputs, tower_weights)

    def compute_output_shape(
        self, frames_shape: tuple[int | None, ...], language_shape: tuple[int | None, ...] | None = None
    ) -> tuple[int | None, ...]:
        return tuple(frames_shape[:2]) + (self.lstm_projection,)

    def compute_mask(self, frames, previous_mask=None):
        return previous_mask

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_languages": self.num_languages,
                "language_space_dim": self.language_space_dim,
                "relu_units": self.relu_units,
                "lstm_layers": self.lstm_layers,
                "lstm_cells": self.lstm_cells,
                "lstm_projection": self.lstm_projection,
                "code_init": self.code_init,
                "stateful": self.stateful,
                "added_languages": self.added_languages,
                "jit_recurrence": self.jit_recurrence,
            }
        )
        return config
