"""The LSTMP time loops of the fused towers: a whole sequence as one op, with a hand-written backward pass.

`lstmp_sequence` steps an LSTMP recurrence (`mlms_keras.layers.lstmp`) over all frames of a sequence whose
input-side products were computed beforehand. In training its gradient is ours, not TensorFlow's loop
gradient: the reverse loop carries only the recurrent chain and the weight gradients are one contraction
over all frames each (`docs/performance.md`). Both loops can run through XLA.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from mlms_keras.layers.lstmp import lstmp_step
from mlms_keras.layers.recurrence import run_time_loop

__all__ = ["lstmp_sequence"]


def lstmp_sequence(
    gate_inputs,
    recurrent_kernel,
    projection_kernel,
    initial_projection,
    initial_cells,
    mask=None,
    jit_compile: bool = False,
    save_for_backward: bool = True,
) -> tuple[Any, Any, Any]:
    """Runs an LSTMP recurrence over all frames, with a hand-written backward pass.

    Automatic differentiation of a `tf.while_loop` accumulates the weight gradients inside the
    reverse loop, one small matmul per frame and weight. Here the reverse loop carries only the
    recurrent chain (dr, dc); the weight gradients are then one large contraction over all frames
    per weight, the way cuDNN's LSTM does it. This is what makes training the fused towers fast on
    CPU (see `benchmarks/bench_model.py`). The backward pass is checked against autodiff in
    `tests/layers/test_layers.py`.

    Leading `...` dimensions are shared by the state and the weights (the fused towers use a
    tower axis: weights `(towers, ...)`, state `(towers, batch, ...)`).

    Args:
        gate_inputs: `(frames, ..., batch, 4 * cells)`, the input-side pre-activations `x_t W + b`.
        recurrent_kernel: `(..., proj, 4 * cells)`.
        projection_kernel: `(..., cells, proj)`.
        initial_projection: `(..., batch, proj)`, r_0.
        initial_cells: `(..., batch, cells)`, c_0.
        mask: optional `(frames, batch)` boolean; masked frames hold the state and output zeros.
        jit_compile: run the forward and reverse time loops through XLA, which fuses each frame's
            element-wise work into a few kernels (about 2x faster loops on CPU) but compiles once per
            distinct `(frames, batch)` shape (about 0.5-1 s each).
        save_for_backward: keep each frame's gates and cells for the hand-written backward pass.
            Inference passes False: the loop then does only the forward work (and, should anyone
            differentiate it anyway, TensorFlow's own loop gradient applies).

    Returns:
        `(outputs (frames, ..., batch, proj), final_projection, final_cells)`.
    """
    if not save_for_backward:
        sequence = _forward_only_xla if jit_compile else _forward_only
        return sequence(gate_inputs, recurrent_kernel, projection_kernel, initial_projection, initial_cells, mask)
    if mask is None:
        shape = tf.shape(gate_inputs)
        mask = tf.ones(tf.stack([shape[0], shape[-2]]), dtype=tf.bool)
    sequence = _lstmp_sequence_xla if jit_compile else _lstmp_sequence
    return sequence(gate_inputs, recurrent_kernel, projection_kernel, initial_projection, initial_cells, mask)


def _forward_only(gate_inputs, recurrent_kernel, projection_kernel, initial_projection, initial_cells, mask):
    def step(frame_gates, state):
        previous_projection, previous_cells = state
        projection, cells = lstmp_step(
            frame_gates, previous_projection, previous_cells, recurrent_kernel, projection_kernel
        )
        return projection, (projection, cells)

    outputs, (final_projection, final_cells) = run_time_loop(
        step, gate_inputs, (initial_projection, initial_cells), mask
    )
    return outputs, final_projection, final_cells


_forward_only_xla = tf.function(_forward_only, jit_compile=True)


def _frame_mask(mask_t, like):
    """`(batch,)` boolean -> broadcastable against `like` (`(..., batch, units)`), as float."""
    shape = tf.concat([tf.ones([tf.rank(like) - 2], tf.int32), [-1, 1]], axis=0)
    return tf.reshape(tf.cast(mask_t, like.dtype), shape)


def _with_backward_pass(forward_loop, backward_loop):
    """The LSTMP sequence op with its hand-written gradient, over the given loop implementations."""

    @tf.custom_gradient
    def sequence(gate_inputs, recurrent_kernel, projection_kernel, initial_projection, initial_cells, mask):
        # The gradient is ours: stop the tape from differentiating the loop (it would also ask an
        # XLA-compiled loop for intermediate TensorLists, which XLA cannot hand out).
        outputs, final_projection, final_cells, saved = forward_loop(
            *(tf.stop_gradient(value) for value in (gate_inputs, recurrent_kernel, projection_kernel)),
            tf.stop_gradient(initial_projection),
            tf.stop_gradient(initial_cells),
            mask,
        )

        def backward(d_outputs, d_final_projection, d_final_cells, variables=None):
            previous_projections, previous_cells, activations, new_cells = saved
            d_gates, d_new_projections, d_initial_projection, d_initial_cells = backward_loop(
                d_outputs,
                d_final_projection,
                d_final_cells,
                recurrent_kernel,
                projection_kernel,
                mask,
                previous_cells,
                activations,
                new_cells,
            )
            # Weight gradients: one contraction over all frames and the batch each, outside the loop.
            hidden = tf.split(activations, 4, axis=-1)[3] * tf.tanh(new_cells)
            d_recurrent = _contract_frames_and_batch(previous_projections, d_gates)
            d_projection_kernel = _contract_frames_and_batch(hidden, d_new_projections)
            return (d_gates, d_recurrent, d_projection_kernel, d_initial_projection, d_initial_cells, None)

        return (outputs, final_projection, final_cells), backward

    return sequence


def _unstacked(value):
    return tf.TensorArray(value.dtype, size=tf.shape(value)[0]).unstack(value)


def _forward_loop(gate_inputs, recurrent_kernel, projection_kernel, initial_projection, initial_cells, mask):
    """The LSTMP recurrence; also returns what the backward pass needs, stacked over frames."""
    num_frames = tf.shape(gate_inputs)[0]
    inputs_ta, mask_ta = _unstacked(gate_inputs), _unstacked(mask)

    def step(t, projection, cells, outputs, saved_projection, saved_cells, saved_activations, saved_new_cells):
        keep = _frame_mask(mask_ta.read(t), cells)
        gates = inputs_ta.read(t) + tf.matmul(projection, recurrent_kernel)
        input_gate, forget_gate, candidate, output_gate = tf.split(gates, 4, axis=-1)
        activations = tf.concat(
            [tf.sigmoid(input_gate), tf.sigmoid(forget_gate), tf.tanh(candidate), tf.sigmoid(output_gate)], axis=-1
        )
        i, f, g, o = tf.split(activations, 4, axis=-1)
        new_cells = f * cells + i * g
        new_projection = tf.matmul(o * tf.tanh(new_cells), projection_kernel)
        # Masked frames hold the state (a 0/1 blend keeps the gradients exact) and output zero.
        return (
            t + 1,
            keep * new_projection + (1 - keep) * projection,
            keep * new_cells + (1 - keep) * cells,
            outputs.write(t, keep * new_projection),
            saved_projection.write(t, projection),
            saved_cells.write(t, cells),
            saved_activations.write(t, activations),
            saved_new_cells.write(t, new_cells),
        )

    arrays = tuple(tf.TensorArray(gate_inputs.dtype, size=num_frames) for _ in range(5))
    _, final_projection, final_cells, *stacks = tf.while_loop(
        lambda t, *_: t < num_frames,
        step,
        (tf.constant(0), initial_projection, initial_cells) + arrays,
        maximum_iterations=num_frames,
    )
    outputs, *saved = (array.stack() for array in stacks)
    return outputs, final_projection, final_cells, tuple(saved)


def _backward_loop(
    d_outputs,
    d_final_projection,
    d_final_cells,
    recurrent_kernel,
    projection_kernel,
    mask,
    previous_cells,
    activations,
    new_cells,
):
    """Reverse pass through the recurrence: gate gradients per frame and the gradient w.r.t. r_t."""
    num_frames = tf.shape(d_outputs)[0]
    d_outputs_ta, previous_cells_ta, activations_ta, cells_ta, mask_ta = (
        _unstacked(value) for value in (d_outputs, previous_cells, activations, new_cells, mask)
    )
    transposed_recurrent = tf.linalg.matrix_transpose(recurrent_kernel)
    transposed_projection = tf.linalg.matrix_transpose(projection_kernel)

    def step(t, d_projection, d_cells, d_gates_ta, d_new_projection_ta):
        keep = _frame_mask(mask_ta.read(t), d_cells)
        i, f, g, o = tf.split(activations_ta.read(t), 4, axis=-1)
        tanh_cells = tf.tanh(cells_ta.read(t))
        # r_t = keep * new + (1 - keep) * r_{t-1}; the frame's own output adds keep * dY_t.
        d_new_projection = keep * (d_projection + d_outputs_ta.read(t))
        d_hidden = tf.matmul(d_new_projection, transposed_projection)
        d_new_cells = keep * d_cells + d_hidden * o * (1 - tanh_cells * tanh_cells)
        d_gates = tf.concat(
            [
                d_new_cells * g * i * (1 - i),
                d_new_cells * previous_cells_ta.read(t) * f * (1 - f),
                d_new_cells * i * (1 - g * g),
                d_hidden * tanh_cells * o * (1 - o),
            ],
            axis=-1,
        )
        return (
            t - 1,
            tf.matmul(d_gates, transposed_recurrent) + (1 - keep) * d_projection,
            d_new_cells * f + (1 - keep) * d_cells,
            d_gates_ta.write(t, d_gates),
            d_new_projection_ta.write(t, d_new_projection),
        )

    arrays = tuple(tf.TensorArray(d_outputs.dtype, size=num_frames) for _ in range(2))
    _, d_initial_projection, d_initial_cells, d_gates_ta, d_new_projection_ta = tf.while_loop(
        lambda t, *_: t >= 0,
        step,
        (num_frames - 1, d_final_projection, d_final_cells) + arrays,
        maximum_iterations=num_frames,
    )
    return d_gates_ta.stack(), d_new_projection_ta.stack(), d_initial_projection, d_initial_cells


_lstmp_sequence = _with_backward_pass(_forward_loop, _backward_loop)
_lstmp_sequence_xla = _with_backward_pass(
    tf.function(_forward_loop, jit_compile=True), tf.function(_backward_loop, jit_compile=True)
)


def _contract_frames_and_batch(left, right):
    """Sum over frames t and batch b of `left[t, ..., b, :]^T right[t, ..., b, :]` -> `(..., m, n)`."""
    rank = len(left.shape)
    # Move frames next to batch: (..., frames, batch, m), then fold them into one axis.
    permutation = list(range(1, rank - 2)) + [0, rank - 2, rank - 1]
    left = tf.transpose(left, permutation)
    right = tf.transpose(right, permutation)
    left = tf.reshape(left, tf.concat([tf.shape(left)[:-3], [-1, tf.shape(left)[-1]]], axis=0))
    right = tf.reshape(right, tf.concat([tf.shape(right)[:-3], [-1, tf.shape(right)[-1]]], axis=0))
    return tf.matmul(left, right, transpose_a=True)
