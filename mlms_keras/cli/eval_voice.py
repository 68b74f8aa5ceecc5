"""`mlms eval-voice`: a zoo voice against its espeak-ng teacher on held-out sentences (markdown and JSON)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlms_keras.cli import split_list

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    """Registers `mlms eval-voice`."""
    parser = subparsers.add_parser(
        "eval-voice",
        help="score a voice against its espeak-ng teacher on held-out sentences (MCD, F0, V/UV, length, clipping)",
        description=(
            "Every speaker of the voice speaks held-out sentences (text no corpus grammar produces) in every\n"
            "language of the voice; each is compared with the espeak-ng teacher speaking the same text with that\n"
            "speaker's voice variant: DTW on mel-cepstra, speech spans only, postfilter off. WORLD copy synthesis\n"
            "of the teacher (the floor) is measured in the same run. Writes report.md and report.json to --out.\n\n"
            "examples:\n"
            "  mlms eval-voice teacher-small --out reports/teacher-small --plots\n"
            "  mlms eval-voice voices/sv --sentences my-sentences.txt --no-cross-language"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("voice", help="built-in voice name, voice folder or file:// / https:// URL")
    parser.add_argument(
        "--sentences", default=None, help="UTF-8 file of `language|sentence` lines (default: the built-in held-out set)"
    )
    parser.add_argument("--per-language", type=int, default=2, help="built-in sentences per language (default 2)")
    parser.add_argument("--out", default=None, help="report folder (default: voice-report-<voice name>)")
    parser.add_argument(
        "--plots",
        type=int,
        nargs="?",
        const=6,
        default=0,
        metavar="N",
        help="also write spectrogram and F0 comparisons of N utterances (default 6) as PNGs",
    )
    parser.add_argument("--f0-method", choices=("dio", "harvest"), default="dio", help="WORLD F0 estimator")
    parser.add_argument("--speakers", default=None, help="comma-separated speaker names (default: all)")
    parser.add_argument(
        "--no-cross-language", action="store_true", help="only native pairs (each speaker in its own language)"
    )
    parser.add_argument("--sha256", default=None, help="pin the voice: the expected sha256 of its metadata.json")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Evaluates the voice, writes the report (and plots) and prints the markdown."""
    from mlms_keras.evaluation.heldout import read_sentence_file
    from mlms_keras.evaluation.voice_plots import choose_plots, plot_comparison
    from mlms_keras.evaluation.voice_report import VoiceReportOptions, evaluate_voice, evaluation_plan, write_report
    from mlms_keras.zoo import load_voice

    if args.per_language < 1:
        raise ValueError(f"--per-language must be at least 1, got {args.per_language}")
    if args.plots < 0:
        raise ValueError(f"--plots must be at least 0, got {args.plots}")
    voice = load_voice(args.voice, sha256=args.sha256)
    speakers = split_list(args.speakers)
    options = VoiceReportOptions(
        sentences=read_sentence_file(args.sentences) if args.sentences else None,
        sentences_per_language=args.per_language,
        f0_method=args.f0_method,
        cross_language=not args.no_cross_language,
        speakers=tuple(speakers) if speakers else None,
    )
    out = Path(args.out or f"voice-report-{voice.name}")
    chosen = choose_plots(evaluation_plan(voice, options), args.plots)
    plots = []

    def on_pair(utterance, teacher_wave, voice_wave, sample_rate, analysis):
        if utterance["index"] in chosen:
            path = out / f"{utterance['index']:03d}-{utterance['speaker']}-{utterance['language']}.png"
            out.mkdir(parents=True, exist_ok=True)
            speaker, language, kind = utterance["speaker"], utterance["language"], utterance["kind"]
            title = f"{speaker} speaking {language} ({kind}): {utterance['text']}"
            plot_comparison(path, teacher_wave, voice_wave, sample_rate, analysis, title)
            plots.append(str(path))

    report = evaluate_voice(voice, options, on_pair=on_pair)
    report["plots"] = plots
    json_path, markdown_path = write_report(report, out)
    print(markdown_path.read_text(encoding="utf-8"))
    print(f"wrote {markdown_path} and {json_path}" + (f" and {len(plots)} plots" if plots else ""))
    return 0
