"""The training loops of a distributed job: synchronous steps with all-reduce, asynchronous steps on parameter
servers.

Keras 3's `model.fit` does not run under `MultiWorkerMirroredStrategy` or `ParameterServerStrategy`, so these
loops step the same model with the same Keras optimizer and the same loss as `model.fit`:

- `mode="sync"` (MultiWorkerMirroredStrategy): every worker runs the same program. In each step every worker
  computes the gradient of its own batch, the gradients are summed by an all-reduce and every worker applies
  the same update, so all copies of the model stay identical. One step is exactly one single-process step on
  the union of the workers' batches: the loss is Keras' masked mean squared error over all valid frames of all
  workers (`mlms_keras.training.losses.masked_squared_error_sums`, divided by the frames of every worker).
- `mode="async"` (ParameterServerStrategy + `ClusterCoordinator`): the variables live on parameter servers; the
  chief schedules steps; each worker reads the current variables, computes the gradient of its own batch
  (Keras' masked MSE of that batch) and applies it without waiting for the others. A worker that dies loses
  only its step in flight, which the coordinator runs again on another worker.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from mlms_keras.training.distributed.checkpoints import (
    TRAINING_LOG,
    RunLog,
    build_model_and_optimizer,
    has_checkpoint,
    read_checkpoint,
    record_dev_mse,
    write_checkpoint,
    write_final_model_and_log,
)
from mlms_keras.training.distributed.cluster import MODES, ClusterTask, fail_fast_on_lost_peers, join_cluster
from mlms_keras.training.distributed.collectives import barrier, broadcast_from_chief
from mlms_keras.training.losses import frame_mask, masked_squared_error_sums

__all__ = ["DEFAULT_STEPS", "DistributedOptions", "DistributedTrainingResult", "train_distributed"]

logger = logging.getLogger(__name__)

#: Steps `train_distributed` runs when `DistributedOptions.steps` is None.
DEFAULT_STEPS = 1000


@dataclasses.dataclass(frozen=True)
class DistributedOptions:
    """How a distributed job trains: the settings `train_distributed` and `train_distributed_on_prepared` share.

    Attributes:
        mode: `"sync"` (MultiWorkerMirroredStrategy, all-reduce) or `"async"` (ParameterServerStrategy, the
            paper's ASGD).
        steps: total steps; in sync mode one step takes one batch per worker, in async mode one step is one
            worker's update. None: `DEFAULT_STEPS` for `train_distributed`, `epochs` passes over the training
            data for `train_distributed_on_prepared`.
        learning_rate: Adam's learning rate when neither an optimizer factory nor a checkpoint gives one.
        checkpoint_every: steps between checkpoints and dev evaluations (0: only at the end).
        initial_checkpoint: a `.keras` file to start from (e.g. a single-process run's `model.keras` with the
            same tables); its optimizer state is used when it has one and no optimizer factory is given. In sync
            mode only the chief needs the file when the model configuration describes the same architecture.
        seed: seed of the fresh model's initial weights (`keras.utils.set_random_seed`, set once the strategy
            exists) and, on a prepared dataset, of the data shuffling; None leaves the random state alone.
        jit_recurrence: the towers' XLA mode (`"training"` or `"never"`).
        collective_timeout_s: sync mode: seconds before a stuck all-reduce (a dead worker) fails the step instead
            of hanging; None waits forever.
        show_progress: show a tqdm bar on the chief.
    """

    mode: str = "sync"
    steps: int | None = None
    learning_rate: float = 1e-3
    checkpoint_every: int = 100
    initial_checkpoint: str | Path | None = None
    seed: int | None = None
    jit_recurrence: str = "training"
    collective_timeout_s: float | None = None
    show_progress: bool = True

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"`mode` must be one of {MODES}; got {self.mode!r}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"`steps` must be >= 1; got {self.steps}")
        if self.checkpoint_every < 0:
            raise ValueError(f"`checkpoint_every` must be >= 0; got {self.checkpoint_every}")


@dataclasses.dataclass
class DistributedTrainingResult:
    """What `train_distributed` returns on a training process.

    Attributes:
        model: the trained Keras model with the last weights (its variables are distributed; `model.save` and
            `get_weights` work).
        losses: `[(step, loss)]` of this run and the runs it resumed: the loss of the global batch of each step
            in sync mode; in async mode the loss of each worker step (numbered in the order the chief scheduled
            them).
        dev_mse: `[(step, dev MSE)]` at every checkpoint and at the end (chief only; empty without a dev set).
        steps: steps done, resumed ones included.
        seconds: wall time of this run's training loop.
        step_seconds: for each step of this run, the time (s, from the start of the loop) at which this process
            saw it finish; throughput over a window is `steps / (t_end - t_start)`.
        strategy: the `tf.distribute` strategy the model lives in (for further work on the cluster).
        model_path: the final `.keras` file (chief only, else None): the best-on-dev weights when there is a dev
            set (as `mlms train` does), else the last weights.
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
    dataset_fn: Callable,
    out_dir,
    options: DistributedOptions | None = None,
    model_config=None,
    optimizer_factory: Callable | None = None,
    dev_dataset_fn: Callable | None = None,
    tf_config: str | dict | None = None,
) -> DistributedTrainingResult | None:
    """Trains an MLMS model on the cluster in `TF_CONFIG`, synchronously or asynchronously.

    Every process of the cluster calls this with the same arguments. In sync mode every worker trains and
    returns a result. In async mode the `ps` and `worker` processes only serve (this call blocks, and returns
    None once the chief has gone) and the chief trains.

    Output (chief only, in `out_dir`; `mlms_keras.training.distributed.checkpoints`): a checkpoint folder
    `checkpoint-<n>/` (`checkpoint.keras` + `checkpoint.json`, renamed into place as one unit) every
    `options.checkpoint_every` steps (a killed job started again with the same arguments
    resumes there), `best.keras` (lowest dev MSE so far, with a dev set), and at the end `model.keras` and
    `training_log.json` (mode, cluster, losses, dev MSE, time).

    Args:
        dataset_fn: `dataset_fn(num_shards, shard_index) -> tf.data.Dataset` of this worker's batches
            `({"linguistic": (batch, frames, D), "language": (batch,), "speaker": (batch,)},
            acoustic (batch, frames, 49)[, frame_weights (batch, frames)])`, all-zero `linguistic` rows marking
            padding; both arguments are Python ints. The dataset is repeated for as long as training needs.
            `batch` is per worker: one sync step sees `num_workers * batch` utterances.
        out_dir: folder for checkpoints, the final model and the log (only the chief writes there).
        options: mode, steps, learning rate, checkpoints, seed, ... (`DistributedOptions`; None: the defaults).
        model_config: an `MLMSConfig` for a fresh model (ignored when starting from a checkpoint).
        optimizer_factory: zero-argument callable returning a Keras optimizer (called inside the strategy's
            scope, as tf.distribute requires).
        dev_dataset_fn: optional zero-argument callable returning a finite `tf.data.Dataset` of dev batches (same
            form), evaluated on the chief: the dev MSE pools the squared error over all valid frames and the 49
            outputs. A callable because no TensorFlow object may exist before the strategy is set up ("Collective
            ops must be configured at program startup").
        tf_config: `TF_CONFIG` as a JSON string or dict; None reads the environment.

    Returns:
        A `DistributedTrainingResult` on training processes; None on async `ps`/`worker` processes.

    Raises:
        ValueError: bad `TF_CONFIG`, a cluster that does not fit the mode, or nothing to build the model from.
        FileExistsError: `out_dir` holds a finished run.
        FileNotFoundError: `options.initial_checkpoint` does not exist.
    """
    options = options or DistributedOptions()
    task = join_cluster(tf_config, options.mode)
    if task is None:  # an async ps or worker: it has served until the chief finished
        return None
    out_dir = Path(out_dir)
    if task.is_chief and (out_dir / TRAINING_LOG).is_file():
        raise FileExistsError(
            f"{out_dir} holds a finished run ({TRAINING_LOG}); choose a new output folder or delete it"
        )
    initial_checkpoint = options.initial_checkpoint
    if model_config is None and initial_checkpoint is None and not has_checkpoint(out_dir):
        raise ValueError("Give `model_config` (a fresh model) or `initial_checkpoint` (a .keras file to start from)")
    if initial_checkpoint is not None and not Path(initial_checkpoint).is_file():
        if task.is_chief or options.mode != "sync" or model_config is None:
            raise FileNotFoundError(f"initial checkpoint {initial_checkpoint} does not exist; give a .keras file")
        # A sync worker without a copy builds `model_config`; the chief broadcasts the checkpoint's values.
        initial_checkpoint = None
    fail_fast_on_lost_peers()
    job = _Job(task, options, dataset_fn, out_dir, model_config, initial_checkpoint, optimizer_factory, dev_dataset_fn)
    return job.train_synchronous() if options.mode == "sync" else job.train_asynchronous()


class _Job:
    """One process's share of a distributed job (see `train_distributed`): its model, its steps, its log."""

    def __init__(
        self,
        task: ClusterTask,
        options: DistributedOptions,
        dataset_fn: Callable,
        out_dir: Path,
        model_config,
        initial_checkpoint,
        optimizer_factory: Callable | None,
        dev_dataset_fn: Callable | None,
    ):
        self.task = task
        self.options = options
        self.steps = DEFAULT_STEPS if options.steps is None else options.steps
        self.dataset_fn = dataset_fn
        self.out_dir = out_dir
        self.model_config = model_config
        self.initial_checkpoint = initial_checkpoint
        self.optimizer_factory = optimizer_factory
        self.dev_dataset_fn = dev_dataset_fn
        self.dev_dataset = None
        self.log = RunLog()

    # -- strategy, model, optimizer ------------------------------------------------------------------

    def _cluster_resolver(self):
        import tensorflow as tf

        return tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec(self.task.cluster),
            task_type=self.task.task_type,
            task_id=self.task.task_index,
            rpc_layer="grpc",
        )

    def _build(self, strategy):
        """Model and optimizer in `strategy`, from the checkpoint, the initial checkpoint or the configuration.

        Returns `(model, optimizer, steps already done)`; a resumed run's log goes on from the checkpoint's.
        """
        import keras

        source_path, start_step = self.initial_checkpoint, 0
        if has_checkpoint(self.out_dir):
            source_path, start_step, self.log = read_checkpoint(self.out_dir, self.options.mode)
            if self.initial_checkpoint is not None:
                logger.info("resuming from %s; ignoring initial_checkpoint", source_path)
        if self.options.seed is not None:
            keras.utils.set_random_seed(self.options.seed)
        if self.dev_dataset_fn is not None and self.task.is_chief:
            self.dev_dataset = self.dev_dataset_fn()
        model, optimizer = build_model_and_optimizer(
            strategy,
            source_path,
            self.model_config,
            self.options.jit_recurrence,
            self.options.learning_rate,
            self.optimizer_factory,
        )
        return model, optimizer, start_step

    def _replica_step(self, model, optimizer, batch, normalise_over_replicas):
        import tensorflow as tf

        features, targets, *frame_weights = batch
        mask = frame_mask(features["linguistic"])
        with tf.GradientTape() as tape:
            predictions = model(features, training=True)
            error_sum, valid_frames = masked_squared_error_sums(targets, predictions, mask, *frame_weights)
            if normalise_over_replicas:
                # Divide by the valid frames of every worker: the summed gradients are then the gradient
                # of Keras' masked MSE over the union of the batches (the optimizer sums over replicas).
                valid_frames = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, valid_frames)
            loss = tf.math.divide_no_nan(error_sum, valid_frames)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    # -- synchronous ---------------------------------------------------------------------------------

    def train_synchronous(self) -> DistributedTrainingResult:
        import tensorflow as tf

        communication = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING,
            timeout_seconds=self.options.collective_timeout_s,
        )
        # First: the strategy configures the collective ops of this process.
        strategy = tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=self._cluster_resolver(), communication_options=communication
        )
        num_workers = strategy.num_replicas_in_sync
        logger.info("worker %d of %d connected", self.task.task_index, num_workers)
        model, optimizer, start_step = self._build(strategy)
        # The chief's checkpoint wins (workers need no shared file system; theirs only gives the
        # architecture): it broadcasts the weights, the optimizer state and the step count.
        start_step = broadcast_from_chief(
            strategy, model.variables + optimizer.variables, start_step, self.task.is_chief
        )

        def distributed_dataset_fn(input_context):
            return self.dataset_fn(input_context.num_input_pipelines, input_context.input_pipeline_id).repeat()

        iterator = iter(strategy.distribute_datasets_from_function(distributed_dataset_fn))

        @tf.function
        def train_step(iterator):
            per_replica_loss = strategy.run(self._replica_step, args=(model, optimizer, next(iterator), True))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica_loss, axis=None)

        is_chief, every = self.task.is_chief, self.options.checkpoint_every
        progress = _progress(self.options.show_progress and is_chief, start_step, self.steps, f"sync x{num_workers}")
        started = time.perf_counter()
        for step in range(start_step + 1, self.steps + 1):
            loss = float(train_step(iterator))
            self.log.step_seconds.append(time.perf_counter() - started)
            self.log.losses.append((step, loss))
            progress.update(1)
            progress.set_postfix(loss=f"{loss:.4f}")
            if is_chief and every and step % every == 0 and step < self.steps:
                self._checkpoint(model, step)
        seconds = time.perf_counter() - started
        progress.close()
        result = self._finish(model, strategy, start_step, seconds, num_workers)
        # Leave together: a worker still shutting down when the chief (the coordination service's leader)
        # has gone logs heartbeat errors and may wait for them to time out.
        barrier(strategy)
        return result

    # -- asynchronous --------------------------------------------------------------------------------

    def train_asynchronous(self) -> DistributedTrainingResult:
        import tensorflow as tf

        strategy = tf.distribute.ParameterServerStrategy(self._cluster_resolver())
        coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
        num_workers = self.task.num_workers
        logger.info("connected to %d workers and %d ps", num_workers, len(self.task.cluster["ps"]))
        model, optimizer, start_step = self._build(strategy)
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

        every = self.options.checkpoint_every
        progress = _progress(self.options.show_progress, start_step, self.steps, f"async x{num_workers}")
        started = time.perf_counter()
        step = start_step
        while step < self.steps:
            # Schedule up to the next checkpoint, then wait for those steps (lost ones are re-run).
            until = min(self.steps, (step // every + 1) * every) if every else self.steps
            # A few steps in flight per worker keep every worker busy; fetching the oldest first then
            # sees steps finish in about the order they finish, for the log and the step times.
            in_flight = collections.deque()
            for s in range(step + 1, until + 1):
                in_flight.append((s, coordinator.schedule(worker_step, args=(iterator,))))
                while len(in_flight) > 2 * num_workers or (s == until and in_flight):
                    done_step, remote_loss = in_flight.popleft()
                    self.log.losses.append((done_step, float(remote_loss.fetch())))
                    self.log.step_seconds.append(time.perf_counter() - started)
                    progress.update(1)
            coordinator.join()
            step = until
            # Keras counts steps with a read-then-write that concurrent workers interleave, losing counts;
            # the chief knows how many steps completed (bias correction and schedules read this counter).
            optimizer.iterations.assign(step)
            progress.set_postfix(loss=f"{self.log.losses[-1][1]:.4f}")
            if step < self.steps:
                self._checkpoint(model, step)
        seconds = time.perf_counter() - started
        progress.close()
        return self._finish(model, strategy, start_step, seconds, num_workers)

    # -- the chief's files ---------------------------------------------------------------------------

    def _checkpoint(self, model, step):
        self.out_dir.mkdir(parents=True, exist_ok=True)
        record_dev_mse(model, self.dev_dataset, step, self.log, self.out_dir)
        write_checkpoint(self.out_dir, model, self.options.mode, step, self.log)

    def _finish(self, model, strategy, start_step, seconds, num_workers) -> DistributedTrainingResult:
        model_path = None
        if self.task.is_chief:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            last_is_best = record_dev_mse(model, self.dev_dataset, self.steps, self.log, self.out_dir)
            keep_last = self.dev_dataset is None or last_is_best
            summary = {
                "mode": self.options.mode,
                "num_workers": num_workers,
                "cluster": self.task.cluster,
                "steps": self.steps,
                "resumed_from_step": start_step,
                "seconds": seconds,
                "losses": self.log.losses,
                "dev_mse": self.log.dev_mse,
                "best_dev_mse": self.log.best_dev_mse,
            }
            model_path = str(write_final_model_and_log(self.out_dir, model, keep_last, summary))
        return DistributedTrainingResult(
            model=model,
            losses=self.log.losses,
            dev_mse=self.log.dev_mse,
            steps=self.steps,
            seconds=seconds,
            step_seconds=self.log.step_seconds,
            strategy=strategy,
            model_path=model_path,
            resumed_from_step=start_step,
        )


def _progress(enabled: bool, initial: int, total: int, description: str):
    return tqdm(total=total, initial=initial, desc=description, unit="step", disable=not enabled, dynamic_ncols=True)
