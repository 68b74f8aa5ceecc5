"""The cluster of a distributed job: `TF_CONFIG`, which jobs each mode needs, local clusters, and serving.

The cluster comes from `TF_CONFIG` (JSON), as everywhere in TensorFlow:

```
{"cluster": {"chief": ["host0:2222"], "worker": ["host1:2222", "host2:2222"], "ps": ["host3:2222"]},
 "task": {"type": "worker", "index": 0}}
```

Sync mode needs a `worker` job (worker 0 is the chief unless a `chief` job is listed, which then also trains);
async mode needs `chief`, `worker` and `ps` jobs. In async mode the `ps` and `worker` tasks only run a
TensorFlow server (`serve`) while the chief drives the training.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import sys
import threading
import time

__all__ = [
    "MODES",
    "ClusterTask",
    "check_cluster_for_mode",
    "fail_fast_on_lost_peers",
    "free_ports",
    "join_cluster",
    "local_cluster",
    "read_tf_config",
    "serve",
]

logger = logging.getLogger(__name__)

#: The training modes: `"sync"` (MultiWorkerMirroredStrategy) and `"async"` (ParameterServerStrategy, ASGD).
MODES = ("sync", "async")

_JOBS = ("chief", "worker", "ps", "evaluator")
_EXAMPLE = (
    'e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", "index": 0}}\''
)


@dataclasses.dataclass(frozen=True)
class ClusterTask:
    """This process's place in the cluster, as `TF_CONFIG` describes it.

    Attributes:
        cluster: job name -> list of `"host:port"` addresses (`"chief"`, `"worker"`, `"ps"`).
        task_type: this process's job.
        task_index: this process's index in its job.
    """

    cluster: dict[str, list[str]]
    task_type: str
    task_index: int

    @property
    def num_workers(self) -> int:
        """Number of `worker` tasks."""
        return len(self.cluster.get("worker", []))

    @property
    def address(self) -> str:
        """This task's `"host:port"`."""
        return self.cluster[self.task_type][self.task_index]

    @property
    def is_chief(self) -> bool:
        """True for the task that writes checkpoints: the `chief`, or worker 0 when there is no chief job."""
        if "chief" in self.cluster:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0

    def num_trainers(self, mode: str) -> int:
        """Tasks that compute gradients in `mode`: the workers, plus the chief in sync mode when it is listed."""
        return self.num_workers + (len(self.cluster.get("chief", [])) if mode == "sync" else 0)

    def to_tf_config(self) -> str:
        """The `TF_CONFIG` JSON string for this task."""
        return json.dumps({"cluster": self.cluster, "task": {"type": self.task_type, "index": self.task_index}})


def read_tf_config(tf_config: str | dict | None = None) -> ClusterTask:
    """Parses and checks a `TF_CONFIG`.

    Args:
        tf_config: a JSON string or a dict; `None` reads the `TF_CONFIG` environment variable.

    Returns:
        A `ClusterTask`.

    Raises:
        ValueError: naming the missing or malformed field and showing the expected shape.
    """
    if tf_config is None:
        tf_config = os.environ.get("TF_CONFIG")
        if not tf_config:
            raise ValueError(
                f"Distributed training needs the TF_CONFIG environment variable; it is not set ({_EXAMPLE})"
            )
    if isinstance(tf_config, str):
        try:
            tf_config = json.loads(tf_config)
        except json.JSONDecodeError as error:
            raise ValueError(f"TF_CONFIG is not valid JSON ({error}); {_EXAMPLE}") from None
    if not isinstance(tf_config, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object; {_EXAMPLE}")
    cluster, task = tf_config.get("cluster"), tf_config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise ValueError(f'TF_CONFIG needs a non-empty "cluster" object of job -> [addresses]; {_EXAMPLE}')
    for job, addresses in cluster.items():
        if job not in _JOBS:
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
            f'TF_CONFIG "task"."index" must be in [0, {len(cluster[task_type])}) for job {task_type!r}; '
            f"got {task_index!r}"
        )
    return ClusterTask(cluster={job: list(a) for job, a in cluster.items()}, task_type=task_type, task_index=task_index)


def _is_address(address) -> bool:
    host, _, port = str(address).rpartition(":")
    return bool(host) and port.isdigit()


def check_cluster_for_mode(task: ClusterTask, mode: str) -> None:
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
                'Asynchronous training (mode "async") needs a "chief", "worker" and "ps" job; '
                f"TF_CONFIG lacks {missing}"
            )
        if len(cluster["chief"]) != 1:
            raise ValueError(f'TF_CONFIG "cluster"."chief" must list exactly one address; got {cluster["chief"]}')


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
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


def local_cluster(num_workers: int, num_ps: int = 0, chief: bool = False, host: str = "127.0.0.1") -> dict:
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


def join_cluster(tf_config: str | dict | None, mode: str) -> ClusterTask | None:
    """Reads this process's task from `tf_config` (None: the environment) and checks that the cluster fits `mode`.

    Returns:
        The `ClusterTask` of a process that trains (sync: every worker and the chief; async: the chief). An async
        `ps` or `worker` process serves instead (`serve`: blocks until the chief has gone) and gets None.
    """
    task = read_tf_config(tf_config)
    check_cluster_for_mode(task, mode)
    if mode == "async" and task.task_type in ("worker", "ps"):
        serve(task)
        return None
    return task


def serve(task: ClusterTask, exit_when_chief_gone: bool = True, poll_interval_s: float = 2.0) -> None:
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

    fail_fast_on_lost_peers()
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


def fail_fast_on_lost_peers() -> None:
    """Makes gRPC fail a call to a lost peer at once instead of retrying for minutes (TensorFlow's PS guide)."""
    os.environ.setdefault("GRPC_FAIL_FAST", "use_caller")


def _exit_when_unreachable(address: str, poll_interval_s: float) -> None:
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
