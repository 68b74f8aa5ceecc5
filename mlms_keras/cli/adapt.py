"""`mlms adapt`: adapt a model from `mlms train` to a new language and speaker (paper sec. 4.2, variants v1-v4;
`mlms_keras.training.adaptation`)."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]

#: The paper's adaptation variants (`mlms_keras.training.adaptation.VARIANTS`, not imported: it loads TensorFlow).
VARIANT_CHOICES = ("v1", "v2", "v3", "v4")


def add_parser(subparsers) -> None:
    """Registers `mlms adapt`."""
    parser = subparsers.add_parser(
        "adapt",
        help="adapt a trained MLMS model to a new language and speaker (paper sec. 4.2, variants v1-v4)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Add a language code (random init) and a speaker output layer (copied from the closest trained speaker)\n"
            "to a model from `mlms train`, then train per variant; the new speaker's layer trains in every phase:\n"
            "  v1: the code only\n  v2: the code and the mean tower jointly\n"
            "  v3: v1, then the mean tower alone\n  v4: v3, then the code and the mean tower jointly\n"
            "Each phase lasts --epochs-per-phase epochs and keeps its best dev epoch. Re-running the same command\n"
            "after a kill resumes.\n\n"
            "example:\n"
            "  mlms adapt runs/mlms data/prepared --language pl --speaker pl-female --variant v3 --out runs/pl-v3"
        ),
    )
    parser.add_argument("model", help="run folder from `mlms train` (or its model.keras)")
    parser.add_argument("dataset", help="prepared dataset with the new language's train and dev splits")
    parser.add_argument("--language", required=True, help="new language code, e.g. pl")
    parser.add_argument("--speaker", required=True, help="new speaker name, e.g. pl-female")
    parser.add_argument("--variant", required=True, choices=VARIANT_CHOICES)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--epochs-per-phase", type=int, default=10, help="epochs per phase (default 10)")
    parser.add_argument(
        "--steps-per-epoch",
        type=int,
        default=None,
        help="batches per epoch from the repeated training data (default: one pass per epoch)",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Adapts (`adapt_on_prepared`) and prints the final dev MSE."""
    from mlms_keras.training.adaptation import AdaptationOptions, adapt_on_prepared

    options = AdaptationOptions(
        variant=args.variant,
        epochs_per_phase=args.epochs_per_phase,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        steps_per_epoch=args.steps_per_epoch,
    )
    result = adapt_on_prepared(
        args.model, args.dataset, args.language, args.speaker, args.out, options, verbose=2 if args.quiet else "auto"
    )
    dev = result.history.get("val_loss")
    print(
        f"{args.out}/model.keras: {args.variant} adapted to {args.language}/{args.speaker}"
        + (f", dev MSE {dev[-1]:.4f}" if dev else "")
    )
    return 0
