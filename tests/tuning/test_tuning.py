"""KerasTuner sweeps over L on a real tiny teacher corpus: completion, resumption, export of the best model."""

import hashlib
import json
import math
import shutil
import subprocess
import sys

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf
from kill_testing import kill_when

from mlms_keras import cli
from mlms_keras.data.pipeline import load_dataset
from mlms_keras.models.acoustic import MLMSConfig
from tuning.export import load_preset
from tuning.hypermodel import MLMSHyperModel
from tuning.results import TrialResult, best_result, read_results, results_markdown, write_results
from tuning.sweep import SweepOptions, tune_dataset
from tuning.tuner import ResumableGridOracle, load_trial_model, make_tuner, run_sweep, trial_results

# Three training languages and one adaptation language: the sweep must model exactly the first three.
SPEAKERS = ["en-us-female", "fr-female", "de-female", "pl-female"]
TRAINING_LANGUAGES = {"en-us", "fr", "de"}
TRAINING_SPEAKERS = {"en-us-female", "fr-female", "de-female"}
# One chunk shape (one XLA compile per trial), two steps, one epoch: the smallest real training.
SWEEP = dict(
    preset="tiny",
    epochs=1,
    batch_size=4,
    steps_per_epoch=2,
    chunk_frames=64,
    patience=3,
    seed=0,
)
RUN = dict(verbose=0, progress=False, command="mlms tune (pytest)")
CLI_SWEEP = [
    "--preset",
    "tiny",
    "--epochs",
    "1",
    "--batch-size",
    "4",
    "--steps-per-epoch",
    "2",
    "--chunk-frames",
    "64",
    "--quiet",
]


def tiny_tower_parameters(input_dim):
    """Parameters of one tower of the "tiny" preset (ReLU 16, 2 LSTMP layers of 16 cells projected to 8)."""
    relu = input_dim * 16 + 16
    # Input kernel, recurrent kernel (fed by the projection), bias, projection kernel.
    first_lstmp = 16 * 64 + 8 * 64 + 64 + 16 * 8
    second_lstmp = 8 * 64 + 8 * 64 + 64 + 16 * 8
    return relu + first_lstmp + second_lstmp


def tiny_in_memory_data(num_languages=2, num_speakers=2, input_dim=5):
    """Two batches of 2 random 12-frame utterances for a "tiny" model: for tests of the tuner mechanics."""
    rng = np.random.default_rng(0)
    inputs = {
        "linguistic": rng.standard_normal((4, 12, input_dim)).astype("float32"),
        "language": np.arange(4, dtype="int32") % num_languages,
        "speaker": np.arange(4, dtype="int32") % num_speakers,
    }
    targets = rng.standard_normal((4, 12, 49)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(2)


@pytest.fixture(scope="module")
def prepared(prepared_corpus):
    return prepared_corpus(SPEAKERS)


@pytest.fixture(scope="module")
def fit_calls():
    """Every `MLMSHyperModel.fit` call (one per trial execution) of this module, as the trial's L."""
    calls = []
    original = MLMSHyperModel.fit

    def counting_fit(self, hp, model, *args, **kwargs):
        calls.append(hp.get("language_space_dim"))
        return original(self, hp, model, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MLMSHyperModel, "fit", counting_fit)
        yield calls


@pytest.fixture(scope="module")
def sweep(prepared, fit_calls, tmp_path_factory):
    directory = tmp_path_factory.mktemp("sweep")
    summary = tune_dataset(prepared, directory, SweepOptions(max_trials=2, **SWEEP), **RUN)
    return directory, summary, list(fit_calls)


@pytest.mark.slow
def test_two_trial_sweep_trains_l_1_and_2_on_the_training_languages(prepared, sweep):
    directory, summary, calls = sweep
    assert calls == [1, 2]  # grid order, one execution per trial
    assert summary.trials_run == 2
    assert [(r.language_space_dim, r.status) for r in summary.results] == [(1, "COMPLETED"), (2, "COMPLETED")]
    assert all(math.isfinite(r.dev_mse) and r.dev_mse > 0 for r in summary.results)
    # L ranges up to the number of training languages; the adaptation language is not in the model.
    assert summary.tuner.hypermodel.max_language_space_dim == len(TRAINING_LANGUAGES)
    input_dim = json.loads((prepared / "dataset.json").read_text())["input_dim"]
    one_l, two_l = summary.results
    # One more basis tower and one more code entry per training language.
    assert two_l.parameter_count - one_l.parameter_count == tiny_tower_parameters(input_dim) + len(TRAINING_LANGUAGES)

    # The best trial is the lowest score KerasTuner itself recorded in trial.json.
    scores = {}
    for trial_file in (directory / "mlms_sweep").glob("trial_*/trial.json"):
        trial = json.loads(trial_file.read_text())
        scores[trial["trial_id"]] = trial["score"]
    assert summary.best.trial_id == min(scores, key=scores.get)
    assert summary.best.dev_mse == pytest.approx(scores[summary.best.trial_id], rel=1e-12)

    assert read_results(directory) == summary.results
    table = (directory / "results.md").read_text()
    assert table.count("| COMPLETED |") == 2 and "mlms tune (pytest)" in table
    png = (directory / "dev_mse_vs_language_space_dim.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (768, 504)  # 6.4 x 4.2 inches at 120 dpi


@pytest.mark.slow
def test_exported_best_model_loads_and_predicts_like_the_tuner_best_model(prepared, sweep):
    directory, summary, _ = sweep
    model, metadata = load_preset(directory / "best_model")
    in_memory = load_trial_model(summary.tuner, summary.best.trial_id)

    codes = sorted(TRAINING_LANGUAGES)
    dev = load_dataset(prepared, "dev", 4, languages=codes, shuffle=False)
    inputs, _ = next(iter(dev))
    np.testing.assert_allclose(model.predict_on_batch(inputs), in_memory.predict_on_batch(inputs), rtol=1e-6, atol=1e-7)
    # The exported weights are the best epoch's: re-scoring the dev set gives the val_loss recorded in training.
    model.compile(loss="mse")
    assert model.evaluate(dev, verbose=0) == pytest.approx(summary.best.dev_mse, rel=1e-5)
    # ... and each language's pooled dev MSE, recomputed here in numpy, is the one recorded at the best epoch.
    codes_by_id = {language_id: code for code, language_id in metadata["languages"].items()}
    squared_error, values = {}, {}
    for batch_inputs, targets in dev:
        errors = model.predict_on_batch(batch_inputs) - targets.numpy()
        real_frames = np.any(batch_inputs["linguistic"].numpy() != 0, axis=-1)
        for row, language in enumerate(batch_inputs["language"].numpy()):
            code = codes_by_id[int(language)]
            squared_error[code] = squared_error.get(code, 0.0) + np.sum(errors[row][real_frames[row]] ** 2.0)
            values[code] = values.get(code, 0) + errors[row][real_frames[row]].size
    reference = {code: squared_error[code] / values[code] for code in squared_error}
    assert set(reference) == TRAINING_LANGUAGES
    assert metadata["metrics"]["dev_mse_per_language"] == pytest.approx(reference, rel=1e-4)
    assert summary.best.dev_mse_per_language == metadata["metrics"]["dev_mse_per_language"]

    manifest_bytes = (prepared / "dataset.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    assert metadata["format"] == "mlms-zoo-preset" and metadata["command"] == "mlms tune (pytest)"
    assert metadata["parameter_count"] == model.count_params() == summary.best.parameter_count
    assert metadata["model_config"]["language_space_dim"] == summary.best.language_space_dim
    assert set(metadata["languages"]) == TRAINING_LANGUAGES and set(metadata["speakers"]) == TRAINING_SPEAKERS
    assert metadata["dataset"]["manifest_sha256"] == hashlib.sha256(manifest_bytes).hexdigest()
    assert metadata["normalisation"]["input_mean"] == manifest["normalisation"]["inputs"]["mean"]
    assert metadata["normalisation"]["output_std"] == manifest["normalisation"]["outputs"]["std"]
    assert metadata["feature_layout"] == manifest["feature_layout"]
    assert metadata["metrics"]["val_loss"] == summary.best.dev_mse
    assert metadata["versions"]["keras"] == keras.__version__
    assert metadata["versions"]["keras_tuner"] == keras_tuner.__version__
    for name in ("config.json", "model.weights.h5"):
        digest = hashlib.sha256((directory / "best_model" / name).read_bytes()).hexdigest()
        assert metadata["files"][name] == digest
    config = json.loads((directory / "best_model" / "config.json").read_text())
    assert config["registered_name"] == "Functional"
    towers = next(layer for layer in config["config"]["layers"] if layer["name"] == "towers")
    assert towers["registered_name"] == "mlms_keras>ClusterAdaptiveTowers"


@pytest.mark.slow
def test_a_changed_preset_file_is_refused_with_both_hashes(sweep, tmp_path):
    directory, _, _ = sweep
    copy = tmp_path / "preset"
    shutil.copytree(directory / "best_model", copy)
    weights = bytearray((copy / "model.weights.h5").read_bytes())
    weights[-1] ^= 0xFF
    (copy / "model.weights.h5").write_bytes(bytes(weights))
    expected = json.loads((copy / "metadata.json").read_text())["files"]["model.weights.h5"]
    actual = hashlib.sha256(bytes(weights)).hexdigest()
    with pytest.raises(ValueError, match=f"model.weights.h5: sha256 mismatch: expected {expected}.*got {actual}"):
        load_preset(copy)


@pytest.mark.slow
def test_a_sweep_killed_with_sigkill_resumes_to_the_uninterrupted_results(prepared, sweep, tmp_path):
    """`mlms tune` killed after its first trial; the same sweep run again trains only the second, and both trials
    end as in the uninterrupted sweep (the module's), bit for bit: every trial trains on the same seeded batches."""
    directory = tmp_path / "killed"
    command = ["tune", str(prepared), "--directory", str(directory), "--max-trials", "2", *CLI_SWEEP]
    kill_when(command, lambda: (directory / "results.json").is_file())  # written after each finished trial
    resumed = tune_dataset(prepared, directory, SweepOptions(max_trials=2, **SWEEP), **RUN)
    assert resumed.trials_run == 1
    _, whole, _ = sweep

    def outcome(results):
        return [(r.language_space_dim, r.status, r.dev_mse, r.dev_mse_per_language, r.best_epoch) for r in results]

    assert outcome(resumed.results) == outcome(whole.results)


# Runs after the tests above: it extends the module's sweep to L = 3 (and re-exports its best model).
@pytest.mark.slow
def test_resuming_runs_no_trial_again_and_a_larger_budget_runs_only_the_next_l(prepared, sweep, fit_calls, capsys):
    directory, first, _ = sweep
    before = len(fit_calls)
    again = tune_dataset(prepared, directory, SweepOptions(max_trials=2, **SWEEP), **RUN)
    assert len(fit_calls) == before and again.trials_run == 0
    assert again.results == first.results

    # KerasTuner's own GridSearchOracle forgets its position on reload and would stop here.
    extended = tune_dataset(prepared, directory, SweepOptions(max_trials=3, **SWEEP), **RUN)
    assert fit_calls[before:] == [3] and extended.trials_run == 1
    assert extended.results[:2] == first.results
    assert extended.results[2].language_space_dim == 3 and extended.results[2].completed

    # The grid holds 3 values of L: a larger budget finds nothing left to run.
    exhausted = tune_dataset(prepared, directory, SweepOptions(max_trials=5, **SWEEP), **RUN)
    assert len(fit_calls) == before + 1 and exhausted.trials_run == 0

    # The command line resumes the same sweep.
    capsys.readouterr()
    code = cli.main(["tune", str(prepared), "--directory", str(directory), "--max-trials", "3", *CLI_SWEEP])
    assert code == 0 and len(fit_calls) == before + 1
    assert "0 trials run now, 3 completed in all" in capsys.readouterr().out


@pytest.mark.slow
def test_resuming_with_other_settings_is_refused(prepared, sweep):
    directory, _, _ = sweep
    with pytest.raises(ValueError, match=r"epochs: recorded 1, now 2.*--overwrite"):
        tune_dataset(prepared, directory, SweepOptions(max_trials=2, **dict(SWEEP, epochs=2)), **RUN)


def test_hypermodel_searches_l_up_to_the_language_count_and_optional_width_and_learning_rate():
    config = MLMSConfig.preset("tiny", input_dim=5, num_languages=3, num_speakers=2)
    hypermodel = MLMSHyperModel(config, tower_widths=[16, 32], learning_rates=[1e-3, 3e-4])
    hp = keras_tuner.HyperParameters()
    hypermodel.declare(hp)
    space = {parameter.name: list(parameter.values) for parameter in hp.space}
    assert space == {"language_space_dim": [1, 2, 3], "tower_width": [16, 32], "learning_rate": [1e-3, 3e-4]}
    assert hypermodel.search_space_size() == 12

    hp.values.update(language_space_dim=3, tower_width=32, learning_rate=3e-4)
    model = hypermodel.build(hp)
    towers = model.get_layer("towers")
    assert (towers.language_space_dim, towers.relu_units, towers.lstm_cells, towers.lstm_projection) == (3, 32, 32, 16)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(3e-4)

    with pytest.raises(ValueError, match="max_language_space_dim.*exceeds the number of languages"):
        MLMSHyperModel(config, max_language_space_dim=4)
    with pytest.raises(ValueError, match="code_init='random'"):
        MLMSHyperModel(
            MLMSConfig.preset(
                "tiny", input_dim=5, num_languages=3, num_speakers=2, language_space_dim=3, code_init="one_hot"
            )
        )
    with pytest.raises(ValueError, match="tower_widths"):
        MLMSHyperModel(config, tower_widths=[16, 16])


def _run_grid(directory, max_trials, hyperparameters):
    """Runs a ResumableGridOracle without training: each trial scores its L; returns the values tried now."""
    oracle = ResumableGridOracle(
        objective=keras_tuner.Objective("val_loss", "min"), max_trials=max_trials, hyperparameters=hyperparameters
    )
    oracle._set_project_dir(str(directory), "grid")  # what keras_tuner.Tuner does with `directory`
    if (directory / "grid" / "oracle.json").exists():
        oracle.reload()
    tried = []
    while True:
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            return tried
        values = dict(trial.hyperparameters.values)
        tried.append(values)
        oracle.update_trial(trial.trial_id, {"val_loss": float(values["language_space_dim"])})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        oracle.save()  # as Tuner.on_trial_end does: end_trial saves before it lets go of the finished trial


def test_grid_oracle_varies_l_fastest_and_resumes_where_it_stopped(tmp_path):
    hyperparameters = keras_tuner.HyperParameters()
    hyperparameters.Int("language_space_dim", 1, 3)
    hyperparameters.Choice("tower_width", [64, 32], ordered=True)
    expected = [{"language_space_dim": dim, "tower_width": width} for width in (64, 32) for dim in (1, 2, 3)]
    first = _run_grid(tmp_path, 4, hyperparameters)
    assert first == expected[:4]
    rest = _run_grid(tmp_path, 10, hyperparameters)  # a new oracle on the same directory
    assert rest == expected[4:]


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(tmp_path, caplog):
    class FailsForL1(MLMSHyperModel):
        def fit(self, hp, model, *args, **kwargs):
            if hp.get("language_space_dim") == 1:
                raise RuntimeError("deliberate failure for L=1")
            return super().fit(hp, model, *args, **kwargs)

    data = tiny_in_memory_data()
    hypermodel = FailsForL1(MLMSConfig.preset("tiny", input_dim=5, num_languages=2, num_speakers=2))
    tuner = make_tuner(hypermodel, tmp_path, max_trials=2)
    with caplog.at_level("WARNING", logger="tuning.tuner"):
        run_sweep(tuner, data, data, epochs=1)
    results = trial_results(tuner)
    assert [(r.language_space_dim, r.status) for r in results] == [(1, "FAILED"), (2, "COMPLETED")]
    assert "deliberate failure for L=1" in results[0].error
    assert "deliberate failure for L=1" in caplog.text
    assert best_result(results) is results[1]
    table = results_markdown(results)
    assert "trial 0 (L = 1): FAILED: RuntimeError: deliberate failure for L=1" in table


@pytest.mark.slow
def test_a_sweep_killed_during_a_trial_resumes_with_that_trial_and_keeps_the_finished_one(tmp_path):
    calls = []

    class KilledOnceAtL2(MLMSHyperModel):
        killed = False

        def fit(self, hp, model, *args, **kwargs):
            calls.append(hp.get("language_space_dim"))
            if hp.get("language_space_dim") == 2 and not KilledOnceAtL2.killed:
                KilledOnceAtL2.killed = True
                raise KeyboardInterrupt  # what Ctrl-C or a kill does: KerasTuner does not catch it
            return super().fit(hp, model, *args, **kwargs)

    data = tiny_in_memory_data()
    hypermodel = KilledOnceAtL2(MLMSConfig.preset("tiny", input_dim=5, num_languages=2, num_speakers=2))
    with pytest.raises(KeyboardInterrupt):
        run_sweep(make_tuner(hypermodel, tmp_path, max_trials=2), data, data, epochs=1)
    assert [(r.language_space_dim, r.status) for r in trial_results(make_tuner(hypermodel, tmp_path, 2))] == [
        (1, "COMPLETED"),
        (2, "RUNNING"),
    ]

    resumed = make_tuner(hypermodel, tmp_path, max_trials=2)
    run_sweep(resumed, data, data, epochs=1)
    assert calls == [1, 2, 2]  # L = 1 was not trained again; the interrupted L = 2 was
    assert [(r.language_space_dim, r.status) for r in trial_results(resumed)] == [(1, "COMPLETED"), (2, "COMPLETED")]


def test_best_result_prefers_the_lowest_dev_mse_then_the_smaller_l(tmp_path):
    rows = [
        TrialResult("0", "COMPLETED", 1, 16, 1e-3, dev_mse=0.5),
        TrialResult("1", "COMPLETED", 3, 16, 1e-3, dev_mse=0.25),
        TrialResult("2", "COMPLETED", 2, 16, 1e-3, dev_mse=0.25),
        TrialResult("3", "FAILED", 4, 16, 1e-3, error="boom"),
        TrialResult("4", "COMPLETED", 5, 16, 1e-3, dev_mse=float("nan")),
    ]
    assert best_result(rows) is rows[2]
    assert best_result(rows[3:]) is None
    files = write_results(rows[3:], tmp_path)  # no completed trial: still a table and a plot
    assert "No trial completed." in files["markdown"].read_text()
    assert files["plot"].read_bytes()[:4] == b"\x89PNG"


def test_cli_names_the_missing_manifest_and_the_command_that_makes_it(tmp_path, capsys):
    code = cli.main(["tune", str(tmp_path / "nothing"), "--directory", str(tmp_path / "sweep"), "--max-trials", "1"])
    assert code == 2
    error = capsys.readouterr().err
    assert "dataset.json" in error and "mlms prepare" in error


def test_cli_help_shows_an_example(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["tune", "--help"])
    assert exit_info.value.code == 0
    assert "mlms tune data/prepared --max-trials 6 --directory runs/sweep" in capsys.readouterr().out


def test_importing_tuning_and_its_cli_module_loads_neither_tensorflow_nor_keras_tuner():
    code = (
        "import sys, tuning, tuning.sweep, mlms_keras.cli.tune; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'keras_tuner') if m in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert completed.stdout.strip() == "[]"


def test_cli_without_keras_tuner_says_how_to_install_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_tuner", None)  # `import keras_tuner` now raises ImportError
    code = cli.main(["tune", str(tmp_path), "--directory", str(tmp_path / "sweep"), "--max-trials", "1"])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("mlms tune: KerasTuner is not installed") and 'pip install ".[tuner]"' in error
    assert len(error.splitlines()) == 1


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(epochs=0), "`epochs` must be an integer >= 1. Received: epochs=0"),
        (dict(max_trials=True), "`max_trials` must be an integer >= 1. Received: max_trials=True"),
        (dict(chunk_frames=0), "`chunk_frames` must be an integer >= 1 or None. Received: chunk_frames=0"),
        (dict(preset="huge"), "`preset` must be one of ('tiny', 'small', 'paper'). Received: preset='huge'"),
    ],
)
def test_sweep_options_refuse_bad_settings_naming_them(options, message):
    with pytest.raises(ValueError) as raised:
        SweepOptions(**options)
    assert str(raised.value) == message


def test_sweep_options_are_frozen_and_hold_tuples():
    options = SweepOptions(tower_widths=[16, 32], learning_rates=[1e-3])
    assert options.tower_widths == (16, 32) and options.learning_rates == (1e-3,)
    with pytest.raises(AttributeError):
        options.epochs = 3


def test_cli_option_values_reach_the_sweep_options(monkeypatch, tmp_path):
    """Every `mlms tune` option lands in `SweepOptions` or in `tune_dataset`'s own arguments."""
    import tuning.sweep

    received = {}

    def fake_tune_dataset(dataset, directory, options, **kwargs):
        received.update(dataset=dataset, directory=directory, options=options, **kwargs)
        raise ValueError("stop here")

    monkeypatch.setattr(tuning.sweep, "tune_dataset", fake_tune_dataset)
    argv = ["tune", "data", "--directory", str(tmp_path), "--max-trials", "4", "--min-language-space-dim", "2"]
    argv += ["--tower-widths", "16,32", "--learning-rate", "3e-4", "--search", "random", "--epochs", "5"]
    argv += ["--batch-size", "8", "--steps-per-epoch", "7", "--validation-steps", "2", "--patience", "1"]
    argv += ["--chunk-frames", "64", "--seed", "3", "--cache", "--tensorboard", "--overwrite", "--no-export"]
    assert cli.main([*argv, "--quiet"]) == 2
    assert received["options"] == SweepOptions(
        max_trials=4,
        min_language_space_dim=2,
        tower_widths=(16, 32),
        learning_rate=3e-4,
        search="random",
        epochs=5,
        batch_size=8,
        steps_per_epoch=7,
        validation_steps=2,
        patience=1,
        chunk_frames=64,
        seed=3,
        cache=True,
    )
    assert received["tensorboard"] and received["overwrite"] and not received["export"]
    assert received["verbose"] == 0 and not received["progress"]
    assert received["command"].startswith("mlms tune data --directory")
