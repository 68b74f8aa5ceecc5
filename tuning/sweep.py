"""Sweep the language-space dimension L on a prepared dataset (`mlms tune`).

`tune_dataset(DATASET, DIR, SweepOptions(max_trials=N))` trains one MLMS model per trial on the training languages
of a dataset made by `mlms prepare` (the languages whose role is "training"; the adaptation languages are left for
`mlms adapt`), with L in [1, number of training languages] and, optionally, tower widths and learning rates.
The objective is `val_loss`, the dev-set MSE. It writes into DIR:

- `mlms_sweep/`: KerasTuner's project (one folder per trial with its best-epoch checkpoint); `sweep.json`: the
  settings. Running the same command again resumes: finished trials are reloaded, not re-run; an interrupted
  trial is run again; a larger `--max-trials` extends the sweep.
- `results.md`, `results.json`: one row per trial (L, width, learning rate, parameters, epochs, dev MSE, time),
  rewritten after every trial, so a long sweep shows what it has finished.
- `dev_mse_vs_language_space_dim.png`: dev MSE against L.
- `best_model/`: the best trial's model as a zoo preset folder (`config.json`, `model.weights.h5`,
  `metadata.json` with versions, parameter count, languages, speakers, the dataset manifest reference and feature
  layout, normalisation statistics, the dev MSE and the command; see `tuning.export`).

Example:
    mlms corpus build data/teacher --preset small
    mlms prepare data/teacher data/prepared --f0-method dio
    mlms tune data/prepared --max-trials 6 --directory runs/sweep --preset small --epochs 10
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from mlms_keras.utils.validation import check_integer
from mlms_keras.zoo import sha256_of
from tuning.export import export_preset

__all__ = ["BEST_MODEL_FOLDER", "MODEL_PRESETS", "SweepOptions", "SweepSummary", "training_tables", "tune_dataset"]

logger = logging.getLogger(__name__)

BEST_MODEL_FOLDER = "best_model"
MODEL_PRESETS = ("tiny", "small", "paper")


@dataclasses.dataclass(frozen=True)
class SweepOptions:
    """What an L sweep searches and how each trial trains (recorded in `sweep.json`; a resume must match).

    Attributes:
        max_trials: trials in all, finished ones included (a grid stops when it has tried every combination).
        preset: model size preset for everything but L (`MLMSConfig.preset`: "tiny", "small", "paper").
        min_language_space_dim, max_language_space_dim: the range of L (default 1 .. number of training
            languages).
        tower_widths: optional tower widths to search (see `MLMSHyperModel`).
        learning_rates: optional Adam learning rates to search; otherwise `learning_rate`.
        learning_rate: the fixed Adam learning rate.
        search: "grid", "random" or "bayesian".
        epochs: epoch budget per trial.
        batch_size: utterances (or chunks) per batch.
        steps_per_epoch: optional training batches per epoch (the training set then repeats).
        validation_steps: optional dev batches per validation.
        patience: early stopping after this many epochs without a lower `val_loss` (`None`: off).
        chunk_frames: optional truncated-BPTT chunk length in frames for training (see `load_dataset`); one
            batch shape, so the XLA time loops compile once. The dev set is always whole utterances.
        seed: seed of the data order, the oracle and the trials' initialisation.
        cache: keep decoded utterances in memory (faster epochs for datasets that fit in RAM).
    """

    max_trials: int = 6
    preset: str = "small"
    min_language_space_dim: int = 1
    max_language_space_dim: int | None = None
    tower_widths: tuple[int, ...] | None = None
    learning_rates: tuple[float, ...] | None = None
    learning_rate: float = 1e-3
    search: str = "grid"
    epochs: int = 10
    batch_size: int = 16
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    patience: int | None = 3
    chunk_frames: int | None = None
    seed: int = 0
    cache: bool = False

    def __post_init__(self) -> None:
        if self.preset not in MODEL_PRESETS:
            raise ValueError(f"`preset` must be one of {MODEL_PRESETS}. Received: preset={self.preset!r}")
        for name in ("max_trials", "epochs", "batch_size"):
            check_integer(name, getattr(self, name))
        for name in ("steps_per_epoch", "validation_steps", "patience", "chunk_frames"):
            check_integer(name, getattr(self, name), optional=True)
        for name in ("tower_widths", "learning_rates"):  # lists from a caller become tuples, as the type says
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(getattr(self, name)))


@dataclasses.dataclass
class SweepSummary:
    """What `tune_dataset` produced.

    Attributes:
        results: one `tuning.results.TrialResult` per trial, in trial order.
        best: the best completed trial's `TrialResult` (`None` when none completed).
        files: `{"json", "markdown", "plot"}` paths of the results table and plot.
        preset_dir: the exported best model's folder (`None` when nothing was exported).
        tuner: the `SweepTuner` (its trials, `load_trial_model`).
        trials_run: trials this call trained (0 when it only reloaded a finished sweep).
    """

    results: list
    best: object
    files: dict
    preset_dir: Path | None
    tuner: object
    trials_run: int


def training_tables(manifest):
    """The model's language and speaker tables: the dataset's training languages and their speakers.

    `mlms prepare` numbers training languages (and their speakers) first, so a model whose tables hold the first
    U languages and S speakers covers the training data with the dataset's own ids.

    Args:
        manifest: a `mlms_keras.data.manifest.Manifest`.

    Returns:
        `(languages, speakers)`: lists of the manifest's entries (dicts with `code` / `name` and `id`), by id.

    Raises:
        ValueError: when the training languages or their speakers do not hold the ids 0..U-1 / 0..S-1.
    """
    languages = sorted(
        (entry for entry in manifest.data["languages"] if entry.get("role", "training") == "training"),
        key=lambda entry: entry["id"],
    )
    codes = {entry["code"] for entry in languages}
    speakers = sorted(
        (entry for entry in manifest.data["speakers"] if entry["language"] in codes), key=lambda entry: entry["id"]
    )
    for kind, table in (("language", languages), ("speaker", speakers)):
        ids = [int(entry["id"]) for entry in table]
        if ids != list(range(len(ids))):
            raise ValueError(
                f"{manifest.folder / 'dataset.json'}: the training {kind}s have ids {ids}, not 0..{len(ids) - 1}; "
                "re-run `mlms prepare` (it numbers training languages and speakers first)"
            )
    if not languages:
        raise ValueError(f"{manifest.folder / 'dataset.json'}: no language has role 'training'; nothing to sweep")
    return languages, speakers


def tune_dataset(
    dataset,
    directory,
    options: SweepOptions | None = None,
    *,
    tensorboard: bool = False,
    overwrite: bool = False,
    export: bool = True,
    verbose: int = 2,
    progress: bool = True,
    command: str | None = None,
) -> SweepSummary:
    """Runs (or resumes) an L sweep on a prepared dataset and writes its table, plot and best model.

    Args:
        dataset: prepared dataset folder (from `mlms prepare`) or its `dataset.json`.
        directory: sweep folder (see the module docstring); the same folder resumes the sweep.
        options: what to search and how each trial trains (`SweepOptions()` by default).
        tensorboard: write TensorBoard logs (with hyperparameters) under `directory/logs`.
        overwrite: discard an existing sweep in `directory`.
        export: export the best model to `directory/best_model`.
        verbose: `model.fit` verbosity (0, 1 or 2).
        progress: progress bar over trials.
        command: the command line recorded with the results and the exported model.

    Returns:
        A `SweepSummary`.
    """
    import tensorflow as tf

    from mlms_keras.data.manifest import Manifest
    from mlms_keras.data.pipeline import PipelineOptions, load_dataset
    from mlms_keras.models.acoustic import MLMSConfig
    from tuning.hypermodel import MLMSHyperModel
    from tuning.results import best_result, write_results
    from tuning.tuner import PROJECT_NAME, make_tuner, run_sweep, trial_results

    options = options or SweepOptions()
    manifest = Manifest.load(dataset)
    manifest_file = manifest.folder / "dataset.json"
    languages, speakers = training_tables(manifest)
    codes = [entry["code"] for entry in languages]
    base_config = MLMSConfig.preset(
        options.preset, input_dim=manifest.input_dim, num_languages=len(languages), num_speakers=len(speakers)
    )
    hypermodel = MLMSHyperModel(
        base_config,
        max_language_space_dim=options.max_language_space_dim,
        min_language_space_dim=options.min_language_space_dim,
        tower_widths=options.tower_widths,
        learning_rates=options.learning_rates,
        learning_rate=options.learning_rate,
    )
    directory = Path(directory)
    settings = {
        "dataset": str(manifest_file.resolve()),
        "dataset_sha256": sha256_of(manifest_file),
        "languages": codes,
        "preset": options.preset,
        "epochs": options.epochs,
        "batch_size": options.batch_size,
        "steps_per_epoch": options.steps_per_epoch,
        "validation_steps": options.validation_steps,
        "patience": options.patience,
        "chunk_frames": options.chunk_frames,
    }
    header = {
        "dataset": f"`{manifest_file.resolve()}`",
        "training languages": ", ".join(codes),
        "speakers": len(speakers),
        "model preset": f"{options.preset}: ReLU {base_config.relu_units}, {base_config.lstm_layers} LSTMP layers of "
        f"{base_config.lstm_cells} cells projected to {base_config.lstm_projection}",
        "search": f"{options.search}, L in [{hypermodel.min_language_space_dim}, {hypermodel.max_language_space_dim}], "
        f"max {options.max_trials} trials, seed {options.seed}",
        "budget per trial": f"{options.epochs} epochs"
        + (f" x {options.steps_per_epoch} steps" if options.steps_per_epoch else "")
        + f", batch {options.batch_size}, early stopping patience {options.patience}",
        "objective": "val_loss (min)",
    }
    if command:
        header["command"] = f"`{command}`"

    def write_table(tuner):
        write_results(trial_results(tuner), directory, header)

    tuner = make_tuner(
        hypermodel,
        directory,
        max_trials=options.max_trials,
        search=options.search,
        seed=options.seed,
        settings=settings,
        overwrite=overwrite,
        progress=progress,
        after_trial=write_table,
    )
    trials_before = sum(trial.status != "RUNNING" for trial in tuner.oracle.trials.values())

    repeat = options.steps_per_epoch is not None

    # Full batches only: every distinct batch shape costs the XLA time loops a compile.
    def train_data():  # made afresh for each trial (`SweepTuner.run_trial`): every trial sees the same batches
        return load_dataset(
            manifest.folder,
            "train",
            options.batch_size,
            languages=codes,
            seed=options.seed,
            repeat=repeat,
            chunk_frames=options.chunk_frames,
            cache=options.cache,
            options=PipelineOptions(drop_remainder=True),
        )

    # The dev set is scored on whole utterances, also when training uses truncated-BPTT chunks.
    dev_data = load_dataset(
        manifest.folder, "dev", options.batch_size, languages=codes, shuffle=False, cache=options.cache
    )
    # A known length spares Keras's "input ran out of data" warning after each validation pass.
    dev_data = dev_data.apply(tf.data.experimental.assert_cardinality(sum(1 for _ in dev_data)))
    try:
        run_sweep(
            tuner,
            train_data,
            dev_data,
            epochs=options.epochs,
            steps_per_epoch=options.steps_per_epoch,
            validation_steps=options.validation_steps,
            patience=options.patience,
            tensorboard_dir=directory / "logs" if tensorboard else None,
            language_names=codes,
            verbose=verbose,
        )
    except RuntimeError as error:
        if "consecutive failures" not in str(error):
            raise
        write_table(tuner)
        last_line = str(error).strip().splitlines()[-1]
        raise RuntimeError(
            f"{directory}: KerasTuner stopped the sweep after {tuner.oracle.max_consecutive_failed_trials} failed "
            f"trials in a row (last error: {last_line}); the finished trials are in {directory / 'results.md'}. "
            "Fix the cause and run the same command again: the sweep resumes with the failed trial."
        ) from error
    trials_run = sum(trial.status != "RUNNING" for trial in tuner.oracle.trials.values()) - trials_before

    results = trial_results(tuner)
    best = best_result(results)
    files = write_results(results, directory, header)

    preset_dir = None
    if export and best is not None:
        preset_dir = export_best_model(
            tuner,
            best,
            directory / BEST_MODEL_FOLDER,
            manifest,
            languages,
            speakers,
            search=options.search,
            directory=directory,
            project_name=PROJECT_NAME,
            command=command,
        )
    return SweepSummary(
        results=results, best=best, files=files, preset_dir=preset_dir, tuner=tuner, trials_run=trials_run
    )


def export_best_model(
    tuner, best, out_dir, manifest, languages, speakers, search, directory, project_name, command=None
):
    """Exports trial `best` (a `TrialResult`) of `tuner` as a zoo preset folder; returns its path."""
    from tuning.tuner import load_trial_model

    model = load_trial_model(tuner, best.trial_id)
    manifest_file = manifest.folder / "dataset.json"
    normalisation = manifest.data["normalisation"]
    sample_rates = manifest.data.get("sample_rates_hz") or []
    metadata = {
        "name": f"mlms-sweep-L{best.language_space_dim}",
        "description": (
            f"Best model of an L sweep (trial {best.trial_id} of {directory}): MLMS acoustic model, "
            f"L = {best.language_space_dim}, trained on {', '.join(entry['code'] for entry in languages)}. "
            "Inputs and outputs are normalised with `normalisation`."
        ),
        # The conventions of mlms_keras.zoo voices: code -> id, name -> entry, the statistics the model uses.
        "languages": {entry["code"]: int(entry["id"]) for entry in languages},
        "speakers": {entry["name"]: dict(entry) for entry in speakers},
        "sample_rate": sample_rates[0] if len(sample_rates) == 1 else sample_rates,
        "normalisation": {
            "input_mean": normalisation["inputs"]["mean"],
            "input_std": normalisation["inputs"]["std"],
            "output_mean": normalisation["outputs"]["mean"],
            "output_std": normalisation["outputs"]["std"],
        },
        "feature_layout": manifest.data["feature_layout"],
        "dataset": {
            "manifest": str(manifest_file.resolve()),
            "manifest_sha256": sha256_of(manifest_file),
            "input_dim": manifest.input_dim,
            "output_dim": manifest.output_dim,
            "acoustic_layout": manifest.data.get("acoustic_layout"),
        },
        "metrics": {
            "dev_mse": best.dev_mse,
            "val_loss": best.dev_mse,
            "dev_mse_per_language": best.dev_mse_per_language,
        },
        "training": {
            "objective": "val_loss",
            "search": search,
            "sweep_directory": str(Path(directory).resolve()),
            "project_name": project_name,
            "trial_id": best.trial_id,
            "hyperparameters": dict(tuner.oracle.get_trial(best.trial_id).hyperparameters.values),
            "best_epoch": best.best_epoch,
            "epochs_run": best.epochs_run,
            "seconds": best.seconds,
        },
        "command": command,
    }
    return export_preset(model, out_dir, metadata)
