"""`mlms corpus build`: the espeak-ng teacher corpus (Table 1 of the paper).

The teacher-corpus builder loads no TensorFlow, so this module imports it at the top (its presets define
`--preset`); `tests/test_prepare.py` checks that `mlms corpus build --help` loads no TensorFlow.
"""

from __future__ import annotations

import argparse
import sys

from mlms_keras.data.teacher import PRESETS, build_teacher_corpus

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    """Registers `mlms corpus` and its sub-verb `build`."""
    corpus = subparsers.add_parser(
        "corpus",
        help="build the teacher corpus (espeak-ng voices, Table 1 of the paper)",
        description="Corpus tools.",
    )
    verbs = corpus.add_subparsers(dest="corpus_command", metavar="VERB")
    verbs.required = True
    build = verbs.add_parser(
        "build",
        help="build the multilingual teacher corpus",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Build the teacher corpus: wavs/, labels/ (HTS), metadata.csv (id|text|language|speaker) and\n"
            "corpus.json. Re-running the same command resumes an interrupted build.\n\n"
            "presets: tiny (46 utterances, seconds), small (3 533, Table 1 / 50), paper-scale (175 163, Table 1)\n\n"
            "example:\n  mlms corpus build data/teacher --preset small --seed 0 --workers 2"
        ),
    )
    build.add_argument("out", help="output folder")
    build.add_argument("--preset", choices=PRESETS, default="tiny")
    build.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    build.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    build.add_argument("--speakers", default=None, help="comma-separated subset of speaker ids (default: all)")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Runs `mlms corpus build`: 0 when every utterance was built, 1 when some were skipped."""
    report = build_teacher_corpus(
        args.out,
        preset=args.preset,
        seed=args.seed,
        workers=args.workers,
        speakers=args.speakers.split(",") if args.speakers else None,
        progress=not args.quiet,
    )
    print(f"{report.out_dir}: {report.built} built, {report.reused} reused, {len(report.skipped)} skipped")
    if report.skipped:
        print(
            f"Skipped {len(report.skipped)} utterance(s); see 'skipped' in {report.out_dir}/corpus.json",
            file=sys.stderr,
        )
        return 1
    return 0
