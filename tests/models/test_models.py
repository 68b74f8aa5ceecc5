"""Tests of the Functional MLMS / SLSS models: paper semantics of training, masking, saving, streaming."""

import dataclasses
import doctest
import json

import keras
import numpy as np
import pytest

from mlms_keras.models import acoustic
from mlms_keras.models.acoustic import (
    MLMSConfig,
    build_mlms_model,
    build_slss_model,
    config_of,
    reset_streaming_state,
)

CONFIG = MLMSConfig.preset("tiny", input_dim=6, num_languages=3, num_speakers=4)


def batch(languages, speakers, frames=10, seed=0):
    rng = np.random.default_rng(seed)
    inputs = {
        "linguistic": rng.standard_normal((len(languages), frames, CONFIG.input_dim)).astype("float32"),
        "language": np.asarray(languages, "int32"),
        "speaker": np.asarray(speakers, "int32"),
    }
    return inputs, rng.standard_normal((len(languages), frames, CONFIG.output_dim)).astype("float32")


def snapshot(model):
    return {w.path: keras.ops.convert_to_numpy(w).copy() for w in model.weights}


@pytest.mark.parametrize("optimizer", [lambda: keras.optimizers.SGD(0.05), lambda: keras.optimizers.Adam(1e-3)])
def test_a_training_step_moves_only_the_language_code_and_speaker_layer_it_saw(optimizer):
    """Paper sec. 2, last paragraph: other codes and speaker layers stay unchanged without their data."""
    keras.utils.set_random_seed(0)
    model = build_mlms_model(CONFIG)
    model.compile(optimizer=optimizer(), loss="mse")
    inputs, targets = batch(languages=[1, 1], speakers=[2, 2])
    before = snapshot(model)
    model.train_on_batch(inputs, targets)
    after = snapshot(model)
    towers, speakers = model.get_layer("towers"), model.get_layer("acoustic")
    changed = {path for path in before if not np.array_equal(before[path], after[path])}
    language_codes = [w.path for w in towers.language_codes.codes]
    speaker_layers = [[w.path for w in speakers.speaker_variables(s)] for s in range(CONFIG.num_speakers)]
    assert language_codes[1] in changed
    assert not changed & (set(language_codes) - {language_codes[1]})
    assert set(speaker_layers[2]) <= changed
    assert not changed & {p for s in (0, 1, 3) for p in speaker_layers[s]}
    tower_weights = {w.path for w in towers.mean_tower.weights + towers.basis_towers.weights}
    assert tower_weights <= changed


def test_padded_frames_change_neither_valid_outputs_nor_the_loss():
    keras.utils.set_random_seed(1)
    model = build_mlms_model(CONFIG)
    model.compile(optimizer="sgd", loss="mse")
    inputs, targets = batch(languages=[0, 2], speakers=[1, 3], frames=8)
    reference_outputs = model.predict(inputs, verbose=0)
    reference_loss = model.evaluate(inputs, targets, verbose=0)

    padded_inputs = {key: value.copy() for key, value in inputs.items()}
    padded_inputs["linguistic"] = np.concatenate(
        [inputs["linguistic"], np.zeros((2, 5, CONFIG.input_dim), "float32")], axis=1
    )
    padded_targets = np.concatenate(
        [targets, np.random.default_rng(9).standard_normal((2, 5, 49)).astype("float32")], axis=1
    )
    padded_outputs = model.predict(padded_inputs, verbose=0)
    np.testing.assert_allclose(padded_outputs[:, :8], reference_outputs, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(padded_outputs[:, 8:], 0.0)
    np.testing.assert_allclose(model.evaluate(padded_inputs, padded_targets, verbose=0), reference_loss, rtol=1e-5)


def test_shorter_sequences_padded_in_a_batch_match_their_own_pass():
    keras.utils.set_random_seed(2)
    model = build_mlms_model(CONFIG)
    inputs, _ = batch(languages=[0, 1], speakers=[0, 1], frames=9)
    inputs["linguistic"][1, 6:] = 0.0  # sequence 1 has 6 frames
    together = model.predict(inputs, verbose=0)
    alone = model.predict({k: v[1:] if k != "linguistic" else v[1:, :6] for k, v in inputs.items()}, verbose=0)
    np.testing.assert_allclose(together[1, :6], alone[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("builder", [build_mlms_model, build_slss_model])
def test_keras_file_round_trip_gives_identical_outputs(builder, tmp_path):
    keras.utils.set_random_seed(3)
    model = builder(CONFIG)
    inputs, _ = batch(languages=[0, 2, 1], speakers=[3, 0, 1])
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects: every layer is registered
    np.testing.assert_array_equal(loaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0))


def test_adapted_model_round_trips_with_its_new_language_and_speaker(tmp_path):
    keras.utils.set_random_seed(4)
    model = build_mlms_model(CONFIG)
    model.get_layer("towers").add_language()
    model.get_layer("acoustic").add_speaker(copy_from=0)
    inputs, _ = batch(languages=[3, 0], speakers=[4, 1])
    path = tmp_path / "adapted.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0))
    assert config_of(loaded).num_languages == 4 and config_of(loaded).num_speakers == 5


def test_streaming_in_chunks_of_7_frames_equals_one_pass():
    keras.utils.set_random_seed(5)
    model = build_mlms_model(CONFIG)
    # A stable, non-trivial output recurrence (spectral radius ~0.35).
    for speaker_weights in model.get_layer("acoustic").speaker_weights:
        recurrent = speaker_weights.recurrent_kernel
        recurrent.assign(0.05 * np.random.default_rng(0).standard_normal(recurrent.shape))
    inputs, _ = batch(languages=[2], speakers=[1], frames=30)
    full = model.predict(inputs, verbose=0)

    streaming = build_mlms_model(CONFIG, stateful=True, batch_size=1)
    streaming.set_weights(model.get_weights())
    for _ in range(2):  # a second utterance after a reset must match too
        reset_streaming_state(streaming)
        chunks = []
        for start in range(0, 30, 7):
            chunk = dict(inputs, linguistic=inputs["linguistic"][:, start : start + 7])
            chunks.append(streaming.predict_on_batch(chunk))
        np.testing.assert_allclose(np.concatenate(chunks, axis=1), full, rtol=1e-5, atol=1e-6)


def test_paper_preset_has_the_parameter_count_of_section_4_1():
    config = MLMSConfig.preset("paper", input_dim=400, num_languages=6, num_speakers=8)
    model = build_mlms_model(config)
    relu = 400 * 256 + 256
    first_lstmp = 256 * 1024 + 128 * 1024 + 1024 + 256 * 128
    other_lstmp = 128 * 1024 + 128 * 1024 + 1024 + 256 * 128
    tower = relu + first_lstmp + 2 * other_lstmp
    speaker_layer = 128 * 49 + 49 * 49 + 49
    assert model.count_params() == 7 * tower + 6 * 6 + 8 * speaker_layer


def test_slss_model_is_one_tower_and_one_output_layer():
    model = build_slss_model(CONFIG)
    towers = model.get_layer("towers")
    assert towers.language_space_dim == 0 and model.get_layer("acoustic").num_speakers == 1
    inputs, targets = batch(languages=[0, 2], speakers=[1, 3])
    model.compile(optimizer="sgd", loss="mse")
    model.train_on_batch(inputs, targets)  # the ids are accepted and ignored


def test_config_round_trips_and_rejects_unknown_fields():
    assert MLMSConfig.from_dict(CONFIG.to_dict()) == CONFIG
    with pytest.raises(ValueError, match="Unknown MLMSConfig fields"):
        MLMSConfig.from_dict(dict(CONFIG.to_dict(), towers=3))
    with pytest.raises(ValueError, match="Unknown preset 'huge'"):
        MLMSConfig.preset("huge", input_dim=3)


def test_stateful_model_needs_a_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        build_mlms_model(CONFIG, stateful=True)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("lstm_cells", 0, "`lstm_cells` must be an integer >= 1. Received: lstm_cells=0"),
        ("language_space_dim", -1, "`language_space_dim` must be an integer >= 0. Received: language_space_dim=-1"),
        ("input_dim", 6.0, "`input_dim` must be an integer >= 1. Received: input_dim=6.0"),
        ("code_init", "zeros", "`code_init` must be one of ('random', 'one_hot', 'one_hot_fixed'). Received: "),
    ],
)
def test_config_refuses_bad_sizes_naming_the_field(field, value, message):
    with pytest.raises(ValueError) as raised:
        dataclasses.replace(CONFIG, **{field: value})
    assert str(raised.value).startswith(message)


def test_slss_config_with_no_language_space_is_valid():
    assert dataclasses.replace(CONFIG, language_space_dim=0).language_space_dim == 0


def test_config_keeps_numpy_integer_sizes_as_python_integers():
    config = dataclasses.replace(CONFIG, input_dim=np.int64(6), num_speakers=np.int32(3))
    assert config.to_dict()["input_dim"] == 6 and type(config.input_dim) is int and type(config.num_speakers) is int
    assert json.loads(str(config))["num_speakers"] == 3


def test_docstring_examples_run():
    results = doctest.testmod(acoustic)
    assert results.attempted > 0 and results.failed == 0
