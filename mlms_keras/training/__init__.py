"""Training: the run format, `model.fit` with resumable callbacks, adaptation v1-v4, the paper's experiments and
multi-worker training with `tf.distribute`."""
