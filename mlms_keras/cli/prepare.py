"""`mlms prepare`: extract WORLD + linguistic features of an aligned corpus into TFRecord shards.

The data library loads no TensorFlow at import (only the shard writer does, inside `prepare_dataset`), so this
module imports it at the top: its constants define the options. `tests/data/test_prepare.py` checks that
`mlms prepare --help` loads no TensorFlow.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from mlms_keras.data.prepare import (
    DEFAULT_MAX_FRAME_MISMATCH,
    DEFAULT_UTTERANCES_PER_SHARD,
    F0_METHODS,
    PrepareOptions,
    prepare_dataset,
)
from mlms_keras.data.prepare.alignment import ALIGN_MODES
from mlms_keras.data.prepare.extraction import DEFAULT_MAX_SECONDS

__all__ = ["add_parser", "command_line", "run"]


def add_parser(subparsers) -> None:
    """Registers `mlms prepare`."""
    parser = subparsers.add_parser(
        "prepare",
        help="extract WORLD + linguistic features of a corpus into TFRecord shards",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Extract features of an aligned corpus into GZIP TFRecord shards plus dataset.json (feature layout,\n"
            "language/speaker tables, splits, train-split normalisation statistics). Re-running the same command\n"
            "resumes an interrupted run, skipping finished shards. Bad utterances are skipped and listed.\n\n"
            "--layout-from VOICE fits the features to a zoo voice (name, folder or URL) that `mlms adapt` will\n"
            "adapt: the voice's feature layout plus the corpus's new languages, appended in order.\n\n"
            "examples:\n  mlms corpus build data/teacher --preset small --workers 2\n"
            "  mlms prepare data/teacher data/prepared --workers 2 --f0-method harvest\n"
            "  mlms corpus build data/sv --languages sv --utterances 120 --voice-variant f2\n"
            "  mlms prepare data/sv data/sv-prepared --layout-from teacher-small --f0-method dio"
        ),
    )
    parser.add_argument("corpus", help="corpus folder (teacher corpus, LJSpeech, M-AILABS or CSS10 layout)")
    parser.add_argument("out", help="output folder for shards/ and dataset.json")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    parser.add_argument(
        "--f0-method",
        choices=F0_METHODS,
        default="harvest",
        help="WORLD F0 estimator (default harvest; dio is ~20x faster)",
    )
    parser.add_argument("--utterances-per-shard", type=int, default=DEFAULT_UTTERANCES_PER_SHARD)
    parser.add_argument(
        "--dev-per-speaker",
        type=int,
        default=None,
        help="dev utterances per speaker when the corpus has no corpus.json splits (default 5%%)",
    )
    parser.add_argument("--layout", default=None, help="feature_layout.json to build with (default: package universe)")
    parser.add_argument(
        "--layout-from",
        default=None,
        metavar="VOICE",
        help="grow this zoo voice's feature layout by the corpus's new languages (data for `mlms adapt VOICE`)",
    )
    parser.add_argument(
        "--max-frame-mismatch",
        type=int,
        default=DEFAULT_MAX_FRAME_MISMATCH,
        help="most frames the alignment may be stretched or trimmed to fit the wav (default 5)",
    )
    parser.add_argument("--language", default=None, help="language code for layouts without one (LJSpeech, CSS10)")
    parser.add_argument("--speaker", default=None, help="speaker id for single-speaker layouts")
    parser.add_argument("--max-shards", type=int, default=None, help="stop after this many shards (resume later)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=DEFAULT_MAX_SECONDS,
        help=f"skip utterances longer than this, with the reason; 0 keeps any length (default {DEFAULT_MAX_SECONDS:g})",
    )
    parser.add_argument(
        "--resample",
        action="store_true",
        help="resample a corpus of several sample rates down to the lowest (soxr) instead of refusing it",
    )
    parser.add_argument(
        "--align",
        choices=ALIGN_MODES,
        default="auto",
        help="auto: align utterances without labels with the built-in aligner (into OUT/alignments); never: skip them",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def command_line(args: argparse.Namespace) -> str:
    """The `mlms prepare` command with every option spelled out (recorded in the manifest)."""
    words = [
        "mlms",
        "prepare",
        args.corpus,
        args.out,
        "--f0-method",
        args.f0_method,
        "--utterances-per-shard",
        str(args.utterances_per_shard),
        "--max-frame-mismatch",
        str(args.max_frame_mismatch),
        "--align",
        args.align,
        "--max-seconds",
        f"{args.max_seconds:g}",
    ]
    if args.resample:
        words.append("--resample")
    for flag, value in (
        ("--workers", args.workers),
        ("--dev-per-speaker", args.dev_per_speaker),
        ("--layout", args.layout),
        ("--layout-from", args.layout_from),
        ("--language", args.language),
        ("--speaker", args.speaker),
    ):
        if value is not None:
            words += [flag, str(value)]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    """Runs `mlms prepare`: 0 done, 1 done with skipped items, 3 stopped by `--max-shards` (re-run to finish)."""
    layout_from = None
    if args.layout_from is not None:
        from mlms_keras.frontend.layout import FeatureLayout
        from mlms_keras.zoo import resolve_voice

        _, metadata = resolve_voice(args.layout_from)
        layout_from = FeatureLayout.from_config(metadata["feature_layout"])
    options = PrepareOptions(
        dev_per_speaker=args.dev_per_speaker,
        layout=args.layout,
        layout_from=layout_from,
        max_frame_mismatch=args.max_frame_mismatch,
        language=args.language,
        speaker=args.speaker,
        max_shards=args.max_shards,
        command=command_line(args),
        align=args.align,
        max_seconds=args.max_seconds if args.max_seconds > 0 else None,
        resample=args.resample,
    )
    report = prepare_dataset(
        args.corpus,
        args.out,
        workers=args.workers,
        f0_method=args.f0_method,
        utterances_per_shard=args.utterances_per_shard,
        progress=not args.quiet,
        options=options,
    )
    print(
        f"{report.out_dir}: {report.shards_written} shards written, {report.shards_reused} reused, "
        f"{report.utterances} utterances, {len(report.skipped)} skipped, {report.seconds:.1f} s"
    )
    for entry in report.skipped:
        print(f"  skipped {entry.get('id') or ''} {entry['file']}: {entry['reason']}", file=sys.stderr)
    if not report.complete:
        print("incomplete (--max-shards): re-run the same command to finish", file=sys.stderr)
        return 3
    return 1 if report.skipped else 0
