"""The chief's files of a distributed job, and the model and optimizer a job starts from.

Only the chief writes, into the job's `out_dir`:

- `checkpoint.keras` + `checkpoint.json`, every `checkpoint_every` steps: the compiled model with its optimizer
  state; the mode, the step and the logs so far;
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
import shutil
from pathlib import Path

from mlms_keras.training.losses import frame_mask, masked_squared_error_sums
from mlms_keras.training.runs import BEST_MODEL_NAME, FINAL_MODEL_NAME
from mlms_keras.utils.fileio import atomic_output, atomic_write_json, save_model_atomically

__all__ = [
    "CHECKPOINT_MODEL",
    "CHECKPOINT_STATE",
    "TRAINING_LOG",
    "RunLog",
    "build_model_and_optimizer",
    "evaluate_dev_mse",
    "has_checkpoint",
    "read_checkpoint",
    "record_dev_mse",
    "write_checkpoint",
    "write_final_model_and_log",
]

logger = logging.getLogger(__name__)

CHECKPOINT_MODEL = "checkpoint.keras"
CHECKPOINT_STATE = "checkpoint.json"
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


def has_checkpoint(out_dir) -> bool:
    """True when `out_dir` holds a checkpoint to resume from (`checkpoint.keras` and `checkpoint.json`)."""
    return (Path(out_dir) / CHECKPOINT_STATE).is_file() and (Path(out_dir) / CHECKPOINT_MODEL).is_file()


def read_checkpoint(out_dir, mode: str) -> tuple[Path, int, RunLog]:
    """The checkpoint in `out_dir`: `(checkpoint.keras path, steps done, the log so far)`.

    Raises:
        ValueError: the checkpoint is of another mode.
    """
    out_dir = Path(out_dir)
    state = json.loads((out_dir / CHECKPOINT_STATE).read_text())
    if state.get("mode") != mode:
        raise ValueError(
            f"{out_dir / CHECKPOINT_STATE} is a {state.get('mode')!r} run; resume it in that mode or use another "
            "output folder"
        )
    log = RunLog(
        losses=[tuple(entry) for entry in state.get("losses", [])],
        dev_mse=[tuple(entry) for entry in state.get("dev_mse", [])],
        best_dev_mse=state.get("best_dev_mse"),
    )
    return out_dir / CHECKPOINT_MODEL, int(state["step"]), log


def write_checkpoint(out_dir, model, mode: str, step: int, log: RunLog) -> None:
    """Writes `checkpoint.keras` (model and optimizer state) and then `checkpoint.json` (mode, step, log)."""
    out_dir = Path(out_dir)
    save_model_atomically(model, out_dir / CHECKPOINT_MODEL)
    state = {"mode": mode, "step": step, "losses": log.losses, "dev_mse": log.dev_mse, "best_dev_mse": log.best_dev_mse}
    atomic_write_json(out_dir / CHECKPOINT_STATE, state, indent=None)


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
    for name in (CHECKPOINT_STATE, CHECKPOINT_MODEL):
        (out_dir / name).unlink(missing_ok=True)
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
