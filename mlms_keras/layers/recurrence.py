"""Time loops shared by the fused layers: one `tf.while_loop` over frames, masking, streaming state.

The fused towers and the speaker output layer both step a small recurrence over time-major inputs
whose input-side products were computed for all frames beforehand. This module holds that loop so
both layers mask and stream the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

__all__ = ["run_time_loop"]


def run_time_loop(
    step: Callable[[Any, tuple], tuple[Any, tuple]],
    inputs,
    initial_state,
    mask=None,
    parallel_iterations: int = 1,
) -> tuple[Any, tuple]:
    """Runs `step` over the leading (time) axis of `inputs`.

    Args:
        step: `step(frame_inputs, state) -> (output, new_state)`; `state` is a tuple of tensors.
        inputs: `(frames, ...)` time-major tensor; `frame_inputs` is one slice `inputs[t]`.
        initial_state: tuple of tensors.
        mask: optional `(frames, batch)` boolean, time-major. On a masked frame the state is
            held and the output is zero, so padding never reaches valid frames.
        parallel_iterations: forwarded to `tf.while_loop`.

    Returns:
        `(outputs (frames, ...), final_state)`. Outputs are stacked time-major.
    """
    num_frames = tf.shape(inputs)[0]
    frame_inputs = tf.TensorArray(inputs.dtype, size=num_frames, clear_after_read=True).unstack(inputs)
    masks = None
    if mask is not None:
        masks = tf.TensorArray(tf.bool, size=num_frames).unstack(mask)
    outputs = tf.TensorArray(inputs.dtype, size=num_frames)

    def body(t, state, outputs):
        output, new_state = step(frame_inputs.read(t), state)
        if masks is not None:
            frame_mask = masks.read(t)
            new_state = tuple(_hold_where_masked(frame_mask, new, old) for new, old in zip(new_state, state))
            output = _hold_where_masked(frame_mask, output, tf.zeros_like(output))
        return t + 1, new_state, outputs.write(t, output)

    _, final_state, outputs = tf.while_loop(
        lambda t, *_: t < num_frames,
        body,
        (tf.constant(0), tuple(initial_state), outputs),
        parallel_iterations=parallel_iterations,
        maximum_iterations=num_frames,
    )
    return outputs.stack(), final_state


def _hold_where_masked(frame_mask, new, old):
    """Selects `new` where `frame_mask` is true along the batch axis, else `old`.

    `frame_mask` is `(batch,)`; the batch axis of `new` is the second-to-last one (tower-major
    states are `(towers, batch, units)`, plain ones `(batch, units)`).
    """
    shape = [1] * len(new.shape)
    shape[-2] = -1
    return tf.where(tf.reshape(frame_mask, shape), new, old)
