"""Tests of the adaptation variants v1-v4 (Li & Zen 2016, sec. 4.2): which weights each phase moves."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from model_testing import tiny_config, tiny_model

from mlms_keras.models.acoustic import build_slss_model
from mlms_keras.training.adaptation import (
    AdaptationOptions,
    PhaseSchedule,
    adapt,
    adaptation_phases,
    adaptation_weight_groups,
    closest_speaker,
    with_ids,
)

CONFIG = tiny_config()

# The paper's variants written out independently of the module: language-side groups per phase.
PAPER_VARIANTS = {
    "v1": [{"code"}],
    "v2": [{"code", "mean"}],
    "v3": [{"code"}, {"mean"}],
    "v4": [{"code"}, {"mean"}, {"code", "mean"}],
}


def new_speaker_data(sequences=4, frames=12, seed=0, batch_size=2):
    """In-memory batches shaped like the prepared pipeline's: zero-padded frames, ids of some other table."""
    rng = np.random.default_rng(seed)
    linguistic = rng.standard_normal((sequences, frames, CONFIG.input_dim)).astype("float32")
    acoustic = rng.standard_normal((sequences, frames, CONFIG.output_dim)).astype("float32")
    lengths = rng.integers(frames // 2, frames + 1, size=sequences)
    for index, length in enumerate(lengths):
        linguistic[index, length:] = 0.0
        acoustic[index, length:] = 0.0
    inputs = {
        "linguistic": linguistic,
        "language": np.full((sequences,), 7, "int32"),  # the dataset's own id; with_ids replaces it
        "speaker": np.full((sequences,), 9, "int32"),
    }
    return tf.data.Dataset.from_tensor_slices((inputs, acoustic)).batch(batch_size)


def snapshot(model):
    return {w.path: keras.ops.convert_to_numpy(w).copy() for w in model.weights}


class Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.snapshots = []
        self.val_losses = []

    def on_epoch_end(self, epoch, logs=None):
        self.snapshots.append(snapshot(self.model))
        self.val_losses.append(logs.get("val_loss"))


def expected_paths(model, language, speaker, language_side):
    towers, speakers = model.get_layer("towers"), model.get_layer("acoustic")
    paths = {w.path for w in speakers.speaker_variables(speaker)}
    if "code" in language_side:
        paths.add(towers.language_codes.codes[language].path)
    if "mean" in language_side:
        paths |= {w.path for w in towers.mean_tower.weights}
    return paths


@pytest.mark.parametrize("variant", ["v1", "v2", "v3", "v4"])
def test_each_phase_moves_exactly_its_weights_and_nothing_else(variant):
    model = tiny_model(0)
    recorder = Recorder()
    before = {}

    class Start(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            before.update(snapshot(self.model))

    epochs = 2
    result = adapt(
        model,
        new_speaker_data(),
        new_speaker_data(seed=1),
        AdaptationOptions(variant=variant, epochs_per_phase=epochs, restore_best_per_phase=False),
        copy_speaker_from=1,
        callbacks=[Start(), recorder],
        verbose=0,
    )
    assert (result.language_id, result.speaker_id) == (3, 4)  # appended after 3 languages and 4 speakers
    phase_ends = [before] + [recorder.snapshots[(i + 1) * epochs - 1] for i in range(len(PAPER_VARIANTS[variant]))]
    assert len(recorder.snapshots) == epochs * len(PAPER_VARIANTS[variant])
    for phase, language_side in enumerate(PAPER_VARIANTS[variant]):
        start, end = phase_ends[phase], phase_ends[phase + 1]
        changed = {path for path in start if not np.array_equal(start[path], end[path])}
        assert changed == expected_paths(model, 3, 4, language_side), f"{variant} phase {phase + 1}"


def test_new_speaker_layer_starts_as_a_copy_and_the_code_is_new():
    model = tiny_model(1)
    speakers = model.get_layer("acoustic")
    source = [keras.ops.convert_to_numpy(w).copy() for w in speakers.speaker_variables(2)]
    copied = {}

    class Capture(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            copied["layer"] = [keras.ops.convert_to_numpy(w).copy() for w in speakers.speaker_variables(4)]

    adapt(
        model,
        new_speaker_data(),
        options=AdaptationOptions(variant="v1", epochs_per_phase=1, restore_best_per_phase=False),
        copy_speaker_from=2,
        callbacks=[Capture()],
        verbose=0,
    )
    for original, copy in zip(source, copied["layer"]):
        np.testing.assert_array_equal(copy, original)
    assert model.get_layer("towers").num_languages == 4


def test_frozen_flags_are_restored_after_adaptation():
    model = tiny_model(2)
    adapt(
        model,
        new_speaker_data(),
        options=AdaptationOptions(variant="v4", epochs_per_phase=1, restore_best_per_phase=False),
        copy_speaker_from=None,
        verbose=0,
    )
    assert all(w.trainable for w in model.weights)


def model_ready_to_adapt(seed=None):
    """A compiled MLMS model with one added language and speaker, its optimizer built on every weight."""
    model = tiny_model(seed)
    language, speaker = model.get_layer("towers").add_language(), model.get_layer("acoustic").add_speaker()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model, language, speaker


def started_schedule(model, groups, variant, epochs_per_phase, best_state_path=None):
    """A `PhaseSchedule` with `restore_best_per_phase`, attached to `model` as `fit` would (`on_train_begin`)."""
    schedule = PhaseSchedule(
        adaptation_phases(variant, epochs_per_phase),
        groups,
        restore_best_per_phase=True,
        best_state_path=best_state_path,
    )
    schedule.set_model(model)
    schedule.on_train_begin()
    return schedule


def test_restore_best_per_phase_keeps_the_lowest_dev_loss_epoch():
    model, language, speaker = model_ready_to_adapt(seed=3)
    # Listed before the schedule, the recorder sees each epoch's weights before the phase-end restore.
    recorder = Recorder()
    train, dev = new_speaker_data(), new_speaker_data(seed=5)
    phases = adaptation_phases("v1", 4)
    schedule = PhaseSchedule(phases, adaptation_weight_groups(model, language, speaker), restore_best_per_phase=True)
    model.fit(
        with_ids(train, language, speaker),
        validation_data=with_ids(dev, language, speaker),
        epochs=schedule.total_epochs,
        callbacks=[recorder, schedule],
        verbose=0,
    )
    best_epoch = int(np.argmin(recorder.val_losses))
    final = snapshot(model)
    for path, value in recorder.snapshots[best_epoch].items():
        np.testing.assert_array_equal(final[path], value, err_msg=path)


def test_a_resumed_phase_still_restores_its_best_epoch_from_before_the_kill(tmp_path):
    """The phase-best record on disk outlives the process: a resume late in a phase keeps the pre-kill best."""
    model, language, speaker = model_ready_to_adapt(seed=4)
    groups = adaptation_weight_groups(model, language, speaker)
    trained = groups["language_code"] + groups["speaker_layer"]
    state = tmp_path / "backup" / "phase_best.npz"

    def epoch(schedule, number, val_loss, shift):
        schedule.on_epoch_begin(number)
        for variable in trained:  # stands in for the epoch's training
            variable.assign(variable + shift)
        schedule.on_epoch_end(number, {"val_loss": val_loss})

    first = started_schedule(model, groups, "v1", 4, state)
    epoch(first, 0, 2.0, 0.1)
    epoch(first, 1, 1.0, 0.1)  # the phase's best epoch
    best = {v.path: keras.ops.convert_to_numpy(v).copy() for v in trained}
    epoch(first, 2, 3.0, 0.1)  # ... then the process is killed
    first.on_train_end()  # gives the flags back, as a new process would have them

    resumed = started_schedule(model, groups, "v1", 4, state)
    epoch(resumed, 3, 4.0, 0.1)  # the phase's last epoch, worse than epoch 1
    for variable in trained:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), best[variable.path], err_msg=variable.path)
    # Without the record, the resumed run could only go back to its own best (epoch 3).
    forgetful = started_schedule(model, groups, "v1", 4)
    epoch(forgetful, 3, 4.0, 0.1)
    moved = [v for v in trained if not np.array_equal(keras.ops.convert_to_numpy(v), best[v.path])]
    assert moved


def test_a_phase_best_record_of_an_earlier_phase_is_not_restored_in_the_next(tmp_path):
    model, language, speaker = model_ready_to_adapt()
    groups = adaptation_weight_groups(model, language, speaker)
    state = tmp_path / "phase_best.npz"
    first = started_schedule(model, groups, "v3", 1, state)
    first.on_epoch_begin(0)
    first.on_epoch_end(0, {"val_loss": 0.5})  # phase 1's only epoch: its record is on disk
    first.on_train_end()  # gives the flags back, as a new process would have them
    resumed = started_schedule(model, groups, "v3", 1, state)
    resumed.on_epoch_begin(1)  # phase 2 (the mean tower): a worse loss must still count as its best
    mean = groups["mean_tower"][0]
    mean.assign(mean + 1.0)
    expected = keras.ops.convert_to_numpy(mean).copy()
    resumed.on_epoch_end(1, {"val_loss": 9.0})
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(mean), expected)


def test_phase_of_epoch_follows_the_phase_lengths():
    phases = adaptation_phases("v4", [2, 1, 3])
    schedule = PhaseSchedule(phases, {"language_code": [], "mean_tower": [], "speaker_layer": []})
    assert schedule.total_epochs == 6
    assert [schedule.phase_of_epoch(e) for e in range(6)] == [0, 0, 1, 2, 2, 2]
    assert [p.name for p in phases] == ["language_code", "mean_tower", "language_code+mean_tower"]
    with pytest.raises(ValueError, match="past the last phase"):
        schedule.phase_of_epoch(6)


def test_bad_variant_and_phase_counts_are_rejected_with_their_names():
    with pytest.raises(ValueError, match="variant"):
        adaptation_phases("v5", 1)
    with pytest.raises(ValueError, match="has 2 entries but variant v4 has 3 phases"):
        adaptation_phases("v4", [1, 1])


def test_closest_speaker_finds_the_pair_that_generated_the_data():
    model = tiny_model(4)
    speakers = model.get_layer("acoustic")
    rng = np.random.default_rng(0)
    for s in range(CONFIG.num_speakers):  # distinct, non-trivial speaker layers
        speakers.speaker_variables(s)[2].assign(rng.standard_normal(CONFIG.output_dim).astype("float32"))
    linguistic = rng.standard_normal((3, 9, CONFIG.input_dim)).astype("float32")
    linguistic[0, 6:] = 0.0
    inputs = {"linguistic": linguistic, "language": np.full(3, 1, "int32"), "speaker": np.full(3, 2, "int32")}
    targets = model.predict(inputs, verbose=0)  # the new "speaker" is speaker 2 speaking language 1
    dataset = tf.data.Dataset.from_tensor_slices(({**inputs, "speaker": np.zeros(3, "int32")}, targets)).batch(2)
    distance = closest_speaker(model, dataset)
    assert (distance.language, distance.speaker) == (1, 2)
    assert distance.mse < 1e-10
    assert len(distance.table) == CONFIG.num_languages * CONFIG.num_speakers
    # Each pair's figure pools squared errors over the non-padded frames and all outputs (a numpy reference).
    other = model.predict({**inputs, "language": np.zeros(3, "int32"), "speaker": np.full(3, 3, "int32")}, verbose=0)
    valid = np.any(linguistic != 0.0, axis=-1)
    errors = (other[valid] - targets[valid]).astype(np.float64)
    assert distance.table[(0, 3)] == pytest.approx(np.mean(errors**2), rel=1e-6)
    only_others = closest_speaker(model, dataset, candidates=[(0, 0), (2, 3)])
    assert only_others.speaker in (0, 3) and only_others.mse > 1e-3


def test_one_hot_fixed_codes_stay_fixed_while_the_new_code_adapts():
    model = tiny_model(5, num_languages=2, num_speakers=2, code_init="one_hot_fixed")
    codes = model.get_layer("towers").language_codes.codes
    adapt(
        model,
        new_speaker_data(),
        options=AdaptationOptions(variant="v2", epochs_per_phase=1, restore_best_per_phase=False),
        copy_speaker_from=None,
        verbose=0,
    )
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(codes[0]), [1.0, 0.0])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(codes[1]), [0.0, 1.0])
    assert len(codes) == 3 and codes[2].trainable


def test_an_slss_model_cannot_be_adapted():

    model = build_slss_model(CONFIG)
    with pytest.raises(ValueError, match="no language space"):
        adaptation_weight_groups(model, 0, 0)


def test_a_killed_adaptation_resumes_in_the_right_phase(tmp_path):
    """BackupAndRestore + PhaseSchedule: the phase comes from the epoch number, so a resumed v3 run re-enters
    phase 2."""

    class KillAt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 3:
                raise KeyboardInterrupt("killed in the middle of phase 2")

    def grown_model():
        model = tiny_model(6)
        model.get_layer("towers").add_language()
        model.get_layer("acoustic").add_speaker(copy_from=0)
        return model

    backup = str(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        adapt(
            grown_model(),
            new_speaker_data(),
            options=AdaptationOptions(variant="v3", epochs_per_phase=2, restore_best_per_phase=False),
            language=3,
            speaker=4,
            callbacks=[KillAt(), keras.callbacks.BackupAndRestore(backup)],
            verbose=0,
        )
    model = grown_model()
    restored = {}

    class AtResume(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if not restored:
                restored.update(snapshot(self.model))
                restored["_epoch"] = epoch

    schedule_log = []

    class PhaseLog(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            schedule_log.append((epoch, logs["adaptation_phase"]))

    adapt(
        model,
        new_speaker_data(),
        options=AdaptationOptions(variant="v3", epochs_per_phase=2, restore_best_per_phase=False),
        language=3,
        speaker=4,
        callbacks=[keras.callbacks.BackupAndRestore(backup), AtResume(), PhaseLog()],
        verbose=0,
    )
    assert restored.pop("_epoch") == 3 and schedule_log == [(3, 2.0)]
    end = snapshot(model)
    changed = {path for path in end if not np.array_equal(restored[path], end[path])}
    assert changed == expected_paths(model, 3, 4, {"mean"})  # phase 2 of v3: mean tower + speaker layer
