"""A small selection from a big prepared dataset: one pass per epoch with and without `cache="auto"`.

Adaptation (`mlms adapt`) and small SLSS baselines read one speaker's utterances out of shards that hold every
speaker. Without a cache every epoch re-reads and filters all shards; `cache="auto"` keeps the selection in memory
after the first pass. This times passes 2..N of `load_dataset(split, speakers=[SPEAKER])` both ways, in the same
run. Usage:

    python benchmarks/bench_selection.py --prepared data/prepared-small --speaker pl-female [--passes 4]

The last line printed is JSON.
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mlms_keras.data import load_dataset  # noqa: E402


def seconds_per_pass(prepared, speaker, cache, passes, batch_size):
    """Mean seconds of passes 2..`passes` over the speaker's train split (the first pass fills a cache)."""
    dataset = load_dataset(prepared, "train", batch_size, speakers=[speaker], seed=0, cache=cache)
    times = []
    for _ in range(passes):
        started = time.perf_counter()
        frames = sum(int(inputs["linguistic"].shape[0] * inputs["linguistic"].shape[1]) for inputs, _ in dataset)
        times.append(time.perf_counter() - started)
    return sum(times[1:]) / (passes - 1), frames


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepared", required=True, help="a prepared dataset (`mlms prepare`)")
    parser.add_argument("--speaker", required=True, help="the selected speaker, e.g. pl-female")
    parser.add_argument("--passes", type=int, default=4, help="passes per setting, the first untimed (default 4)")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    if args.passes < 2:
        parser.error("--passes must be at least 2 (the first pass is not timed)")
    uncached, frames = seconds_per_pass(args.prepared, args.speaker, False, args.passes, args.batch_size)
    cached, _ = seconds_per_pass(args.prepared, args.speaker, "auto", args.passes, args.batch_size)
    print(f"{args.speaker}: {frames} padded frames per pass")
    print(
        f"uncached: {uncached:.3f} s per pass; cache='auto': {cached:.3f} s per pass; speedup {uncached / cached:.1f}x"
    )
    print(
        json.dumps(
            {
                "speaker": args.speaker,
                "padded_frames_per_pass": frames,
                "uncached_s_per_pass": uncached,
                "auto_cache_s_per_pass": cached,
                "speedup": uncached / cached,
            }
        )
    )


if __name__ == "__main__":
    main()
