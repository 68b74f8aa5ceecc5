"""Keras callbacks of a training run: dev metrics, the history file, the best checkpoint and early stopping that
survive a kill.

| callback | what it does |
|---|---|
| `PerLanguageDevMSE` | dev MSE of each language (masked, pooled over frames), logged as `val_mse_<code>` |
| `AcousticMetricsCallback` | dev MCD (dB), F0 RMSE (Hz) and V/UV error (%) in vocoder units |
| `HistoryFile` | `history.json`, one record per finished epoch, written atomically |
| `BestModelCheckpoint` | `best.keras`, the model with the lowest `val_loss` so far, written atomically |
| `ResumableEarlyStopping` | stops after `patience` epochs without a lower `val_loss`, counting across a resume |
| `StopFile` | stops at the end of the epoch in which a file appears (a stop by hand that keeps the best epoch) |

A loss that stops being finite ends training at once (`keras.callbacks.TerminateOnNaN`, in every fit loop of the
package) instead of running the remaining epochs on NaN weights; `check_finite_weights` then refuses to save a
model that diverged.

After a kill, `keras.callbacks.BackupAndRestore` puts back the weights and optimizer state of the last finished
epoch; `HistoryFile`, `BestModelCheckpoint` and `ResumableEarlyStopping` re-read `history.json` (cut at that epoch),
so the best value, the early-stopping count and the history carry on as if nothing happened.

The dev MSE: Keras's `val_loss` is the mean over dev batches of each batch's masked MSE; the per-language figures
pool squared errors over all non-padded frames and the 49 outputs of that language
(`mlms_keras.training.losses.masked_squared_error_sums_numpy`), so a language's figure does not depend on how the
batches were cut.

Example:
    >>> model.fit(train, validation_data=dev, epochs=30, callbacks=[
    ...     PerLanguageDevMSE(dev, ["en-us", "fr"]), keras.callbacks.EarlyStopping(patience=5)])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mlms_keras import vocoder
from mlms_keras.evaluation.metrics import f0_rmse_hz, mel_cepstral_distortion_db, vuv_error_percent
from mlms_keras.training.losses import frame_mask, masked_squared_error_sums_numpy
from mlms_keras.utils.fileio import atomic_write_json, save_model_atomically

__all__ = [
    "AcousticMetricsCallback",
    "BestModelCheckpoint",
    "HistoryFile",
    "PerLanguageDevMSE",
    "ResumableEarlyStopping",
    "StopFile",
    "with_frame_mask",
]


def with_frame_mask(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`(inputs, targets)` batches -> `(inputs, targets, mask)` with the padding mask as float32; 3-tuples pass as is.

    `AcousticMetricsCallback` wants the mask as a third element.
    """
    if len(dataset.element_spec) >= 3:
        return dataset
    return dataset.map(lambda inputs, targets: (inputs, targets, tf.cast(frame_mask(inputs["linguistic"]), tf.float32)))


def check_finite_weights(model: keras.Model, what: str, history: dict | None = None) -> None:
    """Raise FloatingPointError naming `what` when any of the model's weights is NaN or infinite (a diverged fit).

    Args:
        model: the trained model.
        what: the run, for the message (e.g. its output folder).
        history: Keras history (`{"loss": [...]}`), to say at which epoch the loss stopped being finite.
    """
    if all(np.isfinite(weights).all() for weights in model.get_weights()):
        return
    losses = (history or {}).get("loss", [])
    epoch = next((index + 1 for index, value in enumerate(losses) if not math.isfinite(value)), None)
    when = f" at epoch {epoch}" if epoch is not None else ""
    raise FloatingPointError(
        f"{what}: training diverged (the loss stopped being finite{when}); lower the learning rate and run again"
    )


def _history_records(path, epochs: int) -> list[dict]:
    """The first `epochs` records of a history file (empty when there is none)."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        records = json.loads(path.read_text(encoding="utf-8"))["epochs"]
    except (ValueError, KeyError) as error:
        raise ValueError(
            f"{path}: unreadable training history ({error}); delete the run folder to start over"
        ) from error
    return [record for record in records if record["epoch"] < epochs]


class PerLanguageDevMSE(keras.callbacks.Callback):
    """Keras callback: the dev-set MSE of each language at the end of every epoch.

    For each language id u present in `dev_dataset`, MSE_u = sum of squared errors over the non-padded frames of
    language-u sequences and all outputs / (their frame count x output dim), in normalised units: Keras's masked
    `"mse"` pooled over the whole dev set (`masked_squared_error_sums_numpy`). The values go into the epoch logs
    as `val_mse_<name>` (History, TensorBoard and `HistoryFile` see them when this callback comes first in the
    list).

    Args:
        dev_dataset: batches `(inputs, targets[, mask])` with `inputs["language"]` `(batch,)` ids; padded frames
            are all-zero rows of `inputs["linguistic"]` (a third element is ignored: only padding is dropped).
        language_names: names indexed by language id (e.g. `["en-us", "en-gb", ...]`); ids beyond it are `lang<id>`.
        max_batches: use only the first `max_batches` batches.

    Attributes:
        last: dict name -> MSE of the last epoch.
    """

    def __init__(self, dev_dataset, language_names=(), max_batches: int | None = None):
        super().__init__()
        self.dev_dataset = dev_dataset
        self.language_names = list(language_names)
        self.max_batches = max_batches
        self.last: dict[str, float] = {}

    def _name(self, language: int) -> str:
        return self.language_names[language] if language < len(self.language_names) else f"lang{language}"

    def compute(self) -> dict[str, float]:
        """Returns dict language name -> dev MSE (see the class docstring)."""
        error_sums, valid_frames = {}, {}
        for batch_index, element in enumerate(self.dev_dataset):
            if self.max_batches is not None and batch_index >= self.max_batches:
                break
            inputs, targets = element[0], np.asarray(element[1])
            predicted = np.asarray(self.model.predict_on_batch(inputs))
            keep = frame_mask(np.asarray(inputs["linguistic"]))
            languages = np.asarray(inputs["language"]).reshape(-1)
            for language in np.unique(languages):
                rows = languages == language
                error_sum, valid = masked_squared_error_sums_numpy(targets[rows], predicted[rows], keep[rows])
                name = self._name(int(language))
                error_sums[name] = error_sums.get(name, 0.0) + error_sum
                valid_frames[name] = valid_frames.get(name, 0.0) + valid
        return {name: error_sums[name] / valid_frames[name] for name in error_sums if valid_frames[name] > 0}

    def on_epoch_end(self, epoch, logs=None):
        self.last = self.compute()
        if logs is not None:
            logs.update({f"val_mse_{name}": value for name, value in self.last.items()})


class AcousticMetricsCallback(keras.callbacks.Callback):
    """Keras callback: dev-set MCD (dB), F0 RMSE (Hz) and V/UV error (%) each epoch, in de-normalised units.

    At the end of every epoch it runs the model over `dev_dataset`, de-normalises targets and predictions
    (`x * output_std + output_mean`), keeps the frames whose mask is 1, pools them over the whole dev set and
    writes `val_mcd_db`, `val_f0_rmse_hz` and `val_vuv_error_percent` into `logs` (the definitions of
    `mlms_keras.evaluation.metrics`). Put it *before* ModelCheckpoint, EarlyStopping or TensorBoard in the
    callbacks list so they see these keys (History always does).

    Args:
        dev_dataset: a `tf.data.Dataset` (or any iterable) of `(inputs, acoustic_normalised, frame_mask)`:
            inputs as the model takes them (e.g. a dict), targets `(batch, frames, 49)`, mask `(batch, frames)` 0/1.
        output_mean, output_std: `(49,)` normalisation statistics of the acoustic features.
        max_batches: score only the first `max_batches` batches (None: all).

    Example:
        >>> callback = AcousticMetricsCallback(dev, stats.mean, stats.std)  # doctest: +SKIP
        >>> model.fit(train, epochs=10, callbacks=[callback, keras.callbacks.ModelCheckpoint(
        ...     "best.keras", monitor="val_mcd_db", save_best_only=True)])  # doctest: +SKIP
    """

    def __init__(self, dev_dataset, output_mean, output_std, max_batches: int | None = None):
        super().__init__()
        self.output_mean = np.asarray(output_mean, dtype=np.float64).reshape(-1)
        self.output_std = np.asarray(output_std, dtype=np.float64).reshape(-1)
        for name, value in (("output_mean", self.output_mean), ("output_std", self.output_std)):
            if value.shape != (vocoder.FEATURE_DIM,):
                raise ValueError(f"{name}: expected shape ({vocoder.FEATURE_DIM},), got {value.shape}.")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{name}: contains NaN or inf.")
        if max_batches is not None and max_batches < 1:
            raise ValueError(f"max_batches: must be >= 1 or None, got {max_batches}.")
        self.dev_dataset = dev_dataset
        self.max_batches = max_batches

    def _denormalise(self, normalised):
        return np.asarray(normalised, dtype=np.float64) * self.output_std + self.output_mean

    def compute(self) -> dict[str, float]:
        """Runs the model over the dev set; returns `{"val_mcd_db", "val_f0_rmse_hz", "val_vuv_error_percent"}`."""
        references, predictions = [], []
        for batch_index, (inputs, targets, mask) in enumerate(self.dev_dataset):
            if self.max_batches is not None and batch_index >= self.max_batches:
                break
            predicted = self.model.predict_on_batch(inputs)
            keep = np.asarray(mask).astype(bool)
            references.append(self._denormalise(np.asarray(targets)[keep]))
            predictions.append(self._denormalise(np.asarray(predicted)[keep]))
        if not references or sum(len(block) for block in references) == 0:
            raise ValueError("dev_dataset: no unmasked frames to score; check the dataset and its frame masks.")
        reference, generated = np.concatenate(references), np.concatenate(predictions)
        return {
            "val_mcd_db": mel_cepstral_distortion_db(reference[:, vocoder.MCEP], generated[:, vocoder.MCEP]),
            "val_f0_rmse_hz": f0_rmse_hz(
                reference[:, vocoder.LF0],
                generated[:, vocoder.LF0],
                reference[:, vocoder.VUV],
                generated[:, vocoder.VUV],
            ),
            "val_vuv_error_percent": vuv_error_percent(reference[:, vocoder.VUV], generated[:, vocoder.VUV]),
        }

    def on_epoch_end(self, epoch, logs=None):
        """Adds the dev-set metrics to `logs`."""
        if logs is None:
            return
        logs.update(self.compute())


class HistoryFile(keras.callbacks.Callback):
    """Keras callback: writes every finished epoch's logs to a JSON file (atomically), resuming where it left off.

    The file is `{"epochs": [{"epoch": 0, "loss": ..., "val_loss": ...}, ...]}`. When `fit` starts at epoch k
    (after `BackupAndRestore` restored a killed run), records from epoch k on are dropped: that epoch is run again.

    Args:
        path: the JSON file.

    Attributes:
        records: the list of per-epoch dicts.
        first_epoch: the epoch this `fit` started at (> 0 on a resumed run).
    """

    def __init__(self, path):
        super().__init__()
        self.path = Path(path)
        self.records: list[dict] | None = None
        self.first_epoch: int | None = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.records is None:
            self.records = _history_records(self.path, epoch)
            self.first_epoch = int(epoch)

    def on_epoch_end(self, epoch, logs=None):
        record = {"epoch": int(epoch)}
        record.update({key: float(value) for key, value in (logs or {}).items() if np.ndim(value) == 0})
        self.records.append(record)
        atomic_write_json(self.path, {"epochs": self.records}, sort_keys=True)

    def as_history(self) -> dict[str, list]:
        """Per-key lists in epoch order, the shape of `History.history`."""
        history = {}
        for record in self.records or []:
            for key, value in record.items():
                if key != "epoch":
                    history.setdefault(key, []).append(value)
        return history


class BestModelCheckpoint(keras.callbacks.Callback):
    """Keras callback: saves the whole model to `path` (atomically) whenever `monitor` reaches a new minimum.

    Unlike `keras.callbacks.ModelCheckpoint`, a resumed run remembers the best value of the epochs before the
    interruption (read from `history_path`), so a worse first epoch after a restart does not overwrite the file.

    Args:
        path: the `.keras` file.
        monitor: log key to minimise (default `val_loss`, the dev MSE).
        history_path: the `HistoryFile` path of this run (None: no resume memory).

    Attributes:
        best, best_epoch: the lowest value so far and its epoch (None before any).
    """

    def __init__(self, path, monitor: str = "val_loss", history_path=None):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.history_path = history_path
        self.best: float | None = None
        self.best_epoch: int | None = None
        self._started = False

    def on_epoch_begin(self, epoch, logs=None):
        if self._started:
            return
        self._started = True
        if self.history_path is not None:
            for record in _history_records(self.history_path, epoch):
                value = record.get(self.monitor)
                if value is not None and (self.best is None or value < self.best):
                    self.best, self.best_epoch = value, record["epoch"]

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise ValueError(
                f"BestModelCheckpoint monitors {self.monitor!r} but the epoch logs have {sorted(logs or {})}; "
                "pass validation data"
            )
        if math.isfinite(value) and (self.best is None or value < self.best):
            self.best, self.best_epoch = float(value), int(epoch)
            save_model_atomically(self.model, self.path)


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """`keras.callbacks.EarlyStopping` that, on a resumed run, counts the epochs without improvement from before the
    interruption (read from `history_path`) instead of starting the count again.

    Args:
        history_path: the `HistoryFile` path of this run.
        **kwargs: as `keras.callbacks.EarlyStopping` (`monitor`, `patience`, `min_delta`, ...; mode min).
    """

    def __init__(self, history_path, **kwargs):
        kwargs.setdefault("mode", "min")
        super().__init__(**kwargs)
        self.history_path = history_path
        self._resumed = False

    def on_epoch_begin(self, epoch, logs=None):
        if self._resumed:
            return
        self._resumed = True
        for record in _history_records(self.history_path, epoch):
            value = record.get(self.monitor)
            if value is None:
                continue
            if self.best is None or value - abs(self.min_delta) < self.best:  # EarlyStopping's rule, mode min
                self.best, self.best_epoch, self.wait = value, record["epoch"], 0
            else:
                self.wait += 1


class StopFile(keras.callbacks.Callback):
    """Ends training at the end of the epoch in which `path` exists: a stop by hand, for a run that must end before
    its epoch budget or early stopping does (the end of a machine's booking, say). The run then finishes as after
    early stopping: the best dev epoch so far is kept, and `stopped_epoch` (0-based) says where it stopped.

    Unlike a kill, the run is complete afterwards; the file is left in place, so the folder shows why it stopped.

    Args:
        path: the file to watch, e.g. `OUT/STOP` (`mlms_keras.training.runs.STOP_FILE_NAME`).
    """

    def __init__(self, path):
        super().__init__()
        self.path = Path(path)
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, epoch, logs=None):
        if self.path.exists():
            self.stopped_epoch = int(epoch)
            self.model.stop_training = True
