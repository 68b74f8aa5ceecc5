"""The collectives of synchronous training beyond the gradient all-reduce: a barrier, and the chief's broadcast.

Both are all-reduces under `MultiWorkerMirroredStrategy`, so they need no other channel between the workers.
"""

from __future__ import annotations

__all__ = ["barrier", "broadcast_from_chief"]


def barrier(strategy) -> None:
    """Returns once every worker of `strategy` has reached it (an all-reduce of a scalar)."""
    import tensorflow as tf

    def replica_fn():
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, tf.constant(1.0))

    float(strategy.experimental_local_results(strategy.run(tf.function(replica_fn)))[0])


def broadcast_from_chief(strategy, variables, step: int, is_chief: bool) -> int:
    """Makes every worker's `variables` (and `step`) equal to the chief's, by an all-reduce of chief-or-zero."""
    import tensorflow as tf

    # Reduced per dtype: a collective packs its tensors together, so they must share one.
    values = [v.value if hasattr(v, "value") else v for v in variables]
    groups = {}
    for position, value in enumerate(values):
        groups.setdefault(value.dtype, []).append(position)

    def replica_fn():
        context = tf.distribute.get_replica_context()
        reduced = [None] * len(values)
        for positions in groups.values():
            own = [
                tf.identity(values[p]) if is_chief else tf.zeros(values[p].shape, values[p].dtype) for p in positions
            ]
            for p, value in zip(positions, context.all_reduce(tf.distribute.ReduceOp.SUM, own)):
                reduced[p] = value
        chief_step = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.constant(step if is_chief else 0, tf.int64))
        return reduced, chief_step

    reduced, chief_step = strategy.experimental_local_results(strategy.run(tf.function(replica_fn)))[0]
    # Mirrored variables: an assignment in cross-replica context sets every local copy.
    for variable, value in zip(variables, reduced):
        variable.assign(value)
    return int(chief_step.numpy())
