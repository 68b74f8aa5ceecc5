"""Try distributed training on one computer: every task of a small cluster runs on 127.0.0.1.

    python examples/distributed_local.py data/prepared runs/distributed --mode sync --workers 2
    python examples/distributed_local.py data/prepared runs/asgd --mode async --workers 2   # + chief + 1 ps

Each task is the same `mlms train --distributed` command a real cluster runs, with its own TF_CONFIG
(docs/distributed.md shows the multi-machine version). The run folder is that of `mlms train`.
"""

import argparse
import os
import subprocess
import sys

from mlms_keras.training.distributed import ClusterTask, local_cluster

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("dataset", help="prepared dataset (mlms prepare), with at least --workers training shards")
parser.add_argument("out", help="run folder")
parser.add_argument("--mode", choices=("sync", "async"), default="sync")
parser.add_argument("--workers", type=int, default=2)
parser.add_argument("--steps", type=int, default=200)
parser.add_argument("--timeout", type=int, default=3600, help="seconds before every task is stopped")
args = parser.parse_args()

cluster = local_cluster(args.workers, num_ps=int(args.mode == "async"), chief=args.mode == "async")
command = [
    sys.executable,
    "-m",
    "mlms_keras.cli",
    "train",
    args.dataset,
    "--out",
    args.out,
    "--preset",
    "tiny",
    "--distributed",
    args.mode,
    "--steps",
    str(args.steps),
    "--checkpoint-every",
    "50",
]
tasks = [(job, index) for job in ("ps", "worker", "chief") for index in range(len(cluster.get(job, [])))]
processes = {}
try:
    for job, index in tasks:  # only the chief shows a progress bar
        env = dict(os.environ, TF_CONFIG=ClusterTask(cluster, job, index).to_tf_config(), TF_CPP_MIN_LOG_LEVEL="2")
        processes[job, index] = subprocess.Popen(command, env=env)
    chief = ("chief", 0) if args.mode == "async" else ("worker", 0)
    code = processes[chief].wait(timeout=args.timeout)  # async ps/workers stop by themselves after the chief
    for process in processes.values():
        process.wait(timeout=120)
    sys.exit(code)
finally:
    for process in processes.values():
        if process.poll() is None:
            process.kill()
