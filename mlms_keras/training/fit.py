"""Training MLMS / SLSS acoustic models with one resumable `model.fit` (the work of `mlms train`).

`train(model, train_dataset, dev_dataset, out_dir, TrainingOptions(epochs=...))` runs one `fit` with the callbacks
of `mlms_keras.training.callbacks`:

- `PerLanguageDevMSE`: dev MSE of each language (masked, pooled over frames), logged as `val_mse_<code>`;
- `AcousticMetricsCallback`: dev MCD, F0 RMSE and V/UV error in vocoder units (needs the output normalisation
  statistics of the prepared dataset);
- `BestModelCheckpoint`: `best.keras`, the model with the lowest dev MSE (`val_loss`) so far, written atomically;
- `ResumableEarlyStopping`: stops after `early_stopping_patience` epochs without a lower `val_loss`;
- `keras.callbacks.TensorBoard`: logs under `logs/`;
- `HistoryFile`: `history.json`, one record per finished epoch, written atomically;
- `keras.callbacks.BackupAndRestore`: weights, optimizer state and epoch in `backup/` after every epoch.

Killed at any point, the same call (or the same `mlms train` command) resumes from the last finished epoch. At the
end `model.keras` holds the best-on-dev weights and `training.json` (`mlms_keras.training.runs`) the configuration,
the dataset reference, the history and the best epoch.

`train_on_prepared(dataset_path, out_dir, TrainingOptions(...), preset=...)` builds the model for a prepared
dataset (`mlms prepare`) and calls `train`.

Example:
    >>> result = train_on_prepared("data/prepared", "runs/mlms", TrainingOptions(epochs=10))  # doctest: +SKIP
    >>> result.best_val_loss, result.model_path                                              # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras

from mlms_keras.data.manifest import Manifest
from mlms_keras.data.pipeline import load_dataset
from mlms_keras.models.acoustic import MLMSConfig, build_mlms_model, build_slss_model
from mlms_keras.models.growth import zero_untrained_language_inputs
from mlms_keras.training.callbacks import (
    AcousticMetricsCallback,
    BestModelCheckpoint,
    HistoryFile,
    PerLanguageDevMSE,
    ResumableEarlyStopping,
    StopFile,
    with_frame_mask,
)
from mlms_keras.training.resume import backed_up_epochs, fast_forward
from mlms_keras.training.runs import (
    BACKUP_FOLDER,
    BEST_MODEL_NAME,
    FINAL_MODEL_NAME,
    HISTORY_NAME,
    LOG_FOLDER,
    RUN_INFO_NAME,
    STOP_FILE_NAME,
    check_run_settings,
    is_complete,
    model_config,
    new_run_record,
    remap_ids,
    run_settings,
    select_tables,
    write_run_record,
)
from mlms_keras.utils.fileio import save_model_atomically

__all__ = ["TrainingOptions", "TrainingResult", "prepared_run_settings", "train", "train_on_prepared"]


@dataclasses.dataclass(frozen=True)
class TrainingOptions:
    """The settings of one training run (the options of `mlms train`).

    Attributes:
        epochs: maximum epochs.
        batch_size: utterances per batch (`train_on_prepared`; `train` takes ready batches).
        learning_rate: Adam learning rate (`train` uses it only for a model that is not compiled yet).
        early_stopping_patience: epochs without a lower dev MSE before stopping (None: never stop early).
        seed: seeds the initialisation and the shuffling (`train_on_prepared`).
        chunk_frames: truncated-BPTT chunk length (frames) of the training batches; None: whole utterances
            (`train_on_prepared`).
        steps_per_epoch: batches per epoch drawn from the endlessly repeated, reshuffled training stream (a fixed
            compute budget per epoch whatever the amount of data); None: one pass over the training data.
    """

    epochs: int = 30
    batch_size: int = 16
    learning_rate: float = 1e-3
    early_stopping_patience: int | None = 5
    seed: int = 0
    chunk_frames: int | None = None
    steps_per_epoch: int | None = None


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


def train(
    model: keras.Model,
    train_dataset,
    dev_dataset,
    out_dir,
    options: TrainingOptions = TrainingOptions(),
    *,
    language_names=(),
    output_stats=None,
    metrics_dataset=None,
    metric_max_batches: int | None = None,
    run_info: dict | None = None,
    callbacks=(),
    verbose="auto",
) -> TrainingResult:
    """Trains an acoustic model with best-checkpointing, resumption, early stopping and dev metrics.

    Calling it again with the same `out_dir` after a kill resumes from the last finished epoch, on the batches the
    uninterrupted run would have seen (`mlms_keras.training.resume.fast_forward`), so the result is the same. A
    resume with other settings (`run_settings`: the model configuration, the epoch budget, and the dataset and
    training settings of `train_on_prepared`) is refused, naming each difference. A finished run (its
    `training.json` says `"complete": true`) is an error: choose a new `out_dir` or delete the folder.

    Args:
        model: a model from `build_mlms_model` / `build_slss_model` (compiled here with Adam at
            `options.learning_rate` and MSE unless it is already compiled).
        train_dataset: `tf.data.Dataset` of `({"linguistic" (batch, frames, D), "language" (batch,),
            "speaker" (batch,)}, acoustic (batch, frames, 49))`, normalised, padding frames all-zero.
        dev_dataset: the same form; its loss is the dev MSE (`val_loss`).
        out_dir: run folder (`best.keras`, `model.keras`, `training.json`, `history.json`, `logs/`, `backup/`).
            Creating `out_dir/STOP` ends the run after the epoch under way, as early stopping would (`StopFile`).
        options: `epochs`, `early_stopping_patience`, `steps_per_epoch` (for an endless, `repeat=True`, training
            dataset) and `learning_rate` are used here.
        language_names: language names by id, for the `val_mse_<name>` logs.
        output_stats: `(output_mean, output_std)` (49,) each, to add the dev MCD / F0 RMSE / V/UV error of
            `AcousticMetricsCallback`; None skips them.
        metrics_dataset: dev batches `(inputs, targets, mask)` for those metrics, e.g. `load_dataset(...,
            frame_mask="speech")` to score without silence as Merlin does; default: `dev_dataset` with its
            padding mask.
        metric_max_batches: dev batches those metrics use (None: all).
        run_info: extra JSON-serialisable facts for `training.json` (dataset path, language and speaker tables;
            `"command"`, the command line, defaults to this process's; `"settings"`, a dict of further settings a
            resume must match, added to those of `mlms_keras.training.runs.run_settings`).
        callbacks: extra callbacks, run after the metric callbacks and before the checkpointing ones.
        verbose: passed to `fit`.

    Returns:
        A `TrainingResult`.
    """
    out_dir = Path(out_dir)
    if is_complete(out_dir):
        raise FileExistsError(
            f"{out_dir}: this run is already complete ({out_dir / RUN_INFO_NAME}); choose a new --out folder or "
            "delete it"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    if not getattr(model, "compiled", False) or model.optimizer is None:
        model.compile(optimizer=keras.optimizers.Adam(options.learning_rate), loss="mse")

    history_path = out_dir / HISTORY_NAME
    metric_callbacks = [PerLanguageDevMSE(dev_dataset, language_names)]
    if output_stats is not None:
        metric_data = metrics_dataset if metrics_dataset is not None else with_frame_mask(dev_dataset)
        metric_callbacks.append(AcousticMetricsCallback(metric_data, *output_stats, max_batches=metric_max_batches))
    checkpoint = BestModelCheckpoint(out_dir / BEST_MODEL_NAME, history_path=history_path)
    history_file = HistoryFile(history_path)
    stop_file = StopFile(out_dir / STOP_FILE_NAME)
    run_callbacks = [keras.callbacks.TerminateOnNaN(), *metric_callbacks, *callbacks, checkpoint, stop_file]
    if options.early_stopping_patience is not None:
        run_callbacks.append(
            ResumableEarlyStopping(history_path, monitor="val_loss", patience=options.early_stopping_patience)
        )
    run_callbacks += [
        keras.callbacks.TensorBoard(log_dir=str(out_dir / LOG_FOLDER), write_graph=False),
        history_file,
        # Last, so a backup only counts an epoch once every other callback has recorded it.
        keras.callbacks.BackupAndRestore(str(out_dir / BACKUP_FOLDER), double_checkpoint=True),
    ]
    facts = dict(run_info or {})
    extra_settings = facts.pop("settings", None)
    record = new_run_record(
        model,
        command=facts.pop("command", None),
        epochs=int(options.epochs),
        early_stopping_patience=options.early_stopping_patience,
        **facts,
    )
    record["settings"] = run_settings(record["config"], options, extra_settings)
    check_run_settings(out_dir, record["settings"])
    write_run_record(out_dir, record)
    # A resumed run trains on the batches the uninterrupted run would have seen (the same result).
    train_dataset = fast_forward(train_dataset, backed_up_epochs(out_dir / BACKUP_FOLDER), options.steps_per_epoch)
    model.fit(
        train_dataset,
        validation_data=dev_dataset,
        epochs=options.epochs,
        callbacks=run_callbacks,
        steps_per_epoch=options.steps_per_epoch,
        verbose=verbose,
    )

    history = history_file.as_history()
    if len(history.get("loss", [])) < len(history.get("val_loss", [])):
        # tf.data reads a truncated GZIP shard as a short one: an epoch with no training step is a damaged shard
        # (`Manifest.shard_paths` names it first where dataset.json records the shard sizes; older datasets don't).
        raise ValueError(
            f"{out_dir}: an epoch read no training batch from the dataset's shards; a shard is truncated or corrupt: "
            "run `mlms prepare` again into a new folder"
        )
    if checkpoint.best_epoch is None:
        raise FloatingPointError(
            f"{out_dir}: no epoch gave a finite dev MSE ({history.get('val_loss')}); lower the learning rate"
        )
    best_model = keras.models.load_model(out_dir / BEST_MODEL_NAME)
    model.set_weights(best_model.get_weights())
    save_model_atomically(model, out_dir / FINAL_MODEL_NAME)
    record.update(
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
    if stop_file.stopped_epoch is not None:
        record["stopped_by"] = f"{STOP_FILE_NAME} file, after epoch {stop_file.stopped_epoch + 1}"
    write_run_record(out_dir, record)
    return TrainingResult(
        model=model,
        model_path=out_dir / FINAL_MODEL_NAME,
        history=history,
        best_epoch=checkpoint.best_epoch,
        best_val_loss=checkpoint.best,
        epochs_run=record["epochs_run"],
    )


def _plan_on_prepared(dataset_path, options: TrainingOptions, choice: dict):
    """`(manifest, config, language_codes, speaker_names, facts)` of a `train_on_prepared` run; `choice` holds its
    keyword arguments `preset`, `model_type`, `languages`, `speakers`, `code_init`, `language_space_dim` and
    `config_overrides`. `facts` are its `training.json` facts, `"settings"` (what a resume must match) included."""
    model_type, preset = choice.get("model_type", "mlms"), choice.get("preset", "small")
    if model_type not in ("mlms", "slss"):
        raise ValueError(f"model_type must be 'mlms' or 'slss'. Received: {model_type!r}")
    manifest = Manifest.load(dataset_path)
    language_codes, speaker_names = select_tables(manifest, choice.get("languages"), choice.get("speakers"))
    if model_type == "slss" and (len(speaker_names) != 1 or len(language_codes) != 1):
        raise ValueError(
            f"an SLSS model is one language and one speaker; the selection has languages {language_codes} and "
            f"speakers {speaker_names}: pass --languages CODE --speakers NAME"
        )
    overrides = {"code_init": choice.get("code_init", "random"), **(choice.get("config_overrides") or {})}
    if choice.get("language_space_dim") is not None:
        overrides["language_space_dim"] = int(choice["language_space_dim"])
    config = MLMSConfig.preset(
        preset,
        input_dim=manifest.input_dim,
        num_languages=len(language_codes),
        num_speakers=len(speaker_names),
        **overrides,
    )
    facts = {
        "dataset": str(Path(dataset_path).absolute()),
        "model_type": model_type,
        "preset": preset,
        "languages": language_codes,
        "speakers": speaker_names,
        "speaker_languages": [manifest.speakers[name]["language"] for name in speaker_names],
        "training": {
            "batch_size": options.batch_size,
            "learning_rate": options.learning_rate,
            "seed": options.seed,
            "chunk_frames": options.chunk_frames,
            "steps_per_epoch": options.steps_per_epoch,
        },
    }
    facts["settings"] = {**facts, "dataset_fingerprint": manifest.fingerprint}
    return manifest, config, language_codes, speaker_names, facts


def prepared_run_settings(dataset_path, options: TrainingOptions = TrainingOptions(), **choice) -> dict:
    """The settings `train_on_prepared(dataset_path, OUT, options, **choice)` records in `training.json` and a
    resume must match (`mlms_keras.training.runs.run_settings`): the model configuration, the epoch budget, the
    dataset, its content fingerprint (`Manifest.fingerprint`), the tables and the training settings.

    Args:
        dataset_path: the prepared dataset folder.
        options: the `TrainingOptions`.
        **choice: `train_on_prepared`'s model arguments (`preset`, `model_type`, `languages`, `speakers`,
            `code_init`, `language_space_dim`, `config_overrides`).
    """
    _, config, _, _, facts = _plan_on_prepared(dataset_path, options, choice)
    # The configuration as the built model reports it (what `train` records), not as the preset gives it.
    model = (build_mlms_model if facts["model_type"] == "mlms" else build_slss_model)(config)
    return run_settings(model_config(model), options, facts["settings"])


def train_on_prepared(
    dataset_path,
    out_dir,
    options: TrainingOptions = TrainingOptions(),
    *,
    preset: str = "small",
    model_type: str = "mlms",
    languages: list[str] | None = None,
    speakers: list[str] | None = None,
    code_init: str = "random",
    language_space_dim: int | None = None,
    config_overrides: dict | None = None,
    command: str | None = None,
    verbose="auto",
) -> TrainingResult:
    """Builds a model for a prepared dataset and trains it with `train` (the work of `mlms train`).

    Args:
        dataset_path: prepared dataset folder (`mlms prepare`).
        out_dir: run folder; an interrupted run resumes when called again with the same arguments.
        options: the training settings (Adam at `options.learning_rate`).
        preset: model size preset ("tiny", "small", "paper").
        model_type: "mlms" or "slss" (the paper's single-language single-speaker baseline; needs one speaker).
        languages, speakers: see `mlms_keras.training.runs.select_tables`.
        code_init: "random", "one_hot" or "one_hot_fixed" (paper sec. 4.1; the one-hot ones need L >= U / L == U).
        language_space_dim: L, overriding the preset's.
        config_overrides: other `MLMSConfig` fields overriding the preset (e.g. `{"relu_units": 64}`).
        command: the command line recorded in `training.json` (default: this process's).
        verbose: passed to `fit`.

    Returns:
        A `TrainingResult`.
    """
    manifest, config, language_codes, speaker_names, facts = _plan_on_prepared(
        dataset_path,
        options,
        dict(
            preset=preset,
            model_type=model_type,
            languages=languages,
            speakers=speakers,
            code_init=code_init,
            language_space_dim=language_space_dim,
            config_overrides=config_overrides,
        ),
    )

    # Seeded before the datasets too: their shuffle seeds derive from TensorFlow's global seed, so the batches are a
    # function of `options.seed` alone, not of what this process ran before (a resumed run must see the same ones).
    keras.utils.set_random_seed(options.seed)

    def split(name, **settings):
        # cache="auto": a small selection (an SLSS baseline on limited data) is kept in memory after one pass.
        data = load_dataset(
            dataset_path,
            name,
            options.batch_size,
            languages=language_codes,
            speakers=speaker_names,
            cache="auto",
            **settings,
        )
        return remap_ids(data, manifest, language_codes, speaker_names)

    train_data = split(
        "train", seed=options.seed, chunk_frames=options.chunk_frames, repeat=options.steps_per_epoch is not None
    )
    dev_data = split("dev", shuffle=False)
    metric_data = split("dev", shuffle=False, frame_mask="speech")  # Merlin scores without silence
    keras.utils.set_random_seed(options.seed)
    model = (build_mlms_model if model_type == "mlms" else build_slss_model)(config)
    # Layout languages outside the selection have no training data: their own input rows start (and stay) zero.
    zero_untrained_language_inputs(model, manifest.layout, language_codes)
    model.compile(optimizer=keras.optimizers.Adam(options.learning_rate), loss="mse")

    run_info = {**facts, "command": command}
    return train(
        model,
        train_data,
        dev_data,
        out_dir,
        options,
        language_names=language_codes,
        output_stats=(manifest.output_mean, manifest.output_std),
        metrics_dataset=metric_data,
        run_info=run_info,
        verbose=verbose,
    )
