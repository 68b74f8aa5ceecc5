"""`mlms reproduce`: the paper's Figures 2 and 3 on a prepared teacher corpus (`mlms_keras.training.reproduce`)."""

from __future__ import annotations

import argparse
import logging

from mlms_keras.cli import split_list
from mlms_keras.evaluation.paper import results_markdown
from mlms_keras.training.reproduce import SCALES, reproduce  # no TensorFlow at import: reproduce() loads it

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    """Registers `mlms reproduce`."""
    parser = subparsers.add_parser(
        "reproduce",
        help="reproduce the paper's Figures 2 and 3 on a prepared teacher corpus",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Train SLSS baselines, MLMS with the three language-code strategies (Figure 2), and scratch vs\n"
            "adapted v1-v4 models for the adaptation languages (Figure 3); write results.json, results.md,\n"
            "figure2.png and figure3.png. Re-running the same command resumes (finished runs are reused).\n\n"
            "example:\n"
            "  mlms corpus build data/teacher-small --preset small --workers 2\n"
            "  mlms prepare data/teacher-small data/prepared-small --workers 2\n"
            "  mlms reproduce data/prepared-small --out runs/reproduce-small --scale small"
        ),
    )
    parser.add_argument("dataset", help="prepared teacher corpus")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--scale", choices=sorted(SCALES), default="smoke", help="training budget (default smoke)")
    parser.add_argument("--languages", default=None, help="training languages (default: the dataset's training ones)")
    parser.add_argument("--adaptation-languages", default=None, help="default: the dataset's adaptation ones")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Runs the experiments (`reproduce`) and prints the results table."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    results = reproduce(
        args.dataset,
        args.out,
        scale=args.scale,
        training_languages=split_list(args.languages),
        adaptation_languages=split_list(args.adaptation_languages),
        seed=args.seed,
        verbose=0 if args.quiet else 2,
    )
    print(results_markdown(results))
    print(f"written: {args.out}/results.json, results.md, figure2.png, figure3.png")
    return 0
