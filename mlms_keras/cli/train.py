"""`mlms train`: train an MLMS (or SLSS baseline) acoustic model on a prepared dataset (`mlms_keras.training.fit`);
with `--distributed`, on the cluster in TF_CONFIG (`mlms_keras.cli.train_distributed`)."""

from __future__ import annotations

import argparse

from mlms_keras.cli import split_list
from mlms_keras.cli.train_distributed import add_distributed_arguments, run_distributed

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    """Registers `mlms train`."""
    parser = subparsers.add_parser(
        "train",
        help="train an MLMS (or SLSS baseline) acoustic model on a prepared dataset",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Train an acoustic model on a prepared dataset (`mlms prepare`). OUT gets best.keras (lowest dev MSE so\n"
            "far), model.keras (the best, at the end), training.json (config, tables, history), history.json and\n"
            "TensorBoard logs/. Re-running the same command after a kill resumes from the last finished epoch.\n"
            "Creating the file OUT/STOP ends the run after the epoch under way, keeping the best epoch.\n"
            "By default the dataset's training-role languages are used (the teacher corpus's pl and pt-br stay out\n"
            "for `mlms adapt`).\n\n"
            "examples:\n"
            "  mlms train data/prepared --preset small --out runs/mlms\n"
            "  mlms train data/prepared --model slss --languages fr --speakers fr-female --out runs/slss-fr\n"
            "  tensorboard --logdir runs/mlms/logs"
        ),
    )
    parser.add_argument("dataset", help="prepared dataset folder (with dataset.json)")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument(
        "--preset", default="small", choices=("tiny", "small", "paper"), help="model size (default small)"
    )
    parser.add_argument("--model", default="mlms", choices=("mlms", "slss"), help="mlms (default) or the slss baseline")
    parser.add_argument(
        "--languages", default=None, help="comma-separated language codes (default: training languages)"
    )
    parser.add_argument(
        "--speakers", default=None, help="comma-separated speaker names (default: all of those languages)"
    )
    parser.add_argument(
        "--code-init",
        default="random",
        choices=("random", "one_hot", "one_hot_fixed"),
        help="language code strategy, paper sec. 4.1 (one_hot needs L >= languages, one_hot_fixed L == languages)",
    )
    parser.add_argument("--language-space-dim", type=int, default=None, help="L, basis towers (default: the preset's)")
    parser.add_argument("--epochs", type=int, default=30, help="maximum epochs (default 30)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument(
        "--patience", type=int, default=5, help="early-stopping patience in epochs; 0 disables (default 5)"
    )
    parser.add_argument("--chunk-frames", type=int, default=None, help="truncated-BPTT chunk length in frames")
    parser.add_argument(
        "--steps-per-epoch",
        type=int,
        default=None,
        help="batches per epoch from the repeated training stream (default: one pass)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    add_distributed_arguments(parser)  # --distributed sync|async (TF_CONFIG) and its options
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Trains (`train_on_prepared`, or the distributed driver with `--distributed`) and prints the best dev MSE."""
    if getattr(args, "distributed", None):
        return run_distributed(args)
    from mlms_keras.training.fit import TrainingOptions, train_on_prepared

    options = TrainingOptions(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        early_stopping_patience=None if args.patience <= 0 else args.patience,
        seed=args.seed,
        chunk_frames=args.chunk_frames,
        steps_per_epoch=args.steps_per_epoch,
    )
    result = train_on_prepared(
        args.dataset,
        args.out,
        options,
        preset=args.preset,
        model_type=args.model,
        languages=split_list(args.languages),
        speakers=split_list(args.speakers),
        code_init=args.code_init,
        language_space_dim=args.language_space_dim,
        verbose=2 if args.quiet else "auto",
    )
    print(
        f"{result.model_path}: best dev MSE {result.best_val_loss:.4f} at epoch {result.best_epoch + 1} of "
        f"{result.epochs_run}"
    )
    return 0
