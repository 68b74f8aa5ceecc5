"""Tests of the custom layers against independent references (numpy equations, stock Keras stacks)."""

import doctest
import importlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_testing import run_layer_test

from mlms_keras.layers import (
    SERIALIZATION_PACKAGE,
    ClusterAdaptiveTowers,
    ProjectedLSTM,
    ProjectedLSTMCell,
    SpeakerRNNOutput,
)

TOWER_SIZES = dict(relu_units=12, lstm_layers=3, lstm_cells=10, lstm_projection=6)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_lstmp(sequences, kernel, recurrent_kernel, bias, projection_kernel):
    """LSTMP equations of Sak et al. (2014), written out in numpy (gate order i, f, g, o)."""
    batch, frames, _ = sequences.shape
    projection = np.zeros((batch, projection_kernel.shape[1]))
    cells = np.zeros((batch, projection_kernel.shape[0]))
    outputs = []
    for t in range(frames):
        gates = sequences[:, t] @ kernel + projection @ recurrent_kernel + bias
        i, f, g, o = np.split(gates, 4, axis=-1)
        cells = sigmoid(f) * cells + sigmoid(i) * np.tanh(g)
        projection = (sigmoid(o) * np.tanh(cells)) @ projection_kernel
        outputs.append(projection)
    return np.stack(outputs, axis=1)


def numpy_speaker_output(hidden, speakers, forward, recurrent, bias):
    """Eq. 2 in numpy: y_t = h_t W_f[s] + y_{t-1} W_r[s] + b[s], one sequence at a time."""
    outputs = np.zeros(hidden.shape[:2] + (forward[0].shape[1],))
    for b, s in enumerate(speakers):
        previous = np.zeros(forward[0].shape[1])
        for t in range(hidden.shape[1]):
            previous = hidden[b, t] @ forward[s] + previous @ recurrent[s] + bias[s]
            outputs[b, t] = previous
    return outputs


def numpy_weights(layer):
    return [keras.ops.convert_to_numpy(w).astype("float64") for w in layer.weights]


@pytest.fixture
def frames():
    return np.random.default_rng(1).standard_normal((3, 9, 5)).astype("float32")


def test_projected_lstm_matches_numpy_equations(frames):
    layer = ProjectedLSTM(10, 4, return_sequences=True)
    outputs = keras.ops.convert_to_numpy(layer(frames))
    kernel, recurrent_kernel, bias, projection_kernel = numpy_weights(layer)
    expected = numpy_lstmp(frames.astype("float64"), kernel, recurrent_kernel, bias, projection_kernel)
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-6)


def test_projected_lstm_forget_bias_starts_at_one():
    cell = ProjectedLSTMCell(4, 2)
    cell.build((None, 3))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(cell.bias), [0] * 4 + [1] * 4 + [0] * 8)


def test_projected_lstm_state_is_projection_then_cells(frames):
    outputs, projection, cells = ProjectedLSTM(10, 4, return_state=True)(frames)
    assert tuple(projection.shape) == (3, 4) and tuple(cells.shape) == (3, 10)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(outputs), keras.ops.convert_to_numpy(projection))


def test_projected_lstm_layer_contract(frames, tmp_path):
    run_layer_test(
        ProjectedLSTM,
        dict(units=10, projection_units=4, return_sequences=True),
        (frames,),
        (3, 9, 4),
        mask_argument="mask",
        tmp_path=tmp_path,
        padded_outputs_are_zero=False,
    )


def test_projected_lstm_stateful_chunks_equal_one_pass(frames):
    full = ProjectedLSTM(10, 4, return_sequences=True)
    reference = keras.ops.convert_to_numpy(full(frames))
    streaming = ProjectedLSTM(10, 4, return_sequences=True, stateful=True)
    streaming(frames[:, :2])
    for source, target in zip(full.weights, streaming.weights):
        target.assign(source)
    streaming.reset_state()
    chunks = [keras.ops.convert_to_numpy(streaming(frames[:, i : i + 4])) for i in range(0, 9, 4)]
    np.testing.assert_allclose(np.concatenate(chunks, axis=1), reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("code_init", ["random", "one_hot"])
def test_towers_layer_contract(frames, tmp_path, code_init):
    run_layer_test(
        ClusterAdaptiveTowers,
        dict(num_languages=3, language_space_dim=3, code_init=code_init, **TOWER_SIZES),
        (frames, np.array([0, 1, 2], "int32")),
        (3, 9, 6),
        mask_argument="frames_mask",
        tmp_path=tmp_path,
    )


def test_speaker_output_layer_contract(frames, tmp_path):
    run_layer_test(
        SpeakerRNNOutput,
        dict(num_speakers=3, output_dim=7),
        (frames, np.array([2, 0, 1], "int32")),
        (3, 9, 7),
        mask_argument="hidden_mask",
        tmp_path=tmp_path,
    )


def naive_tower_outputs(towers, frames):
    """Each tower as its own stock stack (Dense ReLU + ProjectedLSTM layers) from the fused weights."""
    outputs = []
    stacks = [(towers.mean_tower, 0)] + [(towers.basis_towers, k) for k in range(towers.language_space_dim)]
    for stack, k in stacks:
        relu = keras.layers.Dense(towers.relu_units, activation="relu")
        x = relu(frames)
        relu.kernel.assign(stack.relu_kernel[k])
        relu.bias.assign(stack.relu_bias[k])
        x = relu(frames)
        for weights in stack.lstm_weights:
            lstm = ProjectedLSTM(towers.lstm_cells, towers.lstm_projection, return_sequences=True)
            lstm(x)
            lstm.cell.kernel.assign(weights.kernel[k])
            lstm.cell.recurrent_kernel.assign(weights.recurrent_kernel[k])
            lstm.cell.bias.assign(weights.bias[k])
            lstm.cell.projection_kernel.assign(weights.projection_kernel[k])
            x = lstm(x)
        outputs.append(keras.ops.convert_to_numpy(x).astype("float64"))
    return outputs


def test_fused_towers_equal_separate_stacks_with_the_same_weights(frames):
    towers = ClusterAdaptiveTowers(num_languages=4, language_space_dim=3, **TOWER_SIZES)
    languages = np.array([3, 0, 2], "int32")
    fused = keras.ops.convert_to_numpy(towers(frames, languages))
    mean, *basis = naive_tower_outputs(towers, frames)
    codes = np.stack([keras.ops.convert_to_numpy(c) for c in towers.language_codes.codes])
    expected = mean + np.einsum("kbtp,bk->btp", np.stack(basis), codes[languages])  # Eq. 1
    np.testing.assert_allclose(fused, expected, rtol=1e-5, atol=1e-6)


def test_mean_tower_alone_is_a_single_tower_stack(frames):
    towers = ClusterAdaptiveTowers(num_languages=1, language_space_dim=0, **TOWER_SIZES)
    fused = keras.ops.convert_to_numpy(towers(frames))
    (expected,) = naive_tower_outputs(towers, frames)
    np.testing.assert_allclose(fused, expected, rtol=1e-5, atol=1e-6)
    assert towers.basis_towers is None and towers.language_codes is None


def test_fused_towers_train_like_separate_stacks(frames):
    """The hand-written backward pass (training=True) equals autodiff of an independent per-tower loop."""
    towers = ClusterAdaptiveTowers(num_languages=2, language_space_dim=1, jit_recurrence="never", **TOWER_SIZES)
    languages = np.array([1, 0, 1], "int32")
    towers(frames, languages)
    target = np.random.default_rng(2).standard_normal((3, 9, 6)).astype("float32")
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((towers(frames, languages, training=True) - target) ** 2)
    fused_gradients = tape.gradient(loss, towers.trainable_weights)

    def reference_loss():
        outputs = []
        for stack, k in ((towers.mean_tower, 0), (towers.basis_towers, 0)):
            x = tf.nn.relu(tf.einsum("btd,dr->btr", frames, stack.relu_kernel[k]) + stack.relu_bias[k])
            for weights in stack.lstm_weights:
                r = tf.zeros((3, towers.lstm_projection))
                c = tf.zeros((3, towers.lstm_cells))
                steps = []
                for t in range(9):
                    z = x[:, t] @ weights.kernel[k] + r @ weights.recurrent_kernel[k] + weights.bias[k]
                    i, f, g, o = tf.split(z, 4, axis=-1)
                    c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
                    r = (tf.sigmoid(o) * tf.tanh(c)) @ weights.projection_kernel[k]
                    steps.append(r)
                x = tf.stack(steps, axis=1)
            outputs.append(x)
        codes = tf.gather(towers.language_codes.matrix(), languages)
        return tf.reduce_mean((outputs[0] + codes[:, :1, None] * outputs[1] - target) ** 2)

    with tf.GradientTape() as tape:
        loss = reference_loss()
    reference_gradients = tape.gradient(loss, towers.trainable_weights)
    for weight, fused, reference in zip(towers.trainable_weights, fused_gradients, reference_gradients):
        np.testing.assert_allclose(
            tf.convert_to_tensor(fused).numpy(),
            tf.convert_to_tensor(reference).numpy(),
            rtol=1e-4,
            atol=1e-6,
            err_msg=weight.path,
        )


def test_speaker_output_matches_eq2_with_mixed_speakers_in_a_batch(frames):
    layer = SpeakerRNNOutput(num_speakers=3, output_dim=4)
    speakers = np.array([2, 0, 2], "int32")
    layer(frames, speakers)
    rng = np.random.default_rng(3)
    for weights in layer.speaker_weights:  # non-zero recurrent matrices, so the recurrence matters
        for weight in weights:
            weight.assign(0.3 * rng.standard_normal(weight.shape))
    outputs = keras.ops.convert_to_numpy(layer(frames, speakers))
    forward, recurrent, bias = (
        [keras.ops.convert_to_numpy(getattr(w, field)).astype("float64") for w in layer.speaker_weights]
        for field in ("forward_kernel", "recurrent_kernel", "bias")
    )
    expected = numpy_speaker_output(frames.astype("float64"), speakers, forward, recurrent, bias)
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)


def test_speaker_layer_has_the_paper_shapes():
    layer = SpeakerRNNOutput(num_speakers=2, output_dim=49)
    layer(np.zeros((1, 2, 128), "float32"), np.array([1]))
    variables = layer.speaker_variables(1)
    shapes = {name: tuple(w.shape) for name, w in variables._asdict().items()}
    assert shapes == {"forward_kernel": (128, 49), "recurrent_kernel": (49, 49), "bias": (49,)}  # sec. 4.1
    assert [w.path.rsplit("/", 1)[-1] for w in variables] == ["forward_kernel_1", "recurrent_kernel_1", "bias_1"]


def test_add_language_leaves_existing_weights_and_outputs_untouched(frames):
    towers = ClusterAdaptiveTowers(num_languages=2, language_space_dim=2, **TOWER_SIZES)
    languages = np.array([0, 1, 1], "int32")
    before_outputs = keras.ops.convert_to_numpy(towers(frames, languages))
    before = {w.path: keras.ops.convert_to_numpy(w).copy() for w in towers.weights}
    new_language = towers.add_language(initial_code=[0.5, -0.25])
    assert new_language == 2 and towers.num_languages == 3
    for weight in towers.weights:
        if weight.path in before:
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(weight), before[weight.path])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(towers.language_codes.codes[2]), [0.5, -0.25])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(towers(frames, languages)), before_outputs)
    assert towers(frames, np.array([2, 2, 2], "int32")).shape == (3, 9, 6)
    restored = ClusterAdaptiveTowers.from_config(towers.get_config())
    restored(frames, languages)
    assert len(restored.language_codes.codes) == 3


def test_add_speaker_copies_its_source_and_leaves_others_untouched(frames):
    layer = SpeakerRNNOutput(num_speakers=2, output_dim=4)
    layer(frames, np.array([0, 1, 0], "int32"))
    before = [keras.ops.convert_to_numpy(w).copy() for w in layer.weights]
    new_speaker = layer.add_speaker(copy_from=1)
    assert new_speaker == 2
    for weight, old in zip(layer.weights, before):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(weight), old)
    for copied, source in zip(layer.speaker_variables(2), layer.speaker_variables(1)):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(copied), keras.ops.convert_to_numpy(source))


def test_one_hot_codes_start_one_hot():
    towers = ClusterAdaptiveTowers(num_languages=3, language_space_dim=3, code_init="one_hot", **TOWER_SIZES)
    towers(np.zeros((1, 2, 5), "float32"), np.array([0]))
    codes = np.stack([keras.ops.convert_to_numpy(c) for c in towers.language_codes.codes])
    np.testing.assert_array_equal(codes, np.eye(3))
    assert all(c.trainable for c in towers.language_codes.codes)


def test_one_hot_fixed_codes_are_not_trainable_and_need_l_equal_u():
    towers = ClusterAdaptiveTowers(num_languages=3, language_space_dim=3, code_init="one_hot_fixed", **TOWER_SIZES)
    towers(np.zeros((1, 2, 5), "float32"), np.array([0]))
    assert not any(c.trainable for c in towers.language_codes.codes)
    assert not any("code" in w.path for w in towers.trainable_weights)
    with pytest.raises(ValueError, match="language_space_dim == num_languages"):
        ClusterAdaptiveTowers(num_languages=4, language_space_dim=3, code_init="one_hot_fixed")


def test_weight_groups_freeze_independently(frames):
    towers = ClusterAdaptiveTowers(num_languages=2, language_space_dim=2, **TOWER_SIZES)
    towers(frames, np.array([0, 1, 0], "int32"))
    all_paths = {w.path for w in towers.trainable_weights}
    for group in (towers.mean_tower, towers.basis_towers, towers.language_codes):
        group.trainable = False
        frozen = {w.path for w in group.weights}
        assert {w.path for w in towers.trainable_weights} == all_paths - frozen
        group.trainable = True


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda t: t(np.zeros((2, 4, 5), "float32"), np.array([0, 3])),
            r"`language` ids must be in \[0, 3\); received \[3\]",
        ),
        (lambda t: t(np.zeros((2, 4, 5), "float32"), np.array([-1, 0])), r"`language` ids .* received \[-1\]"),
        (lambda t: t(np.zeros((2, 4, 6), "float32"), np.array([0, 1])), r"`frames` must have 5 features"),
        (lambda t: t(np.zeros((2, 4, 5), "float32"), np.array([[0], [1]])), r"`language` must have shape \(batch,\)"),
        (lambda t: t(np.zeros((2, 4, 5), "float32")), r"`language` is required"),
    ],
)
def test_towers_bad_input_names_the_argument(call, message):
    towers = ClusterAdaptiveTowers(num_languages=3, language_space_dim=2, **TOWER_SIZES)
    towers(np.zeros((2, 4, 5), "float32"), np.array([0, 1]))
    with pytest.raises(ValueError, match=message):
        call(towers)


def test_towers_bad_rank_at_build():
    with pytest.raises(ValueError, match=r"`frames` must have shape \(batch, frames, features\)"):
        ClusterAdaptiveTowers(num_languages=3, language_space_dim=2)(np.zeros((4, 5), "float32"), np.array([0]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(num_languages=0, language_space_dim=2),
            r"`num_languages` must be an integer >= 1. Received: num_languages=0",
        ),
        (dict(num_languages=2, language_space_dim=-1), r"`language_space_dim` must be an integer >= 0"),
        (dict(num_languages=2, language_space_dim=2, code_init="zeros"), r"`code_init` must be one of"),
        (dict(num_languages=4, language_space_dim=2, code_init="one_hot"), r"Use code_init='random'"),
    ],
)
def test_towers_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClusterAdaptiveTowers(**kwargs)


def test_speaker_bad_ids_name_the_argument(frames):
    layer = SpeakerRNNOutput(num_speakers=2, output_dim=4)
    layer(frames, np.array([0, 1, 0]))
    with pytest.raises(ValueError, match=r"`speaker` ids must be in \[0, 2\); received \[2\]"):
        layer(frames, np.array([0, 2, 0]))
    with pytest.raises(ValueError, match=r"`num_speakers` must be an integer >= 1. Received: num_speakers=0"):
        SpeakerRNNOutput(num_speakers=0)


def test_ids_out_of_range_inside_a_compiled_graph_raise_at_run_time(frames):
    """In a tf.function the check becomes an op: it raises InvalidArgumentError with the argument's name."""
    towers = ClusterAdaptiveTowers(num_languages=3, language_space_dim=2, **TOWER_SIZES)
    towers(frames, np.array([0, 1, 2]))
    compiled = tf.function(lambda x, language: towers(x, language))
    with pytest.raises(tf.errors.InvalidArgumentError, match="`language` id >= num_languages"):
        compiled(frames, tf.constant([0, 1, 5]))


def test_xla_time_loops_match_the_plain_loops_in_outputs_and_gradients(frames):
    towers = ClusterAdaptiveTowers(num_languages=2, language_space_dim=2, **TOWER_SIZES)
    languages = np.array([1, 0, 1], "int32")
    mask = np.ones((3, 9), bool)
    mask[1, :4] = False  # masking goes through the XLA loops too
    towers(frames, languages)
    results = []
    for training in (False, True):  # jit_recurrence="training": XLA only when training
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(towers(frames, languages, frames_mask=mask, training=training) ** 2)
        gradients = tape.gradient(loss, towers.trainable_weights)
        results.append((loss.numpy(), [tf.convert_to_tensor(g).numpy() for g in gradients]))
    (plain_loss, plain_gradients), (xla_loss, xla_gradients) = results
    np.testing.assert_allclose(xla_loss, plain_loss, rtol=1e-5)
    for plain, xla in zip(plain_gradients, xla_gradients):
        np.testing.assert_allclose(xla, plain, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ProjectedLSTMCell(units=0, projection_units=4),
        lambda: ProjectedLSTM(units=8, projection_units=-1),
        lambda: ClusterAdaptiveTowers(num_languages=2, language_space_dim=1, lstm_cells=0),
        lambda: SpeakerRNNOutput(num_speakers=2, output_dim=0),
    ],
)
def test_every_layer_uses_the_same_integer_message(make):
    with pytest.raises(ValueError, match=r"` must be an integer >= 1. Received: \w+=-?\d"):
        make()


def test_numpy_integer_sizes_serialise_as_python_integers():
    cell = ProjectedLSTMCell(np.int64(8), np.int32(4))
    config = cell.get_config()
    assert type(config["units"]) is int and type(config["projection_units"]) is int


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: ProjectedLSTMCell(4, 2), "ProjectedLSTMCell"),
        (lambda: ProjectedLSTM(4, 2), "ProjectedLSTM"),
        (lambda: ClusterAdaptiveTowers(num_languages=2, language_space_dim=1, **TOWER_SIZES), "ClusterAdaptiveTowers"),
        (lambda: SpeakerRNNOutput(num_speakers=2), "SpeakerRNNOutput"),
    ],
)
def test_layers_are_registered_under_the_package_name_saved_files_use(make, name):
    # Saved models and zoo voices name the layers "mlms_keras>NAME": this name must never change.
    assert SERIALIZATION_PACKAGE == "mlms_keras"
    assert keras.saving.serialize_keras_object(make())["registered_name"] == f"mlms_keras>{name}"
    assert keras.saving.get_registered_object(f"mlms_keras>{name}").__name__ == name


@pytest.mark.parametrize("module", ["lstmp", "towers", "speaker_output"])
def test_docstring_examples_run(module):
    module = importlib.import_module(f"mlms_keras.layers.{module}")
    results = doctest.testmod(module, extraglobs={"np": np, "keras": keras})
    assert results.attempted > 0 and results.failed == 0
