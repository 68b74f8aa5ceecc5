"""The run format: what `mlms train`, `mlms adapt` and distributed training leave in a run folder, and how to
read it back.

A run folder holds:

- `model.keras`: the final model (best dev epoch), an ordinary compiled Keras model;
- `best.keras`: the best model so far, while training;
- `training.json`: the run record (`RUN_FORMAT`): model configuration, epochs, the dataset it read, the language
  and speaker tables (model id = position), the history, the best epoch, provenance and `complete`, and
  `settings`, what a resume must match (`run_settings`; written when the run starts, checked by
  `check_run_settings`; a record made before `settings` existed is checked on its older fields, `recorded_settings`);
- `history.json`: one record per finished epoch (resume);
- `backup/`: the `keras.callbacks.BackupAndRestore` state (resume);
- `logs/`: TensorBoard logs.

A model trained on a prepared dataset knows a subset of its languages and speakers, in the dataset's id order
(`select_tables`); `remap_ids` maps the dataset's ids to the model's.

Example:
    >>> model, record = load_run("runs/mlms")                     # doctest: +SKIP
    >>> record["languages"], record["speakers"]                   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlms_keras.training.resume import check_settings
from mlms_keras.utils.fileio import atomic_write_json
from mlms_keras.utils.jsonfile import read_versioned_json
from mlms_keras.utils.provenance import provenance

__all__ = [
    "BACKUP_FOLDER",
    "BEST_MODEL_NAME",
    "FINAL_MODEL_NAME",
    "HISTORY_NAME",
    "LOG_FOLDER",
    "RUN_FORMAT",
    "RUN_FORMAT_VERSION",
    "RUN_INFO_NAME",
    "STOP_FILE_NAME",
    "check_run_settings",
    "is_complete",
    "load_run",
    "model_config",
    "new_run_record",
    "read_run_record",
    "recorded_settings",
    "remap_ids",
    "run_settings",
    "select_tables",
    "write_run_record",
]

RUN_FORMAT = "mlms-training-run"
RUN_FORMAT_VERSION = 1
BEST_MODEL_NAME = "best.keras"
FINAL_MODEL_NAME = "model.keras"
RUN_INFO_NAME = "training.json"
HISTORY_NAME = "history.json"
BACKUP_FOLDER = "backup"
LOG_FOLDER = "logs"
#: Created by hand in a run folder, it ends the training after the epoch under way, keeping the best epoch.
STOP_FILE_NAME = "STOP"


def model_config(model) -> dict | None:
    """The `MLMSConfig.to_dict()` a model reports (`config_of`; an SLSS model has `language_space_dim` 0), as
    `training.json` records it; None for a model not built by `build_mlms_model` / `build_slss_model`."""
    from mlms_keras.models.acoustic import config_of

    try:
        return config_of(model).to_dict()
    except ValueError:  # not built by build_mlms_model / build_slss_model
        return None


def new_run_record(model, command: str | None = None, **fields) -> dict:
    """A fresh `training.json` record for `model`: format, model name and configuration, provenance, `fields`.

    Args:
        model: the Keras model being trained.
        command: the command line to record (default: this process's, `utils.provenance.command_line`).
        **fields: JSON-serialisable facts (epochs, dataset path, language and speaker tables, ...).

    Returns:
        The record, with `"complete": False` unless `fields` says otherwise.
    """
    return {
        "format": RUN_FORMAT,
        "format_version": RUN_FORMAT_VERSION,
        "model_name": model.name,
        "config": model_config(model),
        **provenance(command),
        "complete": False,
        **fields,
    }


def write_run_record(folder, record: dict) -> None:
    """Writes `record` as `folder/training.json`, atomically (numpy values allowed)."""
    atomic_write_json(Path(folder) / RUN_INFO_NAME, record, sort_keys=True)


def read_run_record(folder) -> dict:
    """The `training.json` record of a run folder; errors name the file and say what to do."""
    return read_versioned_json(
        Path(folder) / RUN_INFO_NAME,
        RUN_FORMAT,
        RUN_FORMAT_VERSION,
        what="training-run record",
        remedy="delete the run folder and train again",
    )


def is_complete(folder) -> bool:
    """True when `folder` holds a finished run (`training.json` says `"complete": true`)."""
    return (Path(folder) / RUN_INFO_NAME).is_file() and bool(read_run_record(folder).get("complete"))


#: The fields of a `training.json` made before `settings` was recorded that hold settings (`recorded_settings`).
LEGACY_SETTING_FIELDS = (
    "config",
    "epochs",
    "early_stopping_patience",
    "dataset",
    "model_type",
    "preset",
    "languages",
    "speakers",
    "speaker_languages",
    "training",
)


def run_settings(config: dict | None, options, extra: dict | None = None) -> dict:
    """The settings a resume of a run must match: the model configuration, the epoch budget, and `extra`.

    Args:
        config: the model's configuration as `model_config` reports it.
        options: the run's `TrainingOptions` (`epochs`, `early_stopping_patience`, `steps_per_epoch`).
        extra: further settings (`train_on_prepared`: the dataset, its fingerprint, the tables, the training
            settings).
    """
    return {
        "config": config,
        "epochs": int(options.epochs),
        "early_stopping_patience": options.early_stopping_patience,
        "steps_per_epoch": options.steps_per_epoch,
        **(extra or {}),
    }


def recorded_settings(record: dict) -> dict:
    """A run record's `settings`; for a record made before they were recorded, the settings its older fields
    hold: `LEGACY_SETTING_FIELDS` of a training run, the `adaptation` section of an adapted run (in the form of
    `mlms_keras.training.adaptation.adaptation_run_settings`)."""
    if isinstance(record.get("settings"), dict):
        return record["settings"]
    adaptation = record.get("adaptation")
    if isinstance(adaptation, dict):
        return {
            "base_model": adaptation.get("base_model"),
            "dataset": adaptation.get("dataset"),
            "language": (record.get("languages") or [None])[-1],
            "speaker": (record.get("speakers") or [None])[-1],
            "options": {"variant": adaptation.get("variant"), **(adaptation.get("training") or {})},
        }
    return {key: record[key] for key in LEGACY_SETTING_FIELDS if key in record}


def check_run_settings(folder, settings: dict) -> None:
    """Raises `ValueError` naming each difference when the run in `folder` was started with other `settings`.

    Nothing to check when `folder` holds no `training.json` yet. Settings an older record lacks are named in a
    warning and not checked (`mlms_keras.training.resume.check_settings`).
    """
    folder = Path(folder)
    if not (folder / RUN_INFO_NAME).is_file():
        return
    check_settings(
        folder / RUN_INFO_NAME,
        recorded_settings(read_run_record(folder)),
        settings,
        what="a run",
        remedy=f"run the command that started it to resume it, or choose a new --out folder (or delete {folder})",
    )


def load_run(path):
    """Loads a trained model and its run record.

    Args:
        path: a run folder (with `model.keras` and `training.json`) or a `.keras` file (its folder's
            `training.json` is read when present).

    Returns:
        `(model, record)`: the Keras model and the `training.json` dict (empty when there is none).
    """
    import keras

    import mlms_keras.layers  # noqa: F401 - registers the custom layers with Keras before loading

    path = Path(path)
    model_path = path / FINAL_MODEL_NAME if path.is_dir() else path
    if not model_path.is_file():
        raise FileNotFoundError(
            f"{model_path}: no trained model here; give a run folder from `mlms train` or a .keras file"
        )
    record = read_run_record(model_path.parent) if (model_path.parent / RUN_INFO_NAME).is_file() else {}
    return keras.models.load_model(model_path), record


def select_tables(manifest, languages=None, speakers=None) -> tuple[list[str], list[str]]:
    """The language codes and speaker names a model trained on a prepared dataset knows, in id order.

    Args:
        manifest: a `mlms_keras.data.manifest.Manifest`.
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
    """Maps a `load_dataset` dataset's language and speaker ids (the dataset's tables) to a model's tables.

    Args:
        dataset: a `tf.data.Dataset` of batches `(inputs, targets[, mask])`.
        manifest: the dataset's `Manifest`.
        language_codes, speaker_names: the model's tables (model id = position).

    Returns:
        The dataset with `inputs["language"]` and `inputs["speaker"]` in the model's ids (-1 for ids the model
        does not know).
    """
    import tensorflow as tf

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
