"""ClusterAdaptiveTowers: the mean tower plus L language basis towers of Li & Zen (2016), Eq. 1."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from mlms_keras.layers.growth import weights_may_be_added
from mlms_keras.layers.lstmp import SERIALIZATION_PACKAGE, lstm_bias_initializer, lstmp_sequence
from mlms_keras.layers.streaming import StreamingState
from mlms_keras.layers.validation import checked_ids

CODE_INITS = ("random", "one_hot", "one_hot_fixed")
JIT_RECURRENCE_MODES = ("training", "always", "never")


def _per_tower(initializer):
    """Applies a 2-D initializer to each `(rows, cols)` slice of a `(towers, rows, cols)` weight.

    Keras initializers read a 3-D shape as a convolution kernel and would scale by the
    number of towers; each tower must be initialised like a standalone layer.
    """
    initializer = keras.initializers.get(initializer)

    def initialize(shape, dtype=None):
        return ops.stack([initializer(shape[1:], dtype=dtype) for _ in range(shape[0])])

    return initialize


class TowerStack(keras.layers.Layer):
    """Weights of `num_towers` towers of identical shape, stacked on a leading tower axis.

    Each tower is a ReLU projection followed by `lstm_layers` LSTMP layers (paper sec. 2).
    This layer only owns weights; `ClusterAdaptiveTowers` runs the computation so that the
    mean and basis towers share one loop. Freeze it with `trainable = False`.

    Args:
        num_towers: towers in this stack.
        relu_units, lstm_layers, lstm_cells, lstm_projection: tower sizes.

    Weights (per LSTM layer j): `relu_kernel (towers, input_dim, relu_units)`, `relu_bias`,
    `kernel_j (towers, in_j, 4 * cells)`, `recurrent_kernel_j (towers, proj, 4 * cells)`,
    `bias_j (towers, 4 * cells)`, `projection_kernel_j (towers, cells, proj)`.
    """

    def __init__(self, num_towers, relu_units, lstm_layers, lstm_cells, lstm_projection, **kwargs):
        super().__init__(**kwargs)
        self.num_towers = num_towers
        self.relu_units = relu_units
        self.lstm_layers = lstm_layers
        self.lstm_cells = lstm_cells
        self.lstm_projection = lstm_projection

    def build(self, input_shape):
        towers, cells, projection = self.num_towers, self.lstm_cells, self.lstm_projection
        self.relu_kernel = self.add_weight(
            name="relu_kernel",
            shape=(towers, input_shape[-1], self.relu_units),
            initializer=_per_tower("glorot_uniform"),
        )
        self.relu_bias = self.add_weight(name="relu_bias", shape=(towers, self.relu_units), initializer="zeros")
        self.lstm_weights = []
        layer_input = self.relu_units
        for j in range(self.lstm_layers):
            self.lstm_weights.append(
                (
                    self.add_weight(
                        name=f"kernel_{j}",
                        shape=(towers, layer_input, 4 * cells),
                        initializer=_per_tower("glorot_uniform"),
                    ),
                    self.add_weight(
                        name=f"recurrent_kernel_{j}",
                        shape=(towers, projection, 4 * cells),
                        initializer=_per_tower("orthogonal"),
                    ),
                    self.add_weight(
                        name=f"bias_{j}", shape=(towers, 4 * cells), initializer=lstm_bias_initializer(cells)
                    ),
                    self.add_weight(
                        name=f"projection_kernel_{j}",
                        shape=(towers, cells, projection),
                        initializer=_per_tower("glorot_uniform"),
                    ),
                )
            )
            layer_input = projection


class LanguageCodes(keras.layers.Layer):
    """The language code vectors lambda(u), one `(L,)` weight per language (paper sec. 2).

    One weight per language, rather than one `(U, L)` matrix, so that a language can be added
    without touching the others and each code can be frozen on its own.

    Args:
        num_languages: U, languages known at construction.
        language_space_dim: L, the size of each code.
        code_init: `"random"` (normal, stddev 1/sqrt(L)), `"one_hot"` (e_u, then trained) or
            `"one_hot_fixed"` (e_u, never trained; needs L == U). Paper sec. 4.1.
        added_languages: how many of the `num_languages` codes were appended by `add_language`
            (the last ones); these are always random-initialised and trainable.
    """

    def __init__(self, num_languages, language_space_dim, code_init="random", added_languages=0, **kwargs):
        super().__init__(**kwargs)
        self.num_languages = num_languages
        self.language_space_dim = language_space_dim
        self.code_init = code_init
        self.added_languages = added_languages
        self.codes = []

    def build(self, input_shape=None):
        base_languages = self.num_languages - self.added_languages
        for language in range(self.num_languages):
            added = language >= base_languages
            self._add_code(language, None, trainable=added or self.code_init != "one_hot_fixed", random=added)

    def _add_code(self, language, initial_code, trainable, random):
        dim = self.language_space_dim
        if initial_code is not None:
            initializer = keras.initializers.Constant(np.asarray(initial_code, dtype="float32"))
        elif random or self.code_init == "random":
            initializer = keras.initializers.RandomNormal(stddev=1.0 / np.sqrt(dim))
        else:
            initializer = keras.initializers.Constant(np.eye(dim, dtype="float32")[language])
        self.codes.append(
            self.add_weight(name=f"code_{language}", shape=(dim,), initializer=initializer, trainable=trainable)
        )

    def add_language(self, initial_code=None):
        """Appends a trainable code for a new language and returns its id."""
        language = len(self.codes)
        if initial_code is not None and np.shape(initial_code) != (self.language_space_dim,):
            raise ValueError(
                f"`initial_code` must have shape ({self.language_space_dim},). Received shape {np.shape(initial_code)}"
            )
        with weights_may_be_added(self):
            self._add_code(language, initial_code, trainable=True, random=True)
        self.num_languages += 1
        self.added_languages += 1
        return language

    def matrix(self):
        """Returns all codes as a `(U, L)` tensor."""
        return ops.stack([code.value for code in self.codes])


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class ClusterAdaptiveTowers(keras.layers.Layer):
    """Cluster-adaptive towers: a mean tower plus L language basis towers weighted by a language code.

    Computes h_t^(u) = M_mean(x_1..x_t) + sum_l lambda_l^(u) M_l(x_1..x_t)  (Li & Zen 2016, Eq. 1).
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

    Returns:
        `(batch, frames, lstm_projection)` language-dependent hidden activations h^(u).

    Example:
    >>> towers = ClusterAdaptiveTowers(num_languages=3, language_space_dim=2, relu_units=8,
    ...                                lstm_layers=2, lstm_cells=8, lstm_projection=4)
    >>> towers(np.zeros((2, 5, 6), "float32"), np.array([0, 2])).shape
    (2, 5, 4)

    Reference: Li & Zen (2016), Eq. 1; Sak et al. (2014) for LSTMP.
    """

    def __init__(
        self,
        num_languages,
        language_space_dim,
        relu_units=256,
        lstm_layers=3,
        lstm_cells=256,
        lstm_projection=128,
        code_init="random",
        stateful=False,
        added_languages=0,
        jit_recurrence="training",
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value, minimum in (
            ("num_languages", num_languages, 1),
            ("language_space_dim", language_space_dim, 0),
            ("relu_units", relu_units, 1),
            ("lstm_layers", lstm_layers, 1),
            ("lstm_cells", lstm_cells, 1),
            ("lstm_projection", lstm_projection, 1),
            ("added_languages", added_languages, 0),
        ):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}")
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
        self.num_languages = int(num_languages)
        self.language_space_dim = int(language_space_dim)
        self.relu_units = int(relu_units)
        self.lstm_layers = int(lstm_layers)
        self.lstm_cells = int(lstm_cells)
        self.lstm_projection = int(lstm_projection)
        self.code_init = code_init
        self.stateful = stateful
        self.added_languages = int(added_languages)
        self.jit_recurrence = jit_recurrence
        self.supports_masking = True
        sizes = dict(
            relu_units=relu_units, lstm_layers=lstm_layers, lstm_cells=lstm_cells, lstm_projection=lstm_projection
        )
        self.mean_tower = TowerStack(1, name="mean_tower", **sizes)
        self.basis_towers = None
        self.language_codes = None
        if self.language_space_dim > 0:
            self.basis_towers = TowerStack(self.language_space_dim, name="basis_towers", **sizes)
            self.language_codes = LanguageCodes(
                num_languages, language_space_dim, code_init, added_languages, name="language_codes"
            )
        self._streaming_state = None
        self.input_dim = None

    @property
    def num_towers(self):
        return 1 + self.language_space_dim

    def build(self, frames_shape, language_shape=None):
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

    def _zero_state(self, batch_size):
        state = []
        for _ in range(self.lstm_layers):
            state.append(tf.zeros((self.num_towers, batch_size, self.lstm_projection), self.compute_dtype))
            state.append(tf.zeros((self.num_towers, batch_size, self.lstm_cells), self.compute_dtype))
        return state

    def reset_states(self):
        """Zeros the streaming state (start of a new utterance). Only for `stateful=True`."""
        if self._streaming_state is not None:
            self._streaming_state.reset()

    def add_language(self, initial_code=None):
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

    def _stacked(self, name_or_index, part):
        """Concatenates one weight of the mean and basis towers on the tower axis."""
        stacks = [self.mean_tower] + ([self.basis_towers] if self.basis_towers is not None else [])
        weights = [getattr(s, name_or_index) if part is None else s.lstm_weights[name_or_index][part] for s in stacks]
        return weights[0] if len(weights) == 1 else ops.concatenate(weights, axis=0)

    def _check_language(self, language):
        if language is None:
            if self.language_space_dim > 0:
                raise ValueError("`language` is required when language_space_dim > 0")
            return None
        return checked_ids(language, self.num_languages, "language", "add_language")

    def call(self, frames, language=None, frames_mask=None, training=None):
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
            ops.matmul(flat_frames, self._stacked("relu_kernel", None)) + self._stacked("relu_bias", None)[:, None, :]
        )  # (towers, frames * batch, relu_units)

        jit_compile = self.jit_recurrence == "always" or (self.jit_recurrence == "training" and bool(training))
        state = self._streaming_state.read() if self.stateful else tuple(self._zero_state(batch_size))
        final_state = []
        for j in range(self.lstm_layers):
            kernel, recurrent_kernel, bias, projection_kernel = (self._stacked(j, part) for part in range(4))
            gate_inputs = ops.matmul(layer_input, kernel) + bias[:, None, :]
            gate_inputs = ops.transpose(
                ops.reshape(gate_inputs, (towers, num_frames, batch_size, 4 * self.lstm_cells)), (1, 0, 2, 3)
            )  # (frames, towers, batch, 4 * cells)

            outputs, *layer_state = lstmp_sequence(
                gate_inputs,
                recurrent_kernel,
                projection_kernel,
                state[2 * j],
                state[2 * j + 1],
                mask,
                jit_compile=jit_compile,
                save_for_backward=bool(training),
            )
            final_state.extend(layer_state)
            layer_input = ops.reshape(ops.transpose(outputs, (1, 0, 2, 3)), (towers, -1, self.lstm_projection))
        if self.stateful:
            self._streaming_state.write(final_state)

        # Eq. 1: weight 1 for the mean tower, lambda_l(u) for basis tower l.
        tower_weights = ops.ones((batch_size, 1), dtype=outputs.dtype)
        if self.language_codes is not None:
            codes = ops.take(self.language_codes.matrix(), language, axis=0)
            tower_weights = ops.concatenate([tower_weights, ops.cast(codes, outputs.dtype)], axis=1)
        return ops.einsum("tkbp,bk->btp", outputs, tower_weights)

    def compute_output_shape(self, frames_shape, language_shape=None):
        return tuple(frames_shape[:2]) + (self.lstm_projection,)

    def compute_mask(self, frames, previous_mask=None):
        return previous_mask

    def get_config(self):
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
