"""The KerasTuner tuner that runs an L sweep, and the rows of its results.

`make_tuner` creates (or, for an existing directory, reloads) a tuner around an `MLMSHyperModel`. KerasTuner keeps
every trial in `DIR/<project>/trial_<id>/` (`trial.json`, the best-epoch checkpoint) and the oracle's state in
`oracle.json`; creating the tuner again with the same directory reloads them, so finished trials are never run
again and a trial that was interrupted is run again from its start. `sweep.json` beside the project records the
sweep's settings: resuming with different settings (another search space, epoch budget or dataset) is an error
rather than a silent mix of incomparable trials. Only `max_trials` may change, to extend a sweep.

Each trial is trained with its own seed (`seed + trial number`), and writes `mlms_trial.json` (wall time, epochs
run, parameter count) into its trial folder.
"""

import itertools
import json
import logging
import time
import warnings
from pathlib import Path

import keras
import keras_tuner
import numpy as np
from tqdm.auto import tqdm

from mlms_keras.training.callbacks import PerLanguageDevMSE
from mlms_keras.training.resume import claim_settings_file
from mlms_keras.utils.fileio import atomic_write_json
from mlms_keras.utils.validation import check_integer
from tuning.hypermodel import HP_LANGUAGE_SPACE_DIM, HP_LEARNING_RATE, HP_TOWER_WIDTH
from tuning.results import TrialResult

__all__ = [
    "OBJECTIVE",
    "PROJECT_NAME",
    "SEARCH_ALGORITHMS",
    "SETTINGS_FILE",
    "TRIAL_RECORD_FILE",
    "ResumableGridOracle",
    "SweepTuner",
    "load_trial_model",
    "make_tuner",
    "run_sweep",
    "trial_results",
]

logger = logging.getLogger(__name__)

PROJECT_NAME = "mlms_sweep"
SETTINGS_FILE = "sweep.json"
TRIAL_RECORD_FILE = "mlms_trial.json"
OBJECTIVE = "val_loss"
PER_LANGUAGE_PREFIX = "val_mse_"  # PerLanguageDevMSE's log names: val_mse_<language code>
SEARCH_ALGORITHMS = ("grid", "random", "bayesian")


class ResumableGridOracle(keras_tuner.Oracle):
    """Grid search over every combination of the hyperparameters, L varying fastest, that survives a reload.

    KerasTuner 1.4.8's `GridSearchOracle` keeps its queue of next combinations in memory only (its `get_state`
    does not save it): a grid sweep reloaded from its directory, after an interruption or to extend it with a
    larger `max_trials`, stops at once without running the combinations it never reached. This oracle derives
    the next combination from the set of values already tried, which the base `Oracle` saves in `oracle.json`:
    the first combination, in grid order, that no trial has used yet.

    Grid order: each hyperparameter's default value first, then its other values in order; the combinations
    run through every L for the first (tower width, learning rate), then every L for the next, and so on, so a
    sweep cut short by `max_trials` still covers L for the default widths.
    """

    def populate_space(self, trial_id):
        space = list(self.get_space().space)
        space.sort(key=lambda hp: hp.name == HP_LANGUAGE_SPACE_DIM)  # L last: it varies fastest in product()
        ordered_values = []
        for hp in space:
            values = [value for value in hp.values if value != hp.default]
            ordered_values.append([hp.default] + values)
        for combination in itertools.product(*ordered_values):
            values = {hp.name: value for hp, value in zip(space, combination)}
            if not self._duplicate(values):
                return {"status": keras_tuner.engine.trial.TrialStatus.RUNNING, "values": values}
        if self.ongoing_trials:
            return {"status": keras_tuner.engine.trial.TrialStatus.IDLE, "values": None}
        return {"status": keras_tuner.engine.trial.TrialStatus.STOPPED, "values": None}


class SweepTuner(keras_tuner.Tuner):
    """A `keras_tuner.Tuner` that seeds each trial, records its cost and shows a progress bar over trials.

    Args:
        oracle: the search algorithm (a `keras_tuner.Oracle`).
        hypermodel: an `MLMSHyperModel`.
        seed: base seed; trial `n` trains with `keras.utils.set_random_seed(seed + n)`.
        progress: show a tqdm bar over trials (stderr).
        after_trial: optional function called with this tuner after every trial (e.g. to rewrite the results
            table, so that a long sweep shows its finished trials before it ends).
        **kwargs: `directory`, `project_name`, `overwrite`, ... as `keras_tuner.Tuner`.
    """

    def __init__(self, oracle, hypermodel, seed=0, progress=False, after_trial=None, **kwargs):
        self.seed = int(seed)
        self.progress = progress
        self.after_trial = after_trial
        self._bar = None
        super().__init__(oracle, hypermodel, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        if args and callable(args[0]):
            # A fresh training stream per trial, made under the base seed: every trial trains on the same batches,
            # whatever ran before it in this process, so a resumed sweep's trials equal an uninterrupted one's.
            keras.utils.set_random_seed(self.seed)
            args = (args[0](), *args[1:])
        keras.utils.set_random_seed(self.seed + int(trial.trial_id))
        start = time.perf_counter()
        histories = super().run_trial(trial, *args, **kwargs)
        history = histories[-1]
        record = {
            "trial_id": trial.trial_id,
            "hyperparameters": trial.hyperparameters.values,
            "seconds": time.perf_counter() - start,
            "epochs_run": len(history.epoch),
            "parameter_count": int(history.model.count_params()),
        }
        record_path = Path(self.get_trial_dir(trial.trial_id)) / TRIAL_RECORD_FILE
        atomic_write_json(record_path, record, indent=2)
        return histories

    def on_search_begin(self):
        super().on_search_begin()
        if self.progress:
            finished = sum(trial.status != "RUNNING" for trial in self.oracle.trials.values())
            total = self.oracle.max_trials or self.hypermodel.search_space_size()
            if isinstance(self.oracle, ResumableGridOracle):
                total = min(total, self.hypermodel.search_space_size())
            self._bar = tqdm(total=total, initial=min(finished, total), desc="sweep", unit="trial")

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        values = trial.hyperparameters.values
        if trial.status != "COMPLETED":
            message = (trial.message or "").strip().splitlines()
            logger.warning(
                "trial %s (L=%s) %s: %s; it is recorded and skipped, the sweep goes on",
                trial.trial_id,
                values.get(HP_LANGUAGE_SPACE_DIM),
                trial.status.lower(),
                message[-1] if message else "no message",
            )
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(L=values.get(HP_LANGUAGE_SPACE_DIM), val_loss=trial.score)
        if self.after_trial is not None:
            self.after_trial(self)

    def on_search_end(self):
        super().on_search_end()
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class _PerLanguageDevMSE(PerLanguageDevMSE):
    """`PerLanguageDevMSE` that KerasTuner can copy for each trial: the copies share the dev dataset."""

    def __deepcopy__(self, memo):
        return type(self)(self.dev_dataset, self.language_names, self.max_batches)


def _oracle(search, max_trials, seed):
    objective = keras_tuner.Objective(OBJECTIVE, direction="min")
    if search == "grid":
        return ResumableGridOracle(objective=objective, max_trials=max_trials, seed=seed)
    if search == "random":
        return keras_tuner.oracles.RandomSearchOracle(objective=objective, max_trials=max_trials, seed=seed)
    if search == "bayesian":
        return keras_tuner.oracles.BayesianOptimizationOracle(objective=objective, max_trials=max_trials, seed=seed)
    raise ValueError(f"`search` must be one of {SEARCH_ALGORITHMS}; received search={search!r}")


def _check_settings(directory, settings, overwrite):
    """Writes `sweep.json`; refuses to resume a sweep whose recorded settings differ from `settings`."""
    claim_settings_file(
        Path(directory) / SETTINGS_FILE,
        settings,
        what="a sweep",
        remedy="resume it with the same settings (only --max-trials may change), use a new --directory, or pass "
        "--overwrite to discard it",
        overwrite=overwrite,
    )


def make_tuner(
    hypermodel,
    directory,
    max_trials,
    search="grid",
    seed=0,
    project_name=PROJECT_NAME,
    settings=None,
    overwrite=False,
    progress=False,
    after_trial=None,
):
    """Creates the sweep's tuner, or reloads the sweep already in `directory`.

    Args:
        hypermodel: an `MLMSHyperModel`.
        directory: the sweep folder (KerasTuner's project goes into `directory/project_name`).
        max_trials: trials to run in all (finished ones included). A grid search stops earlier when the
            search space is exhausted.
        search: `"grid"` (default: `ResumableGridOracle`, L = min..max in order), `"random"` or `"bayesian"`.
        seed: seed of the oracle and base seed of the trials.
        project_name: KerasTuner project name.
        settings: JSON-serialisable dict of further settings that make trials comparable (dataset, epoch
            budget, ...); recorded in `sweep.json` with the search space and checked on resume.
        overwrite: discard an existing sweep in `directory`.
        progress: show a progress bar over trials.
        after_trial: optional function called with the tuner after every trial.

    Returns:
        A `SweepTuner`.
    """
    max_trials = check_integer("max_trials", max_trials)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    recorded = dict(
        settings or {}, search=search, seed=int(seed), project_name=project_name, search_space=hypermodel.describe()
    )
    oracle = _oracle(search, max_trials, seed)  # validates `search` before anything is written
    _check_settings(directory, recorded, overwrite)
    return SweepTuner(
        oracle,
        hypermodel,
        seed=seed,
        progress=progress,
        after_trial=after_trial,
        directory=str(directory),
        project_name=project_name,
        overwrite=overwrite,
    )


def run_sweep(
    tuner,
    train_data,
    dev_data,
    epochs,
    steps_per_epoch=None,
    validation_steps=None,
    patience=None,
    tensorboard_dir=None,
    language_names=None,
    verbose=0,
):
    """Runs the trials the tuner still has to run (none when the sweep is finished).

    Args:
        tuner: from `make_tuner`.
        train_data: a `tf.data.Dataset` of `({"linguistic", "language", "speaker"}, acoustic)` batches (repeated
            when `steps_per_epoch` is given), or a function returning one: then each trial trains on a fresh
            dataset made under the sweep's seed (the same batches for every trial, resumed or not).
        dev_data: the same structure; its loss is the objective `val_loss`.
        epochs: epoch budget per trial.
        steps_per_epoch, validation_steps: optional step counts (as `model.fit`).
        patience: early stopping on `val_loss` after this many epochs without improvement (`None`: off).
        tensorboard_dir: optional TensorBoard log folder (one subfolder per trial, with the hyperparameters).
        language_names: optional language codes by id; when given, each epoch also records the dev MSE of each
            language (`mlms_keras.training.callbacks.PerLanguageDevMSE`, `val_mse_<code>`; an extra pass over the
            dev set).
        verbose: `model.fit` verbosity (0 silent, 1 progress bar, 2 one line per epoch).
    """
    callbacks = [keras.callbacks.TerminateOnNaN()]
    if language_names is not None:
        # First in the list, so that its values are in the logs the other callbacks and the oracle see.
        callbacks.insert(0, _PerLanguageDevMSE(dev_data, language_names))
    if patience is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=OBJECTIVE, patience=patience))
    if tensorboard_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(tensorboard_dir)))
    tuner.search(
        train_data,
        validation_data=dev_data,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_steps=validation_steps,
        callbacks=callbacks,
        shuffle=False,  # tf.data input: the pipeline shuffles
        verbose=verbose,
    )
    return tuner


def trial_results(tuner):
    """One `TrialResult` per trial the tuner knows (finished, failed or interrupted), in trial order."""
    hypermodel = tuner.hypermodel
    results = []
    for trial_id, trial in sorted(tuner.oracle.trials.items(), key=lambda item: int(item[0])):
        values = trial.hyperparameters.values
        if HP_LANGUAGE_SPACE_DIM not in values:
            continue  # a trial the oracle stopped before it had values
        record_path = Path(tuner.get_trial_dir(trial_id)) / TRIAL_RECORD_FILE
        record = json.loads(record_path.read_text(encoding="utf-8")) if record_path.is_file() else {}
        dev_mse = best_epoch = per_language = None
        if trial.status == "COMPLETED" and trial.metrics.exists(OBJECTIVE):
            dev_mse = float(trial.metrics.get_best_value(OBJECTIVE))
            best_epoch = None if trial.best_step is None else int(trial.best_step) + 1
            per_language = _values_at_step(trial, PER_LANGUAGE_PREFIX, trial.best_step) or None
        message = (trial.message or "").strip().splitlines()
        results.append(
            TrialResult(
                trial_id=trial_id,
                status=trial.status,
                language_space_dim=int(values[HP_LANGUAGE_SPACE_DIM]),
                tower_width=int(values.get(HP_TOWER_WIDTH, hypermodel.base_config.relu_units)),
                learning_rate=float(values.get(HP_LEARNING_RATE, hypermodel.learning_rate)),
                dev_mse=dev_mse,
                best_epoch=best_epoch,
                epochs_run=record.get("epochs_run"),
                parameter_count=record.get("parameter_count"),
                seconds=record.get("seconds"),
                dev_mse_per_language=per_language,
                error=message[-1] if message and trial.status != "COMPLETED" else None,
            )
        )
    return results


def _values_at_step(trial, prefix, step):
    """`{suffix: value}` of the trial's metrics named `prefix + suffix`, at epoch `step` (0-based)."""
    values = {}
    for name in trial.metrics.metrics:
        if name.startswith(prefix):
            at_step = [observation for observation in trial.metrics.get_history(name) if observation.step == step]
            if at_step:
                values[name[len(prefix) :]] = float(np.mean(at_step[-1].value))
    return values


def load_trial_model(tuner, trial_id):
    """The model of trial `trial_id` with the weights of its best epoch (the checkpoint KerasTuner kept)."""
    with warnings.catch_warnings():
        # The checkpoint holds the optimizer state of training; an inference model has none to restore.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        return tuner.load_model(tuner.oracle.get_trial(trial_id))
