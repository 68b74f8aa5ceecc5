"""Training MLMS / SLSS acoustic models with `model.fit`: callbacks, a `train()` driver and the `mlms train` verb.

`train(model, train_dataset, dev_dataset, out_dir, epochs=...)` runs one `fit` with:

- `PerLanguageDevMSE`: dev MSE of each language (masked, pooled over frames), logged as `val_mse_<code>`;
- `mlms_keras.evaluation.metrics.AcousticMetricsCallback`: dev MCD, F0 RMSE and V/UV error in vocoder units (needs the
  output normalisation statistics of the prepared dataset);
- `BestModelCheckpoint`: `best.keras`, the model with the lowest dev MSE (`val_loss`) so far, written atomically;
- `ResumableEarlyStopping`: stops after `patience` epochs without a lower `val_loss`;
- `keras.callbacks.TensorBoard`: logs under `logs/`;
- `HistoryFile`: `history.json`, one record per finished epoch, written atomically;
- `keras.callbacks.BackupAndRestore`: weights, optimizer state and epoch in `backup/` after every epoch.

Killed at any point, the same call (or the same `mlms train` command) resumes: `BackupAndRestore` puts back the
weights and optimizer state of the last finished epoch, and the other callbacks re-read `history.json` (cut at that
epoch) so the best value, the early-stopping count and the history carry on as if nothing happened. At the end
`model.keras` holds the best-on-dev weights and `training.json` the configuration, the dataset reference, the
history and the best epoch.

The dev MSE: Keras's `val_loss` is the mean over dev batches of each batch's masked MSE; the per-language
figures pool squared errors over all non-padded frames and the 49 outputs of that language, so a language's
figure does not depend on how the batches were cut.

Example (a user's own script; see `train` for the driver):
    >>> model.fit(train, validation_data=dev, epochs=30, callbacks=[
    ...     PerLanguageDevMSE(dev, ["en-us", "fr"]), keras.callbacks.EarlyStopping(patience=5)])  # doctest: +SKIP
"""

import argparse
import dataclasses
import json
import logging
import math
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mlms_keras.utils.fileio import atomic_write_json, save_model_atomically  # noqa: F401 - re-exported

logger = logging.getLogger(__name__)

RUN_FORMAT = "mlms-training-run"
RUN_FORMAT_VERSION = 1
BEST_MODEL_NAME = "best.keras"
FINAL_MODEL_NAME = "model.keras"
RUN_INFO_NAME = "training.json"
HISTORY_NAME = "history.json"
BACKUP_FOLDER = "backup"
LOG_FOLDER = "logs"


def write_json_atomically(path, payload):
    """Writes `payload` as JSON (numpy scalars and arrays allowed) atomically (`mlms_keras.utils.fileio`)."""
    atomic_write_json(path, payload, sort_keys=True, default=_json_default)


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def frame_mask(linguistic):
    """`(batch, frames)` float32 mask of real frames: the model's padding is an all-zero linguistic row."""
    return tf.cast(tf.reduce_any(tf.not_equal(linguistic, 0.0), axis=-1), tf.float32)


def with_frame_mask(dataset):
    """`(inputs, targets)` batches -> `(inputs, targets, mask)` with the mask of `frame_mask`; 3-tuples pass as is.

    `AcousticMetricsCallback` wants the mask as a third element.
    """
    if len(dataset.element_spec) >= 3:
        return dataset
    return dataset.map(lambda inputs, targets: (inputs, targets, frame_mask(inputs["linguistic"])))


def _history_records(path, epochs):
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
    language-u sequences and all outputs / (their frame count x output dim), in normalised units. The values go
    into the epoch logs as `val_mse_<name>` (History, TensorBoard and `HistoryFile` see them when this callback
    comes first in the list).

    Args:
        dev_dataset: batches `(inputs, targets[, mask])` with `inputs["language"]` `(batch,)` ids; padded frames
            are all-zero rows of `inputs["linguistic"]`.
        language_names: names indexed by language id (e.g. `["en-us", "en-gb", ...]`); ids beyond it are `lang<id>`.
        max_batches: use only the first `max_batches` batches.

    Attributes:
        last: dict name -> MSE of the last epoch.
    """

    def __init__(self, dev_dataset, language_names=(), max_batches=None):
        super().__init__()
        self.dev_dataset = dev_dataset
        self.language_names = list(language_names)
        self.max_batches = max_batches
        self.last = {}

    def _name(self, language):
        return self.language_names[language] if language < len(self.language_names) else f"lang{language}"

    def compute(self):
        """Returns dict language name -> dev MSE (see the class docstring)."""
        squared_error, values = {}, {}
        for batch_index, element in enumerate(self.dev_dataset):
            if self.max_batches is not None and batch_index >= self.max_batches:
                break
            inputs, targets = element[0], np.asarray(element[1], dtype=np.float64)
            predicted = np.asarray(self.model.predict_on_batch(inputs), dtype=np.float64)
            keep = np.asarray(frame_mask(inputs["linguistic"])).astype(bool)
            for row, language in enumerate(np.asarray(inputs["language"]).reshape(-1)):
                frames = keep[row]
                error = predicted[row][frames] - targets[row][frames]
                name = self._name(int(language))
                squared_error[name] = squared_error.get(name, 0.0) + float(np.sum(error**2))
                values[name] = values.get(name, 0) + error.size
        return {name: squared_error[name] / values[name] for name in squared_error if values[name] > 0}

    def on_epoch_end(self, epoch, logs=None):
        self.last = self.compute()
        if logs is not None:
            logs.update({f"val_mse_{name}": value for name, value in self.last.items()})


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
        self.records = None
        self.first_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.records is None:
            self.records = _history_records(self.path, epoch)
            self.first_epoch = int(epoch)

    def on_epoch_end(self, epoch, logs=None):
        record = {"epoch": int(epoch)}
        record.update({key: float(value) for key, value in (logs or {}).items() if np.ndim(value) == 0})
        self.records.append(record)
        write_json_atomically(self.path, {"epochs": self.records})

    def as_history(self):
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

    def __init__(self, path, monitor="val_loss", history_path=None):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.history_path = history_path
        self.best, self.best_epoch = None, None
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
                f"BestModelCheckpoint monitors {self.monitor!r} but the epoch logs have {sorted(logs or {})}; pass validation data"
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


@dataclasses.dataclass
class TrainingResult:
    """Result of `train`.

    Attributes:
        model: the model with the best-on-dev weights (also saved as `model_path`).
        model_path: `out_dir/model.keras`.
        history: per-key lists over all epochs of the run, resumed parts included.
        best_epoch: 0-based epoch of the lowest `val_loss`.
        best_val_loss: that dev MSE.
        epochs_run: epochs finished in total (resumed parts included).
    """

    model: keras.Model
    model_path: Path
    history: dict
    best_epoch: int
    best_val_loss: float
    epochs_run: int


def _versions():
    return {
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }


def train(
    model,
    train_dataset,
    dev_dataset,
    out_dir,
    epochs,
    optimizer=None,
    early_stopping_patience=5,
    language_names=(),
    output_stats=None,
    metric_max_batches=None,
    metrics_dataset=None,
    run_info=None,
    callbacks=(),
    steps_per_epoch=None,
    verbose="auto",
):
    """Trains an acoustic model with best-checkpointing, resumption, early stopping and dev metrics.

    Calling it again with the same `out_dir` after a kill resumes from the last finished epoch. A finished run
    (its `training.json` says `"complete": true`) is an error: choose a new `out_dir` or delete the folder.

    Args:
        model: a model from `build_mlms_model` / `build_slss_model` (compiled here with `optimizer` and MSE
            unless it is already compiled).
        train_dataset: `tf.data.Dataset` of `({"linguistic" (batch, frames, D), "language" (batch,),
            "speaker" (batch,)}, acoustic (batch, frames, 49))`, normalised, padding frames all-zero.
        dev_dataset: the same form; its loss is the dev MSE (`val_loss`).
        out_dir: run folder (`best.keras`, `model.keras`, `training.json`, `history.json`, `logs/`, `backup/`).
        epochs: maximum epochs.
        optimizer: Keras optimizer for an uncompiled model (default Adam, learning rate 1e-3).
        early_stopping_patience: epochs without a lower dev MSE before stopping (None: never stop early).
        language_names: language names by id, for the `val_mse_<name>` logs.
        output_stats: `(output_mean, output_std)` (49,) each, to add the dev MCD / F0 RMSE / V/UV error of
            `AcousticMetricsCallback`; None skips them.
        metric_max_batches: dev batches those metrics use (None: all).
        metrics_dataset: dev batches `(inputs, targets, mask)` for those metrics, e.g. `load_dataset(...,
            frame_mask="speech")` to score without silence as Merlin does; default: `dev_dataset` with its padding mask.
        run_info: extra JSON-serialisable facts for `training.json` (dataset manifest path, language and speaker
            tables, the command line).
        callbacks: extra callbacks, run after the metric callbacks and before the checkpointing ones.
        steps_per_epoch: batches per epoch for an endless (`repeat=True`) training dataset; None: one pass.
        verbose: passed to `fit`.

    Returns:
        A `TrainingResult`.
    """
    out_dir = Path(out_dir)
    run_info_path = out_dir / RUN_INFO_NAME
    if run_info_path.is_file() and json.loads(run_info_path.read_text(encoding="utf-8")).get("complete"):
        raise FileExistsError(
            f"{out_dir}: this run is already complete ({run_info_path}); choose a new --out folder or delete it"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    if not getattr(model, "compiled", False) or model.optimizer is None:
        model.compile(optimizer=optimizer or keras.optimizers.Adam(1e-3), loss="mse")

    history_path = out_dir / HISTORY_NAME
    metric_callbacks = [PerLanguageDevMSE(dev_dataset, language_names)]
    if output_stats is not None:
        from mlms_keras.evaluation.metrics import AcousticMetricsCallback

        metric_data = metrics_dataset if metrics_dataset is not None else with_frame_mask(dev_dataset)
        metric_callbacks.append(AcousticMetricsCallback(metric_data, *output_stats, max_batches=metric_max_batches))
    checkpoint = BestModelCheckpoint(out_dir / BEST_MODEL_NAME, history_path=history_path)
    history_file = HistoryFile(history_path)
    run_callbacks = [*metric_callbacks, *callbacks, checkpoint]
    if early_stopping_patience is not None:
        run_callbacks.append(ResumableEarlyStopping(history_path, monitor="val_loss", patience=early_stopping_patience))
    run_callbacks += [
        keras.callbacks.TensorBoard(log_dir=str(out_dir / LOG_FOLDER), write_graph=False),
        history_file,
        # Last, so a backup only counts an epoch once every other callback has recorded it.
        keras.callbacks.BackupAndRestore(str(out_dir / BACKUP_FOLDER), double_checkpoint=True),
    ]
    info = {
        "format": RUN_FORMAT,
        "format_version": RUN_FORMAT_VERSION,
        "model_name": model.name,
        "config": _model_config(model),
        "epochs": int(epochs),
        "early_stopping_patience": early_stopping_patience,
        "versions": _versions(),
        "complete": False,
        **(run_info or {}),
    }
    write_json_atomically(run_info_path, info)
    model.fit(
        train_dataset,
        validation_data=dev_dataset,
        epochs=epochs,
        callbacks=run_callbacks,
        steps_per_epoch=steps_per_epoch,
        verbose=verbose,
    )

    history = history_file.as_history()
    if checkpoint.best_epoch is None:
        raise RuntimeError(
            f"{out_dir}: no epoch gave a finite dev MSE ({history.get('val_loss')}); lower the learning rate"
        )
    best_model = keras.models.load_model(out_dir / BEST_MODEL_NAME)
    model.set_weights(best_model.get_weights())
    save_model_atomically(model, out_dir / FINAL_MODEL_NAME)
    info.update(
        complete=True,
        # > 0 when this call resumed a killed run: the epoch the finishing process started at.
        final_session_first_epoch=history_file.first_epoch,
        history=history,
        epochs_run=len(history.get("loss", [])),
        best_epoch=checkpoint.best_epoch,
        best_val_loss=checkpoint.best,
        best_epoch_logs={key: values[checkpoint.best_epoch] for key, values in history.items()},
        model_file=FINAL_MODEL_NAME,
    )
    write_json_atomically(run_info_path, info)
    return TrainingResult(
        model=model,
        model_path=out_dir / FINAL_MODEL_NAME,
        history=history,
        best_epoch=checkpoint.best_epoch,
        best_val_loss=checkpoint.best,
        epochs_run=info["epochs_run"],
    )


def _model_config(model):
    from mlms_keras.models.acoustic import config_of

    try:
        return config_of(model).to_dict()
    except ValueError:
        return None


def load_run(path):
    """Loads a trained model and its run information.

    Args:
        path: a run folder (with `model.keras` and `training.json`) or a `.keras` file (its folder's
            `training.json` is read when present).

    Returns:
        `(model, info)`: the Keras model and the `training.json` dict (empty when there is none).
    """
    path = Path(path)
    model_path = path / FINAL_MODEL_NAME if path.is_dir() else path
    if not model_path.is_file():
        raise FileNotFoundError(
            f"{model_path}: no trained model here; give a run folder from `mlms train` or a .keras file"
        )
    info_path = model_path.parent / RUN_INFO_NAME
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
    import mlms_keras.layers  # noqa: F401 - registers the custom layers with Keras before loading

    return keras.models.load_model(model_path), info


# Prepared datasets (`mlms prepare`) -------------------------------------------------------------------------


def select_tables(manifest, languages=None, speakers=None):
    """The language codes and speaker names a model trained on a prepared dataset knows, in id order.

    Args:
        manifest: a `mlms_keras.data.Manifest`.
        languages: codes to train on; default: the dataset's training-role languages (all when it has no
            roles), so the teacher corpus's adaptation languages (pl, pt-br) stay out of the base model.
        speakers: speaker names; default: every speaker of the chosen languages.

    Returns:
        `(language_codes, speaker_names)`, each in the dataset's id order. Model id i is entry i.
    """
    table = sorted(manifest.data["languages"], key=lambda entry: entry["id"])
    if languages is None:
        roles = [entry.get("role") for entry in table]
        languages = (
            [e["code"] for e in table if e.get("role") == "training"]
            if "training" in roles
            else [e["code"] for e in table]
        )
    for code in languages:
        manifest.language_id(code)  # raises naming the dataset's languages
    language_codes = [e["code"] for e in table if e["code"] in set(languages)]
    speaker_table = sorted(manifest.speakers.values(), key=lambda entry: entry["id"])
    if speakers is None:
        speakers = [s["name"] for s in speaker_table if s["language"] in set(language_codes)]
    for name in speakers:
        manifest.speaker_id(name)
    speaker_names = [s["name"] for s in speaker_table if s["name"] in set(speakers)]
    if not language_codes or not speaker_names:
        raise ValueError(f"{manifest.folder}: the selection languages={languages} speakers={speakers} is empty")
    return language_codes, speaker_names


def remap_ids(dataset, manifest, language_codes, speaker_names):
    """Maps a `load_dataset` dataset's language/speaker ids (the dataset's tables) to a model's tables.

    Args:
        dataset: batches `(inputs, targets[, mask])`.
        manifest: the dataset's `Manifest`.
        language_codes, speaker_names: the model's tables (model id = position).
    """
    language_map = np.full(manifest.num_languages, -1, np.int32)
    for model_id, code in enumerate(language_codes):
        language_map[manifest.language_id(code)] = model_id
    speaker_map = np.full(manifest.num_speakers, -1, np.int32)
    for model_id, name in enumerate(speaker_names):
        speaker_map[manifest.speaker_id(name)] = model_id
    language_map, speaker_map = tf.constant(language_map), tf.constant(speaker_map)

    def remap(inputs, *rest):
        inputs = dict(inputs)
        inputs["language"] = tf.gather(language_map, inputs["language"])
        inputs["speaker"] = tf.gather(speaker_map, inputs["speaker"])
        return (inputs, *rest)

    return dataset.map(remap)


def train_on_prepared(
    dataset_path,
    out_dir,
    preset="small",
    model_type="mlms",
    languages=None,
    speakers=None,
    code_init="random",
    language_space_dim=None,
    epochs=30,
    batch_size=16,
    learning_rate=1e-3,
    early_stopping_patience=5,
    seed=0,
    chunk_frames=None,
    steps_per_epoch=None,
    config_overrides=None,
    command=None,
    verbose="auto",
):
    """Builds a model for a prepared dataset and trains it with `train` (the work of `mlms train`).

    Args:
        dataset_path: prepared dataset folder (`mlms prepare`).
        out_dir: run folder; an interrupted run resumes when called again with the same arguments.
        preset: model size preset ("tiny", "small", "paper").
        model_type: "mlms" or "slss" (the paper's single-language single-speaker baseline; needs one speaker).
        languages, speakers: see `select_tables`.
        code_init: "random", "one_hot" or "one_hot_fixed" (paper sec. 4.1; the one-hot ones need L >= U / L == U).
        language_space_dim: L, overriding the preset's.
        epochs, batch_size, learning_rate, early_stopping_patience, seed: training settings (Adam).
        chunk_frames: truncated-BPTT chunk length (frames) for the training batches; None: whole utterances.
        steps_per_epoch: batches per epoch drawn from the endlessly repeated, reshuffled training stream (a fixed
            compute budget per epoch whatever the amount of data); None: one pass over the training split.
        config_overrides: other `MLMSConfig` fields overriding the preset (e.g. `{"relu_units": 64}`).
        command: the command line, recorded in `training.json`.
        verbose: passed to `fit`.

    Returns:
        A `TrainingResult`.
    """
    from mlms_keras.data import Manifest, load_dataset
    from mlms_keras.models.acoustic import MLMSConfig, build_mlms_model, build_slss_model

    if model_type not in ("mlms", "slss"):
        raise ValueError(f"model_type must be 'mlms' or 'slss'. Received: {model_type!r}")
    manifest = Manifest.load(dataset_path)
    language_codes, speaker_names = select_tables(manifest, languages, speakers)
    if model_type == "slss" and (len(speaker_names) != 1 or len(language_codes) != 1):
        raise ValueError(
            f"an SLSS model is one language and one speaker; the selection has languages {language_codes} and "
            f"speakers {speaker_names}: pass --languages CODE --speakers NAME"
        )
    overrides = {"code_init": code_init, **(config_overrides or {})}
    if language_space_dim is not None:
        overrides["language_space_dim"] = int(language_space_dim)
    config = MLMSConfig.preset(
        preset,
        input_dim=manifest.input_dim,
        num_languages=len(language_codes),
        num_speakers=len(speaker_names),
        **overrides,
    )

    def split(name, **options):
        # cache="auto": a small selection (an SLSS baseline on limited data) is kept in memory after one pass.
        data = load_dataset(
            dataset_path, name, batch_size, languages=language_codes, speakers=speaker_names, cache="auto", **options
        )
        return remap_ids(data, manifest, language_codes, speaker_names)

    train_data = split("train", seed=seed, chunk_frames=chunk_frames, repeat=steps_per_epoch is not None)
    dev_data = split("dev", shuffle=False)
    metric_data = split("dev", shuffle=False, frame_mask="speech")  # Merlin scores without silence
    keras.utils.set_random_seed(seed)
    model = (build_mlms_model if model_type == "mlms" else build_slss_model)(config)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")

    run_info = {
        "dataset": str(Path(dataset_path).absolute()),
        "model_type": model_type,
        "preset": preset,
        "languages": language_codes,
        "speakers": speaker_names,
        "speaker_languages": [manifest.speakers[name]["language"] for name in speaker_names],
        "training": {
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "seed": seed,
            "chunk_frames": chunk_frames,
            "steps_per_epoch": steps_per_epoch,
        },
        "command": command,
    }
    return train(
        model,
        train_data,
        dev_data,
        out_dir,
        epochs=epochs,
        early_stopping_patience=early_stopping_patience,
        language_names=language_codes,
        output_stats=(manifest.output_mean, manifest.output_std),
        metrics_dataset=metric_data,
        run_info=run_info,
        steps_per_epoch=steps_per_epoch,
        verbose=verbose,
    )


def _split_list(text):
    return [item.strip() for item in text.split(",") if item.strip()] if text else None


def _run_train(args):
    if getattr(args, "distributed", None):
        from mlms_keras.training.distributed import run_distributed_train

        return run_distributed_train(args)
    try:
        result = train_on_prepared(
            args.dataset,
            args.out,
            preset=args.preset,
            model_type=args.model,
            languages=_split_list(args.languages),
            speakers=_split_list(args.speakers),
            code_init=args.code_init,
            language_space_dim=args.language_space_dim,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            early_stopping_patience=None if args.patience <= 0 else args.patience,
            seed=args.seed,
            chunk_frames=args.chunk_frames,
            steps_per_epoch=args.steps_per_epoch,
            command=" ".join(["mlms"] + sys.argv[1:]),
            verbose=2 if args.quiet else "auto",
        )
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"mlms train: {error}", file=sys.stderr)
        return 2
    print(
        f"{result.model_path}: best dev MSE {result.best_val_loss:.4f} at epoch {result.best_epoch + 1} of {result.epochs_run}"
    )
    return 0


def add_cli_parser(subparsers):
    """Registers `mlms train`."""
    parser = subparsers.add_parser(
        "train",
        help="train an MLMS (or SLSS baseline) acoustic model on a prepared dataset",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Train an acoustic model on a prepared dataset (`mlms prepare`). OUT gets best.keras (lowest dev MSE so\n"
            "far), model.keras (the best, at the end), training.json (config, tables, history), history.json and\n"
            "TensorBoard logs/. Re-running the same command after a kill resumes from the last finished epoch.\n"
            "By default the dataset's training-role languages are used (the teacher corpus's pl and pt-br stay out\n"
            "for `mlms adapt`).\n\n"
            "examples:\n"
            "  mlms train data/prepared --preset small --out runs/mlms\n"
            "  mlms train data/prepared --model slss --languages fr --speakers fr-female --out runs/slss-fr\n"
            "  tensorboard --logdir runs/mlms/logs"
        ),
    )
    parser.add_argument("dataset", help="prepared dataset folder (with dataset.json)")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument(
        "--preset", default="small", choices=("tiny", "small", "paper"), help="model size (default small)"
    )
    parser.add_argument("--model", default="mlms", choices=("mlms", "slss"), help="mlms (default) or the slss baseline")
    parser.add_argument(
        "--languages", default=None, help="comma-separated language codes (default: training languages)"
    )
    parser.add_argument(
        "--speakers", default=None, help="comma-separated speaker names (default: all of those languages)"
    )
    parser.add_argument(
        "--code-init",
        default="random",
        choices=("random", "one_hot", "one_hot_fixed"),
        help="language code strategy, paper sec. 4.1 (one_hot needs L >= languages, one_hot_fixed L == languages)",
    )
    parser.add_argument("--language-space-dim", type=int, default=None, help="L, basis towers (default: the preset's)")
    parser.add_argument("--epochs", type=int, default=30, help="maximum epochs (default 30)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument(
        "--patience", type=int, default=5, help="early-stopping patience in epochs; 0 disables (default 5)"
    )
    parser.add_argument("--chunk-frames", type=int, default=None, help="truncated-BPTT chunk length in frames")
    parser.add_argument(
        "--steps-per-epoch",
        type=int,
        default=None,
        help="batches per epoch from the repeated training stream (default: one pass)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    from mlms_keras.training.distributed import add_distributed_arguments

    add_distributed_arguments(parser)  # --distributed sync|async (TF_CONFIG), owned by mlms_keras/distributed.py
    parser.set_defaults(handler=_run_train)
