"""Data pipeline speed vs what the model consumes in training, and feature-extraction throughput.

Setup: a teacher corpus (`mlms corpus build --preset tiny`, all 10 speakers: 46 utterances; `--quick`: 3 speakers)
is built in a temporary folder (or pass `--corpus`), then:

1. extraction: `prepare_dataset` on every core (`--workers`, default all), timed end to end including the worker
   start-up (TensorFlow import) -> utterances/s and seconds of audio per second;
2. pipeline: `load_dataset(train, batch 16, repeat=True)` read from the GZIP shards (no cache), timed over
   `--batches` batches after the first -> real (unpadded) frames/s delivered;
3. model: the "small" preset MLMS model trained with `train_on_batch` on batches taken from the same pipeline and
   held in memory (so the pipeline is not in the loop), every batch shape compiled first -> real frames/s consumed;
4. fit with the live pipeline: `model.fit(load_dataset(...), steps_per_epoch=...)` after a warm-up epoch, to show
   the pipeline does not slow training down in practice (both share the same cores).

The target is pipeline / model >= 5. Usage:

    python benchmarks/bench_data.py [--quick] [--corpus DIR] [--workers N] [--f0-method harvest|dio]

The last line printed is JSON.
"""

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import soundfile  # noqa: E402

from mlms_keras.data import Manifest, load_dataset  # noqa: E402
from mlms_keras.data.prepare import prepare_dataset  # noqa: E402
from mlms_keras.data.readers import read_corpus  # noqa: E402
from mlms_keras.data.teacher import build_teacher_corpus  # noqa: E402

QUICK_SPEAKERS = ["en-us-female", "en-us-male", "fr-female"]


def measure_extraction(corpus, out, workers, f0_method):
    items = read_corpus(corpus)
    audio_seconds = sum(soundfile.info(str(item.wav_path)).duration for item in items)
    started = time.perf_counter()
    report = prepare_dataset(corpus, out, workers=workers, f0_method=f0_method, utterances_per_shard=8, progress=False)
    seconds = time.perf_counter() - started
    return {
        "utterances": report.utterances,
        "seconds": seconds,
        "utterances_per_s": report.utterances / seconds,
        "audio_seconds_per_s": audio_seconds / seconds,
        "workers": workers,
        "f0_method": f0_method,
    }


def measure_pipeline(prepared, batch_size, batches, cache=False):
    dataset = load_dataset(prepared, "train", batch_size, seed=0, repeat=True, frame_mask="padding", cache=cache)
    iterator = iter(dataset)
    next(iterator)  # start-up (graph building, first reads) is not throughput
    frames = 0
    started = time.perf_counter()
    for _ in range(batches):
        _, _, mask = next(iterator)
        frames += int(mask.numpy().sum())
    seconds = time.perf_counter() - started
    return {"frames_per_s": frames / seconds, "batches": batches, "seconds": seconds, "cache": cache}


def measure_model(prepared, batch_size, steps):
    import keras

    from mlms_keras.models.acoustic import MLMSConfig, build_mlms_model

    info = Manifest.load(prepared)
    keras.utils.set_random_seed(0)
    model = build_mlms_model(
        MLMSConfig.preset(
            "small", input_dim=info.input_dim, num_languages=info.num_languages, num_speakers=info.num_speakers
        )
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    dataset = load_dataset(prepared, "train", batch_size, seed=0, repeat=True, frame_mask="padding")
    held = [
        ({k: v.numpy() for k, v in inputs.items()}, acoustic.numpy(), mask.numpy())
        for inputs, acoustic, mask in dataset.take(steps)
    ]
    compile_started = time.perf_counter()
    seen_shapes = set()
    for inputs, acoustic, _ in held:  # compile every (batch, frames) shape before timing
        if inputs["linguistic"].shape not in seen_shapes:
            seen_shapes.add(inputs["linguistic"].shape)
            model.train_on_batch(inputs, acoustic)
    compile_seconds = time.perf_counter() - compile_started
    frames = 0
    started = time.perf_counter()
    for inputs, acoustic, mask in held:
        model.train_on_batch(inputs, acoustic)
        frames += int(mask.sum())
    seconds = time.perf_counter() - started
    in_memory = frames / seconds

    # A fresh iterator of a seeded dataset repeats its order: each fit below sees exactly the held batches.
    live = load_dataset(prepared, "train", batch_size, seed=0, repeat=True)
    model.fit(live, epochs=1, steps_per_epoch=len(held), verbose=0)  # warm-up with this dataset object
    started = time.perf_counter()
    model.fit(live, epochs=1, steps_per_epoch=len(held), verbose=0)
    live_seconds = time.perf_counter() - started
    live_frames = sum(int(mask.sum()) for _, _, mask in held)
    return {
        "frames_per_s": in_memory,
        "steps": len(held),
        "shapes": sorted(s[1] for s in seen_shapes),
        "compile_seconds": compile_seconds,
        "fit_live_frames_per_s": live_frames / live_seconds,
        "parameters": model.count_params(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 speakers, dio, fewer batches")
    parser.add_argument("--corpus", default=None, help="an existing corpus folder (default: build the teacher tiny)")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument(
        "--f0-method", default=None, choices=["harvest", "dio"], help="default: harvest (dio with --quick)"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=None, help="pipeline batches timed (default 200, quick 60)")
    parser.add_argument("--steps", type=int, default=None, help="training steps timed (default 12, quick 6)")
    args = parser.parse_args()
    f0_method = args.f0_method or ("dio" if args.quick else "harvest")
    batches = args.batches or (60 if args.quick else 200)
    steps = args.steps or (6 if args.quick else 12)

    with tempfile.TemporaryDirectory(prefix="bench_data_") as scratch:
        corpus = args.corpus
        if corpus is None:
            corpus = os.path.join(scratch, "teacher")
            build_teacher_corpus(
                corpus,
                preset="tiny",
                seed=0,
                workers=args.workers,
                speakers=QUICK_SPEAKERS if args.quick else None,
                progress=False,
            )
        prepared = os.path.join(scratch, "prepared")
        extraction = measure_extraction(corpus, prepared, args.workers, f0_method)
        print(
            f"extraction: {extraction['utterances']} utterances in {extraction['seconds']:.1f} s on "
            f"{args.workers} workers ({f0_method}): {extraction['utterances_per_s']:.2f} utt/s, "
            f"{extraction['audio_seconds_per_s']:.2f} s of audio per s"
        )
        pipeline = measure_pipeline(prepared, args.batch_size, batches)
        print(f"pipeline (from GZIP shards): {pipeline['frames_per_s']:.0f} real frames/s")
        cached = measure_pipeline(prepared, args.batch_size, batches, cache=True)
        print(f"pipeline (cache=True): {cached['frames_per_s']:.0f} real frames/s")
        model = measure_model(prepared, args.batch_size, steps)
        print(
            f"model (small preset, {model['parameters']} parameters, train_on_batch, shapes {model['shapes']}): "
            f"{model['frames_per_s']:.0f} real frames/s consumed"
        )
        print(f"model.fit fed live by load_dataset: {model['fit_live_frames_per_s']:.0f} real frames/s")
        ratio = pipeline["frames_per_s"] / model["frames_per_s"]
        print(f"pipeline / model: {ratio:.1f}x (target >= 5x)")
        print(
            json.dumps(
                {
                    "benchmark": "bench_data",
                    "quick": args.quick,
                    "cpu_count": os.cpu_count(),
                    "input_dim": Manifest.load(prepared).input_dim,
                    "batch_size": args.batch_size,
                    "extraction_utterances_per_s": round(extraction["utterances_per_s"], 3),
                    "extraction_audio_seconds_per_s": round(extraction["audio_seconds_per_s"], 3),
                    "extraction_workers": args.workers,
                    "f0_method": f0_method,
                    "pipeline_frames_per_s": round(pipeline["frames_per_s"]),
                    "pipeline_cached_frames_per_s": round(cached["frames_per_s"]),
                    "model_frames_per_s": round(model["frames_per_s"]),
                    "fit_live_frames_per_s": round(model["fit_live_frames_per_s"]),
                    "ratio_pipeline_to_model": round(ratio, 2),
                    "target_ratio": 5.0,
                    "meets_target": bool(ratio >= 5.0),
                }
            )
        )


if __name__ == "__main__":
    main()
