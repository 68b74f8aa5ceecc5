"""Distributed training with real TensorFlow processes on 127.0.0.1.

Every cluster test starts its tasks as separate Python processes (this file run as a script, see
`_task_main`), on free ports picked at run time, each with a timeout, and kills whatever is still
running when the test ends.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mlms_keras.training import distributed

INPUT_DIM = 6
NUM_LANGUAGES = 2
NUM_SPEAKERS = 3
BATCHES = 8  # synthetic batches in all; worker i of n reads batches i::n
PROCESS_TIMEOUT_S = 240


def synthetic_dataset(num_shards, shard_index, batch_size=2):
    """Worker `shard_index`'s batches of a learnable toy task, deterministic.

    Batch `b` has `8 + 2 * (b % 3)` frames, utterances of 3 to that many real frames (zero padded),
    language `b % 2` and speakers `b % 3`; the target is `tanh(x W)` for a fixed `W`. So with 2
    workers, worker 0 sees only language 0 and worker 1 only language 1.
    """
    import tensorflow as tf

    weights = tf.random.stateless_normal([INPUT_DIM, 49], seed=[1, 2])

    def make_batch(index):
        frames = 8 + 2 * tf.cast(index % 3, tf.int32)
        seed = tf.stack([tf.cast(index, tf.int32), 3])
        lengths = tf.random.stateless_uniform([batch_size], seed, 3, frames + 1, tf.int32)
        mask = tf.sequence_mask(lengths, frames, tf.float32)[:, :, None]
        linguistic = tf.random.stateless_normal([batch_size, frames, INPUT_DIM], seed + 1) * mask
        acoustic = tf.tanh(tf.matmul(linguistic, weights)) * mask
        language = tf.fill([batch_size], tf.cast(index % 2, tf.int32))
        speaker = tf.fill([batch_size], tf.cast(index % 3, tf.int32))
        return {"linguistic": linguistic, "language": language, "speaker": speaker}, acoustic

    return tf.data.Dataset.range(BATCHES).shard(num_shards, shard_index).map(make_batch)


def _tiny_config():
    from mlms_keras.models.acoustic import MLMSConfig

    return MLMSConfig.preset("tiny", input_dim=INPUT_DIM, num_languages=NUM_LANGUAGES, num_speakers=NUM_SPEAKERS)


def _task_main(settings):
    """One cluster task: trains (or serves) with `settings`, then saves its weights and losses."""
    import keras

    optimizers = {"adam": lambda: keras.optimizers.Adam(settings["learning_rate"])}
    task = distributed.read_tf_config()
    name = f"{task.task_type}{task.task_index}"
    # With `per_task_out` no worker sees another's files (as on machines without a shared file system).
    out = os.path.join(settings["out"], name) if settings.get("per_task_out") else settings["out"]
    options = distributed.DistributedOptions(
        mode=settings["mode"],
        steps=settings["steps"],
        checkpoint_every=settings.get("checkpoint_every", 0),
        initial_checkpoint=settings.get("initial_checkpoint"),
        show_progress=False,
    )
    result = distributed.train_distributed(
        synthetic_dataset,
        out,
        options,
        model_config=_tiny_config(),
        optimizer_factory=optimizers[settings.get("optimizer", "adam")],
    )
    if result is not None:
        os.makedirs(out, exist_ok=True)
        np.savez(os.path.join(out, f"weights_{name}.npz"), *result.model.get_weights())
        with open(os.path.join(out, f"losses_{name}.json"), "w") as file:
            json.dump(result.losses, file)


class _Cluster:
    """Starts every task of `cluster` as a process running `command`; `stop()` kills the survivors."""

    def __init__(self, cluster, command, log_dir):
        self.processes = {}
        self.logs = {}
        for job in ("ps", "worker", "chief"):
            for index in range(len(cluster.get(job, []))):
                name = f"{job}{index}"
                env = dict(os.environ, TF_CONFIG=distributed.ClusterTask(cluster, job, index).to_tf_config())
                self.logs[name] = log_dir / f"{name}.log"
                with open(self.logs[name], "w") as log:
                    self.processes[name] = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.started = time.monotonic()

    def wait(self, name, timeout=PROCESS_TIMEOUT_S):
        remaining = max(1.0, timeout - (time.monotonic() - self.started))
        try:
            return self.processes[name].wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} did not finish within {timeout} s; log tail:\n{self.log_tail(name)}")

    def log_tail(self, name, lines=30):
        return "\n".join(self.logs[name].read_text(errors="replace").splitlines()[-lines:])

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


@pytest.fixture
def start_cluster(tmp_path):
    clusters = []

    def start(cluster, command=None, **settings):
        """Runs `_task_main(settings)` in every task, or `command` when given."""
        if command is None:
            command = [sys.executable, __file__, json.dumps(dict(settings, out=str(tmp_path / "out")))]
        started = _Cluster(cluster, command, tmp_path)
        clusters.append(started)
        return started

    yield start
    for cluster in clusters:
        cluster.stop()


def _single_process_checkpoint(path, seed=0):
    """A `.keras` checkpoint of a fresh tiny model, compiled as single-process training would save it."""
    import keras

    from mlms_keras.models.acoustic import build_mlms_model

    keras.utils.set_random_seed(seed)
    model = build_mlms_model(_tiny_config())
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", jit_compile=False)
    model.save(path)
    return model


def _load_weights(path):
    with np.load(path) as arrays:
        return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]


def _padded_union(first, second):
    """Concatenates two batches on the batch axis, zero-padding the shorter one's frames."""
    frames = max(first[1].shape[1], second[1].shape[1])

    def pad(array):
        array = np.asarray(array)
        if array.ndim < 3:
            return array
        return np.pad(array, [(0, 0), (0, frames - array.shape[1]), (0, 0)])

    features = {key: np.concatenate([pad(first[0][key]), pad(second[0][key])]) for key in first[0]}
    return features, np.concatenate([pad(first[1]), pad(second[1])])


# -- TF_CONFIG and loss ------------------------------------------------------------------------------


def test_read_tf_config_accepts_the_standard_layout():
    cluster = {"chief": ["10.0.0.1:2222"], "worker": ["10.0.0.2:2222", "10.0.0.3:2222"], "ps": ["10.0.0.4:2222"]}
    task = distributed.read_tf_config({"cluster": cluster, "task": {"type": "worker", "index": 1}})
    assert (task.task_type, task.task_index, task.num_workers, task.address) == ("worker", 1, 2, "10.0.0.3:2222")
    assert not task.is_chief
    assert distributed.read_tf_config(json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}})).is_chief
    # Without a chief job, worker 0 is the chief.
    assert distributed.read_tf_config(
        {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}
    ).is_chief


@pytest.mark.parametrize(
    "tf_config, message",
    [
        ("{not json", "not valid JSON"),
        ({"task": {"type": "worker", "index": 0}}, '"cluster"'),
        ({"cluster": {"worker": ["a:1"]}}, '"task"'),
        ({"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}, "not a job"),
        ({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}, '"index" must be in [0, 1)'),
        ({"cluster": {"worker": ["no-port"]}, "task": {"type": "worker", "index": 0}}, '"host:port"'),
        ({"cluster": {"trainer": ["a:1"]}, "task": {"type": "trainer", "index": 0}}, "unknown job 'trainer'"),
    ],
)
def test_read_tf_config_names_the_bad_field(tf_config, message):
    with pytest.raises(ValueError) as error:
        distributed.read_tf_config(tf_config)
    assert message in str(error.value)


def test_missing_tf_config_says_how_to_set_it(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG environment variable"):
        distributed.read_tf_config()


def test_cluster_must_fit_the_mode():
    sync_only = distributed.ClusterTask({"worker": ["a:1", "b:2"]}, "worker", 0)
    distributed.check_cluster_for_mode(sync_only, "sync")
    with pytest.raises(
        ValueError, match=r"needs a \"chief\", \"worker\" and \"ps\" job; TF_CONFIG lacks \['chief', 'ps'\]"
    ):
        distributed.check_cluster_for_mode(sync_only, "async")
    with_ps = distributed.ClusterTask({"chief": ["c:1"], "worker": ["a:1"], "ps": ["p:1"]}, "chief", 0)
    distributed.check_cluster_for_mode(with_ps, "async")
    with pytest.raises(ValueError, match='takes no "ps" job'):
        distributed.check_cluster_for_mode(with_ps, "sync")
    with pytest.raises(ValueError, match="`mode` must be one of"):
        distributed.check_cluster_for_mode(with_ps, "hogwild")


def test_local_cluster_has_distinct_free_ports():
    cluster = distributed.local_cluster(3, num_ps=2, chief=True)
    addresses = [address for job in ("chief", "worker", "ps") for address in cluster[job]]
    assert [len(cluster[job]) for job in ("chief", "worker", "ps")] == [1, 3, 2]
    assert len(set(addresses)) == 6


def test_trainers_per_mode():
    cluster = {"chief": ["c:1"], "worker": ["a:1", "b:2"], "ps": ["p:1"]}
    assert distributed.ClusterTask(cluster, "chief", 0).num_trainers("async") == 2  # the chief only schedules
    assert distributed.ClusterTask(cluster, "chief", 0).num_trainers("sync") == 3  # a listed chief trains too
    assert distributed.ClusterTask({"worker": ["a:1", "b:2"]}, "worker", 0).num_trainers("sync") == 2


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"mode": "hogwild"}, "`mode` must be one of"),
        ({"steps": 0}, "`steps` must be >= 1; got 0"),
        ({"checkpoint_every": -1}, "`checkpoint_every` must be >= 0"),
    ],
)
def test_distributed_options_name_the_bad_setting(settings, message):
    with pytest.raises(ValueError, match=message):
        distributed.DistributedOptions(**settings)


def checkpoint_state(out_dir) -> dict | None:
    """`checkpoint.json` of the job's current checkpoint (None: none yet). A checkpoint folder appears complete or
    not at all, but an older one may vanish between listing and reading: then the newer one is read."""
    from mlms_keras.training.distributed.checkpoints import latest_checkpoint

    for _ in range(5):
        folder = latest_checkpoint(out_dir)
        if folder is None:
            return None
        try:
            return json.loads((folder / distributed.CHECKPOINT_STATE).read_text())
        except FileNotFoundError:
            continue
    raise AssertionError(f"{out_dir}: checkpoints keep vanishing")


def test_a_checkpoint_of_the_other_mode_is_refused(tmp_path):
    from mlms_keras.training.distributed.checkpoints import read_checkpoint

    # The layout of jobs made before checkpoint folders (files in the job's folder): still read.
    (tmp_path / distributed.CHECKPOINT_STATE).write_text(json.dumps({"mode": "async", "step": 4, "losses": [[1, 2.0]]}))
    (tmp_path / distributed.CHECKPOINT_MODEL).write_bytes(b"")
    with pytest.raises(ValueError, match="is a 'async' run; resume it in that mode"):
        read_checkpoint(tmp_path, "sync")
    path, step, log = read_checkpoint(tmp_path, "async")
    assert (path.name, step, log.losses, log.dev_mse, log.best_dev_mse) == ("checkpoint.keras", 4, [(1, 2.0)], [], None)


def test_a_checkpoint_replaces_step_and_weights_together(tmp_path):
    """One folder per checkpoint, renamed into place: a writer killed halfway leaves the previous checkpoint whole,
    and a job of the old layout (files in the job's folder) resumes and then moves to folders."""
    import keras

    import mlms_keras.layers  # noqa: F401 - registers the custom layers for load_model
    from mlms_keras.training.distributed.checkpoints import (
        RunLog,
        latest_checkpoint,
        read_checkpoint,
        write_checkpoint,
    )

    model = _single_process_checkpoint(tmp_path / "legacy.keras")
    (tmp_path / "legacy.keras").rename(tmp_path / distributed.CHECKPOINT_MODEL)
    (tmp_path / distributed.CHECKPOINT_STATE).write_text(json.dumps({"mode": "sync", "step": 3, "losses": []}))
    path, step, _ = read_checkpoint(tmp_path, "sync")
    assert (path, step) == (tmp_path / distributed.CHECKPOINT_MODEL, 3)

    first_weights = [w + 1.0 for w in model.get_weights()]
    model.set_weights(first_weights)
    first = write_checkpoint(tmp_path, model, "sync", 8, RunLog(losses=[(8, 0.5)]))
    assert latest_checkpoint(tmp_path) == first and first.name == "checkpoint-000001"
    assert not (tmp_path / distributed.CHECKPOINT_MODEL).exists()  # the old layout is gone once replaced

    class Killed(BaseException):
        pass

    def save_then_die(filepath, *args, **kwargs):
        original_save(filepath, *args, **kwargs)  # the weights of step 12 are on disk, the step count is not
        raise Killed

    original_save = model.save
    model.set_weights([w + 1.0 for w in first_weights])
    model.save = save_then_die
    with pytest.raises(Killed):
        write_checkpoint(tmp_path, model, "sync", 12, RunLog())
    del model.save
    path, step, log = read_checkpoint(tmp_path, "sync")
    assert (path.parent, step, log.losses) == (first, 8, [(8, 0.5)])
    loaded = keras.models.load_model(path)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), first_weights))
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["checkpoint-000001"]  # no staging left

    second = write_checkpoint(tmp_path, model, "sync", 12, RunLog())
    path, step, _ = read_checkpoint(tmp_path, "sync")
    assert (path.parent, step, second.name) == (second, 12, "checkpoint-000002") and not first.exists()
    loaded = keras.models.load_model(path)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), model.get_weights()))


def test_cli_offers_the_library_modes_and_refuses_slss(capsys):
    from mlms_keras.cli import main
    from mlms_keras.cli.train_distributed import _MODES

    assert _MODES == distributed.MODES
    # The one error wrapper turns the library's ValueError into `mlms train: ...` and exit code 2.
    assert main(["train", "data", "--out", "run", "--model", "slss", "--distributed", "sync"]) == 2
    assert "mlms train: --distributed trains the MLMS model only" in capsys.readouterr().err


def test_the_training_loss_equals_keras_masked_mse():
    """The loss of every distributed step (`training.losses`) is Keras' masked MSE, also with frame weights."""
    import keras
    import tensorflow as tf

    from mlms_keras.models.acoustic import build_mlms_model
    from mlms_keras.training.losses import frame_mask, masked_squared_error_sums

    keras.utils.set_random_seed(1)
    model = build_mlms_model(_tiny_config(), jit_recurrence="never")
    features, targets = next(iter(synthetic_dataset(1, 0, batch_size=3)))
    frame_weights = tf.random.stateless_uniform(targets.shape[:2], seed=[4, 5])
    predictions = model(features)  # carries the Keras mask of the padded frames

    error_sum, valid_frames = masked_squared_error_sums(targets, predictions, frame_mask(features["linguistic"]))
    assert float(error_sum / valid_frames) == pytest.approx(
        float(keras.losses.MeanSquaredError()(targets, predictions)), rel=1e-6
    )
    weighted_sum, _ = masked_squared_error_sums(targets, predictions, frame_mask(features["linguistic"]), frame_weights)
    keras_weighted = keras.losses.MeanSquaredError()(targets, predictions, sample_weight=frame_weights)
    assert float(weighted_sum / valid_frames) == pytest.approx(float(keras_weighted), rel=1e-6)
    # The mask is the padding: the synthetic batch has real frames exactly where its rows are non-zero.
    assert float(valid_frames) == float(np.count_nonzero(np.any(features["linguistic"].numpy() != 0, axis=-1)))


# -- real clusters ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_sync_two_workers_stay_identical_and_equal_single_process_training(tmp_path, start_cluster):
    import keras

    steps = 8
    initial = tmp_path / "initial.keras"
    reference = _single_process_checkpoint(initial)
    cluster = start_cluster(
        distributed.local_cluster(2), mode="sync", steps=steps, learning_rate=1e-2, initial_checkpoint=str(initial)
    )
    for name in ("worker0", "worker1"):
        assert cluster.wait(name) == 0, cluster.log_tail(name)
    out = tmp_path / "out"
    worker0, worker1 = _load_weights(out / "weights_worker0.npz"), _load_weights(out / "weights_worker1.npz")
    assert all(np.array_equal(a, b) for a, b in zip(worker0, worker1)), "the two workers' weights differ"

    # Independent reference: Keras' own single-process training on the union of both workers' batches.
    shares = [list(synthetic_dataset(2, index).as_numpy_iterator()) for index in (0, 1)]
    reference.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", jit_compile=False)
    reference_losses = []
    for step in range(steps):
        first, second = (share[step % len(share)] for share in shares)
        reference_losses.append(float(reference.train_on_batch(*_padded_union(first, second))))
    for ours, theirs, variable in zip(worker0, reference.get_weights(), reference.weights):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=2e-5, err_msg=variable.path)
    losses = [loss for _, loss in json.loads((out / "losses_worker0.json").read_text())]
    np.testing.assert_allclose(losses, reference_losses, rtol=1e-4)
    # The same batches come back every 4 steps: they must cost less the second time.
    assert np.mean(losses[4:8]) < np.mean(losses[0:4])

    # The chief's checkpoint is an ordinary compiled .keras file for single-process code.
    loaded = keras.models.load_model(out / "model.keras")
    assert int(loaded.optimizer.iterations.numpy()) == steps
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), worker0))


@pytest.mark.slow
def test_sync_run_killed_mid_way_resumes_from_the_chief_checkpoint(tmp_path, start_cluster):
    import keras

    import mlms_keras.layers  # noqa: F401 - registers the custom layers for load_model

    steps, settings = 12, dict(mode="sync", steps=12, learning_rate=1e-2, checkpoint_every=4, per_task_out=True)
    first = start_cluster(distributed.local_cluster(2), **settings)
    chief_out = tmp_path / "out" / "worker0"
    deadline = time.monotonic() + PROCESS_TIMEOUT_S
    while checkpoint_state(chief_out) is None:
        assert first.processes["worker0"].poll() is None, first.log_tail("worker0")
        assert time.monotonic() < deadline, "no checkpoint within the timeout"
        time.sleep(0.1)
    first.stop()  # SIGKILL both workers mid-run
    resumed_from = checkpoint_state(chief_out)["step"]
    assert 0 < resumed_from < steps

    second = start_cluster(distributed.local_cluster(2), **settings)  # the same job, on new ports
    for name in ("worker0", "worker1"):
        assert second.wait(name) == 0, second.log_tail(name)
    log = json.loads((chief_out / distributed.TRAINING_LOG).read_text())
    assert log["resumed_from_step"] == resumed_from
    assert [step for step, _ in log["losses"]] == list(range(1, steps + 1))  # each step logged once
    # Adam's step count went on from the checkpoint's (a fresh optimizer would have counted steps - resumed_from).
    assert int(keras.models.load_model(chief_out / "model.keras").optimizer.iterations.numpy()) == steps
    # Worker 1 never saw the checkpoint (its folder is empty): the chief's broadcast made it identical.
    worker0 = _load_weights(chief_out / "weights_worker0.npz")
    worker1 = _load_weights(tmp_path / "out" / "worker1" / "weights_worker1.npz")
    assert all(np.array_equal(a, b) for a, b in zip(worker0, worker1))
    assert checkpoint_state(tmp_path / "out" / "worker1") is None


@pytest.mark.slow
def test_async_chief_two_workers_one_ps_complete_training(tmp_path, start_cluster):
    import keras

    steps = 24
    initial = tmp_path / "initial.keras"
    start = _single_process_checkpoint(initial)
    cluster = start_cluster(
        distributed.local_cluster(2, num_ps=1, chief=True),
        mode="async",
        steps=steps,
        learning_rate=1e-2,
        initial_checkpoint=str(initial),
        checkpoint_every=12,
    )
    assert cluster.wait("chief0") == 0, cluster.log_tail("chief0")
    # Once the chief is gone, the ps and worker processes stop by themselves.
    for name in ("ps0", "worker0", "worker1"):
        assert cluster.wait(name, timeout=PROCESS_TIMEOUT_S + 30) == 0, cluster.log_tail(name)

    out = tmp_path / "out"
    trained = keras.models.load_model(out / "model.keras")
    losses = json.loads((out / "losses_chief0.json").read_text())
    assert [step for step, _ in losses] == list(range(1, steps + 1))  # every scheduled step returned its loss
    assert int(trained.optimizer.iterations.numpy()) == steps
    losses = [loss for _, loss in losses]
    assert np.mean(losses[-6:]) < np.mean(losses[:6])
    # Worker i reads only batches of language i: both language codes moving shows each worker
    # read its own share (a worker reading another's share would leave one code untouched).
    for language in range(NUM_LANGUAGES):
        before = start.get_layer("towers").language_codes.codes[language].numpy()
        after = trained.get_layer("towers").language_codes.codes[language].numpy()
        assert not np.allclose(before, after), f"language {language}'s code never trained"


@pytest.mark.slow
def test_async_training_completes_after_a_worker_is_killed(tmp_path, start_cluster):
    import keras

    import mlms_keras.layers  # noqa: F401 - registers the custom layers for load_model

    steps, kill_after = 40, 10
    cluster = start_cluster(
        distributed.local_cluster(2, num_ps=1, chief=True),
        mode="async",
        steps=steps,
        learning_rate=1e-2,
        checkpoint_every=5,
    )
    deadline = time.monotonic() + PROCESS_TIMEOUT_S
    while (checkpoint_state(tmp_path / "out") or {"step": 0})["step"] < kill_after:
        assert cluster.processes["chief0"].poll() is None, cluster.log_tail("chief0")
        assert time.monotonic() < deadline, "no checkpoint within the timeout"
        time.sleep(0.2)
    cluster.processes["worker1"].send_signal(signal.SIGKILL)
    cluster.processes["worker1"].wait(timeout=30)
    killed_at_step = checkpoint_state(tmp_path / "out")["step"]
    assert killed_at_step < steps and cluster.processes["chief0"].poll() is None  # killed mid-run

    assert cluster.wait("chief0") == 0, cluster.log_tail("chief0")
    out = tmp_path / "out"
    losses = json.loads((out / "losses_chief0.json").read_text())
    assert [step for step, _ in losses] == list(range(1, steps + 1))
    trained = keras.models.load_model(out / "model.keras")
    assert int(trained.optimizer.iterations.numpy()) == steps
    assert "failed" in cluster.logs["chief0"].read_text(errors="replace")  # the chief saw the worker go


@pytest.mark.slow
def test_mlms_train_distributed_async_writes_an_mlms_train_run(tmp_path, prepared, start_cluster):
    from mlms_keras.data import Manifest, load_dataset
    from mlms_keras.training.runs import load_run, remap_ids

    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "mlms_keras.cli",
        "train",
        str(prepared),
        "--out",
        str(out),
        "--preset",
        "tiny",
        "--batch-size",
        "2",
        "--learning-rate",
        "0.01",
        "--distributed",
        "async",
        "--steps",
        "8",
        "--checkpoint-every",
        "4",
        "--quiet",
    ]
    cluster = start_cluster(distributed.local_cluster(2, num_ps=1, chief=True), command=command)
    assert cluster.wait("chief0") == 0, cluster.log_tail("chief0")
    for name in ("ps0", "worker0", "worker1"):
        assert cluster.wait(name, timeout=PROCESS_TIMEOUT_S + 30) == 0, cluster.log_tail(name)

    model, info = load_run(out)  # the run folder of `mlms train`
    assert info["complete"] and info["distributed"]["mode"] == "async"
    assert (info["languages"], info["speakers"]) == (["en-us", "fr"], ["en-us-female", "en-us-male", "fr-female"])
    # The one run record: the model's configuration, the versions and the command that made it.
    assert (info["config"]["num_languages"], info["config"]["num_speakers"], info["training"]["steps"]) == (2, 3, 8)
    assert info["versions"]["tensorflow"] and info["command"].startswith("mlms train ")
    log = json.loads((out / distributed.TRAINING_LOG).read_text())
    assert [step for step, _ in log["dev_mse"]] == [4, 8]
    # model.keras holds the best-on-dev weights: recompute its dev MSE with numpy over every real frame.
    manifest = Manifest.load(prepared)
    dev = remap_ids(load_dataset(prepared, "dev", 2, shuffle=False), manifest, info["languages"], info["speakers"])
    squared_error, frames = 0.0, 0
    for features, targets in dev.as_numpy_iterator():
        real = np.any(features["linguistic"] != 0, axis=-1)
        predictions = model.predict_on_batch(features)
        squared_error += float(np.sum(np.mean((predictions - targets) ** 2, axis=-1)[real]))
        frames += int(real.sum())
    assert squared_error / frames == pytest.approx(log["best_dev_mse"], rel=1e-4)
    assert log["best_dev_mse"] == min(mse for _, mse in log["dev_mse"])

    # The settings a resume must match are recorded, and the chief refuses other ones before it joins anything.
    settings = info["settings"]
    assert (settings["seed"], settings["steps"], settings["distributed_mode"]) == (0, 8, "async")
    assert settings["dataset_fingerprint"] == manifest.fingerprint
    chief = distributed.ClusterTask(distributed.local_cluster(2, num_ps=1, chief=True), "chief", 0)
    other_seed = subprocess.run(
        [*command, "--seed", "1"],
        env=dict(os.environ, TF_CONFIG=chief.to_tf_config()),
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT_S,
    )
    assert other_seed.returncode == 2, other_seed.stderr
    assert "seed: recorded 0, now 1" in other_seed.stderr, other_seed.stderr


if __name__ == "__main__":
    _task_main(json.loads(sys.argv[1]))
