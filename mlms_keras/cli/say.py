"""`mlms say`: text to speech with a zoo voice into an audio file."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    """Registers `mlms say`."""
    parser = subparsers.add_parser(
        "say",
        help="speak a text with a zoo voice into an audio file",
        description=(
            "Text to speech with a pretrained voice. Any speaker can speak any of the voice's languages.\n"
            "Without --speaker, the voice's first native speaker of --lang speaks. A sentence that cannot be\n"
            "spoken (say, a word in another script) is skipped with a warning; --strict fails instead.\n"
            "Control characters are removed and emoji and symbols dropped, with a warning.\n\n"
            "examples:\n"
            '  mlms say --voice teacher-small --lang pl --speaker en-us-female "Dzień dobry." -o out.wav\n'
            "  mlms say --voice teacher-small --list-speakers\n"
            "  mlms say --voice teacher-small --lang fr --speaker fr-female --file book.txt -o book.flac"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("text", nargs="?", help="the text (or use --file)")
    parser.add_argument(
        "--voice",
        default=None,
        help="built-in voice name, voice folder or file:// / https:// URL (default: the first built-in voice)",
    )
    parser.add_argument("--lang", help="language code, e.g. en-us, fr, pl")
    parser.add_argument(
        "--speaker", help="speaker name (see --list-speakers; default: the voice's first native speaker of --lang)"
    )
    parser.add_argument("--file", help="read the text from this UTF-8 file (any length)")
    parser.add_argument("-o", "--output", default="out.wav", help="output audio file (.wav, .flac, .ogg)")
    parser.add_argument("--list-speakers", action="store_true", help="list the voice's speakers and languages")
    parser.add_argument("--no-stream", action="store_true", help="one pass per sentence instead of streaming")
    parser.add_argument(
        "--strict", action="store_true", help="fail on the first sentence that cannot be spoken (default: skip it)"
    )
    parser.add_argument(
        "--read-symbols", action="store_true", help="read emoji and symbols out by name instead of dropping them"
    )
    parser.add_argument("--sha256", default=None, help="pin the voice: the expected sha256 of its metadata.json")
    parser.set_defaults(handler=run)


def _read_text_file(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"cannot read --file {path}: not UTF-8 text ({error})") from error
    except OSError as error:
        raise OSError(f"cannot read --file {path}: {error.strerror or error}") from error


def run(args: argparse.Namespace) -> int:
    """Loads the voice, then lists its speakers or speaks the text into `--output`."""
    from mlms_keras.zoo import list_voices, load_voice

    voice_name = args.voice
    if voice_name is None:
        voices = list_voices()
        if not voices:
            raise FileNotFoundError("no built-in voice is installed; pass --voice FOLDER or URL")
        voice_name = voices[0]["name"]
    voice = load_voice(voice_name, sha256=args.sha256)

    from mlms_keras.synthesis import Synthesizer  # TensorFlow: only once the voice is found

    synthesizer = Synthesizer(voice, read_symbols=args.read_symbols, strict=args.strict)
    if args.list_speakers:
        print(f"voice {voice.name}: languages {', '.join(synthesizer.languages)}")
        for name in synthesizer.speakers:
            entry = voice.speakers[name]
            gender = f", {entry['gender']}" if entry.get("gender") else ""
            print(f"  {name:<16} trained on {entry['language']}{gender}")
        return 0
    text = _read_text_file(args.file) if args.file else args.text
    missing = [] if args.lang else ["--lang"]
    if text is None:
        missing.append("TEXT (or --file)")
    if missing:
        raise ValueError(
            f"missing {', '.join(missing)}. Languages: {', '.join(synthesizer.languages)}; speakers: "
            f"{', '.join(synthesizer.speakers)}. Example: mlms say --voice {voice.name} --lang "
            f'{synthesizer.languages[0]} --speaker {synthesizer.speakers[0]} "Hello." -o out.wav'
        )
    speaker = args.speaker
    if speaker is None:
        speaker = synthesizer.default_speaker(args.lang)
        native = voice.speakers[speaker].get("language") == args.lang
        print(
            f"speaker {speaker} ({'the first native ' + args.lang + ' speaker' if native else 'no native speaker'}"
            f" of voice {voice.name}; choose another with --speaker)"
        )
    seconds = synthesizer.synthesize_to_file(text, args.lang, speaker, args.output, stream=not args.no_stream)
    skipped = len(synthesizer.skipped)
    note = f"; skipped {skipped} sentence{'s' if skipped != 1 else ''} (warnings above)" if skipped else ""
    print(f"wrote {args.output}: {seconds:.2f} s of audio at {synthesizer.sample_rate} Hz{note}")
    return 0
