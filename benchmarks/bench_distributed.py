"""Distributed training throughput: 1 vs 2 local workers, synchronous and asynchronous, and the cost of talking.

Every configuration runs as real processes on 127.0.0.1 (free ports), exactly as on a cluster:

- fit: single-process Keras `model.fit` on the same batches (the baseline without tf.distribute);
- sync x1, sync x2: `train_distributed` with `DistributedOptions(mode="sync")` (MultiWorkerMirroredStrategy) with
  1 and 2 workers; each worker steps on its own batch of `--batch` utterances, so a 2-worker step trains on
  twice the data;
- async x1, async x2: `DistributedOptions(mode="async")` (chief + 1 ps + 1 or 2 workers, the paper's ASGD);
  one step is one worker's update on one batch;
- communication per step: in the 2-worker sync run, the time of one all-reduce of tensors the size of
  the model's gradient (what every sync step exchanges); in the 2-worker async run, the time of one
  scheduled closure that pulls every variable from the parameter server and pushes an update of the
  same size back (what every async step exchanges).

Throughput is timed inside the training processes from the end of warm-up step `--warmup` to the last
step, so process start-up and XLA compilation are left out. Frames/s counts the real (all) frames trained
on per second, all workers together.

On one machine with 2 cores this shows the OVERHEAD of distribution, not a speedup: the two workers share
the same two cores (each worker alone would use both), so the best 2 workers can do here is to match one
worker's frames/s minus the communication. A speedup needs one machine (or at least its own cores) per worker.

Usage: python benchmarks/bench_distributed.py [--preset small] [--batch 8] [--frames 128] [--steps 16]
The last line printed is JSON.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from mlms_keras.training import distributed  # noqa: E402  (no TensorFlow import at module level)

NUM_LANGUAGES, NUM_SPEAKERS = 6, 8
COMMUNICATION_REPEATS = 20


def synthetic_dataset(settings, num_shards, shard_index):
    """Endless batches `(batch, frames, input_dim)` of random frames, every frame real (no padding)."""
    import tensorflow as tf

    batch, frames, input_dim = settings["batch"], settings["frames"], settings["input_dim"]

    def make_batch(index):
        seed = tf.stack([tf.cast(index, tf.int32), 11])
        linguistic = tf.random.stateless_normal([batch, frames, input_dim], seed)
        acoustic = tf.random.stateless_normal([batch, frames, 49], seed + 1)
        language = tf.random.stateless_uniform([batch], seed + 2, 0, NUM_LANGUAGES, tf.int32)
        speaker = tf.random.stateless_uniform([batch], seed + 3, 0, NUM_SPEAKERS, tf.int32)
        return {"linguistic": linguistic, "language": language, "speaker": speaker}, acoustic

    return tf.data.Dataset.range(64).shard(num_shards, shard_index).map(make_batch).cache().repeat()


def _config(settings):
    from mlms_keras.models.acoustic import MLMSConfig

    return MLMSConfig.preset(
        settings["preset"], input_dim=settings["input_dim"], num_languages=NUM_LANGUAGES, num_speakers=NUM_SPEAKERS
    )


def _steps_per_second(step_seconds, warmup):
    timed = step_seconds[warmup - 1 :]
    return (len(timed) - 1) / (timed[-1] - timed[0])


def _run_fit(settings):
    import keras

    from mlms_keras.models.acoustic import build_mlms_model

    model = build_mlms_model(_config(settings))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", jit_compile=False)
    times = []

    class StepTimes(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter())

    model.fit(
        synthetic_dataset(settings, 1, 0),
        steps_per_epoch=settings["steps"],
        epochs=1,
        verbose=0,
        callbacks=[StepTimes()],
    )
    return {"steps_per_s": _steps_per_second(times, settings["warmup"]), "parameters": model.count_params()}


def _allreduce_ms(strategy, variables):
    """Median time of one all-reduce of tensors shaped like `variables` (the gradient of one step)."""
    import tensorflow as tf

    gradients = [tf.zeros(v.shape, v.dtype) for v in variables]

    @tf.function
    def allreduce():
        def replica_fn():
            return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, gradients)

        return strategy.run(replica_fn)

    allreduce()  # warm-up (tracing, collective set-up)
    durations = []
    for _ in range(COMMUNICATION_REPEATS):
        started = time.perf_counter()
        result = allreduce()
        float(tf.reduce_sum(strategy.experimental_local_results(result)[0][0]))
        durations.append(time.perf_counter() - started)
    return 1000 * statistics.median(durations)


def _ps_roundtrip_ms(strategy, variables):
    """Median time of a scheduled closure that pulls every variable from the ps and pushes an update back."""
    import tensorflow as tf

    coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)  # the existing one

    @tf.function
    def roundtrip():
        total = tf.constant(0.0)
        for variable in variables:
            value = tf.convert_to_tensor(variable)
            total += tf.reduce_sum(value)
            variable.assign_add(tf.zeros_like(value))  # an update the size of the variable, sent to the ps
        return total

    coordinator.schedule(roundtrip).fetch()
    durations = []
    for _ in range(COMMUNICATION_REPEATS):
        started = time.perf_counter()
        coordinator.schedule(roundtrip).fetch()
        durations.append(time.perf_counter() - started)
    return 1000 * statistics.median(durations)


def _run_task(settings):
    """One task of a sync or async cluster (TF_CONFIG in the environment). Returns the chief's figures."""
    import keras

    result = distributed.train_distributed(
        lambda count, index: synthetic_dataset(settings, count, index),
        settings["out"],
        distributed.DistributedOptions(
            mode=settings["mode"], steps=settings["steps"], checkpoint_every=0, show_progress=False
        ),
        model_config=_config(settings),
        optimizer_factory=lambda: keras.optimizers.Adam(1e-3),
    )
    if result is None:
        return None
    variables = [v.value for v in result.model.trainable_variables]
    figures = {"steps_per_s": _steps_per_second(result.step_seconds, settings["warmup"])}
    figures["gradient_mb"] = sum(v.shape.num_elements() * v.dtype.size for v in variables) / 2**20
    if settings["mode"] == "sync" and settings["workers"] > 1:
        figures["communication_ms"] = _allreduce_ms(result.strategy, variables)
    if settings["mode"] == "async":
        figures["communication_ms"] = _ps_roundtrip_ms(result.strategy, variables)
    return figures


def _launch(settings, timeout_s):
    """Runs one configuration as processes of this script; returns the chief's (or worker 0's) figures."""
    mode, workers = settings["mode"], settings["workers"]
    with tempfile.TemporaryDirectory() as folder:
        settings = dict(settings, out=os.path.join(folder, "out"))
        tasks = [("fit", 0)]
        cluster = None
        if mode == "sync":
            cluster = distributed.local_cluster(workers)
            tasks = [("worker", i) for i in range(workers)]
        elif mode == "async":
            cluster = distributed.local_cluster(workers, num_ps=1, chief=True)
            tasks = [("ps", 0)] + [("worker", i) for i in range(workers)] + [("chief", 0)]
        processes = []
        try:
            for job, index in tasks:
                env = dict(os.environ)
                if cluster is not None:
                    env["TF_CONFIG"] = distributed.ClusterTask(cluster, job, index).to_tf_config()
                task_settings = dict(settings, result=os.path.join(folder, f"{job}{index}.json"))
                with open(os.path.join(folder, f"{job}{index}.log"), "w") as log:  # the child keeps its own copy
                    processes.append(
                        subprocess.Popen(
                            [sys.executable, __file__, "--task", json.dumps(task_settings)],
                            env=env,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        )
                    )
            reporter = {"fit": "fit0", "sync": "worker0", "async": "chief0"}[mode]
            deadline = time.monotonic() + timeout_s
            for process, (job, index) in zip(processes, tasks):
                if f"{job}{index}" == reporter or (mode == "sync"):
                    code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
                    if code != 0:
                        with open(os.path.join(folder, f"{job}{index}.log")) as log:
                            tail = log.read()[-3000:]
                        raise RuntimeError(f"{mode} x{workers}: {job} {index} exited with {code}:\n{tail}")
            with open(os.path.join(folder, f"{reporter}.json")) as file:
                return json.load(file)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small", choices=("tiny", "small", "paper"))
    parser.add_argument("--input-dim", type=int, default=400)
    parser.add_argument("--batch", type=int, default=8, help="utterances per batch and worker")
    parser.add_argument("--frames", type=int, default=128, help="frames per utterance")
    parser.add_argument("--steps", type=int, default=16, help="steps per configuration")
    parser.add_argument("--warmup", type=int, default=4, help="steps left out of the timing")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per configuration")
    parser.add_argument("--task", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.task is not None:
        settings = json.loads(args.task)
        figures = _run_fit(settings) if settings["mode"] == "fit" else _run_task(settings)
        if figures is not None:
            with open(settings["result"], "w") as file:
                json.dump(figures, file)
        return
    if args.steps <= args.warmup + 1:
        parser.error("--steps must exceed --warmup + 1")

    base = {
        "preset": args.preset,
        "input_dim": args.input_dim,
        "batch": args.batch,
        "frames": args.frames,
        "steps": args.steps,
        "warmup": args.warmup,
    }
    runs = {}
    for name, mode, workers in [
        ("fit", "fit", 1),
        ("sync_x1", "sync", 1),
        ("sync_x2", "sync", 2),
        ("async_x1", "async", 1),
        ("async_x2", "async", 2),
    ]:
        started = time.monotonic()
        runs[name] = _launch(dict(base, mode=mode, workers=workers), args.timeout)
        print(
            f"{name:9s} {runs[name]['steps_per_s']:6.2f} steps/s  (run took {time.monotonic() - started:.0f} s)",
            flush=True,
        )

    frames_per_step = args.batch * args.frames
    frames_per_s = {
        "fit": runs["fit"]["steps_per_s"] * frames_per_step,
        "sync_x1": runs["sync_x1"]["steps_per_s"] * frames_per_step,
        "sync_x2": runs["sync_x2"]["steps_per_s"] * frames_per_step * 2,  # each step: one batch per worker
        "async_x1": runs["async_x1"]["steps_per_s"] * frames_per_step,
        "async_x2": runs["async_x2"]["steps_per_s"] * frames_per_step,  # each step: one worker's batch
    }
    print(
        f"\n{args.preset} preset, {runs['fit']['parameters']:,} parameters, batches of {args.batch} x {args.frames} "
        f"frames per worker, {os.cpu_count()} cores"
    )
    print(f"{'run':9s} {'steps/s':>8s} {'frames/s':>9s} {'vs fit':>7s}")
    for name, value in frames_per_s.items():
        print(f"{name:9s} {runs[name]['steps_per_s']:8.2f} {value:9.0f} {value / frames_per_s['fit']:7.2f}")
    gradient_mb = runs["sync_x2"]["gradient_mb"]
    allreduce_ms = runs["sync_x2"]["communication_ms"]
    print(
        f"\nsync: one all-reduce of the gradient ({gradient_mb:.1f} MB) between 2 workers: {allreduce_ms:.1f} ms "
        f"= {allreduce_ms / 1000 * runs['sync_x2']['steps_per_s'] * 100:.0f} % of a 2-worker step"
    )
    print(
        f"async: one pull of every variable + push of an update of that size (1 worker, 1 ps): "
        f"{runs['async_x1']['communication_ms']:.1f} ms; with 2 workers: {runs['async_x2']['communication_ms']:.1f} ms"
    )
    print(
        "On one 2-core machine the workers share the same cores: these figures show the overhead of "
        "distribution, not a speedup."
    )
    summary = {
        "preset": args.preset,
        "parameters": runs["fit"]["parameters"],
        "batch_per_worker": args.batch,
        "frames_per_utterance": args.frames,
        "cores": os.cpu_count(),
        "steps_per_s": {name: round(run["steps_per_s"], 3) for name, run in runs.items()},
        "frames_per_s": {name: round(value, 1) for name, value in frames_per_s.items()},
        "sync_x2_vs_sync_x1_frames": round(frames_per_s["sync_x2"] / frames_per_s["sync_x1"], 3),
        "async_x2_vs_async_x1_frames": round(frames_per_s["async_x2"] / frames_per_s["async_x1"], 3),
        "sync_x1_vs_fit_frames": round(frames_per_s["sync_x1"] / frames_per_s["fit"], 3),
        "gradient_mb": round(gradient_mb, 2),
        "sync_allreduce_ms_per_step": round(allreduce_ms, 2),
        "async_ps_roundtrip_ms_per_step": {
            "x1": round(runs["async_x1"]["communication_ms"], 2),
            "x2": round(runs["async_x2"]["communication_ms"], 2),
        },
        "note": "one 2-core machine: shows overhead, not speedup",
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
