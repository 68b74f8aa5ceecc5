"""Carried recurrent state for `stateful=True` streaming of the fused layers.

The state lives in variables that are deliberately not layer weights: they depend on the
streaming batch size, so they must not enter checkpoints or `.keras` files (a streaming model
loads the weights of a model trained with another batch size). `keras.layers.RNN` keeps its
stateful state out of the weights for the same reason.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

__all__ = ["StreamingState"]


class StreamingState:
    """Holds one `tf.Variable` per recurrent state tensor; invisible to Keras weight tracking.

    Args:
        initial_values: zero tensors giving each state's shape and dtype, in any nested structure
            of lists and (named) tuples; `read` returns the same structure.
    """

    def __init__(self, initial_values: Any) -> None:
        self._structure = tf.nest.map_structure(lambda _: None, initial_values)  # the nesting, no tensors
        self.variables = [tf.Variable(value, trainable=False) for value in tf.nest.flatten(initial_values)]

    def read(self) -> Any:
        """Returns the carried state, in the structure of `initial_values`."""
        return tf.nest.pack_sequence_as(self._structure, [variable.read_value() for variable in self.variables])

    def write(self, values: Any) -> None:
        """Stores the final state of this call (the structure of `initial_values`) for the next one."""
        for variable, value in zip(self.variables, tf.nest.flatten(values)):
            variable.assign(value)

    def reset(self) -> None:
        """Zeros the carried state, as at the start of a new utterance."""
        for variable in self.variables:
            variable.assign(tf.zeros_like(variable))
