"""The chief's files of a distributed job, and the model and optimizer a job starts from.

Only the chief writes, into the job's `out_dir`:

- `checkpoint-<n>/`, every `checkpoint_every` steps: one folder holding `checkpoint.keras` (the compiled model with
  its optimizer state) and `checkpoint.json` (the mode, the step and the logs so far). The folder is written under a
  temporary name and renamed into place in one step, so the step count and the weights are always replaced
  together: a kill leaves the previous checkpoint or the new one, never the weights of one with the step of the
  other. The highest `n` is the checkpoint; the older folders are removed after each rename. A job made before
  this layout left `checkpoint.keras` + `checkpoint.json` in `out_dir` itself: they are still read (and removed
  once a new checkpoint is written);
- `best.keras`, at an evaluation with a new lowest dev MSE: the compiled model;
- `model.keras`, at the end: the best-on-dev weights with a dev set, else the last ones;
- `training_log.json`, at the end: mode, cluster, loss of every step, dev MSE, time.

All `.keras` files are ordinary compiled Keras models (`keras.models.load_model` opens them in single-process code),
and a job starts from one as well: its own `checkpoint.keras` when resuming, or any `.keras` file single-process
training wrote. Every file is written atomically (`mlms_keras.utils.fileio`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from mlms_keras.training.losses import frame_mask, masked_squared_error_sums
from mlms_keras.training.runs import BEST_MODEL_NAME, FINAL_MODEL_NAME
from mlms_keras.utils.fileio import atomic_output, atomic_write_json, save_model_atomically

__all__ = [
    "CHECKPOINT_FOLDER",
    "CHECKPOINT_MODEL",
    "CHECKPOINT_STATE",
    "TRAINING_LOG",
    "RunLog",
    "build_model_and_optimizer",
    "evaluate_dev_mse",
    "has_checkpoint",
    "latest_checkpoint",
    "read_checkpoint",
    "record_dev_mse",
    "write_checkpoint",
    "write_final_model_and_log",
]

logger = logging.getLogger(__name__)

CHECKPOINT_MODEL = "checkpoint.keras"
CHECKPOINT_STATE = "checkpoint.json"
#: A checkpoint folder's name: `checkpoint-<n>`, n counting the checkpoints written into the job's folder.
CHECKPOINT_FOLDER = "checkpoint-{:06d}"
_FOLDER_PATTERN = re.compile(r"^checkpoint-(\d+)$")
TRAINING_LOG = "training_log.json"


@dataclasses.dataclass
class RunLog:
    """What a job has recorded so far; a resumed job goes on from its checkpoint's record.

    Attributes:
        losses: `[(step, loss)]`, resumed steps included.
        dev_mse: `[(step, dev MSE)]` at every checkpoint and at the end (chief only).
        best_dev_mse: the lowest of `dev_mse` (None before the first evaluation).
        step_seconds: for each step of this process's run, the time (s, from the start of its loop) at which it
            saw the step finish (not saved in checkpoints).
    """

    losses: list[tuple[int, float]] = dataclasses.field(default_factory=list)
    dev_mse: list[tuple[int, float]] = dataclasses.field(default_factory=list)
    best_dev_mse: float | None = None
    step_seconds: list[float] = dataclasses.field(default_factory=list)


def _checkpoint_folders(out_dir) -> list[tuple[int, Path]]:
    """The complete checkpoint folders in `out_dir`, `(n, path)` by `n` (temporary folders are not among them)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    found = [(_FOLDER_PATTERN.match(path.name), path) for path in out_dir.iterdir() if path.is_dir()]
    return sorted((int(match.group(1)), path) for match, path in found if match)


def latest_checkpoint(out_dir) -> Path | None:
    """The folder holding the checkpoint to resume from: the newest `checkpoint-<n>/`, else (a job made before that
    layout) `out_dir` itself when it holds `checkpoint.keras` and `checkpoint.json`; None when there is none."""
    folders = _checkpoint_folders(out_dir)
    if folders:
        return folders[-1][1]
    legacy = Path(out_dir)
    if (legacy / CHECKPOINT_STATE).is_file() and (legacy / CHECKPOINT_MODEL).is_file():
        return legacy
    return None


def has_checkpoint(out_dir) -> bool:
    """True when `out_dir` holds a checkpoint to resume from (`latest_checkpoint`)."""
    return latest_checkpoint(out_dir) is not None


def read_checkpoint(out_dir, mode: str) -> tuple[Path, int, RunLog]:
    """The checkpoint in `out_dir`: `(checkpoint.keras path, steps done, the log so far)`.

    Raises:
        ValueError: the checkpoint is of another mode.
    """
    folder = latest_checkpoint(out_dir)
    if folder is None:
        raise FileNotFoundError(f"{out_dir}: no checkpoint to resume from")
    state = json.loads((folder / CHECKPOINT_STATE).read_text())
    if state.get("mode") != mode:
        raise ValueError(
            f"{folder / CHECKPOINT_STATE} is a {state.get('mode')!r} run; resume it in that mode or use another "
            "output folder"
        )
    log = RunLog(
        losses=[tuple(entry) for entry in state.get("losses", [])],
        dev_mse=[tuple(entry) for entry in state.get("dev_mse", [])],
        best_dev_mse=state.get("best_dev_mse"),
    )
    return folder / CHECKPOINT_MODEL, int(state["step"]), log


def write_checkpoint(out_dir, model, mode: str, step: int, log: RunLog) -> Path:
    """Writes a new checkpoint folder (`checkpoint.keras`: model and optimizer state; `checkpoint.json`: mode, step,
    log) under a temporary name, renames it into place (the one step that replaces the checkpoint), then removes
    the older checkpoints. Returns the new folder."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    folders = _checkpoint_folders(out_dir)
    name = CHECKPOINT_FOLDER.format(folders[-1][0] + 1 if folders else 1)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir))
    try:
        model.save(staging / CHECKPOINT_MODEL)
        state = {
            "mode": mode,
            "step": step,
            "losses": log.losses,
            "dev_mse": log.dev_mse,
            "best_dev_mse": log.best_dev_mse,
        }
        (staging / CHECKPOINT_STATE).write_text(json.dumps(state), encoding="utf-8")
        os.rename(staging, out_dir / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _remove_old_checkpoints(out_dir, keep=out_dir / name)
    return out_dir / name


def _remove_old_checkpoints(out_dir: Path, keep: Path | None) -> None:
    """Removes every checkpoint but `keep`: older folders, the files of the old layout, killed writers' staging."""
    for _, folder in _checkpoint_folders(out_dir):
        if folder != keep:
            shutil.rmtree(folder, ignore_errors=True)
    for staging in out_dir.glob(".checkpoint-*.tmp"):
        shutil.rmtree(staging, ignore_errors=True)
    for name in (CHECKPOINT_STATE, CHECKPOINT_MODEL):
        (out_dir / name).unlink(missing_ok=True)


def evaluate_dev_mse(model, dataset) -> float:
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
        return masked_squared_error_sums(targets, predictions, frame_mask(features["linguistic"]))

    error_sum, valid_frames = 0.0, 0.0
    for features, targets, *_ in dataset:
        batch_error, batch_frames = batch_sums(features, targets)
        error_sum += float(batch_error)
        valid_frames += float(batch_frames)
    return error_sum / valid_frames if valid_frames else float("nan")


def record_dev_mse(model, dev_dataset, step: int, log: RunLog, out_dir) -> bool:
    """Evaluates `model` on `dev_dataset`, logs it, and writes `best.keras` at a new lowest dev MSE.

    Returns:
        True when this is the lowest dev MSE so far (False without a dev set).
    """
    if dev_dataset is None:
        return False
    dev_mse = evaluate_dev_mse(model, dev_dataset)
    log.dev_mse.append((step, dev_mse))
    logger.info("step %d: dev MSE %.5f", step, dev_mse)
    if log.best_dev_mse is None or dev_mse < log.best_dev_mse:
        log.best_dev_mse = dev_mse
        save_model_atomically(model, Path(out_dir) / BEST_MODEL_NAME)
        return True
    return False


def write_final_model_and_log(out_dir, model, keep_last: bool, summary: dict) -> Path:
    """Writes `model.keras` and `training_log.json` and removes the checkpoint (nothing is left to resume).

    Args:
        out_dir: the job's folder.
        model: the model with the last weights.
        keep_last: whether the last weights are the ones to keep; otherwise `best.keras` becomes `model.keras`.
        summary: the `training_log.json` content.

    Returns:
        The `model.keras` path.
    """
    out_dir = Path(out_dir)
    model_path = out_dir / FINAL_MODEL_NAME
    if keep_last:
        save_model_atomically(model, model_path)
    else:
        with atomic_output(model_path) as temporary:
            shutil.copyfile(out_dir / BEST_MODEL_NAME, temporary)
    atomic_write_json(out_dir / TRAINING_LOG, summary)
    _remove_old_checkpoints(out_dir, keep=None)
    return model_path


def build_model_and_optimizer(strategy, source_path, model_config, jit_recurrence, learning_rate, optimizer_factory):
    """Builds the model and its optimizer inside `strategy.scope()`, with `source_path`'s weights and state.

    Args:
        strategy: the `tf.distribute` strategy the variables live in.
        source_path: a `.keras` file to start from, or None for a fresh `build_mlms_model(model_config)`.
        model_config: the `MLMSConfig` of a fresh model.
        jit_recurrence: the towers' XLA mode (also replaces the source's).
        learning_rate: Adam's learning rate when neither `optimizer_factory` nor the source gives an optimizer.
        optimizer_factory: None, or a zero-argument callable returning a Keras optimizer.

    Returns:
        `(model, optimizer)`: the model compiled with the optimizer (so `model.save` stores the optimizer state
        beside the weights, as `fit` runs do); the optimizer built on every trainable variable, with the
        source's state when it has a fitting one of the same type.
    """
    import keras

    import mlms_keras.layers  # noqa: F401 - registers the custom layers before loading
    from mlms_keras.models.acoustic import build_mlms_model

    source = keras.models.load_model(source_path) if source_path is not None else None
    with strategy.scope():
        if source is not None:
            config = source.get_config()
            for layer in config["layers"]:
                if "jit_recurrence" in layer["config"]:
                    layer["config"]["jit_recurrence"] = jit_recurrence
            model = keras.Model.from_config(config)
        else:
            model = build_mlms_model(model_config, jit_recurrence=jit_recurrence)
        if optimizer_factory is not None:
            optimizer = optimizer_factory()
        elif source is not None and getattr(source, "optimizer", None) is not None:
            optimizer = keras.optimizers.deserialize(keras.optimizers.serialize(source.optimizer))
        else:
            optimizer = keras.optimizers.Adam(learning_rate)
        optimizer.build(model.trainable_variables)
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
