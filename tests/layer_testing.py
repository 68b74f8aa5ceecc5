"""One shared layer test (in the spirit of keras-hub's `run_layer_test`), used for every custom layer.

It checks: build and output shape; config and serialization round trip (same outputs with the
same weights); a `.keras` save/load inside a model; one training step that moves every trainable
weight; and masking (masked frames hold the recurrent state, so valid outputs do not change).
"""

import keras
import numpy as np


def _copy_weights(source, target):
    for source_weight, target_weight in zip(source.weights, target.weights):
        target_weight.assign(source_weight)


def run_layer_test(
    layer_cls,
    init_kwargs,
    inputs,
    expected_output_shape,
    mask_argument,
    tmp_path,
    padded_outputs_are_zero=True,
):
    """Runs the standard checks on one layer.

    Args:
        layer_cls: the layer class.
        init_kwargs: constructor arguments.
        inputs: tuple of numpy arrays; the first is the `(batch, frames, features)` sequence, the rest
            are per-sequence ids `(batch,)`. Ids must cover every language/speaker so that the
            training step reaches every weight.
        expected_output_shape: shape of the output for `inputs`.
        mask_argument: name of the layer's mask call argument (`mask`, `frames_mask`, ...).
        tmp_path: pytest tmp_path for the `.keras` file.
        padded_outputs_are_zero: whether masked frames must produce zeros.
    """
    layer = layer_cls(**init_kwargs)
    outputs = keras.ops.convert_to_numpy(layer(*inputs))
    assert outputs.shape == tuple(expected_output_shape)
    assert layer.built and layer.weights

    # Config and serialization round trip: same config, same outputs once given the same weights.
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert restored.get_config() == layer.get_config()
    restored(*inputs)
    assert [w.shape for w in restored.weights] == [w.shape for w in layer.weights]
    _copy_weights(layer, restored)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored(*inputs)), outputs)

    # A .keras save/load inside a Functional model.
    sequence = keras.Input(shape=inputs[0].shape[1:], name="sequence")
    ids = [keras.Input(shape=(), dtype="int32", name=f"ids_{i}") for i in range(len(inputs) - 1)]
    model = keras.Model([sequence] + ids, layer(sequence, *ids))
    path = tmp_path / f"{layer_cls.__name__}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(list(inputs), verbose=0), model.predict(list(inputs), verbose=0))

    # One training step moves every trainable weight.
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = [keras.ops.convert_to_numpy(w).copy() for w in layer.trainable_weights]
    rng = np.random.default_rng(0)
    model.train_on_batch(list(inputs), rng.standard_normal(outputs.shape).astype("float32"))
    for weight, old in zip(layer.trainable_weights, before):
        assert not np.array_equal(keras.ops.convert_to_numpy(weight), old), f"{weight.path} did not train"

    # Masking: put 3 garbage frames in front, masked. The recurrent state must hold through them, so the
    # valid frames give exactly the unpadded outputs.
    padding = 3
    padded = np.concatenate([rng.standard_normal(inputs[0][:, :padding].shape).astype("float32"), inputs[0]], axis=1)
    mask = np.ones(padded.shape[:2], dtype=bool)
    mask[:, :padding] = False
    reference = keras.ops.convert_to_numpy(layer(*inputs))
    masked = keras.ops.convert_to_numpy(layer(padded, *inputs[1:], **{mask_argument: mask}))
    np.testing.assert_allclose(masked[:, padding:], reference, rtol=1e-5, atol=1e-6)
    if padded_outputs_are_zero:
        np.testing.assert_array_equal(masked[:, :padding], 0.0)
    return layer
