"""`checked_ids`: per-sequence id inputs (language, speaker) of the layers, in `[0, count)`.

The integer-argument check the layers share with the model builders and the tuning code is
`mlms_keras.utils.validation.check_integer` (no TensorFlow).
"""

from __future__ import annotations

import tensorflow as tf
from keras import ops

__all__ = ["checked_ids"]


def checked_ids(ids, count: int, name: str, add_method: str) -> tf.Tensor:
    """Returns `ids` as a `(batch,)` int32 tensor after checking every id is in `[0, count)`.

    Eagerly a bad id raises `ValueError` naming the argument and the ids received. Inside a
    compiled graph the check is an assert op that raises `InvalidArgumentError` when the step
    runs; XLA (`jit_compile=True`) drops assert ops, and its gather then clamps bad ids.

    Args:
        ids: `(batch,)` integer ids.
        count: number of valid ids.
        name: the call argument's name, for messages (`"language"`, `"speaker"`).
        add_method: the layer method that adds an id, for the hint in the message.
    """
    ids = ops.cast(ops.convert_to_tensor(ids), "int32")
    if len(ids.shape) != 1:
        raise ValueError(f"`{name}` must have shape (batch,); received shape {tuple(ids.shape)}")
    if tf.executing_eagerly():
        values = ids.numpy()
        bad = values[(values < 0) | (values >= count)]
        if bad.size:
            raise ValueError(
                f"`{name}` ids must be in [0, {count}); received {bad.tolist()}. Use {add_method}() to add one."
            )
    else:
        checks = [
            tf.debugging.assert_less(ids, count, message=f"`{name}` id >= num_{name}s"),
            tf.debugging.assert_non_negative(ids, message=f"`{name}` id < 0"),
        ]
        # Every use of the ids waits for the checks, so a bad id fails here and not in a gather that
        # happens to run first.
        with tf.control_dependencies(checks):
            ids = tf.identity(ids)
    return ids
