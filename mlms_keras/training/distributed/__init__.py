"""Training on several machines with `tf.distribute`: synchronous data parallelism and the paper's ASGD.

Li & Zen (2016, sec. 4.1) trained with "a distributed CPU implementation of mini-batch ASGD-based truncated
BPTT" (Dean et al. 2012). Keras 3's `model.fit` does not run under `MultiWorkerMirroredStrategy` or
`ParameterServerStrategy`, so this module has its own training loops around the same model builder:

- `mode="sync"` (MultiWorkerMirroredStrategy): every worker runs the same program. In each step every
  worker computes the gradient of its own batch, the gradients are summed by an all-reduce and every
  worker applies the same update with the same Keras optimizer, so all copies of the model stay
  identical. One step is exactly one single-process step on the union of the workers' batches: the
  loss is Keras' masked mean squared error over all valid frames of all workers (`masked_squared_error`).
- `mode="async"` (ParameterServerStrategy + `ClusterCoordinator`): the variables live on parameter
  servers; the chief schedules steps; each worker reads the current variables, computes the gradient of
  its own batch (Keras' masked MSE of that batch) and applies it without waiting for the others. A
  worker that dies loses only its step in flight, which the coordinator runs again on another worker.

The cluster comes from `TF_CONFIG` (JSON), as everywhere in TensorFlow::

    {"cluster": {"chief": ["host0:2222"], "worker": ["host1:2222", "host2:2222"], "ps": ["host3:2222"]},
     "task": {"type": "worker", "index": 0}}

Sync mode needs a `worker` job (worker 0 is the chief unless a `chief` job is listed, which then also
trains); async mode needs `chief`, `worker` and `ps` jobs. Each worker reads its own share of the data:
`dataset_fn(num_shards, shard_index)` returns worker `shard_index`'s batches, e.g. every `num_shards`-th
shard file of a prepared dataset (`prepared_dataset_fn`).

Checkpoints are ordinary compiled `.keras` files (model, weights, optimizer state), in `out_dir`:
`checkpoint.keras` + `checkpoint.json` (step count, logs) every `checkpoint_every` steps, `best.keras`
(lowest dev MSE, with a dev set), `model.keras` at the end, and `training_log.json` (loss of every step,
dev MSE, time, cluster). `keras.models.load_model` opens them in single-process code, and
`initial_checkpoint` accepts the `.keras` files single-process training writes. Only the chief writes. A
job started again with the same `out_dir` resumes from `checkpoint.keras` (in sync mode the chief
broadcasts it, so the other workers need no copy). `docs/distributed.md` shows how to launch a cluster.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

from mlms_keras.utils.fileio import atomic_output, atomic_write_text, save_model_atomically

logger = logging.getLogger(__name__)

MODES = ("sync", "async")
CHECKPOINT_MODEL = "checkpoint.keras"
CHECKPOINT_STATE = "checkpoint.json"
FINAL_MODEL = "model.keras"
BEST_MODEL = "best.keras"
TRAINING_LOG = "training_log.json"


# --------------------------------------------------------------------------------------------------
# Cluster description
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ClusterTask:
    """This process's place in the cluster, as `TF_CONFIG` describes it.

    Attributes:
        cluster: job name -> list of `"host:port"` addresses (`"chief"`, `"worker"`, `"ps"`).
        task_type: this process's job.
        task_index: this process's index in its job.
    """

    cluster: dict
    task_type: str
    task_index: int

    @property
    def num_workers(self):
        """Number of `worker` tasks."""
        return len(self.cluster.get("worker", []))

    @property
    def address(self):
        """This task's `"host:port"`."""
        return self.cluster[self.task_type][self.task_index]

    @property
    def is_chief(self):
        """True for the task that writes checkpoints: the `chief`, or worker 0 when there is no chief job."""
        if "chief" in self.cluster:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0

    def to_tf_config(self):
        """The `TF_CONFIG` JSON string for this task."""
        return json.dumps({"cluster": self.cluster, "task": {"type": self.task_type, "index": self.task_index}})


def read_tf_config(tf_config=None):
    """Parses and checks a `TF_CONFIG`.

    Args:
        tf_config: a JSON string or a dict; `None` reads the `TF_CONFIG` environment variable.

    Returns:
        A `ClusterTask`.

    Raises:
        ValueError: naming the missing or malformed field and showing the expected shape.
    """
    example = (
        'e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
        '"task": {"type": "worker", "index": 0}}\''
    )
    if tf_config is None:
        tf_config = os.environ.get("TF_CONFIG")
        if not tf_config:
            raise ValueError(
                f"Distributed training needs the TF_CONFIG environment variable; it is not set ({example})"
            )
    if isinstance(tf_config, str):
        try:
            tf_config = json.loads(tf_config)
        except json.JSONDecodeError as error:
            raise ValueError(f"TF_CONFIG is not valid JSON ({error}); {example}") from None
    if not isinstance(tf_config, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object; {example}")
    cluster, task = tf_config.get("cluster"), tf_config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise ValueError(f'TF_CONFIG needs a non-empty "cluster" object of job -> [addresses]; {example}')
    for job, addresses in cluster.items():
        if job not in ("chief", "worker", "ps", "evaluator"):
            raise ValueError(f'TF_CONFIG "cluster" has an unknown job {job!r}; use "chief", "worker" and "ps"')
        if not isinstance(addresses, list) or not addresses or not all(_is_address(a) for a in addresses):
            raise ValueError(f'TF_CONFIG "cluster"."{job}" must be a non-empty list of "host:port"; got {addresses!r}')
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ValueError(f'TF_CONFIG needs "task": {{"type": ..., "index": ...}}; got {task!r}')
    task_type, task_index = task["type"], task["index"]
    if task_type not in cluster:
        raise ValueError(
            f'TF_CONFIG "task"."type" is {task_type!r}, which is not a job in "cluster" ({sorted(cluster)})'
        )
    if not isinstance(task_index, int) or not 0 <= task_index < len(cluster[task_type]):
        raise ValueError(
            f'TF_CONFIG "task"."index" must be in [0, {len(cluster[task_type])}) for job {task_type!r}; got {task_index!r}'
        )
    return ClusterTask(cluster={job: list(a) for job, a in cluster.items()}, task_type=task_type, task_index=task_index)


def _is_address(address):
    host, _, port = str(address).rpartition(":")
    return bool(host) and port.isdigit()


def check_cluster_for_mode(task, mode):
    """Raises `ValueError` (naming the job) when `task.cluster` cannot run `mode`."""
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}; got {mode!r}")
    cluster = task.cluster
    if "worker" not in cluster:
        raise ValueError('TF_CONFIG "cluster" needs a "worker" job')
    if mode == "sync" and "ps" in cluster:
        raise ValueError('Synchronous training (mode "sync") takes no "ps" job; drop it or use mode "async"')
    if mode == "async":
        missing = [job for job in ("chief", "ps") if job not in cluster]
        if missing:
            raise ValueError(
                f'Asynchronous training (mode "async") needs a "chief", "worker" and "ps" job; TF_CONFIG lacks {missing}'
            )
        if len(cluster["chief"]) != 1:
            raise ValueError(f'TF_CONFIG "cluster"."chief" must list exactly one address; got {cluster["chief"]}')


def free_ports(count, host="127.0.0.1"):
    """Returns `count` distinct TCP ports that are free on `host` right now (for local clusters)."""
    sockets, ports = [], []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
            ports.append(sock.getsockname()[1])
    finally:
        for sock in sockets:
            sock.close()
    return ports


def local_cluster(num_workers, num_ps=0, chief=False, host="127.0.0.1"):
    """A cluster dict on one machine with free ports: `{"chief": [...], "worker": [...], "ps": [...]}`.

    Use it to try distributed training on one computer (tests, benchmarks, `examples/`); give each
    process `ClusterTask(cluster, task_type, index).to_tf_config()` as its `TF_CONFIG`.
    """
    ports = iter(free_ports(num_workers + num_ps + int(chief), host))
    cluster = {}
    if chief:
        cluster["chief"] = [f"{host}:{next(ports)}"]
    cluster["worker"] = [f"{host}:{next(ports)}" for _ in range(num_workers)]
    if num_ps:
        cluster["ps"] = [f"{host}:{next(ports)}" for _ in range(num_ps)]
    return cluster


# --------------------------------------------------------------------------------------------------
# Loss
# --------------------------------------------------------------------------------------------------


def frames_mask_of(linguistic):
    """`(batch, frames)` boolean: True on real frames, False on all-zero padding rows.

    The same rule as the model's `Masking(mask_value=0.0)` layer.
    """
    import tensorflow as tf

    return tf.reduce_any(tf.not_equal(linguistic, 0.0), axis=-1)


def masked_squared_error(targets, predictions, frames_mask, frame_weights=None):
    """Sum of the per-frame mean squared error over valid frames, and the number of valid frames.

    Keras' `"mse"` loss on a masked output is `error_sum / valid_frames` (each frame's error is the
    mean over the 49 output dimensions; padded frames are dropped; a sample weight per frame
    multiplies each frame's error but the divisor stays the number of valid frames). Splitting it
    into the two sums lets synchronous training divide by the valid frames of all workers together,
    which makes a distributed step equal to a single-process step on the union of the batches.

    Args:
        targets: `(batch, frames, output_dim)`.
        predictions: `(batch, frames, output_dim)`.
        frames_mask: `(batch, frames)` boolean, True on valid frames.
        frame_weights: optional `(batch, frames)` weights (e.g. `load_dataset(frame_mask="speech")`).

    Returns:
        `(error_sum, valid_frames)`, float32 scalars.
    """
    import tensorflow as tf

    per_frame = tf.reduce_mean(tf.square(tf.cast(predictions, tf.float32) - tf.cast(targets, tf.float32)), axis=-1)
    mask = tf.cast(frames_mask, tf.float32)
    weights = mask if frame_weights is None else mask * tf.cast(frame_weights, tf.float32)
    return tf.reduce_sum(per_frame * weights), tf.reduce_sum(mask)


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


def prepared_dataset_fn(path, split="train", batch_size=16, **load_options):
    """A `dataset_fn` for `train_distributed` over a prepared dataset (`mlms prepare`).

    Worker `i` of `n` reads shard files `i::n` through `mlms_keras.data.load_dataset(path, split,
    batch_size, shard=(i, n), repeat=True, **load_options)`, so the workers read disjoint shares. A
    dataset needs at least as many shard files in `split` as there are workers.

    Args:
        path: prepared dataset folder.
        split: split to train on.
        batch_size: utterances (or truncated-BPTT chunks) per batch and worker.
        **load_options: any other `load_dataset` option (`seed`, `chunk_frames`, `languages`, ...).
    """
    from mlms_keras.data import load_dataset

    def dataset_fn(num_shards, shard_index):
        return load_dataset(path, split, batch_size, shard=(shard_index, num_shards), repeat=True, **load_options)

    return dataset_fn


@dataclasses.dataclass
class DistributedTrainingResult:
    """What `train_distributed` returns on a training process.

    Attributes:
        model: the trained Keras model with the last weights (its variables are distributed;
            `model.save` and `get_weights` work).
        losses: `[(step, loss)]` of this run and the runs it resumed: the loss of the global batch of
            each step in sync mode; in async mode the loss of each worker step (numbered in the order
            the chief scheduled them).
        dev_mse: `[(step, dev MSE)]` at every checkpoint and at the end (chief only; empty without a
            dev set).
        steps: steps done, resumed ones included.
        seconds: wall time of this run's training loop.
        step_seconds: for each step of this run, the time (s, from the start of the loop) at which this
            process saw it finish; throughput over a window is `steps / (t_end - t_start)`.
        strategy: the `tf.distribute` strategy the model lives in (for further work on the cluster).
        model_path: the final `.keras` file (chief only, else `None`): the best-on-dev weights when there
            is a dev set (as `mlms train` does), else the last weights.
        resumed_from_step: the step this run resumed from (0 for a fresh run).
    """

    model: object
    losses: list
    dev_mse: list
    steps: int
    seconds: float
    step_seconds: list
    strategy: object
    model_path: str | None
    resumed_from_step: int = 0


def train_distributed(
    dataset_fn,
    out_dir,
    mode="sync",
    model_config=None,
    initial_checkpoint=None,
    steps=1000,
    learning_rate=1e-3,
    optimizer_factory=None,
    checkpoint_every=100,
    dev_dataset_fn=None,
    seed=None,
    jit_recurrence="training",
    tf_config=None,
    collective_timeout_s=None,
    show_progress=True,
):
    """Trains an MLMS model on the cluster in `TF_CONFIG`, synchronously or asynchronously.

    Every process of the cluster calls this with the same arguments. In sync mode every worker
    trains and returns a result. In async mode the `ps` and `worker` processes only serve (this call
    blocks, and returns `None` once the chief has gone) and the chief trains.

    Output (chief only, in `out_dir`): `checkpoint.keras` + `checkpoint.json` every `checkpoint_every`
    steps (a killed job started again with the same arguments resumes there), `best.keras` (lowest dev
    MSE so far, with a dev set), and at the end `model.keras` and `training_log.json` (mode, cluster,
    losses, dev MSE, time). All `.keras` files are compiled Keras models with their optimizer state.

    Args:
        dataset_fn: `dataset_fn(num_shards, shard_index) -> tf.data.Dataset` of this worker's batches
            `({"linguistic": (batch, frames, D), "language": (batch,), "speaker": (batch,)},
            acoustic (batch, frames, 49)[, frame_weights (batch, frames)])`, all-zero `linguistic` rows
            marking padding; both arguments are Python ints. The dataset is repeated for as long as
            training needs. `batch` is per worker: one sync step sees `num_workers * batch` utterances.
        out_dir: folder for checkpoints, the final model and the log (only the chief writes there).
        mode: `"sync"` (MultiWorkerMirroredStrategy) or `"async"` (ParameterServerStrategy, ASGD).
        model_config: an `MLMSConfig` for a fresh model (ignored when starting from a checkpoint).
        initial_checkpoint: a `.keras` file (e.g. from single-process training) to start from; its
            optimizer state is used when it has one and `optimizer_factory` is not given. In sync mode
            only the chief needs the file when `model_config` describes the same architecture.
        steps: total steps; in async mode one step is one worker's update.
        learning_rate: Adam's learning rate when neither `optimizer_factory` nor a checkpoint gives one.
        optimizer_factory: zero-argument callable returning a Keras optimizer (called inside the
            strategy's scope, as tf.distribute requires).
        checkpoint_every: steps between checkpoints and dev evaluations (0: only at the end).
        dev_dataset_fn: optional zero-argument callable returning a finite `tf.data.Dataset` of dev
            batches (same form), evaluated on the chief: the dev MSE pools the squared error over all
            valid frames and the 49 outputs. A callable because no TensorFlow object may exist
            before the strategy is set up ("Collective ops must be configured at program startup").
        seed: seed of the fresh model's initial weights (`keras.utils.set_random_seed`, set once the
            strategy exists); None leaves the random state alone.
        jit_recurrence: the towers' XLA mode for the model built here (`"training"`, `"never"`, ...).
        tf_config: `TF_CONFIG` as a JSON string or dict; `None` reads the environment.
        collective_timeout_s: sync mode: seconds before a stuck all-reduce (a dead worker) fails the
            step instead of hanging; `None` waits forever.
        show_progress: show a tqdm bar on the chief.

    Returns:
        A `DistributedTrainingResult` on training processes; `None` on async `ps`/`worker` processes.

    Raises:
        ValueError: bad `TF_CONFIG`, a cluster that does not fit `mode`, or nothing to build the model from.
        FileExistsError: `out_dir` holds a finished run.
    """
    task = read_tf_config(tf_config)
    check_cluster_for_mode(task, mode)
    if steps < 1:
        raise ValueError(f"`steps` must be >= 1; got {steps}")
    if checkpoint_every < 0:
        raise ValueError(f"`checkpoint_every` must be >= 0; got {checkpoint_every}")
    if mode == "async" and task.task_type in ("worker", "ps"):
        serve(task)
        return None
    out_dir = Path(out_dir)
    if task.is_chief and (out_dir / TRAINING_LOG).is_file():
        raise FileExistsError(
            f"{out_dir} holds a finished run ({TRAINING_LOG}); choose a new output folder or delete it"
        )
    if model_config is None and initial_checkpoint is None and not _has_checkpoint(out_dir):
        raise ValueError("Give `model_config` (a fresh model) or `initial_checkpoint` (a .keras file to start from)")
    if initial_checkpoint is not None and not Path(initial_checkpoint).is_file():
        if task.is_chief or mode != "sync" or model_config is None:
            raise FileNotFoundError(f"initial checkpoint {initial_checkpoint} does not exist; give a .keras file")
        # A sync worker without a copy builds `model_config`; the chief broadcasts the checkpoint's values.
        initial_checkpoint = None
    # Fail fast on a lost peer instead of retrying the RPC for minutes (TensorFlow's PS guide).
    os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")
    run = _TrainingRun(
        task=task,
        mode=mode,
        dataset_fn=dataset_fn,
        out_dir=out_dir,
        model_config=model_config,
        initial_checkpoint=initial_checkpoint,
        steps=steps,
        learning_rate=learning_rate,
        optimizer_factory=optimizer_factory,
        checkpoint_every=checkpoint_every,
        dev_dataset_fn=dev_dataset_fn,
        seed=seed,
        jit_recurrence=jit_recurrence,
        collective_timeout_s=collective_timeout_s,
        show_progress=show_progress,
    )
    return run.train_synchronous() if mode == "sync" else run.train_asynchronous()


def serve(task, exit_when_chief_gone=True, poll_interval_s=2.0):
    """Runs this `ps` or `worker` task's TensorFlow server for asynchronous training.

    Blocks. With `exit_when_chief_gone`, the process exits (code 0) once the chief, after having
    been reachable, stops answering on its port for three polls in a row: the chief has finished
    (or died; start the whole job again to resume from its last checkpoint).

    Args:
        task: this process's `ClusterTask` (job `"ps"` or `"worker"`).
        exit_when_chief_gone: watch the chief's port and exit when it has gone.
        poll_interval_s: seconds between two looks at the chief.
    """
    import tensorflow as tf

    os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")
    server = tf.distribute.Server(
        tf.train.ClusterSpec(task.cluster),
        job_name=task.task_type,
        task_index=task.task_index,
        protocol="grpc",
        start=True,
    )
    logger.info("%s %d serving at %s", task.task_type, task.task_index, task.address)
    if exit_when_chief_gone and "chief" in task.cluster:
        watcher = threading.Thread(
            target=_exit_when_unreachable, args=(task.cluster["chief"][0], poll_interval_s), daemon=True
        )
        watcher.start()
    server.join()


def _exit_when_unreachable(address, poll_interval_s):
    host, _, port = address.rpartition(":")
    seen, failures = False, 0
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=poll_interval_s):
                seen, failures = True, 0
        except OSError:
            failures += 1
        if seen and failures >= 3:
            logger.info("chief at %s is gone; exiting", address)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        time.sleep(poll_interval_s)


def _has_checkpoint(out_dir):
    return (Path(out_dir) / CHECKPOINT_STATE).is_file() and (Path(out_dir) / CHECKPOINT_MODEL).is_file()


class _TrainingRun:
    """One process's share of a distributed training job (see `train_distributed`)."""

    def __init__(self, **settings):
        for name, value in settings.items():
            setattr(self, name, value)
        self.losses, self.dev_mse, self.step_seconds = [], [], []
        self.best_dev_mse = None
        self.dev_dataset = None

    # -- strategy, model, optimizer ------------------------------------------------------------------

    def _cluster_resolver(self):
        import tensorflow as tf

        return tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec(self.task.cluster),
            task_type=self.task.task_type,
            task_id=self.task.task_index,
            rpc_layer="grpc",
        )

    def _start_source(self):
        """Where the weights come from: `(path or None, step already done)`; restores the logs of a resumed run."""
        if _has_checkpoint(self.out_dir):
            state = json.loads((self.out_dir / CHECKPOINT_STATE).read_text())
            if state.get("mode") != self.mode:
                raise ValueError(
                    f"{self.out_dir / CHECKPOINT_STATE} is a {state.get('mode')!r} run; resume it in that mode or use "
                    "another output folder"
                )
            if self.initial_checkpoint is not None:
                logger.info("resuming from %s; ignoring initial_checkpoint", self.out_dir / CHECKPOINT_MODEL)
            self.losses = [tuple(entry) for entry in state.get("losses", [])]
            self.dev_mse = [tuple(entry) for entry in state.get("dev_mse", [])]
            self.best_dev_mse = state.get("best_dev_mse")
            return self.out_dir / CHECKPOINT_MODEL, int(state["step"])
        return self.initial_checkpoint, 0

    def _build(self, strategy, source_path):
        """Builds model and optimizer inside `strategy.scope()`, with `source_path`'s weights and state."""
        import keras

        if self.seed is not None:
            keras.utils.set_random_seed(self.seed)
        if self.dev_dataset_fn is not None and self.task.is_chief:
            self.dev_dataset = self.dev_dataset_fn()

        import mlms_keras.layers  # noqa: F401 - registers the custom layers before loading
        from mlms_keras.models.acoustic import build_mlms_model

        source = keras.models.load_model(source_path) if source_path is not None else None
        with strategy.scope():
            if source is not None:
                config = source.get_config()
                for layer in config["layers"]:
                    if "jit_recurrence" in layer["config"]:
                        layer["config"]["jit_recurrence"] = self.jit_recurrence
                model = keras.Model.from_config(config)
            else:
                model = build_mlms_model(self.model_config, jit_recurrence=self.jit_recurrence)
            if self.optimizer_factory is not None:
                optimizer = self.optimizer_factory()
            elif source is not None and getattr(source, "optimizer", None) is not None:
                optimizer = keras.optimizers.deserialize(keras.optimizers.serialize(source.optimizer))
            else:
                optimizer = keras.optimizers.Adam(self.learning_rate)
            optimizer.build(model.trainable_variables)
            # Compiled so that `model.save` stores the optimizer state beside the weights, as `fit` runs do.
            model.compile(optimizer=optimizer, loss="mse")
        if source is not None:
            model.set_weights(source.get_weights())
            source_optimizer = getattr(source, "optimizer", None)
            if source_optimizer is not None and type(source_optimizer) is type(optimizer) and source_optimizer.built:
                state = {}
                source_optimizer.save_own_variables(state)
                if len(state) == len(optimizer.variables):
                    optimizer.load_own_variables(state)
                else:
                    logger.warning("the optimizer state of %s does not fit this model; starting it afresh", source_path)
        return model, optimizer

    # -- steps ---------------------------------------------------------------------------------------

    def _replica_step(self, model, optimizer, batch, normalise_over_replicas):
        import tensorflow as tf

        features, targets, *frame_weights = batch
        frames_mask = frames_mask_of(features["linguistic"])
        with tf.GradientTape() as tape:
            predictions = model(features, training=True)
            error_sum, valid_frames = masked_squared_error(targets, predictions, frames_mask, *frame_weights)
            if normalise_over_replicas:
                # Divide by the valid frames of every worker: the summed gradients are then the gradient
                # of Keras' masked MSE over the union of the batches (the optimizer sums over replicas).
                valid_frames = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, valid_frames)
            loss = tf.math.divide_no_nan(error_sum, valid_frames)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    # -- synchronous ---------------------------------------------------------------------------------

    def _sync_strategy(self):
        import tensorflow as tf

        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING,
            timeout_seconds=self.collective_timeout_s,
        )
        return tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=self._cluster_resolver(), communication_options=options
        )

    def train_synchronous(self):
        import tensorflow as tf

        strategy = self._sync_strategy()  # first: it configures the collective ops of this process
        num_workers = strategy.num_replicas_in_sync
        logger.info("worker %d of %d connected", self.task.task_index, num_workers)
        source_path, start_step = self._start_source()
        model, optimizer = self._build(strategy, source_path)
        # The chief's checkpoint wins (workers need no shared file system; theirs only gives the
        # architecture): it broadcasts the weights, the optimizer state and the step count.
        start_step = _broadcast_from_chief(
            strategy, model.variables + optimizer.variables, start_step, self.task.is_chief
        )

        def distributed_dataset_fn(input_context):
            return self.dataset_fn(input_context.num_input_pipelines, input_context.input_pipeline_id).repeat()

        iterator = iter(strategy.distribute_datasets_from_function(distributed_dataset_fn))

        @tf.function
        def train_step(iterator):
            per_replica_loss = strategy.run(self._replica_step, args=(model, optimizer, next(iterator), True))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica_loss, axis=None)

        progress = _progress(self.show_progress and self.task.is_chief, start_step, self.steps, f"sync x{num_workers}")
        started = time.perf_counter()
        for step in range(start_step + 1, self.steps + 1):
            loss = float(train_step(iterator))
            self.step_seconds.append(time.perf_counter() - started)
            self.losses.append((step, loss))
            progress.update(1)
            progress.set_postfix(loss=f"{loss:.4f}")
            if self.task.is_chief and self.checkpoint_every and step % self.checkpoint_every == 0 and step < self.steps:
                self._checkpoint(model, step)
        seconds = time.perf_counter() - started
        progress.close()
        result = self._finish(model, strategy, start_step, seconds, num_workers)
        # Leave together: a worker still shutting down when the chief (the coordination service's leader)
        # has gone logs heartbeat errors and may wait for them to time out.
        _barrier(strategy)
        return result

    # -- asynchronous --------------------------------------------------------------------------------

    def train_asynchronous(self):
        import tensorflow as tf

        strategy = tf.distribute.ParameterServerStrategy(self._cluster_resolver())
        coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
        num_workers = self.task.num_workers
        logger.info("connected to %d workers and %d ps", num_workers, len(self.task.cluster["ps"]))
        source_path, start_step = self._start_source()
        model, optimizer = self._build(strategy, source_path)
        logger.info("model and optimizer built on the ps")

        # The branch choice below forgets static shapes (the model needs the feature axis): put them back.
        element_spec = self.dataset_fn(num_workers, 0).element_spec

        def restore_shapes(*element):
            return tf.nest.map_structure(lambda value, spec: tf.ensure_shape(value, spec.shape), element, element_spec)

        def worker_dataset_fn(input_context):
            # The dataset function is traced once and runs on every worker, which learns its index only
            # at run time: build every worker's pipeline and let the index pick one (only it runs).
            worker_index = tf.distribute.coordinator.experimental_get_current_worker_index()
            branches = [
                lambda index=index: self.dataset_fn(num_workers, index).repeat() for index in range(num_workers)
            ]
            return tf.switch_case(tf.cast(worker_index, tf.int32), branches).map(restore_shapes)

        @tf.function
        def per_worker_dataset_fn():
            return strategy.distribute_datasets_from_function(worker_dataset_fn)

        iterator = iter(coordinator.create_per_worker_dataset(per_worker_dataset_fn))
        logger.info("input pipelines created on the workers")

        @tf.function
        def worker_step(iterator):
            per_replica_loss = strategy.run(self._replica_step, args=(model, optimizer, next(iterator), False))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica_loss, axis=None)

        progress = _progress(self.show_progress, start_step, self.steps, f"async x{num_workers}")
        started = time.perf_counter()
        step = start_step
        while step < self.steps:
            # Schedule up to the next checkpoint, then wait for those steps (lost ones are re-run).
            until = self.steps
            if self.checkpoint_every:
                until = min(self.steps, (step // self.checkpoint_every + 1) * self.checkpoint_every)
            # A few steps in flight per worker keep every worker busy; fetching the oldest first then
            # sees steps finish in about the order they finish, for the log and the step times.
            in_flight = collections.deque()
            for s in range(step + 1, until + 1):
                in_flight.append((s, coordinator.schedule(worker_step, args=(iterator,))))
                while len(in_flight) > 2 * num_workers or (s == until and in_flight):
                    done_step, remote_loss = in_flight.popleft()
                    self.losses.append((done_step, float(remote_loss.fetch())))
                    self.step_seconds.append(time.perf_counter() - started)
                    progress.update(1)
            coordinator.join()
            step = until
            # Keras counts steps with a read-then-write that concurrent workers interleave, losing counts;
            # the chief knows how many steps completed (bias correction and schedules read this counter).
            optimizer.iterations.assign(step)
            progress.set_postfix(loss=f"{self.losses[-1][1]:.4f}")
            if step < self.steps:
                self._checkpoint(model, step)
        seconds = time.perf_counter() - started
        progress.close()
        return self._finish(model, strategy, start_step, seconds, num_workers)

    # -- evaluation and output -----------------------------------------------------------------------

    def _evaluate(self, model, step):
        """Dev MSE on the chief; writes `best.keras` when it is the lowest so far. Returns True then."""
        if self.dev_dataset is None:
            return False
        dev_mse = evaluate_dev_mse(model, self.dev_dataset)
        self.dev_mse.append((step, dev_mse))
        logger.info("step %d: dev MSE %.5f", step, dev_mse)
        if self.best_dev_mse is None or dev_mse < self.best_dev_mse:
            self.best_dev_mse = dev_mse
            save_model_atomically(model, self.out_dir / BEST_MODEL)
            return True
        return False

    def _checkpoint(self, model, step):
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._evaluate(model, step)
        save_model_atomically(model, self.out_dir / CHECKPOINT_MODEL)
        state = {
            "mode": self.mode,
            "step": step,
            "losses": self.losses,
            "dev_mse": self.dev_mse,
            "best_dev_mse": self.best_dev_mse,
        }
        atomic_write_text(self.out_dir / CHECKPOINT_STATE, json.dumps(state))

    def _finish(self, model, strategy, start_step, seconds, num_workers):
        model_path = None
        if self.task.is_chief:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            model_path = self.out_dir / FINAL_MODEL
            last_is_best = self._evaluate(model, self.steps)
            if self.dev_dataset is None or last_is_best:
                save_model_atomically(model, model_path)
            else:
                _copy_atomically(self.out_dir / BEST_MODEL, model_path)
            log = {
                "mode": self.mode,
                "num_workers": num_workers,
                "cluster": self.task.cluster,
                "steps": self.steps,
                "resumed_from_step": start_step,
                "seconds": seconds,
                "losses": self.losses,
                "dev_mse": self.dev_mse,
                "best_dev_mse": self.best_dev_mse,
            }
            atomic_write_text(self.out_dir / TRAINING_LOG, json.dumps(log, indent=1))
            for name in (CHECKPOINT_STATE, CHECKPOINT_MODEL):  # the run is complete: nothing to resume
                (self.out_dir / name).unlink(missing_ok=True)
            model_path = str(model_path)
        return DistributedTrainingResult(
            model=model,
            losses=self.losses,
            dev_mse=self.dev_mse,
            steps=self.steps,
            seconds=seconds,
            step_seconds=self.step_seconds,
            strategy=strategy,
            model_path=model_path,
            resumed_from_step=start_step,
        )


def evaluate_dev_mse(model, dataset):
    """Pooled dev MSE: the squared error summed over all valid frames and the 49 outputs, over their count.

    Args:
        model: the acoustic model (also one built under a strategy: it runs on this process).
        dataset: finite dataset of `(inputs, acoustic[, frame_weights])` batches.

    Returns:
        The dev MSE (float; NaN for a dataset without valid frames).
    """
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def batch_sums(features, targets):
        predictions = model(features, training=False)
        return masked_squared_error(targets, predictions, frames_mask_of(features["linguistic"]))

    error_sum, valid_frames = 0.0, 0.0
    for features, targets, *_ in dataset:
        batch_error, batch_frames = batch_sums(features, targets)
        error_sum += float(batch_error)
        valid_frames += float(batch_frames)
    return error_sum / valid_frames if valid_frames else float("nan")


def _barrier(strategy):
    """Returns once every worker of `strategy` has reached it (an all-reduce of a scalar)."""
    import tensorflow as tf

    def replica_fn():
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, tf.constant(1.0))

    float(strategy.experimental_local_results(strategy.run(tf.function(replica_fn)))[0])


def _broadcast_from_chief(strategy, variables, step, is_chief):
    """Makes every worker's `variables` (and `step`) equal to the chief's, by an all-reduce of chief-or-zero."""
    import tensorflow as tf

    # Reduced per dtype: a collective packs its tensors together, so they must share one.
    values = [v.value if hasattr(v, "value") else v for v in variables]
    groups = {}
    for position, value in enumerate(values):
        groups.setdefault(value.dtype, []).append(position)

    def replica_fn():
        context = tf.distribute.get_replica_context()
        reduced = [None] * len(values)
        for positions in groups.values():
            own = [
                tf.identity(values[p]) if is_chief else tf.zeros(values[p].shape, values[p].dtype) for p in positions
            ]
            for p, value in zip(positions, context.all_reduce(tf.distribute.ReduceOp.SUM, own)):
                reduced[p] = value
        chief_step = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.constant(step if is_chief else 0, tf.int64))
        return reduced, chief_step

    reduced, chief_step = strategy.experimental_local_results(strategy.run(tf.function(replica_fn)))[0]
    # Mirrored variables: an assignment in cross-replica context sets every local copy.
    for variable, value in zip(variables, reduced):
        variable.assign(value)
    return int(chief_step.numpy())


def _progress(enabled, initial, total, description):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=description, unit="step", disable=not enabled, dynamic_ncols=True)


def _copy_atomically(source, destination):
    with atomic_output(destination) as temporary:
        shutil.copyfile(source, temporary)


# --------------------------------------------------------------------------------------------------
# Prepared datasets and `mlms train --distributed`
# --------------------------------------------------------------------------------------------------


def train_distributed_on_prepared(
    dataset_path,
    out_dir,
    mode="sync",
    preset="small",
    languages=None,
    speakers=None,
    code_init="random",
    language_space_dim=None,
    epochs=30,
    steps=None,
    steps_per_epoch=None,
    batch_size=16,
    learning_rate=1e-3,
    seed=0,
    chunk_frames=None,
    checkpoint_every=100,
    initial_checkpoint=None,
    jit_recurrence="training",
    tf_config=None,
    command=None,
    show_progress=True,
):
    """`mlms train --distributed`: an MLMS model trained on a prepared dataset by the cluster in `TF_CONFIG`.

    The model, the tables (`mlms_keras.training.fit.select_tables`) and the run folder are those of
    `mlms train`: `out_dir` gets `model.keras` (best on dev), `best.keras` and `training.json` (so
    `mlms adapt`, `load_run` and `mlms synth-utterance` take it), plus this module's
    `training_log.json` and checkpoints. Worker `i` of `n` reads the training shard files `i::n`
    (`prepared_dataset_fn`); the chief evaluates the dev split at every checkpoint.

    Where the files must be: in sync mode every worker needs `dataset.json` and its own shard files; in
    async mode the chief needs `dataset.json` and every worker needs the shard files, at the same path
    (the chief builds the input pipelines that run on the workers). Only the chief writes `out_dir`.

    Args:
        dataset_path: prepared dataset folder (`mlms prepare`).
        out_dir: run folder.
        mode: `"sync"` or `"async"` (see the module docstring).
        preset, languages, speakers, code_init, language_space_dim: as `mlms train`.
        epochs: passes over the training data when `steps` is None (sync: each step takes one batch per
            worker; async: one batch).
        steps: total steps (overrides `epochs`).
        steps_per_epoch: steps in one epoch when `steps` is None (default: one pass over the data).
            There is no early stopping: the run does `steps` steps and keeps the best-on-dev model.
        batch_size: utterances (or chunks) per batch and worker.
        learning_rate: Adam's learning rate.
        seed: model initialisation and data shuffling seed.
        chunk_frames: truncated-BPTT chunk length in frames (None: whole utterances).
        checkpoint_every: steps between checkpoints and dev evaluations.
        initial_checkpoint: a `.keras` file to start from (e.g. a single-process `mlms train` run's
            model.keras with the same tables).
        jit_recurrence: the towers' XLA mode (`"training"` or `"never"`).
        tf_config: `TF_CONFIG` (JSON string or dict); None reads the environment.
        command: the command line, recorded in `training.json`.
        show_progress: tqdm bar on the chief.

    Returns:
        A `DistributedTrainingResult` on training processes, `None` on async `ps` / `worker` processes.
    """
    task = read_tf_config(tf_config)
    check_cluster_for_mode(task, mode)
    if mode == "async" and task.task_type in ("worker", "ps"):
        serve(task)
        return None

    # No TensorFlow object may be made before train_distributed sets up the strategy: only plain Python here.
    from mlms_keras.data import Manifest, load_dataset
    from mlms_keras.data import steps_per_epoch as count_batches
    from mlms_keras.models.acoustic import MLMSConfig
    from mlms_keras.training import fit as training

    manifest = Manifest.load(dataset_path)
    language_codes, speaker_names = training.select_tables(manifest, languages, speakers)
    overrides = {"code_init": code_init}
    if language_space_dim is not None:
        overrides["language_space_dim"] = int(language_space_dim)
    config = MLMSConfig.preset(
        preset,
        input_dim=manifest.input_dim,
        num_languages=len(language_codes),
        num_speakers=len(speaker_names),
        **overrides,
    )
    if steps is None and steps_per_epoch is not None:
        steps = epochs * steps_per_epoch
    elif steps is None:
        batches = count_batches(dataset_path, "train", batch_size, language_codes, speaker_names, chunk_frames)
        steps = epochs * math.ceil(batches / (_sync_trainers(task) if mode == "sync" else 1))

    def selection(split, **options):
        data = load_dataset(
            dataset_path, split, batch_size, languages=language_codes, speakers=speaker_names, **options
        )
        return training.remap_ids(data, manifest, language_codes, speaker_names)

    def dataset_fn(num_shards, shard_index):
        return selection("train", seed=seed, chunk_frames=chunk_frames, shard=(shard_index, num_shards), repeat=True)

    dev_dataset_fn = None
    if any(entry["split"] == "dev" for entry in manifest.utterances.values()):
        dev_dataset_fn = lambda: selection("dev", shuffle=False)  # noqa: E731
    result = train_distributed(
        dataset_fn,
        out_dir,
        mode=mode,
        model_config=config,
        initial_checkpoint=initial_checkpoint,
        steps=steps,
        learning_rate=learning_rate,
        checkpoint_every=checkpoint_every,
        dev_dataset_fn=dev_dataset_fn,
        seed=seed,
        jit_recurrence=jit_recurrence,
        tf_config=tf_config,
        show_progress=show_progress,
    )
    if task.is_chief:
        info = {
            "format": training.RUN_FORMAT,
            "format_version": training.RUN_FORMAT_VERSION,
            "model_name": result.model.name,
            "config": config.to_dict(),
            "complete": True,
            "dataset": str(Path(dataset_path).absolute()),
            "model_type": "mlms",
            "preset": preset,
            "languages": language_codes,
            "speakers": speaker_names,
            "speaker_languages": [manifest.speakers[name]["language"] for name in speaker_names],
            "training": {
                "batch_size": batch_size,
                "learning_rate": learning_rate,
                "seed": seed,
                "chunk_frames": chunk_frames,
                "steps": steps,
            },
            "distributed": {
                "mode": mode,
                "num_workers": _sync_trainers(task) if mode == "sync" else task.num_workers,
                "seconds": result.seconds,
                "log": TRAINING_LOG,
            },
            "best_val_loss": min((mse for _, mse in result.dev_mse), default=None),
            "model_file": FINAL_MODEL,
            "command": command,
        }
        training.write_json_atomically(Path(out_dir) / training.RUN_INFO_NAME, info)
    return result


def _sync_trainers(task):
    """Tasks that train in sync mode: the workers and, when listed, the chief."""
    return task.num_workers + len(task.cluster.get("chief", []))


def add_distributed_arguments(parser):
    """Adds the `--distributed` options to the `mlms train` parser (see `run_distributed_train`)."""
    group = parser.add_argument_group(
        "distributed training (TF_CONFIG; see docs/distributed.md)",
        "Run the same command on every machine of the cluster in TF_CONFIG, e.g.\n"
        '  TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", '
        '"index": 0}}\' mlms train data/prepared --out runs/mlms --distributed sync',
    )
    group.add_argument(
        "--distributed",
        choices=MODES,
        default=None,
        help="train on the cluster in TF_CONFIG: sync (all-reduce, MultiWorkerMirroredStrategy) or async "
        "(the paper's ASGD, parameter servers)",
    )
    group.add_argument(
        "--steps",
        type=int,
        default=None,
        help="total steps (default: --epochs x --steps-per-epoch, or --epochs passes over the data); no early stopping",
    )
    group.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints (default 100)")
    group.add_argument(
        "--initial-checkpoint",
        default=None,
        help="a .keras file to start from (e.g. a single-process run's model.keras); its optimizer, learning rate "
        "and optimizer state come along when it has them",
    )
    group.add_argument(
        "--jit-recurrence",
        choices=("training", "never"),
        default="training",
        help="XLA for the towers' time loops in training (default) or never",
    )


def run_distributed_train(args):
    """Handler of `mlms train --distributed`: returns the exit code."""
    if args.model != "mlms":
        print("mlms train: --distributed trains the MLMS model only (drop --model slss)", file=sys.stderr)
        return 2
    try:
        result = train_distributed_on_prepared(
            args.dataset,
            args.out,
            mode=args.distributed,
            preset=args.preset,
            languages=_split_list(args.languages),
            speakers=_split_list(args.speakers),
            code_init=args.code_init,
            language_space_dim=args.language_space_dim,
            epochs=args.epochs,
            steps=args.steps,
            steps_per_epoch=getattr(args, "steps_per_epoch", None),
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            seed=args.seed,
            chunk_frames=args.chunk_frames,
            checkpoint_every=args.checkpoint_every,
            initial_checkpoint=args.initial_checkpoint,
            jit_recurrence=args.jit_recurrence,
            command=" ".join(["mlms"] + sys.argv[1:]),
            show_progress=not args.quiet,
        )
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"mlms train: {error}", file=sys.stderr)
        return 2
    if result is not None and result.model_path is not None:
        best = min((mse for _, mse in result.dev_mse), default=None)
        print(
            f"{result.model_path}: {result.steps} steps in {result.seconds:.1f} s"
            + (f", best dev MSE {best:.4f}" if best is not None else "")
        )
    return 0


def _split_list(text):
    return [item.strip() for item in text.split(",") if item.strip()] if text else None
