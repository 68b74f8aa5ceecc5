"""Vocoder speed and copy-synthesis quality on pysptk's CMU ARCTIC clip (16 kHz, 4 s of real speech).

Measures, in one run:
- analysis real-time factor per core (seconds of compute per second of audio), harvest vs dio+stonemask;
- synthesis from the 49-dim vector, with and without the postfilter;
- parallel analysis (`vocoder.analyze_files`) of a batch of files on all cores vs one worker;
- copy-synthesis quality through the 49-dim vector (MCD, F0 RMSE, V/UV error) for harvest and dio;
- the postfilter sweep behind `vocoder.DEFAULT_POSTFILTER_BETA`.

Usage:
    python benchmarks/bench_vocoder.py            # full run, a few minutes on 2 cores
    python benchmarks/bench_vocoder.py --quick    # under a minute

The last line printed is one JSON object with every figure.
"""

import argparse
import json
import os
import tempfile
import time

import numpy as np
import pysptk
import soundfile

from mlms_keras import vocoder
from mlms_keras.evaluation import metrics

MALE_F0_RANGE = vocoder.F0_RANGE_HZ["male"]  # arctic_a0007 is a male voice (median F0 ~ 123 Hz)


def best_seconds(function, repeats):
    """Best wall time of `repeats` calls (the least disturbed by other load on a shared machine)."""
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return min(timings)


def copy_synthesis_quality(wave, sample_rate, method, beta):
    features = vocoder.analyze(wave, sample_rate, f0_method=method, f0_floor=MALE_F0_RANGE[0], f0_ceil=MALE_F0_RANGE[1])
    resynthesized = vocoder.synthesize(
        vocoder.AcousticFeatures.from_vector(features.to_vector(), sample_rate), postfilter_beta=beta
    )
    again = vocoder.analyze(
        resynthesized[: wave.size], sample_rate, f0_method=method, f0_floor=MALE_F0_RANGE[0], f0_ceil=MALE_F0_RANGE[1]
    )
    result = metrics.evaluate_acoustic(features.to_vector(), again.to_vector())
    return {key: round(value, 3) for key, value in result.items()}


def postfilter_sweep(features, sample_rate, shrink=0.7, betas=(1.0, 1.2, 1.4, 1.6, 1.8, 2.0)):
    """GV ratio and log-spectral distance of post-filtered, artificially over-smoothed envelopes vs natural ones.

    Over-smoothing is simulated by pulling c2..c39 of each frame `1 - shrink` of the way to the utterance mean.
    GV ratio: geometric mean over c2..c39 of variance(filtered) / variance(natural). LSD in dB on voiced frames.
    """
    alpha = vocoder.mcep_alpha(sample_rate)
    natural = features.mcep
    voiced = features.vuv > 0
    mean = natural.mean(axis=0)
    smoothed = natural.copy()
    smoothed[:, 2:] = mean[2:] + shrink * (natural[:, 2:] - mean[2:])

    def log_spectral_distance_db(cepstrum):
        ratio = pysptk.mc2sp(cepstrum[voiced], alpha, 1024) / pysptk.mc2sp(natural[voiced], alpha, 1024)
        difference = 10 * np.log10(ratio)
        return float(np.mean(np.sqrt(np.mean(difference**2, axis=1))))

    sweep = []
    for beta in betas:
        filtered = vocoder.postfilter(smoothed, alpha, beta)
        gv_ratio = float(np.exp(np.mean(np.log(filtered[:, 2:].var(axis=0) / natural[:, 2:].var(axis=0)))))
        distance = log_spectral_distance_db(filtered)
        sweep.append({"beta": beta, "gv_ratio": round(gv_ratio, 3), "lsd_db": round(distance, 3)})
    return sweep


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and files; under a minute")
    parser.add_argument("--files", type=int, default=None, help="files in the parallel batch (default 16, quick 8)")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else 5
    num_files = args.files or (8 if args.quick else 16)
    cores = os.cpu_count() or 1

    wave, sample_rate = soundfile.read(pysptk.util.example_audio_file())
    seconds = wave.size / sample_rate
    print(f"clip: {seconds:.2f} s at {sample_rate} Hz; {cores} cores; repeats {repeats}")

    analysis_rtf = {}
    for method in ("dio", "harvest"):
        elapsed = best_seconds(
            lambda method=method: vocoder.analyze(
                wave, sample_rate, f0_method=method, f0_floor=MALE_F0_RANGE[0], f0_ceil=MALE_F0_RANGE[1]
            ),
            repeats,
        )
        analysis_rtf[method] = elapsed / seconds
        print(f"analysis {method:8s} RTF per core {analysis_rtf[method]:.4f}")
    print(f"harvest / dio analysis time: {analysis_rtf['harvest'] / analysis_rtf['dio']:.1f}x")

    vector = vocoder.analyze(wave, sample_rate, f0_method="dio").to_vector()
    synthesis_rtf = {}
    for label, beta in (("no_postfilter", 1.0), ("postfilter", vocoder.DEFAULT_POSTFILTER_BETA)):
        elapsed = best_seconds(lambda beta=beta: vocoder.synthesize(vector, sample_rate, postfilter_beta=beta), repeats)
        synthesis_rtf[label] = elapsed / seconds
        print(f"synthesis {label:14s} RTF per core {synthesis_rtf[label]:.4f}")
    print(f"postfilter overhead: {synthesis_rtf['postfilter'] / synthesis_rtf['no_postfilter']:.2f}x")

    parallel = {}
    method = "dio" if args.quick else "harvest"
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index in range(num_files):
            path = os.path.join(folder, f"utt{index:03d}.wav")
            soundfile.write(path, np.roll(wave, index * 997), sample_rate)  # distinct files, same length
            paths.append(path)
        for workers in (1, cores):
            start = time.perf_counter()
            results, skipped = vocoder.analyze_files(
                paths,
                workers=workers,
                progress=False,
                f0_method=method,
                f0_floor=MALE_F0_RANGE[0],
                f0_ceil=MALE_F0_RANGE[1],
            )
            elapsed = time.perf_counter() - start
            assert len(results) == num_files and not skipped
            parallel[workers] = {
                "seconds": elapsed,
                "files_per_second": num_files / elapsed,
                "audio_seconds_per_second": num_files * seconds / elapsed,
            }
            print(
                f"analyze_files {method} x{num_files}, {workers} worker(s): {elapsed:.2f} s, "
                f"{num_files / elapsed:.2f} files/s, {num_files * seconds / elapsed:.1f} s of audio per s"
            )
    speedup = parallel[1]["seconds"] / parallel[cores]["seconds"]
    print(f"parallel speedup on {cores} cores: {speedup:.2f}x")

    quality = {}
    for method in ("dio",) if args.quick else ("dio", "harvest"):
        for beta in (1.0, vocoder.DEFAULT_POSTFILTER_BETA):
            quality[f"{method}_beta{beta}"] = copy_synthesis_quality(wave, sample_rate, method, beta)
            print(f"copy synthesis {method} beta {beta}: {quality[f'{method}_beta{beta}']}")

    sweep = postfilter_sweep(
        vocoder.analyze(wave, sample_rate, f0_method="dio", f0_floor=MALE_F0_RANGE[0], f0_ceil=MALE_F0_RANGE[1]),
        sample_rate,
    )
    for row in sweep:
        print(
            f"postfilter sweep (c2..c39 shrunk to 70%): beta {row['beta']:.1f} GV ratio {row['gv_ratio']:.3f} "
            f"LSD {row['lsd_db']:.2f} dB"
        )

    summary = {
        "benchmark": "vocoder",
        "quick": args.quick,
        "cores": cores,
        "clip_seconds": round(seconds, 3),
        "sample_rate": sample_rate,
        "analysis_rtf_per_core": {key: round(value, 5) for key, value in analysis_rtf.items()},
        "harvest_over_dio": round(analysis_rtf["harvest"] / analysis_rtf["dio"], 2),
        "synthesis_rtf_per_core": {key: round(value, 5) for key, value in synthesis_rtf.items()},
        "postfilter_overhead": round(synthesis_rtf["postfilter"] / synthesis_rtf["no_postfilter"], 3),
        "parallel_analysis": {
            "f0_method": method,
            "files": num_files,
            "one_worker_files_per_second": round(parallel[1]["files_per_second"], 3),
            "all_cores_files_per_second": round(parallel[cores]["files_per_second"], 3),
            "all_cores_audio_seconds_per_second": round(parallel[cores]["audio_seconds_per_second"], 2),
            "speedup": round(speedup, 2),
        },
        "copy_synthesis": quality,
        "postfilter_sweep": sweep,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
