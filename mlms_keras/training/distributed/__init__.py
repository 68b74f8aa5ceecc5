"""Training on several machines with `tf.distribute`: synchronous data parallelism and the paper's ASGD.

Li & Zen (2016, sec. 4.1) trained with "a distributed CPU implementation of mini-batch ASGD-based truncated BPTT"
(Dean et al. 2012). Keras 3's `model.fit` does not run under `MultiWorkerMirroredStrategy` or
`ParameterServerStrategy`, so this package has its own training loops around the same model builder, optimizer
and loss:

- `cluster`: the cluster from `TF_CONFIG` (`read_tf_config`, `ClusterTask`), which jobs each mode needs, local
  clusters on free ports (`local_cluster`) and the servers of asynchronous training (`serve`);
- `loops`: `train_distributed` with its `DistributedOptions`: the synchronous (all-reduce) and asynchronous
  (parameter server) loops;
- `collectives`: the barrier and the chief's broadcast of synchronous training;
- `checkpoints`: the chief's files (checkpoint folders `checkpoint-<n>/` holding `checkpoint.keras` +
  `checkpoint.json`, replaced as one unit; `best.keras`, `model.keras`,
  `training_log.json`), dev evaluation, and the model and optimizer a job starts or resumes from;
- `driver`: `train_distributed_on_prepared`, the whole of `mlms train --distributed` on a prepared dataset, and
  `prepared_dataset_fn`.

Every process of the cluster runs the same call; each worker reads its own share of the data through
`dataset_fn(num_shards, shard_index)`. `docs/distributed.md` shows how to launch a cluster.

Example:
    >>> from mlms_keras.training.distributed import DistributedOptions, prepared_dataset_fn, train_distributed
    >>> result = train_distributed(                                               # doctest: +SKIP
    ...     prepared_dataset_fn("data/prepared", "train", batch_size=16, seed=0),
    ...     "runs/mlms",
    ...     DistributedOptions(mode="sync", steps=5000, checkpoint_every=200),
    ...     model_config=config,
    ... )
"""

from mlms_keras.training.distributed.checkpoints import (
    CHECKPOINT_MODEL,
    CHECKPOINT_STATE,
    TRAINING_LOG,
    evaluate_dev_mse,
)
from mlms_keras.training.distributed.cluster import (
    MODES,
    ClusterTask,
    check_cluster_for_mode,
    free_ports,
    join_cluster,
    local_cluster,
    read_tf_config,
    serve,
)
from mlms_keras.training.distributed.driver import (
    PreparedRunOptions,
    prepared_dataset_fn,
    train_distributed_on_prepared,
)
from mlms_keras.training.distributed.loops import (
    DEFAULT_STEPS,
    DistributedOptions,
    DistributedTrainingResult,
    train_distributed,
)

__all__ = [
    "CHECKPOINT_MODEL",
    "CHECKPOINT_STATE",
    "DEFAULT_STEPS",
    "MODES",
    "TRAINING_LOG",
    "ClusterTask",
    "DistributedOptions",
    "DistributedTrainingResult",
    "PreparedRunOptions",
    "check_cluster_for_mode",
    "evaluate_dev_mse",
    "free_ports",
    "join_cluster",
    "local_cluster",
    "prepared_dataset_fn",
    "read_tf_config",
    "serve",
    "train_distributed",
    "train_distributed_on_prepared",
]
