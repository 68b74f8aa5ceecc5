"""Carried recurrent state for `stateful=True` streaming of the fused layers.

The state lives in variables that are deliberately not layer weights: they depend on the
streaming batch size, so they must not enter checkpoints or `.keras` files (a streaming model
loads the weights of a model trained with another batch size). `keras.layers.RNN` keeps its
stateful state out of the weights for the same reason.
"""

import tensorflow as tf


class StreamingState:
    """Holds one `tf.Variable` per recurrent state tensor; invisible to Keras weight tracking.

    Args:
        initial_values: list of zero tensors giving each state's shape and dtype.
    """

    def __init__(self, initial_values):
        self.variables = [tf.Variable(value, trainable=False) for value in initial_values]

    def read(self):
        """Returns the carried state as a tuple of tensors."""
        return tuple(variable.read_value() for variable in self.variables)

    def write(self, values):
        """Stores the final state of this call for the next one."""
        for variable, value in zip(self.variables, values):
            variable.assign(value)

    def reset(self):
        """Zeros the carried state, as at the start of a new utterance."""
        for variable in self.variables:
            variable.assign(tf.zeros_like(variable))
