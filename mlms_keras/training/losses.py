"""The padding mask and the pooled masked mean squared error: one rule for training, metrics and evaluation.

**Padding.** A padded frame is an all-zero linguistic row: the model's `Masking(mask_value=0.0)` layer drops it,
and so does every loss and metric here (`frame_mask`).

**Pooled masked MSE.** Keras's `"mse"` loss on a masked output is `error_sum / valid_frames`, where each frame's
error is the mean over its output dimensions and padded frames are dropped (a per-frame weight multiplies a
frame's error; the divisor stays the number of valid frames). `masked_squared_error_sums` returns the two sums
separately, so that they can be pooled over batches, languages or workers before dividing: a pooled figure then
does not depend on how the batches were cut, and a synchronous distributed step equals one single-process step
on the union of the workers' batches. The numpy form (`masked_squared_error_sums_numpy`) computes the same sums
in float64 for callbacks and evaluation.
"""

from __future__ import annotations

import numpy as np

__all__ = ["frame_mask", "masked_squared_error_sums", "masked_squared_error_sums_numpy"]


def frame_mask(linguistic):
    """`(batch, frames)` boolean mask of real frames: False on all-zero (padding) rows.

    Args:
        linguistic: `(batch, frames, features)` (or `(frames, features)`), a numpy array or a TensorFlow tensor.

    Returns:
        A numpy array for a numpy input, a `tf.Tensor` otherwise, with the feature axis reduced.
    """
    if isinstance(linguistic, np.ndarray):
        return np.any(linguistic != 0.0, axis=-1)
    import tensorflow as tf

    return tf.reduce_any(tf.not_equal(linguistic, 0.0), axis=-1)


def masked_squared_error_sums(targets, predictions, mask, frame_weights=None):
    """TensorFlow form: `(error_sum, valid_frames)`, float32 scalars; `error_sum / valid_frames` is Keras's MSE.

    Args:
        targets: `(batch, frames, output_dim)`.
        predictions: `(batch, frames, output_dim)`.
        mask: `(batch, frames)` boolean, True on valid frames (`frame_mask`).
        frame_weights: optional `(batch, frames)` weights (e.g. `load_dataset(frame_mask="speech")`).
    """
    import tensorflow as tf

    per_frame = tf.reduce_mean(tf.square(tf.cast(predictions, tf.float32) - tf.cast(targets, tf.float32)), axis=-1)
    valid = tf.cast(mask, tf.float32)
    weights = valid if frame_weights is None else valid * tf.cast(frame_weights, tf.float32)
    return tf.reduce_sum(per_frame * weights), tf.reduce_sum(valid)


def masked_squared_error_sums_numpy(targets, predictions, mask, frame_weights=None) -> tuple[float, float]:
    """Numpy form of `masked_squared_error_sums`, in float64: `(error_sum, valid_frames)` as Python floats."""
    error = np.asarray(predictions, np.float64) - np.asarray(targets, np.float64)
    per_frame = np.mean(error**2, axis=-1)
    valid = np.asarray(mask, np.float64)
    weights = valid if frame_weights is None else valid * np.asarray(frame_weights, np.float64)
    return float(np.sum(per_frame * weights)), float(np.sum(valid))
