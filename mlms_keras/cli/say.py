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
            "Text to speech with a pretrained voice. Any speaker can speak any of the voice's languages.\n\n"
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
    parser.add_argument("--speaker", help="speaker name (see --list-speakers)")
    parser.add_argument("--file", help="read the text from this UTF-8 file (any length)")
    parser.add_argument("-o", "--output", default="out.wav", help="output audio file (.wav, .flac, .ogg)")
    parser.add_argument("--list-speakers", action="store_true", help="list the voice's speakers and languages")
    parser.add_argument("--no-stream", action="store_true", help="one pass per sentence instead of streaming")
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
    voice = load_voice(voice_name)

    from mlms_keras.synthesis import Synthesizer  # TensorFlow: only once the voice is found

    synthesizer = Synthesizer(voice)
    if args.list_speakers:
        print(f"voice {voice.name}: languages {', '.join(synthesizer.languages)}")
        for name in synthesizer.speakers:
            entry = voice.speakers[name]
            gender = f", {entry['gender']}" if entry.get("gender") else ""
            print(f"  {name:<16} trained on {entry['language']}{gender}")
        return 0
    text = _read_text_file(args.file) if args.file else args.text
    missing = [flag for flag, value in (("--lang", args.lang), ("--speaker", args.speaker)) if not value]
    if text is None:
        missing.append("TEXT (or --file)")
    if missing:
        raise ValueError(
            f"missing {', '.join(missing)}. Languages: {', '.join(synthesizer.languages)}; speakers: "
            f"{', '.join(synthesizer.speakers)}. Example: mlms say --voice {voice.name} --lang "
            f'{synthesizer.languages[0]} --speaker {synthesizer.speakers[0]} "Hello." -o out.wav'
        )
    seconds = synthesizer.synthesize_to_file(text, args.lang, args.speaker, args.output, stream=not args.no_stream)
    print(f"wrote {args.output}: {seconds:.2f} s of audio at {synthesizer.sample_rate} Hz")
    return 0
