"""Speak a sentence with the shipped zoo voice, in every language, with a speaker from another language.

python examples/synthesize.py --out out/
"""

import argparse
from pathlib import Path

from mlms_keras.synthesis import Synthesizer
from mlms_keras.vocoder.audio import save

SENTENCES = {
    "en-us": "Hello, this is a multilingual voice.",
    "en-gb": "Good morning, the train leaves at nine.",
    "fr": "Bonjour, je parle plusieurs langues.",
    "it": "Buongiorno, oggi fa bel tempo.",
    "de": "Guten Morgen, wie geht es dir?",
    "es": "Hola, ¿cómo estás hoy?",
    "pl": "Dzień dobry, jak się masz?",
    "pt-br": "Bom dia, tudo bem com você?",
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voice", default="teacher-polyglot-small")
    parser.add_argument("--speaker", default="en-us-female", help="one speaker for every language (cross-lingual)")
    parser.add_argument("--out", default="out")
    args = parser.parse_args()
    synthesizer = Synthesizer.from_zoo(args.voice)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for language, text in SENTENCES.items():
        if language not in synthesizer.languages:
            continue
        wave = synthesizer.synthesize(text, language, args.speaker)
        path = out / f"{language}-{args.speaker}.wav"
        save(path, wave, synthesizer.sample_rate)
        print(f"{path}: {len(wave) / synthesizer.sample_rate:.2f} s  {text}")


if __name__ == "__main__":
    main()
