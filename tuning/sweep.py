"""Sweep the language-space dimension L on a prepared dataset: `mlms tune` and `python -m tuning.sweep`.

`tune_dataset(DATASET, DIR, max_trials=N)` trains one MLMS model per trial on the training languages of a dataset
made by `mlms prepare` (the languages whose role is "training"; the adaptation languages are left for
`mlms adapt`), with L in [1, number of training languages] and, optionally, tower widths and learning rates.
The objective is `val_loss`, the dev-set MSE. It writes into DIR:

* `mlms_sweep/`: KerasTuner's project (one folder per trial with its best-epoch checkpoint); `sweep.json`: the
  settings. Running the same command again resumes: finished trials are reloaded, not re-run; an interrupted
  trial is run again; a larger `--max-trials` extends the sweep.
* `results.md`, `results.json`: one row per trial (L, width, learning rate, parameters, epochs, dev MSE, time),
  rewritten after every trial, so a long sweep shows what it has finished.
* `dev_mse_vs_language_space_dim.png`: dev MSE against L.
* `best_model/`: the best trial's model as a zoo preset folder (`config.json`, `model.weights.h5`,
  `metadata.json` with versions, parameter count, languages, speakers, the dataset manifest reference and feature
  layout, normalisation statistics, the dev MSE and the command; see `tuning.export`).

Example:
    mlms corpus build data/teacher --preset small
    mlms prepare data/teacher data/prepared --f0-method dio
    mlms tune data/prepared --max-trials 6 --directory runs/sweep --preset small --epochs 10
"""

import argparse
import dataclasses
import logging
import shlex
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

BEST_MODEL_FOLDER = "best_model"
MODEL_PRESETS = ("tiny", "small", "paper")


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
    max_trials=6,
    preset="small",
    min_language_space_dim=1,
    max_language_space_dim=None,
    tower_widths=None,
    learning_rates=None,
    learning_rate=1e-3,
    search="grid",
    epochs=10,
    batch_size=16,
    steps_per_epoch=None,
    validation_steps=None,
    patience=3,
    chunk_frames=None,
    seed=0,
    cache=False,
    tensorboard=False,
    overwrite=False,
    export=True,
    verbose=2,
    progress=True,
    command=None,
):
    """Runs (or resumes) an L sweep on a prepared dataset and writes its table, plot and best model.

    Args:
        dataset: prepared dataset folder (from `mlms prepare`) or its `dataset.json`.
        directory: sweep folder (see the module docstring); the same folder resumes the sweep.
        max_trials: trials in all, finished ones included (a grid stops when it has tried every combination).
        preset: model size preset for everything but L (`MLMSConfig.preset`: "tiny", "small", "paper").
        min_language_space_dim, max_language_space_dim: the range of L (default 1 .. number of training
            languages).
        tower_widths: optional tower widths to search (see `MLMSHyperModel`).
        learning_rates: optional Adam learning rates to search; otherwise `learning_rate`.
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
    from mlms_keras.data.pipeline import load_dataset
    from mlms_keras.models.acoustic import MLMSConfig
    from mlms_keras.zoo import sha256_of
    from tuning.hypermodel import MLMSHyperModel
    from tuning.results import best_result, write_results
    from tuning.tuner import PROJECT_NAME, make_tuner, run_sweep, trial_results

    if preset not in MODEL_PRESETS:
        raise ValueError(f"`preset` must be one of {MODEL_PRESETS}; received preset={preset!r}")
    for name, value in (
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("steps_per_epoch", steps_per_epoch),
        ("validation_steps", validation_steps),
        ("patience", patience),
        ("chunk_frames", chunk_frames),
    ):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"`{name}` must be an integer >= 1 (or None where optional); received {name}={value!r}")
    manifest = Manifest.load(dataset)
    manifest_file = manifest.folder / "dataset.json"
    languages, speakers = training_tables(manifest)
    codes = [entry["code"] for entry in languages]
    base_config = MLMSConfig.preset(
        preset, input_dim=manifest.input_dim, num_languages=len(languages), num_speakers=len(speakers)
    )
    hypermodel = MLMSHyperModel(
        base_config,
        max_language_space_dim=max_language_space_dim,
        min_language_space_dim=min_language_space_dim,
        tower_widths=tower_widths,
        learning_rates=learning_rates,
        learning_rate=learning_rate,
    )
    directory = Path(directory)
    settings = {
        "dataset": str(manifest_file.resolve()),
        "dataset_sha256": sha256_of(manifest_file),
        "languages": codes,
        "preset": preset,
        "epochs": epochs,
        "batch_size": batch_size,
        "steps_per_epoch": steps_per_epoch,
        "validation_steps": validation_steps,
        "patience": patience,
        "chunk_frames": chunk_frames,
    }
    header = {
        "dataset": f"`{manifest_file.resolve()}`",
        "training languages": ", ".join(codes),
        "speakers": len(speakers),
        "model preset": f"{preset}: ReLU {base_config.relu_units}, {base_config.lstm_layers} LSTMP layers of "
        f"{base_config.lstm_cells} cells projected to {base_config.lstm_projection}",
        "search": f"{search}, L in [{hypermodel.min_language_space_dim}, {hypermodel.max_language_space_dim}], "
        f"max {max_trials} trials, seed {seed}",
        "budget per trial": f"{epochs} epochs"
        + (f" x {steps_per_epoch} steps" if steps_per_epoch else "")
        + f", batch {batch_size}, early stopping patience {patience}",
        "objective": "val_loss (min)",
    }
    if command:
        header["command"] = f"`{command}`"

    def write_table(tuner):
        write_results(trial_results(tuner), directory, header)

    tuner = make_tuner(
        hypermodel,
        directory,
        max_trials=max_trials,
        search=search,
        seed=seed,
        settings=settings,
        overwrite=overwrite,
        progress=progress,
        after_trial=write_table,
    )
    trials_before = sum(trial.status != "RUNNING" for trial in tuner.oracle.trials.values())

    repeat = steps_per_epoch is not None
    # Full batches only: every distinct batch shape costs the XLA time loops a compile.
    train_data = load_dataset(
        manifest.folder,
        "train",
        batch_size,
        languages=codes,
        seed=seed,
        repeat=repeat,
        chunk_frames=chunk_frames,
        cache=cache,
        drop_remainder=True,
    )
    # The dev set is scored on whole utterances, also when training uses truncated-BPTT chunks.
    dev_data = load_dataset(manifest.folder, "dev", batch_size, languages=codes, shuffle=False, cache=cache)
    # A known length spares Keras's "input ran out of data" warning after each validation pass.
    dev_data = dev_data.apply(tf.data.experimental.assert_cardinality(sum(1 for _ in dev_data)))
    try:
        run_sweep(
            tuner,
            train_data,
            dev_data,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            validation_steps=validation_steps,
            patience=patience,
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
            search=search,
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
    from mlms_keras.zoo import sha256_of
    from tuning.export import export_preset
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


def _comma_list(kind):
    def parse(text):
        try:
            return [kind(item) for item in text.split(",") if item.strip()]
        except ValueError as error:
            message = f"expected comma-separated {kind.__name__} values, got {text!r}"
            raise argparse.ArgumentTypeError(message) from error

    return parse


def _command_line(prefix, args):
    """The canonical command line of a parsed `tune` invocation (every option spelled out)."""
    words = shlex.split(prefix) + [
        args.dataset,
        "--directory",
        args.directory,
        "--max-trials",
        str(args.max_trials),
        "--preset",
        args.preset,
        "--search",
        args.search,
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--seed",
        str(args.seed),
    ]
    optional = (
        ("--min-language-space-dim", args.min_language_space_dim),
        ("--max-language-space-dim", args.max_language_space_dim),
        ("--tower-widths", None if args.tower_widths is None else ",".join(map(str, args.tower_widths))),
        ("--learning-rates", None if args.learning_rates is None else ",".join(map(str, args.learning_rates))),
        ("--learning-rate", args.learning_rate),
        ("--steps-per-epoch", args.steps_per_epoch),
        ("--validation-steps", args.validation_steps),
        ("--patience", args.patience),
        ("--chunk-frames", args.chunk_frames),
    )
    for flag, value in optional:
        if value is not None:
            words += [flag, str(value)]
    words += [flag for flag, on in (("--cache", args.cache), ("--tensorboard", args.tensorboard)) if on]
    return shlex.join(words)


def _configure_parser(parser, command_prefix):
    parser.add_argument("dataset", help="prepared dataset folder (from `mlms prepare`)")
    parser.add_argument("--directory", required=True, help="sweep folder; the same folder resumes the sweep")
    parser.add_argument("--max-trials", type=int, default=6, help="trials in all, finished ones included (default 6)")
    parser.add_argument("--preset", choices=MODEL_PRESETS, default="small", help="model size besides L (default small)")
    parser.add_argument("--min-language-space-dim", type=int, default=None, help="smallest L (default 1)")
    parser.add_argument(
        "--max-language-space-dim", type=int, default=None, help="largest L (default: the number of training languages)"
    )
    parser.add_argument(
        "--tower-widths",
        type=_comma_list(int),
        default=None,
        help="also search tower widths, e.g. 64,128 (ReLU units = LSTMP cells; projection = width/2)",
    )
    parser.add_argument(
        "--learning-rates",
        type=_comma_list(float),
        default=None,
        help="also search Adam learning rates, e.g. 1e-3,3e-4",
    )
    parser.add_argument("--learning-rate", type=float, default=None, help="fixed Adam learning rate (default 1e-3)")
    parser.add_argument(
        "--search",
        choices=("grid", "random", "bayesian"),
        default="grid",
        help="search algorithm (default grid: L = 1, 2, ... in order)",
    )
    parser.add_argument("--epochs", type=int, default=10, help="epoch budget per trial (default 10)")
    parser.add_argument("--batch-size", type=int, default=16, help="utterances per batch (default 16)")
    parser.add_argument(
        "--steps-per-epoch", type=int, default=None, help="training batches per epoch (default: one pass)"
    )
    parser.add_argument("--validation-steps", type=int, default=None, help="dev batches per validation (default: all)")
    parser.add_argument(
        "--patience",
        type=int,
        default=3,
        help="early stopping after this many epochs without a lower val_loss (default 3)",
    )
    parser.add_argument("--chunk-frames", type=int, default=None, help="truncated-BPTT chunk length in frames")
    parser.add_argument("--seed", type=int, default=0, help="seed of data order, oracle and initialisation")
    parser.add_argument("--cache", action="store_true", help="keep decoded utterances in memory")
    parser.add_argument("--tensorboard", action="store_true", help="TensorBoard logs under DIRECTORY/logs")
    parser.add_argument("--overwrite", action="store_true", help="discard an existing sweep in DIRECTORY")
    parser.add_argument("--no-export", action="store_true", help="do not export the best model")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2, help="model.fit verbosity (default 2)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no per-epoch lines")
    parser.set_defaults(handler=_run_tune, command_prefix=command_prefix)


_EXAMPLE = (
    "Sweeps the language-space dimension L (Li & Zen 2016) with KerasTuner; objective val_loss (dev MSE).\n"
    "Running the same command again resumes: finished trials are not re-run.\n\n"
    "example:\n  mlms tune data/prepared --max-trials 6 --directory runs/sweep --preset small --epochs 10\n\n"
    "writes DIRECTORY/results.md, results.json, dev_mse_vs_language_space_dim.png and best_model/ (a zoo preset)"
)


def add_cli_parser(subparsers):
    """Registers `mlms tune DATASET --max-trials N --directory DIR`."""
    parser = subparsers.add_parser(
        "tune",
        help="sweep the language-space dimension L with KerasTuner",
        description=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _configure_parser(parser, "mlms tune")


def _run_tune(args):
    try:
        import keras_tuner  # noqa: F401
    except ImportError:
        print("mlms tune: KerasTuner is not installed; run `pip install mlms-keras[tuner]`", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    command = _command_line(args.command_prefix, args)
    options = dict(
        max_trials=args.max_trials,
        preset=args.preset,
        tower_widths=args.tower_widths,
        learning_rates=args.learning_rates,
        search=args.search,
        epochs=args.epochs,
        batch_size=args.batch_size,
        steps_per_epoch=args.steps_per_epoch,
        validation_steps=args.validation_steps,
        patience=args.patience,
        chunk_frames=args.chunk_frames,
        seed=args.seed,
        cache=args.cache,
        tensorboard=args.tensorboard,
        overwrite=args.overwrite,
        export=not args.no_export,
        verbose=0 if args.quiet else args.verbose,
        progress=not args.quiet,
        command=command,
    )
    for name in ("min_language_space_dim", "max_language_space_dim", "learning_rate"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    try:
        summary = tune_dataset(args.dataset, args.directory, **options)
    except (ValueError, FileNotFoundError) as error:
        print(f"{args.command_prefix}: error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        if "KerasTuner stopped the sweep" not in str(error):
            raise
        print(f"{args.command_prefix}: error: {error}", file=sys.stderr)
        return 1
    completed = sum(result.completed for result in summary.results)
    print(
        f"{args.directory}: {summary.trials_run} trials run now, {completed} completed in all, "
        f"{len(summary.results) - completed} not completed"
    )
    print(f"table: {summary.files['markdown']}  plot: {summary.files['plot']}")
    if summary.best is None:
        print("no trial completed; see the table for the errors", file=sys.stderr)
        return 1
    print(
        f"best: trial {summary.best.trial_id}, L = {summary.best.language_space_dim}, "
        f"dev MSE {summary.best.dev_mse:.4f}" + (f"; exported to {summary.preset_dir}" if summary.preset_dir else "")
    )
    return 0


def main(argv=None):
    """`python -m tuning.sweep DATASET --max-trials N --directory DIR` (the same options as `mlms tune`)."""
    parser = argparse.ArgumentParser(
        prog="python -m tuning.sweep", description=_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _configure_parser(parser, "python -m tuning.sweep")
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
