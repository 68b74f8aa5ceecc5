"""`mlms corpus build`: the espeak-ng teacher corpus (Table 1 of the paper), or one of any languages.

The teacher-corpus builder loads no TensorFlow, so this module imports it at the top (its presets define
`--preset`); `tests/data/test_prepare.py` checks that `mlms corpus build --help` loads no TensorFlow.
"""

from __future__ import annotations

import argparse
import sys

from mlms_keras.cli import split_list
from mlms_keras.data.teacher import DEFAULT_VARIANT, PRESETS, build_teacher_corpus

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
            "presets: tiny (46 utterances, seconds), small (3 533, Table 1 / 50), paper-scale (175 163, Table 1)\n"
            "--languages: any languages with a word-frequency list (or the paper's grammars), one new speaker\n"
            "  <code>-<variant> per language, sentences of frequent words (`mlms languages` lists the codes)\n\n"
            "examples:\n  mlms corpus build data/teacher --preset small --seed 0 --workers 2\n"
            "  mlms corpus build data/sv-cs --languages sv,cs --utterances 200 --voice-variant f2"
        ),
    )
    build.add_argument("out", help="output folder")
    build.add_argument("--preset", choices=PRESETS, default=None, help="Table 1 preset (default tiny)")
    build.add_argument(
        "--languages", default=None, help="comma-separated language codes: build these instead of a preset"
    )
    build.add_argument(
        "--utterances", type=int, default=None, help="utterances per language with --languages (default 100)"
    )
    build.add_argument(
        "--voice-variant",
        default=None,
        help=f"espeak-ng voice variant of the --languages speakers (default {DEFAULT_VARIANT}; f1..f5, m1..m8, ...)",
    )
    build.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    build.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    build.add_argument("--speakers", default=None, help="comma-separated subset of speaker ids (default: all)")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Runs `mlms corpus build`: 0 when every utterance was built, 1 when some were skipped."""
    languages = split_list(args.languages)
    if languages is None:
        for option, value in (("--utterances", args.utterances), ("--voice-variant", args.voice_variant)):
            if value is not None:
                raise ValueError(f"{option} goes with --languages (a preset has its own speakers and counts)")
        report = build_teacher_corpus(
            args.out,
            preset=args.preset or "tiny",
            seed=args.seed,
            workers=args.workers,
            speakers=args.speakers.split(",") if args.speakers else None,
            progress=not args.quiet,
        )
    else:
        for option, value in (("--preset", args.preset), ("--speakers", args.speakers)):
            if value is not None:
                raise ValueError(f"{option} and --languages do not go together: build a preset or languages")
        report = build_teacher_corpus(
            args.out,
            seed=args.seed,
            workers=args.workers,
            progress=not args.quiet,
            languages=languages,
            utterances=100 if args.utterances is None else args.utterances,
            voice_variant=args.voice_variant or DEFAULT_VARIANT,
        )
    print(f"{report.out_dir}: {report.built} built, {report.reused} reused, {len(report.skipped)} skipped")
    if report.skipped:
        print(
            f"Skipped {len(report.skipped)} utterance(s); see 'skipped' in {report.out_dir}/corpus.json",
            file=sys.stderr,
        )
        return 1
    return 0
