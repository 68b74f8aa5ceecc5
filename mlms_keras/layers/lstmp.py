"""LSTM with a recurrent projection layer (LSTMP, Sak et al. 2014), as a Keras cell and layer.

Keras has no LSTM with a recurrent projection; the paper's towers use one in every LSTM layer
(section 4.1: 256 cells projected to 128).

- `ProjectedLSTMCell`, `ProjectedLSTM`: the cell and `keras.layers.RNN` over it.
- `lstmp_step`: one time step, shared with the fused towers' loops (`mlms_keras.layers.lstmp_loops`).
- `LSTMPState`: the recurrent state `(projection, cells)`.
- `lstm_bias_initializer`: gate biases with 1 on the forget gate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import keras
from keras import ops

from mlms_keras.layers.serialization import SERIALIZATION_PACKAGE
from mlms_keras.utils.validation import check_integer

__all__ = [
    "LSTMPState",
    "ProjectedLSTM",
    "ProjectedLSTMCell",
    "lstm_bias_initializer",
    "lstmp_step",
]


class LSTMPState(NamedTuple):
    """The recurrent state of one LSTMP layer: the projected output r_t and the cells c_t.

    Attributes:
        projection: `(..., batch, projection_units)`, r_t.
        cells: `(..., batch, units)`, c_t.
    """

    projection: Any
    cells: Any


def lstmp_step(gate_inputs, projection, cells, recurrent_kernel, projection_kernel) -> tuple[Any, Any]:
    """One LSTMP time step, shared by `ProjectedLSTMCell` and the fused towers.

    The input-side product `x_t W + b` does not depend on the recurrence, so callers compute
    it for all frames beforehand and pass one frame of it as `gate_inputs`. Any leading
    dimensions broadcast through `ops.matmul`, so the fused towers pass a tower axis first.

    Args:
        gate_inputs: `(..., batch, 4 * cells)`, input-side gate pre-activations in
            Keras gate order (input, forget, candidate, output).
        projection: `(..., batch, proj)`, previous projected output r_{t-1}.
        cells: `(..., batch, cells)`, previous cell state c_{t-1}.
        recurrent_kernel: `(..., proj, 4 * cells)`.
        projection_kernel: `(..., cells, proj)`.

    Returns:
        `(r_t, c_t)` with the shapes of `projection` and `cells`.
    """
    gates = gate_inputs + ops.matmul(projection, recurrent_kernel)
    input_gate, forget_gate, candidate, output_gate = ops.split(gates, 4, axis=-1)
    new_cells = ops.sigmoid(forget_gate) * cells + ops.sigmoid(input_gate) * ops.tanh(candidate)
    hidden = ops.sigmoid(output_gate) * ops.tanh(new_cells)
    return ops.matmul(hidden, projection_kernel), new_cells


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class ProjectedLSTMCell(keras.layers.Layer):
    """One step of an LSTM whose output is projected to a smaller recurrent state.

    With cells `c_t` of size `units` and projection `r_t` of size `projection_units`:
    `gates = x_t W + r_{t-1} R + b`; `c_t = f * c_{t-1} + i * g`; `r_t = (o * tanh(c_t)) P`.
    The state is `[r, c]` and the output is `r_t`. Gate order and the forget-gate bias of 1
    follow `keras.layers.LSTMCell`.

    Args:
        units: number of memory cells (256 in the paper).
        projection_units: size of the recurrent projection `r_t` (128 in the paper).
        kernel_initializer, recurrent_initializer, projection_initializer: initializers
            of W, R and P.
        unit_forget_bias: add 1 to the forget-gate bias at initialisation.

    Call arguments:
        inputs: `(batch, input_dim)`.
        states: `[r (batch, projection_units), c (batch, units)]`.

    Returns:
        `(r_t, [r_t, c_t])`.

    Example:

    >>> layer = keras.layers.RNN(ProjectedLSTMCell(16, 8), return_sequences=True)
    >>> tuple(layer(np.zeros((2, 5, 3), "float32")).shape)
    (2, 5, 8)

    Reference: Sak, Senior & Beaufays (2014), LSTMP; used in every tower of Li & Zen (2016), sec. 4.1.
    """

    def __init__(
        self,
        units: int,
        projection_units: int,
        kernel_initializer: str | keras.initializers.Initializer = "glorot_uniform",
        recurrent_initializer: str | keras.initializers.Initializer = "orthogonal",
        projection_initializer: str | keras.initializers.Initializer = "glorot_uniform",
        unit_forget_bias: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.units = units = check_integer("units", units)
        self.projection_units = projection_units = check_integer("projection_units", projection_units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.projection_initializer = keras.initializers.get(projection_initializer)
        self.unit_forget_bias = unit_forget_bias
        self.state_size = [projection_units, units]
        self.output_size = projection_units

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(f"ProjectedLSTMCell needs a known input dimension; got input_shape={input_shape}")
        self.kernel = self.add_weight(
            name="kernel", shape=(input_dim, 4 * self.units), initializer=self.kernel_initializer
        )
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel",
            shape=(self.projection_units, 4 * self.units),
            initializer=self.recurrent_initializer,
        )
        self.bias = self.add_weight(
            name="bias", shape=(4 * self.units,), initializer=lstm_bias_initializer(self.units, self.unit_forget_bias)
        )
        self.projection_kernel = self.add_weight(
            name="projection_kernel",
            shape=(self.units, self.projection_units),
            initializer=self.projection_initializer,
        )

    def call(self, inputs, states, training: bool = False) -> tuple[Any, list[Any]]:
        projection, cells = states
        gate_inputs = ops.matmul(inputs, self.kernel) + self.bias
        new_projection, new_cells = lstmp_step(
            gate_inputs, projection, cells, self.recurrent_kernel, self.projection_kernel
        )
        return new_projection, [new_projection, new_cells]

    def get_initial_state(self, batch_size: int | None = None) -> list[Any]:
        return [
            ops.zeros((batch_size, self.projection_units), dtype=self.compute_dtype),
            ops.zeros((batch_size, self.units), dtype=self.compute_dtype),
        ]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "projection_units": self.projection_units,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
                "projection_initializer": keras.initializers.serialize(self.projection_initializer),
                "unit_forget_bias": self.unit_forget_bias,
            }
        )
        return config


def lstm_bias_initializer(units: int, unit_forget_bias: bool = True) -> Callable[..., Any]:
    """Bias initializer for `(..., 4 * units)` gate biases: zeros, with 1 on the forget gate.

    Works for any leading shape, so the fused towers use it for their `(towers, 4 * units)` biases.
    """

    def initializer(shape, dtype=None):
        bias = ops.zeros(shape, dtype=dtype)
        if not unit_forget_bias:
            return bias
        forget = ops.concatenate([ops.zeros((units,)), ops.ones((units,)), ops.zeros((2 * units,))])
        return bias + ops.cast(forget, dtype or "float32")

    return initializer


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class ProjectedLSTM(keras.layers.RNN):
    """An LSTMP layer: `keras.layers.RNN` over a `ProjectedLSTMCell`.

    Inherits masking, `return_sequences`, `return_state`, `stateful` streaming,
    `go_backwards` and `unroll` from `keras.layers.RNN`.

    Args:
        units: number of memory cells.
        projection_units: size of the recurrent projection (the layer's output size).
        return_sequences, return_state, stateful, go_backwards, unroll: as in `keras.layers.RNN`.
        **kwargs: initializer arguments go to the cell; the rest to `keras.layers.RNN`.

    Call arguments:
        sequences: `(batch, frames, input_dim)`.
        mask: optional `(batch, frames)` boolean; masked frames keep the previous state.
        initial_state: optional `[r (batch, projection_units), c (batch, units)]`.

    Returns:
        `(batch, frames, projection_units)` with `return_sequences`, else `(batch, projection_units)`;
        with `return_state`, followed by the final `r` and `c`.

    Example:

    >>> layer = ProjectedLSTM(16, 8, return_sequences=True)
    >>> tuple(layer(np.zeros((2, 5, 3), "float32")).shape)
    (2, 5, 8)

    Reference: Sak, Senior & Beaufays (2014), LSTMP; Li & Zen (2016), sec. 4.1.
    """

    _CELL_ARGUMENTS = ("kernel_initializer", "recurrent_initializer", "projection_initializer", "unit_forget_bias")

    def __init__(self, units: int, projection_units: int, **kwargs) -> None:
        cell_kwargs = {name: kwargs.pop(name) for name in self._CELL_ARGUMENTS if name in kwargs}
        kwargs.pop("cell", None)  # present when restoring from get_config
        cell = ProjectedLSTMCell(units, projection_units, dtype=kwargs.get("dtype"), **cell_kwargs)
        super().__init__(cell, **kwargs)
        self.units = self.cell.units
        self.projection_units = self.cell.projection_units

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        cell_config = self.cell.get_config()
        config.pop("cell", None)
        config.update({name: cell_config[name] for name in self._CELL_ARGUMENTS})
        config.update({"units": self.units, "projection_units": self.projection_units})
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ProjectedLSTM:
        # keras.layers.RNN.from_config expects a serialized cell; ours is rebuilt from its arguments.
        return cls(**config)
