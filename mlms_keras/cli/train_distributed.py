"""`mlms train --distributed sync|async`: train on the cluster in TF_CONFIG
(`mlms_keras.training.distributed.train_distributed_on_prepared`).

`mlms_keras.cli.train` adds these options to `mlms train` (`add_distributed_arguments`) and hands a run with
`--distributed` to `run_distributed`.
"""

from __future__ import annotations

import argparse

from mlms_keras.cli import split_list

__all__ = ["add_distributed_arguments", "run_distributed"]

#: The values of `--distributed` (the same as `mlms_keras.training.distributed.MODES`; kept here so that
#: `mlms train --help` imports no training code).
_MODES = ("sync", "async")


def add_distributed_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the `--distributed` options to the `mlms train` parser (see `run_distributed`)."""
    group = parser.add_argument_group(
        "distributed training (TF_CONFIG; see docs/distributed.md)",
        "Run the same command on every machine of the cluster in TF_CONFIG, e.g.\n"
        '  TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", '
        '"index": 0}}\' mlms train data/prepared --out runs/mlms --distributed sync',
    )
    group.add_argument(
        "--distributed",
        choices=_MODES,
        default=None,
        help="train on the cluster in TF_CONFIG: sync (all-reduce, MultiWorkerMirroredStrategy) or async "
        "(the paper's ASGD, parameter servers)",
    )
    group.add_argument(
        "--steps",
        type=int,
        default=None,
        help="total steps (default: --epochs x --steps-per-epoch, or --epochs passes over the data); no early stopping",
    )
    group.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints (default 100)")
    group.add_argument(
        "--initial-checkpoint",
        default=None,
        help="a .keras file to start from (e.g. a single-process run's model.keras); its optimizer, learning rate "
        "and optimizer state come along when it has them",
    )
    group.add_argument(
        "--jit-recurrence",
        choices=("training", "never"),
        default="training",
        help="XLA for the towers' time loops in training (default) or never",
    )


def run_distributed(args: argparse.Namespace) -> int:
    """Handler of `mlms train --distributed`: trains, prints the run's model file on the chief, returns 0."""
    if args.model != "mlms":
        raise ValueError("--distributed trains the MLMS model only (drop --model slss)")
    from mlms_keras.training.distributed import DistributedOptions, PreparedRunOptions, train_distributed_on_prepared

    options = DistributedOptions(
        mode=args.distributed,
        steps=args.steps,
        learning_rate=args.learning_rate,
        checkpoint_every=args.checkpoint_every,
        initial_checkpoint=args.initial_checkpoint,
        seed=args.seed,
        jit_recurrence=args.jit_recurrence,
        show_progress=not args.quiet,
    )
    prepared = PreparedRunOptions(
        preset=args.preset,
        languages=split_list(args.languages),
        speakers=split_list(args.speakers),
        code_init=args.code_init,
        language_space_dim=args.language_space_dim,
        epochs=args.epochs,
        steps_per_epoch=getattr(args, "steps_per_epoch", None),
        batch_size=args.batch_size,
        chunk_frames=args.chunk_frames,
    )
    result = train_distributed_on_prepared(args.dataset, args.out, options, prepared)
    if result is not None and result.model_path is not None:
        best = min((mse for _, mse in result.dev_mse), default=None)
        print(
            f"{result.model_path}: {result.steps} steps in {result.seconds:.1f} s"
            + (f", best dev MSE {best:.4f}" if best is not None else "")
        )
    return 0
