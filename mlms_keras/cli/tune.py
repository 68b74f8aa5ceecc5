"""`mlms tune DATASET --directory DIR --max-trials N`: a KerasTuner sweep over the language-space dimension L."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys

__all__ = ["MISSING_TUNER", "add_parser", "run"]

#: `tuning.sweep.MODEL_PRESETS`, written out so that `--help` imports nothing of the library.
_MODEL_PRESETS = ("tiny", "small", "paper")

MISSING_TUNER = (
    'KerasTuner is not installed; it comes with the optional "tuner" extra: run `pip install ".[tuner]"` in the '
    'mlms-keras source folder (or `pip install "mlms-keras[tuner]"`)'
)

_DESCRIPTION = (
    "Sweeps the language-space dimension L (Li & Zen 2016) with KerasTuner; objective val_loss (dev MSE).\n"
    "Running the same command again resumes: finished trials are not re-run.\n\n"
    "example:\n  mlms tune data/prepared --max-trials 6 --directory runs/sweep --preset small --epochs 10\n\n"
    "writes DIRECTORY/results.md, results.json, dev_mse_vs_language_space_dim.png and best_model/ (a zoo preset)"
)


def _comma_list(kind):
    def parse(text):
        try:
            return tuple(kind(item) for item in text.split(",") if item.strip())
        except ValueError as error:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {kind.__name__} values, got {text!r}"
            ) from error

    return parse


def add_parser(subparsers) -> None:
    """Registers `mlms tune`."""
    parser = subparsers.add_parser(
        "tune",
        help="sweep the language-space dimension L with KerasTuner",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dataset", help="prepared dataset folder (from `mlms prepare`)")
    parser.add_argument("--directory", required=True, help="sweep folder; the same folder resumes the sweep")
    parser.add_argument("--max-trials", type=int, default=6, help="trials in all, finished ones included (default 6)")
    parser.add_argument(
        "--preset", choices=_MODEL_PRESETS, default="small", help="model size besides L (default small)"
    )
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
    parser.set_defaults(handler=run)


def _command_line(args: argparse.Namespace) -> str:
    """The canonical command line of a parsed `tune` invocation (every option spelled out)."""
    words = ["mlms", "tune", args.dataset, "--directory", args.directory, "--max-trials", str(args.max_trials)]
    words += ["--preset", args.preset, "--search", args.search, "--epochs", str(args.epochs)]
    words += ["--batch-size", str(args.batch_size), "--seed", str(args.seed)]
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


def run(args: argparse.Namespace) -> int:
    """Runs (or resumes) the sweep and prints where its table, plot and best model are."""
    try:
        import keras_tuner  # noqa: F401
    except ImportError:
        raise ValueError(MISSING_TUNER) from None  # reported as one line, exit code 2
    from tuning.sweep import SweepOptions, tune_dataset

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    chosen = {
        name: getattr(args, name) for name in ("min_language_space_dim", "max_language_space_dim", "learning_rate")
    }
    options = SweepOptions(
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
        **{name: value for name, value in chosen.items() if value is not None},
    )
    try:
        summary = tune_dataset(
            args.dataset,
            args.directory,
            options,
            tensorboard=args.tensorboard,
            overwrite=args.overwrite,
            export=not args.no_export,
            verbose=0 if args.quiet else args.verbose,
            progress=not args.quiet,
            command=_command_line(args),
        )
    except RuntimeError as error:
        if "KerasTuner stopped the sweep" not in str(error):
            raise
        print(f"mlms tune: {error}", file=sys.stderr)
        return 1
    completed = sum(result.completed for result in summary.results)
    print(
        f"{args.directory}: {summary.trials_run} trials run now, {completed} completed in all, "
        f"{len(summary.results) - completed} not completed"
    )
    print(f"table: {summary.files['markdown']}  plot: {summary.files['plot']}")
    if summary.best is None:
        print("no trial completed; see the table for the errors")
        return 1
    print(
        f"best: trial {summary.best.trial_id}, L = {summary.best.language_space_dim}, "
        f"dev MSE {summary.best.dev_mse:.4f}" + (f"; exported to {summary.preset_dir}" if summary.preset_dir else "")
    )
    return 0
