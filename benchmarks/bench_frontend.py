"""Frontend benchmark: teacher-corpus build rate and linguistic-feature rate (utterances per second).

Measures, in one run:

- corpus build: `build_teacher_corpus` on a subset of the `small` preset with 1 worker (baseline) and with
  N workers; utterances/s, including the workers' start-up;
- text analysis: `espeak.analyze` alone (baseline) vs `FeatureLayout.phoneme_features` (analysis + the
  universal feature matrix), utterances/s over generated sentences of all eight languages;
- aligned features: `features_for_alignment` + `expand_to_frames` on the built corpus (what corpus
  preparation does per utterance), utterances/s and frames/s.

Usage:
    python benchmarks/bench_frontend.py [--workers 2] [--sentences 400]
The last line printed is one JSON object with every figure.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from mlms_keras.data import teacher  # noqa: E402
from mlms_keras.data.sentences import generate_sentences  # noqa: E402
from mlms_keras.frontend import espeak  # noqa: E402
from mlms_keras.frontend.labels import read_hts_labels  # noqa: E402
from mlms_keras.frontend.layout import FeatureLayout  # noqa: E402
from mlms_keras.frontend.linguistic import expand_to_frames, features_for_alignment  # noqa: E402
from mlms_keras.languages import LANGUAGE_CODES  # noqa: E402

BUILD_SPEAKERS = ["en-gb-male", "pl-female", "pt-br-female"]  # 77 + 23 + 23 utterances of the small preset


def _build_rate(out_dir, workers):
    start = time.perf_counter()
    report = teacher.build_teacher_corpus(
        out_dir, "small", seed=0, workers=workers, speakers=BUILD_SPEAKERS, progress=False
    )
    elapsed = time.perf_counter() - start
    return report.built / elapsed, report.built, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sentences", type=int, default=400, help="sentences per measurement (all languages)")
    args = parser.parse_args()

    results = {"espeak_ng": espeak.espeak_version(), "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as scratch:
        rate_1, built, seconds = _build_rate(os.path.join(scratch, "one"), 1)
        rate_n, _, seconds_n = _build_rate(os.path.join(scratch, "many"), args.workers)
        print(
            f"corpus build: {built} utterances, 1 worker {rate_1:.1f} utt/s ({seconds:.2f} s), "
            f"{args.workers} workers {rate_n:.1f} utt/s ({seconds_n:.2f} s), x{rate_n / rate_1:.2f}"
        )
        results.update(
            build_utterances=built,
            build_utt_per_s_1_worker=round(rate_1, 2),
            build_utt_per_s_n_workers=round(rate_n, 2),
            build_workers=args.workers,
            build_speedup=round(rate_n / rate_1, 3),
        )

        per_language = max(1, args.sentences // len(LANGUAGE_CODES))
        texts = [(text, code) for code in LANGUAGE_CODES for text in generate_sentences(code, per_language, 11)]
        layout = FeatureLayout.for_languages()
        layout.phoneme_features(*texts[0])  # warm-up: panphon table, voices
        start = time.perf_counter()
        for text, code in texts:
            espeak.analyze(text, code)
        analyze_rate = len(texts) / (time.perf_counter() - start)
        start = time.perf_counter()
        for text, code in texts:
            layout.phoneme_features(text, code)
        feature_rate = len(texts) / (time.perf_counter() - start)
        print(
            f"text -> phonemes (espeak.analyze): {analyze_rate:.1f} utt/s; text -> feature matrix "
            f"({layout.dimension} dims): {feature_rate:.1f} utt/s, x{feature_rate / analyze_rate:.2f} of analysis"
        )
        results.update(
            sentences=len(texts),
            analyze_utt_per_s=round(analyze_rate, 1),
            phoneme_features_utt_per_s=round(feature_rate, 1),
            features_vs_analyze=round(feature_rate / analyze_rate, 3),
            layout_dimension=layout.dimension,
        )

        corpus = os.path.join(scratch, "one")
        lines = Path(corpus, "metadata.csv").read_text(encoding="utf-8").splitlines()
        frames = 0
        start = time.perf_counter()
        for line in lines:
            utterance_id, text, language, _ = line.split("|")
            segments = read_hts_labels(os.path.join(corpus, "labels", f"{utterance_id}.lab"))
            aligned = features_for_alignment(text, language, segments, layout, utterance_id)
            frames += len(expand_to_frames(aligned.phoneme_features, aligned.durations_frames))
        elapsed = time.perf_counter() - start
        print(
            f"aligned frame features: {len(lines) / elapsed:.1f} utt/s, {frames / elapsed:.0f} frames/s "
            f"({layout.frame_dimension} dims)"
        )
        results.update(aligned_utt_per_s=round(len(lines) / elapsed, 1), aligned_frames_per_s=round(frames / elapsed))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
