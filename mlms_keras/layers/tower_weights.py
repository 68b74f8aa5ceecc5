"""The weights of `ClusterAdaptiveTowers`, in sub-layers that the adaptation variants freeze one by one.

- `TowerStack`: towers of identical shape on a leading tower axis (the mean tower; the L basis towers), a
  ReLU projection and one `LSTMPWeights` per LSTMP layer.
- `LanguageCodes`: the language code vectors lambda(u), one weight per language.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import keras
import numpy as np
from keras import ops

from mlms_keras.layers.growth import weights_may_be_added
from mlms_keras.layers.lstmp import lstm_bias_initializer

__all__ = ["LSTMPWeights", "LanguageCodes", "TowerStack"]


class LSTMPWeights(NamedTuple):
    """The weights of one LSTMP layer of a tower stack, each with a leading tower axis.

    Attributes:
        kernel: `(towers, input_dim, 4 * cells)`, W.
        recurrent_kernel: `(towers, projection, 4 * cells)`, R.
        bias: `(towers, 4 * cells)`, b.
        projection_kernel: `(towers, cells, projection)`, P.
    """

    kernel: Any
    recurrent_kernel: Any
    bias: Any
    projection_kernel: Any


def _per_tower(initializer: str | keras.initializers.Initializer) -> Callable[..., Any]:
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

    Weights: `relu_kernel (towers, input_dim, relu_units)` and `relu_bias (towers, relu_units)`, then
    `lstm_weights`, one `LSTMPWeights` per LSTMP layer j (variables `kernel_j (towers, in_j, 4 * cells)`,
    `recurrent_kernel_j (towers, proj, 4 * cells)`, `bias_j (towers, 4 * cells)`,
    `projection_kernel_j (towers, cells, proj)`).
    """

    def __init__(
        self, num_towers: int, relu_units: int, lstm_layers: int, lstm_cells: int, lstm_projection: int, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.num_towers = num_towers
        self.relu_units = relu_units
        self.lstm_layers = lstm_layers
        self.lstm_cells = lstm_cells
        self.lstm_projection = lstm_projection

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        towers, cells, projection = self.num_towers, self.lstm_cells, self.lstm_projection
        self.relu_kernel = self.add_weight(
            name="relu_kernel",
            shape=(towers, input_shape[-1], self.relu_units),
            initializer=_per_tower("glorot_uniform"),
        )
        self.relu_bias = self.add_weight(name="relu_bias", shape=(towers, self.relu_units), initializer="zeros")
        self.lstm_weights: list[LSTMPWeights] = []
        layer_input = self.relu_units
        for j in range(self.lstm_layers):
            # The creation order (kernel, recurrent kernel, bias, projection) is the order in saved files.
            self.lstm_weights.append(
                LSTMPWeights(
                    kernel=self.add_weight(
                        name=f"kernel_{j}",
                        shape=(towers, layer_input, 4 * cells),
                        initializer=_per_tower("glorot_uniform"),
                    ),
                    recurrent_kernel=self.add_weight(
                        name=f"recurrent_kernel_{j}",
                        shape=(towers, projection, 4 * cells),
                        initializer=_per_tower("orthogonal"),
                    ),
                    bias=self.add_weight(
                        name=f"bias_{j}", shape=(towers, 4 * cells), initializer=lstm_bias_initializer(cells)
                    ),
                    projection_kernel=self.add_weight(
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

    def __init__(
        self, num_languages: int, language_space_dim: int, code_init: str = "random", added_languages: int = 0, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.num_languages = num_languages
        self.language_space_dim = language_space_dim
        self.code_init = code_init
        self.added_languages = added_languages
        self.codes: list[keras.Variable] = []

    def build(self, input_shape: Any = None) -> None:
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

    def add_language(self, initial_code: Sequence[float] | np.ndarray | None = None) -> int:
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

    def matrix(self) -> Any:
        """Returns all codes as a `(U, L)` tensor."""
        return ops.stack([code.value for code in self.codes])
