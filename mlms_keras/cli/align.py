"""`mlms align`: HTS labels and TextGrids for a corpus (or one audio file) that comes with transcripts only."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser", "run"]

_AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def add_parser(subparsers) -> None:
    """Registers `mlms align`."""
    parser = subparsers.add_parser(
        "align",
        help="forced-align a corpus (or one file): HTS labels + TextGrids with phone and word tiers",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Align every utterance of a corpus (teacher, LJSpeech, M-AILABS or CSS10 layout) with the shipped\n"
            "multilingual aligner: <id>.lab (HTS, espeak-ng phones, what `mlms prepare` reads) and <id>.TextGrid\n"
            "(phones and words tiers) in --out (default CORPUS/labels), plus alignment_report.json (a score per\n"
            "utterance, outliers flagged as likely transcript errors). Re-running resumes. With more than a few\n"
            "dozen utterances the model is first adapted to the corpus (--corpus-pass auto).\n"
            "A single audio file is aligned with --text.\n\n"
            "examples:\n"
            "  mlms align data/LJSpeech-1.1 --language en-us --workers 2\n"
            "  mlms align data/LJSpeech-1.1 --language en-us --plot LJ001-0001\n"
            '  mlms align arctic_a0007.wav --text "And you always want to see it." --language en-us --out aligned'
        ),
    )
    parser.add_argument("corpus", help="corpus folder, or one audio file (with --text)")
    parser.add_argument("--out", default=None, help="label folder (default CORPUS/labels, or the file's folder)")
    parser.add_argument("--language", default=None, help="language code (layouts without one, or a single file)")
    parser.add_argument("--speaker", default=None, help="speaker id for single-speaker layouts")
    parser.add_argument("--text", default=None, help="the transcript of a single audio file")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    parser.add_argument("--model", default=None, help="aligner model folder (default: the shipped one)")
    parser.add_argument(
        "--corpus-pass",
        choices=("auto", "always", "never"),
        default="auto",
        help="adapt the model to the corpus first (auto: with 40 utterances or more)",
    )
    parser.add_argument("--no-textgrid", action="store_true", help="write only the HTS label files")
    parser.add_argument("--plot", default=None, metavar="ID", help="also write ID.png: waveform, spectrogram, tiers")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def _plot(out_dir: Path, utterance_id: str, wav_path, text: str) -> Path:
    from mlms_keras.align.plot import plot_alignment
    from mlms_keras.frontend.labels import read_textgrid
    from mlms_keras.vocoder import audio

    grid = out_dir / f"{utterance_id}.TextGrid"
    if not grid.is_file():
        raise FileNotFoundError(f"{grid}: no TextGrid for --plot {utterance_id}; align it without --no-textgrid.")
    wave, rate = audio.load(wav_path)
    target = out_dir / f"{utterance_id}.png"
    plot_alignment(target, wave, rate, read_textgrid(grid, "phones"), read_textgrid(grid, "words"), text)
    return target


def _run_file(args) -> int:
    from mlms_keras.align import align, load_aligner, write_alignment
    from mlms_keras.vocoder import audio

    if args.text is None or args.language is None:
        raise ValueError(f"{args.corpus} is one audio file: give its transcript with --text and --language")
    path = Path(args.corpus)
    out_dir = Path(args.out) if args.out else path.parent
    wave, rate = audio.load(path)
    alignment = align(wave, rate, args.text, args.language, model=load_aligner(args.model))
    textgrid = None if args.no_textgrid else out_dir / f"{path.stem}.TextGrid"
    write_alignment(alignment, out_dir / f"{path.stem}.lab", textgrid)
    print(f"{out_dir / (path.stem + '.lab')}: {len(alignment.phones)} segments, score {alignment.score:.3f}")
    if args.plot is not None:
        print(f"plot: {_plot(out_dir, path.stem, path, args.text)}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Runs `mlms align`: 0 all aligned, 1 aligned with skipped items or outliers."""
    if Path(args.corpus).suffix.lower() in _AUDIO_SUFFIXES:
        return _run_file(args)
    from mlms_keras.align import AlignOptions, align_corpus

    options = AlignOptions(
        language=args.language,
        speaker=args.speaker,
        workers=args.workers,
        model=args.model,
        corpus_pass=args.corpus_pass,
        textgrid=not args.no_textgrid,
        progress=not args.quiet,
    )
    report = align_corpus(args.corpus, args.out, options)
    hours = report.audio_seconds / 3600.0
    print(
        f"{report.out_dir}: {report.aligned} aligned, {report.reused} done earlier, {len(report.skipped)} skipped, "
        f"{len(report.outliers)} outliers, {report.seconds:.1f} s"
        + (f" ({report.seconds / hours / 60:.1f} min per hour of audio)" if hours > 0 else "")
    )
    if report.corpus_pass.get("ran"):
        print(f"corpus-level pass: {report.corpus_pass}")
    for entry in report.skipped:
        print(f"  skipped {entry.get('id') or ''} {entry['file']}: {entry['reason']}", file=sys.stderr)
    for utterance_id in report.outliers:
        print(f"  outlier (likely transcript error): {utterance_id}", file=sys.stderr)
    if args.plot is not None:
        from mlms_keras.data.readers import read_corpus

        items = {item.utterance_id: item for item in read_corpus(args.corpus, args.language, args.speaker, False)}
        if args.plot not in items:
            raise ValueError(f"--plot {args.plot}: no such utterance id in {args.corpus}")
        print(f"plot: {_plot(Path(report.out_dir), args.plot, items[args.plot].wav_path, items[args.plot].text)}")
    return 1 if report.skipped or report.outliers else 0
