"""The padding mask and the pooled masked MSE (`mlms_keras.training.losses`): the numpy and TensorFlow forms agree
with each other, with Keras's own `"mse"` loss on a masked model output, and with the model's `Masking` layer."""

import numpy as np
import pytest
import tensorflow as tf
from model_testing import tiny_config, tiny_model

from mlms_keras.training.losses import frame_mask, masked_squared_error_sums, masked_squared_error_sums_numpy

SIZES = dict(input_dim=5, num_languages=2, num_speakers=3)
CONFIG = tiny_config(**SIZES)


def padded_batch(seed=0, sequences=4, frames=9):
    """Zero-padded linguistic rows (one sequence unpadded, one with a single non-zero feature per frame)."""
    rng = np.random.default_rng(seed)
    linguistic = rng.standard_normal((sequences, frames, CONFIG.input_dim)).astype("float32")
    targets = rng.standard_normal((sequences, frames, CONFIG.output_dim)).astype("float32")
    lengths = [frames, 3, 6, 1]
    for row, length in enumerate(lengths):
        linguistic[row, length:] = 0.0
        targets[row, length:] = 0.0
    linguistic[2, :6] = 0.0
    linguistic[2, :6, 4] = 1e-3  # real frames whose only non-zero feature is small
    linguistic[1, 3:, 0] = -0.0  # negative zero is padding too
    inputs = {
        "linguistic": linguistic,
        "language": np.array([0, 1, 0, 1], "int32"),
        "speaker": np.array([0, 1, 2, 0], "int32"),
    }
    return inputs, targets, lengths


def compiled_model():
    model = tiny_model(0, **SIZES)
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_frame_mask_is_the_masking_layers_compute_mask():
    inputs, _, lengths = padded_batch()
    masking = compiled_model().get_layer("padding_mask")
    expected = np.asarray(masking.compute_mask(tf.constant(inputs["linguistic"])))
    np.testing.assert_array_equal(expected, np.arange(9)[None, :] < np.array(lengths)[:, None])
    from_numpy = frame_mask(inputs["linguistic"])
    from_tensor = frame_mask(tf.constant(inputs["linguistic"]))
    assert isinstance(from_numpy, np.ndarray) and isinstance(from_tensor, tf.Tensor)
    np.testing.assert_array_equal(from_numpy, expected)
    np.testing.assert_array_equal(np.asarray(from_tensor), expected)
    np.testing.assert_array_equal(frame_mask(inputs["linguistic"][0]), expected[0])  # one unbatched sequence


def test_numpy_and_tensorflow_sums_agree_and_equal_keras_masked_mse():
    inputs, targets, lengths = padded_batch(seed=1)
    model = compiled_model()
    predicted = np.asarray(model.predict_on_batch(inputs))
    mask = frame_mask(inputs["linguistic"])
    error_sum, valid = masked_squared_error_sums_numpy(targets, predicted, mask)
    tf_sum, tf_valid = masked_squared_error_sums(tf.constant(targets), tf.constant(predicted), tf.constant(mask))
    assert valid == sum(lengths) == float(tf_valid)
    assert float(tf_sum) == pytest.approx(error_sum, rel=1e-5)
    # Independent references: Keras's "mse" on the masked model output, and the definition written out.
    keras_mse = model.evaluate(inputs, targets, batch_size=len(lengths), verbose=0)
    assert error_sum / valid == pytest.approx(keras_mse, rel=1e-5)
    predicted, targets = predicted.astype(np.float64), targets.astype(np.float64)
    errors = np.concatenate([(predicted[r, :n] - targets[r, :n]).ravel() for r, n in enumerate(lengths)])
    assert error_sum / valid == pytest.approx(np.mean(errors**2), rel=1e-12)


def test_frame_weights_scale_each_frame_and_keep_the_valid_frame_divisor():
    inputs, targets, lengths = padded_batch(seed=2)
    model = compiled_model()
    predicted = np.asarray(model.predict_on_batch(inputs))
    mask = frame_mask(inputs["linguistic"])
    weights = np.random.default_rng(3).integers(0, 2, mask.shape).astype("float32")  # e.g. speech frames only
    error_sum, valid = masked_squared_error_sums_numpy(targets, predicted, mask, weights)
    tf_sum, tf_valid = masked_squared_error_sums(targets, predicted, mask, weights)
    assert valid == float(tf_valid) == sum(lengths)
    assert float(tf_sum) == pytest.approx(error_sum, rel=1e-5)
    keras_mse = model.evaluate(inputs, targets, sample_weight=weights, batch_size=len(lengths), verbose=0)
    assert error_sum / valid == pytest.approx(keras_mse, rel=1e-5)


def test_pooled_sums_do_not_depend_on_how_the_batches_are_cut():
    inputs, targets, _ = padded_batch(seed=4)
    predicted = np.asarray(compiled_model().predict_on_batch(inputs))
    mask = frame_mask(inputs["linguistic"])
    whole = masked_squared_error_sums_numpy(targets, predicted, mask)
    halves = [masked_squared_error_sums_numpy(targets[s], predicted[s], mask[s]) for s in (slice(0, 1), slice(1, 4))]
    assert sum(h[0] for h in halves) / sum(h[1] for h in halves) == pytest.approx(whole[0] / whole[1], rel=1e-12)
