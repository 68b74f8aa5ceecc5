"""`mlms languages`: the language universe, with the scripts of each language and the zoo voices that know it.

The library is imported inside `run`, so `mlms languages --help` loads nothing but argparse; `run` itself reads the
espeak-ng voice files and the zoo registry (no model, no TensorFlow).
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]

# How the script names of `Language.scripts` (first words of Unicode character names) are shown.
_SCRIPT_NAMES = {"CJK": "Han", "HIRAGANA": "Hiragana", "KATAKANA": "Katakana"}


def add_parser(subparsers) -> None:
    """Registers `mlms languages`."""
    parser = subparsers.add_parser(
        "languages",
        help="list the languages espeak-ng speaks and which installed voices know each",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "List every language the bundled espeak-ng speaks: its code (for --lang, --language and\n"
            "--languages), name, script(s), where `mlms corpus build --languages` takes its sentences (grammar:\n"
            "the paper's hand-written grammars; words: a word-frequency list), and the installed zoo voices that\n"
            "know it. The paper's eight languages come first.\n\n"
            "examples:\n  mlms languages\n  mlms languages --script cyrillic\n  mlms languages --voice teacher-small"
        ),
    )
    parser.add_argument("--voice", default=None, help="only the languages this installed zoo voice knows")
    parser.add_argument(
        "--script", default=None, help="only languages written in this script (latin, cyrillic, han, arabic, ...)"
    )
    parser.set_defaults(handler=run)


def _script_label(script: str) -> str:
    return _SCRIPT_NAMES.get(script, script.title())


def run(args: argparse.Namespace) -> int:
    """Runs `mlms languages`: prints one line per language; 0, or ValueError for an unknown voice or script."""
    from mlms_keras.data.sentences import GRAMMAR_FOR_LANGUAGE
    from mlms_keras.data.teacher.words import WORDFREQ_CODES
    from mlms_keras.languages import LANGUAGE_CODES, all_languages, unusable_voices
    from mlms_keras.zoo import list_voices

    voices = list_voices()
    if args.voice is not None and args.voice not in {voice["name"] for voice in voices}:
        names = ", ".join(voice["name"] for voice in voices) or "none"
        raise ValueError(f"--voice {args.voice!r} is not an installed zoo voice; installed: {names} (see `mlms zoo`)")
    languages = list(all_languages())
    if args.script is not None:
        wanted = args.script.strip().upper()
        wanted = {"HAN": "CJK", "KANA": "HIRAGANA"}.get(wanted, wanted)
        languages = [language for language in languages if any(s.startswith(wanted) for s in language.scripts)]
        if not languages:
            scripts = sorted({_script_label(s).lower() for language in all_languages() for s in language.scripts})
            raise ValueError(f"--script {args.script!r} matches no language; scripts: {', '.join(scripts)}")
    if args.voice is not None:
        known = next(voice for voice in voices if voice["name"] == args.voice)["languages"]
        languages = [language for language in languages if language.code in known]
    rows = []
    for language in languages:
        sentences = "grammar" if language.code in GRAMMAR_FOR_LANGUAGE else ""
        sentences = sentences or ("words" if language.code in WORDFREQ_CODES else "-")
        knowing = [voice["name"] for voice in voices if language.code in voice.get("languages", ())]
        scripts = "+".join(_script_label(script) for script in language.scripts)
        rows.append((language.code, language.display_name, scripts, sentences, ", ".join(knowing) or "-"))
    header = ("code", "name", "script", "corpus", "zoo voices")
    widths = [max(len(row[column]) for row in rows + [header]) for column in range(len(header) - 1)]
    for row in [header] + rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    paper = sum(1 for language in languages if language.code in LANGUAGE_CODES)
    print(
        f"{len(rows)} languages, {paper} of them from the paper. Left out (espeak-ng voices without a dictionary): "
        f"{', '.join(sorted(unusable_voices()))}."
    )
    return 0
