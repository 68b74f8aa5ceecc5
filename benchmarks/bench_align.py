"""The built-in aligner: boundary accuracy against exact labels, real speech, speed, and end to end.

Stages (all in one run, figures printed as they come, one JSON line last):

1. **Accuracy.** Teacher speech rendered with voice variants (f2, m2, f4) and rates (150, 210 words/min) the
   shipped aligner never trained on (`mlms_keras.align.pretrain` uses m1, m3, f1, f3, f5, m5 at 135-225 in steps
   of 30), in en-us and de (languages it trained on) and sv, pl, vi (languages it never heard; vi has tones), with
   white noise at 20 dB SNR. Fraction of phone boundaries within 20 ms and the mean absolute error, for the
   single-file path (`align`), for the corpus path with the corpus-level pass (`align_corpus`), and for a
   baseline measured in the same run: uniform segmentation (speech between the first and last non-silent frame
   split into equal phones).
2. **Speed.** Real-time factor of the single-file path on one core (audio seconds per wall second, the model
   already loaded), against WORLD's dio + stonemask F0 analysis of the same audio in the same run; and the corpus
   path's wall time per hour of audio with `--workers` processes, with and without the corpus-level pass.
3. **Real speech.** pysptk's CMU ARCTIC clip arctic_a0007 aligned to its prompt; the TextGrid and a plot
   (`--plot`, e.g. docs/images/align_arctic_a0007.png); the word boundaries are printed.
4. **End to end** (`--e2e`): a Swedish teacher corpus, prepared once with its exact labels and once with the
   labels deleted (so `mlms prepare` aligns it), each adapted into teacher-small (v1); dev MCD of both.

Usage:

    python benchmarks/bench_align.py --work /tmp/bench-align --per-language 10 --workers 2 \
        --plot docs/images/align_arctic_a0007.png [--e2e]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # per-core figures: numpy's BLAS on one thread
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pysptk  # noqa: E402
import pyworld  # noqa: E402
import soundfile  # noqa: E402

from mlms_keras.align import AlignOptions, align, align_corpus, load_aligner, write_alignment  # noqa: E402
from mlms_keras.align.augment import add_noise  # noqa: E402
from mlms_keras.align.evaluation import boundary_errors, summarise_errors  # noqa: E402
from mlms_keras.align.phones import phones_for_text  # noqa: E402
from mlms_keras.align.plot import plot_alignment  # noqa: E402
from mlms_keras.align.pretrain import VoicePlan, render_labelled_corpus  # noqa: E402
from mlms_keras.data.readers import read_corpus  # noqa: E402
from mlms_keras.frontend.labels import Segment, read_hts_labels  # noqa: E402
from mlms_keras.vocoder import audio  # noqa: E402

EVAL_LANGUAGES = ("en-us", "de", "sv", "pl", "vi")
EVAL_VOICES = VoicePlan(variants=("f2", "m2", "f4"), rates=(150, 210))
ARCTIC_PROMPT = "And you always want to see it in the superlative degree."


def noisy_copy(corpus: Path, folder: Path, snr_db: float) -> Path:
    """The corpus with white noise at `snr_db` added to every wav (labels kept aside, teacher layout)."""
    (folder / "wavs").mkdir(parents=True, exist_ok=True)
    for item in read_corpus(corpus):
        target = folder / "wavs" / item.wav_path.name
        if not target.is_file():
            wave, rate = audio.load(item.wav_path)
            noisy = np.clip(add_noise(wave, snr_db, np.random.default_rng(len(item.utterance_id))), -1, 1)
            soundfile.write(target, noisy, rate, subtype="PCM_16")
    shutil.copy(corpus / "metadata.csv", folder / "metadata.csv")
    return folder


def uniform_segments(wave, rate, phones) -> list:
    """The baseline: speech (frames above -40 dB of the peak) split into equal phones, silence around it."""
    hop = int(rate * 0.005)
    energy = np.array([np.mean(wave[i : i + hop] ** 2) for i in range(0, wave.size - hop, hop)])
    loud = np.flatnonzero(energy > energy.max() * 1e-4)
    start, end = loud[0] * 0.005, min((loud[-1] + 1) * 0.005, wave.size / rate)
    edges = np.linspace(start, end, len(phones) + 1)
    segments = [Segment(0.0, start, "sil")]
    segments += [Segment(a, b, symbol) for a, b, symbol in zip(edges[:-1], edges[1:], phones.symbols)]
    return segments + [Segment(end, wave.size / rate, "sil")]


def accuracy(corpus: Path, noisy: Path, model) -> dict:
    """Single-file accuracy, the baseline's, per language, and the real-time factor on one core."""
    errors, baseline, by_language = [], [], {}
    audio_s = align_s = world_s = 0.0
    for item in read_corpus(noisy):
        wave, rate = audio.load(item.wav_path)
        phones = phones_for_text(item.text, item.language)
        reference = read_hts_labels(corpus / "labels" / f"{item.utterance_id}.lab")
        started = time.perf_counter()
        result = align(wave, rate, item.text, item.language, model=model)
        align_s += time.perf_counter() - started
        started = time.perf_counter()
        f0, times = pyworld.dio(wave.astype(np.float64), rate, frame_period=5.0)
        pyworld.stonemask(wave.astype(np.float64), f0, times, rate)
        world_s += time.perf_counter() - started
        audio_s += wave.size / rate
        error = boundary_errors(reference, result.phones, phones)
        errors.append(error)
        by_language.setdefault(item.language, []).append(error)
        baseline.append(boundary_errors(reference, uniform_segments(wave, rate, phones), phones))
    return {
        "single_file": summarise_errors(np.concatenate(errors)),
        "uniform_baseline": summarise_errors(np.concatenate(baseline)),
        "by_language": {code: summarise_errors(np.concatenate(e)) for code, e in by_language.items()},
        "utterances": len(errors),
        "audio_seconds": round(audio_s, 1),
        "realtime_factor_per_core": round(audio_s / align_s, 1),
        "world_dio_realtime_factor_per_core": round(audio_s / world_s, 1),
    }


def corpus_path(corpus: Path, noisy: Path, work: Path, workers: int, corpus_pass: str) -> dict:
    """`align_corpus` on the noisy corpus: accuracy of what it wrote and wall time per hour of audio."""
    out = work / f"corpus-{corpus_pass}"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    report = align_corpus(noisy, out, AlignOptions(workers=workers, corpus_pass=corpus_pass, progress=False))
    wall = time.perf_counter() - started
    errors = []
    for item in read_corpus(noisy):
        phones = phones_for_text(item.text, item.language)
        reference = read_hts_labels(corpus / "labels" / f"{item.utterance_id}.lab")
        errors.append(boundary_errors(reference, read_hts_labels(out / f"{item.utterance_id}.lab"), phones))
    return {
        **summarise_errors(np.concatenate(errors)),
        "corpus_pass": report.corpus_pass.get("ran", False),
        "workers": workers,
        "wall_seconds": round(wall, 1),
        "minutes_per_hour_of_audio": round(wall / (report.audio_seconds / 3600.0) / 60.0, 1),
        "outliers": report.outliers,
    }


def arctic(model, work: Path, plot: str | None) -> dict:
    """arctic_a0007 aligned to its prompt: words with their times, the files written."""
    path = pysptk.util.example_audio_file()
    wave, rate = audio.load(path)
    result = align(wave, rate, ARCTIC_PROMPT, "en-us", model=model)
    write_alignment(result, work / "arctic_a0007.lab", work / "arctic_a0007.TextGrid")
    if plot:
        plot_alignment(plot, wave, rate, result.phones, result.words, f"arctic_a0007: {ARCTIC_PROMPT}")
    return {
        "score": round(result.score, 3),
        "words": [(w.label, round(w.start_s, 3), round(w.end_s, 3)) for w in result.words],
        "phones": [(p.label, round(p.start_s, 3), round(p.end_s, 3)) for p in result.phones if p.end_s > p.start_s],
    }


def _mlms(*arguments) -> None:
    subprocess.run([sys.executable, "-m", "mlms_keras.cli", *arguments], check=True)


def end_to_end(work: Path, utterances: int, epochs: int, workers: int) -> dict:
    """Dev MCD of teacher-small adapted (v1) to Swedish with exact labels vs with the built-in aligner's."""
    exact = work / "e2e" / "sv"
    _mlms("corpus", "build", str(exact), "--languages", "sv", "--utterances", str(utterances), "--workers", "2",
          "--voice-variant", "f2", "--quiet")  # fmt: skip
    unlabelled = work / "e2e" / "sv-unlabelled"
    if not unlabelled.is_dir():
        shutil.copytree(exact, unlabelled, ignore=shutil.ignore_patterns("labels"))
    figures = {}
    for name, corpus in (("exact_labels", exact), ("aligned", unlabelled)):
        prepared = work / "e2e" / f"{name}-prepared"
        _mlms("prepare", str(corpus), str(prepared), "--layout-from", "teacher-small", "--f0-method", "dio",
              "--workers", str(workers), "--quiet")  # fmt: skip
        voice = work / "e2e" / f"{name}-voice"
        if not (voice / "metadata.json").is_file():  # a finished adaptation is kept (the bench resumes)
            _mlms("adapt", "teacher-small", str(prepared), "--language", "sv", "--speaker", "sv-f2", "--variant", "v1",
                  "--epochs-per-phase", str(epochs), "--out", str(voice), "--quiet")  # fmt: skip
        metadata = json.loads((voice / "metadata.json").read_text())
        figures[name] = metadata["metrics"]["per_language"]["sv"]["mcd_db"]  # held-out dev, natural durations
        print(f"end to end, {name}: dev MCD {figures[name]:.3f} dB", flush=True)
    figures["difference_db"] = round(figures["aligned"] - figures["exact_labels"], 3)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="working folder (reused: rendering resumes)")
    parser.add_argument("--per-language", type=int, default=10, help="evaluation utterances per language")
    parser.add_argument("--workers", type=int, default=2, help="processes of the corpus path")
    parser.add_argument("--plot", default=None, help="PNG of the ARCTIC alignment")
    parser.add_argument("--e2e", action="store_true", help="also the end-to-end MCD comparison (long)")
    parser.add_argument("--e2e-utterances", type=int, default=80)
    parser.add_argument("--e2e-epochs", type=int, default=4)
    args = parser.parse_args()
    work = Path(args.work)
    model = load_aligner()
    corpus = render_labelled_corpus(work / "eval", EVAL_LANGUAGES, args.per_language, EVAL_VOICES, 11, 2, "eval")
    noisy = noisy_copy(corpus, work / "eval-20db", 20.0)
    results = {"languages": list(EVAL_LANGUAGES), "snr_db": 20.0}
    results["accuracy"] = accuracy(corpus, noisy, model)
    print(json.dumps(results["accuracy"], indent=1), flush=True)
    for corpus_pass in ("never", "always"):
        results[f"corpus_path_{corpus_pass}"] = corpus_path(corpus, noisy, work, args.workers, corpus_pass)
        print(f"corpus path, corpus_pass={corpus_pass}: {results[f'corpus_path_{corpus_pass}']}", flush=True)
    results["arctic_a0007"] = arctic(model, work, args.plot)
    print(f"arctic_a0007 words: {results['arctic_a0007']['words']}", flush=True)
    if args.e2e:
        results["end_to_end"] = end_to_end(work, args.e2e_utterances, args.e2e_epochs, args.workers)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
