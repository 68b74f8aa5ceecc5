"""The voice report (`mlms eval-voice`) of every shipped voice: quality against the espeak-ng teacher.

For each built-in voice: every speaker speaks held-out sentences in every language of the voice and is scored
against its espeak-ng teacher (DTW-MCD, F0 RMSE, V/UV error, voiced-frame ratio, speech-length ratio, clipped
samples), beside WORLD copy synthesis of the same teacher waves (the floor) measured in the same run
(`mlms_keras.evaluation.voice_report`). Writes `report.md`, `report.json` and a few plots per voice into --out,
prints the summary tables, and ends with one JSON line: per voice, the rows floor, native_training,
native_adapted and cross_language.

    python benchmarks/bench_voice.py --out reports            # about 15 minutes per voice on 2 busy cores
"""

import argparse
import json
import logging
from pathlib import Path

from mlms_keras.evaluation.voice_plots import choose_plots, plot_comparison
from mlms_keras.evaluation.voice_report import (
    VoiceReportOptions,
    evaluate_voice,
    evaluation_plan,
    report_markdown,
    write_report,
)
from mlms_keras.zoo import list_voices, load_voice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="voice-reports", help="folder for the reports (one sub-folder per voice)")
    parser.add_argument("--per-language", type=int, default=2, help="held-out sentences per language (default 2)")
    parser.add_argument("--f0-method", choices=("dio", "harvest"), default="dio")
    parser.add_argument("--plots", type=int, default=4, help="comparison plots per voice (default 4)")
    parser.add_argument("--voices", default=None, help="comma-separated voice names (default: every shipped voice)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the voices' clipping warnings are counted in the report
    names = args.voices.split(",") if args.voices else [entry["name"] for entry in list_voices()]
    summary = {}
    for name in names:
        voice = load_voice(name)
        options = VoiceReportOptions(sentences_per_language=args.per_language, f0_method=args.f0_method)
        out = Path(args.out) / name
        chosen = choose_plots(evaluation_plan(voice, options), args.plots)

        def on_pair(utterance, teacher_wave, voice_wave, sample_rate, analysis, out=out, chosen=chosen):
            if utterance["index"] in chosen:
                out.mkdir(parents=True, exist_ok=True)
                path = out / f"{utterance['index']:03d}-{utterance['speaker']}-{utterance['language']}.png"
                title = f"{utterance['speaker']} speaking {utterance['language']}: {utterance['text']}"
                plot_comparison(path, teacher_wave, voice_wave, sample_rate, analysis, title)

        report = evaluate_voice(voice, options, on_pair=on_pair)
        write_report(report, out)
        print(report_markdown(report))
        summary[name] = {"rows": report["rows"], "seconds": round(report["seconds"], 1)}
    print(json.dumps({"benchmark": "voice", "f0_method": args.f0_method, "voices": summary}))


if __name__ == "__main__":
    main()
