"""Tests of the training driver: per-language dev MSE, best checkpoint, resumption after a kill, early stopping."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from model_testing import tiny_config, tiny_model

from mlms_keras.training.callbacks import PerLanguageDevMSE
from mlms_keras.training.fit import TrainingOptions, train
from mlms_keras.training.runs import load_run

SIZES = dict(input_dim=5, num_languages=3, num_speakers=3)
CONFIG = tiny_config(**SIZES)


def make_data(seed, sequences=6, frames=10, batch_size=3):
    """Zero-padded in-memory batches like the prepared pipeline's; returns the dataset and the true lengths."""
    rng = np.random.default_rng(seed)
    linguistic = rng.standard_normal((sequences, frames, CONFIG.input_dim)).astype("float32")
    acoustic = rng.standard_normal((sequences, frames, CONFIG.output_dim)).astype("float32")
    acoustic[:, :, 41] = rng.integers(0, 2, (sequences, frames))  # a 0/1 V/UV column, as in real data
    lengths = rng.integers(4, frames + 1, size=sequences)
    for index, length in enumerate(lengths):
        linguistic[index, length:] = 0.0
        acoustic[index, length:] = 0.0
    inputs = {
        "linguistic": linguistic,
        "language": (np.arange(sequences) % 3).astype("int32"),
        "speaker": ((np.arange(sequences) + 1) % 3).astype("int32"),
    }
    dataset = tf.data.Dataset.from_tensor_slices((inputs, acoustic)).batch(batch_size)
    return dataset, inputs, acoustic, lengths


def fresh_model(seed=0, learning_rate=0.01, optimizer=None):
    model = tiny_model(seed, **SIZES)
    model.compile(optimizer=optimizer or keras.optimizers.Adam(learning_rate), loss="mse")
    return model


class EpochLog(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


class KillAt(keras.callbacks.Callback):
    """Stands in for a kill: raises when epoch `epoch` starts (after the previous epoch was backed up)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt(f"killed at the start of epoch {epoch}")


def test_per_language_dev_mse_matches_a_numpy_reference():
    dataset, inputs, targets, lengths = make_data(seed=1)
    model = fresh_model()
    callback = PerLanguageDevMSE(dataset, ["en-us", "fr", "pl"])
    callback.set_model(model)
    values = callback.compute()
    predicted = model.predict(inputs, verbose=0)
    for language, name in enumerate(["en-us", "fr", "pl"]):
        rows = np.flatnonzero(inputs["language"] == language)
        errors = np.concatenate([(predicted[r, : lengths[r]] - targets[r, : lengths[r]]).ravel() for r in rows])
        assert values[name] == pytest.approx(np.mean(errors.astype(np.float64) ** 2), rel=1e-5)


def test_model_keras_holds_the_best_dev_epoch_and_the_run_is_recorded(tmp_path):
    train_data, *_ = make_data(seed=2)
    dev_data, *_ = make_data(seed=3)
    model = fresh_model(learning_rate=0.05)
    result = train(
        model,
        train_data,
        dev_data,
        tmp_path / "run",
        TrainingOptions(epochs=4, early_stopping_patience=None),
        language_names=["en-us", "fr", "pl"],
        run_info={"dataset": "somewhere/dataset.json"},
        verbose=0,
    )
    info = json.loads((tmp_path / "run" / "training.json").read_text())
    val_losses = info["history"]["val_loss"]
    assert len(val_losses) == 4 and info["complete"] and info["dataset"] == "somewhere/dataset.json"
    assert result.best_epoch == int(np.argmin(val_losses))
    assert info["config"] == CONFIG.to_dict()
    assert set(info["history"]) >= {"loss", "val_loss", "val_mse_en-us", "val_mse_fr", "val_mse_pl"}
    loaded, loaded_info = load_run(tmp_path / "run")
    assert loaded_info["best_epoch"] == result.best_epoch
    # The saved model reproduces the dev MSE recorded at its epoch.
    assert loaded.evaluate(dev_data, verbose=0) == pytest.approx(val_losses[result.best_epoch], rel=1e-5)
    assert list((tmp_path / "run" / "logs").rglob("events.out.tfevents.*")), "TensorBoard wrote no event file"
    assert not (tmp_path / "run" / "backup").exists()  # BackupAndRestore removes its backup after a finished run
    with pytest.raises(FileExistsError, match="already complete"):
        train(fresh_model(), train_data, dev_data, tmp_path / "run", TrainingOptions(epochs=1), verbose=0)


@pytest.mark.slow
def test_a_killed_run_resumes_at_the_next_epoch_and_ends_like_an_uninterrupted_one(tmp_path):
    train_data, *_ = make_data(seed=4)
    dev_data, *_ = make_data(seed=5)
    options = TrainingOptions(epochs=4, early_stopping_patience=None)
    whole = train(fresh_model(), train_data, dev_data, tmp_path / "whole", options, verbose=0)

    with pytest.raises(KeyboardInterrupt):
        train(
            fresh_model(),
            train_data,
            dev_data,
            tmp_path / "killed",
            options,
            callbacks=[KillAt(2)],
            verbose=0,
        )
    assert len(json.loads((tmp_path / "killed" / "history.json").read_text())["epochs"]) == 2
    epochs = EpochLog()
    resumed = train(
        fresh_model(seed=99),
        train_data,
        dev_data,
        tmp_path / "killed",
        options,
        callbacks=[epochs],
        verbose=0,
    )
    assert epochs.epochs == [2, 3]
    assert [r["epoch"] for r in json.loads((tmp_path / "killed" / "history.json").read_text())["epochs"]] == [
        0,
        1,
        2,
        3,
    ]
    # Weights and optimizer state came back: the dev curve and the final model are those of the uninterrupted run.
    np.testing.assert_allclose(resumed.history["val_loss"], whole.history["val_loss"], rtol=1e-5)
    for a, b in zip(resumed.model.get_weights(), whole.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_early_stopping_counts_the_epochs_before_a_kill(tmp_path):
    train_data, *_ = make_data(seed=6)
    dev_data, *_ = make_data(seed=7)
    frozen = lambda: keras.optimizers.SGD(learning_rate=0.0)  # noqa: E731 - dev MSE never improves after epoch 0
    with pytest.raises(KeyboardInterrupt):
        train(
            fresh_model(optimizer=frozen()),
            train_data,
            dev_data,
            tmp_path / "run",
            TrainingOptions(epochs=10, early_stopping_patience=2),
            callbacks=[KillAt(2)],
            verbose=0,
        )
    result = train(
        fresh_model(optimizer=frozen()),
        train_data,
        dev_data,
        tmp_path / "run",
        TrainingOptions(epochs=10, early_stopping_patience=2),
        verbose=0,
    )
    # Epoch 0 is the best, epochs 1 and 2 are the two without improvement: an uninterrupted run stops after 3.
    assert result.epochs_run == 3 and result.best_epoch == 0


class TouchAt(keras.callbacks.Callback):
    """Creates `path` at the end of epoch `epoch`, as a user would by hand while the run trains."""

    def __init__(self, path, epoch):
        super().__init__()
        self.path, self.epoch = path, epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.path.touch()


def test_a_stop_file_ends_the_run_after_its_epoch_and_keeps_the_best_epoch(tmp_path):
    train_data, *_ = make_data(seed=6)
    dev_data, *_ = make_data(seed=7)
    run = tmp_path / "run"
    run.mkdir()
    result = train(
        fresh_model(),
        train_data,
        dev_data,
        run,
        TrainingOptions(epochs=10, early_stopping_patience=None),
        callbacks=[TouchAt(run / "STOP", epoch=1)],
        verbose=0,
    )
    assert result.epochs_run == 2 and len(result.history["val_loss"]) == 2
    final, record = load_run(run)
    assert record["complete"] and record["stopped_by"] == "STOP file, after epoch 2"
    # The final model is the best dev epoch's, as after early stopping.
    assert result.best_epoch == int(np.argmin(result.history["val_loss"]))
    best, _ = load_run(run / "best.keras")
    for a, b in zip(final.get_weights(), best.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_acoustic_metrics_are_logged_in_vocoder_units(tmp_path):
    train_data, *_ = make_data(seed=8)
    dev_data, *_ = make_data(seed=9)
    output_mean = np.zeros(49)
    output_mean[40] = 5.0  # lf0 around e^5 = 148 Hz
    output_std = np.ones(49)
    result = train(
        fresh_model(),
        train_data,
        dev_data,
        tmp_path / "run",
        TrainingOptions(epochs=1, early_stopping_patience=None),
        output_stats=(output_mean, output_std),
        verbose=0,
    )
    assert {"val_mcd_db", "val_f0_rmse_hz", "val_vuv_error_percent"} <= set(result.history)
    assert result.history["val_mcd_db"][0] > 0 and 0 <= result.history["val_vuv_error_percent"][0] <= 100
