"""`adapt_on_prepared`: adapting a run folder of `mlms train` to a new language and speaker of a prepared dataset
(the work of `mlms adapt RUN`; `mlms reproduce` uses it), resumable in its `--out` run folder, whose settings a
resume must match (`adaptation_run_settings`)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import keras

from mlms_keras.data.manifest import Manifest
from mlms_keras.training.adaptation.driver import AdaptationOptions, AdaptationResult, adapt_model_on_prepared
from mlms_keras.training.adaptation.speakers import check_dataset_pair
from mlms_keras.training.runs import (
    BACKUP_FOLDER,
    FINAL_MODEL_NAME,
    LOG_FOLDER,
    RUN_INFO_NAME,
    check_run_settings,
    is_complete,
    load_run,
    new_run_record,
    write_run_record,
)
from mlms_keras.utils.fileio import save_model_atomically
from mlms_keras.zoo import sha256_of

__all__ = ["adapt_on_prepared", "adaptation_run_settings"]

logger = logging.getLogger(__name__)

#: Facts of the base run's record that an adapted run does not inherit (`new_run_record` writes its own).
_NOT_INHERITED = (
    "history",
    "best_epoch_logs",
    "complete",
    "format",
    "format_version",
    "model_name",
    "config",
    "versions",
    "command",
    "settings",
)


def _check_pair(model_path, record: dict, manifest: Manifest, language: str, speaker: str) -> None:
    """Raises when the base run cannot be adapted to `(language, speaker)` of `manifest`."""
    if not record.get("languages") or not record.get("speakers"):
        raise ValueError(
            f"{model_path}: no language/speaker tables in its training.json; adapt a run made by `mlms train`"
        )
    if record.get("model_type") == "slss":
        raise ValueError(f"{model_path}: an SLSS baseline has no language space to adapt; give an MLMS run")
    if language in record["languages"]:
        raise ValueError(
            f"{model_path} already knows language {language!r}; adaptation adds a new language "
            f"(known: {record['languages']})"
        )
    if speaker in record["speakers"]:
        raise ValueError(f"{model_path} already has speaker {speaker!r}; choose a new speaker")
    check_dataset_pair(manifest, language, speaker)


def adapt_on_prepared(
    model_path,
    dataset_path,
    language: str,
    speaker: str,
    out_dir,
    options: AdaptationOptions | None = None,
    *,
    command: str | None = None,
    verbose="auto",
) -> AdaptationResult:
    """Adapts a model trained by `mlms train` to one language and speaker of a prepared dataset (`mlms adapt`).

    The new speaker's output layer starts from the closest trained speaker (`closest_speaker`, each trained
    speaker tried with its own training language, on the new speaker's training split). Inputs are normalised
    with the base model's dataset statistics when that dataset is still where the base run recorded it.
    `out_dir` gets `model.keras` and `training.json` in the format of `mlms train` (so `load_run`,
    `mlms synth-utterance` and further adaptation read it), with the language and speaker appended to its tables,
    plus `history.json` and TensorBoard `logs/`. A killed run resumes from its last finished epoch when called
    again with the same arguments (`backup/`).

    Args:
        model_path: a run folder from `mlms train` (or its `model.keras`).
        dataset_path: prepared dataset holding the new language and speaker (train and dev splits).
        language: the new language's code, e.g. "pl".
        speaker: the new speaker's name, e.g. "pl-female".
        out_dir: output folder.
        options: the variant and training settings (default `AdaptationOptions()`).
        command: command line recorded in `training.json` (default: this process's).
        verbose: passed to `fit`.

    Returns:
        An `AdaptationResult`.
    """
    out_dir = Path(out_dir)
    options = options or AdaptationOptions()
    if is_complete(out_dir):
        raise FileExistsError(f"{out_dir}: this adaptation is already complete; choose a new --out folder or delete it")
    model, info = load_run(model_path)
    manifest = Manifest.load(dataset_path)
    _check_pair(model_path, info, manifest, language, speaker)
    settings = adaptation_run_settings(model_path, manifest, language, speaker, options)
    _claim_run_folder(out_dir, model, settings, command)
    base_dataset = info.get("dataset")
    normalisation = None
    if base_dataset and Path(base_dataset).resolve() != manifest.folder.resolve():
        if Path(base_dataset).is_dir():
            normalisation = base_dataset
        else:
            logger.warning("base dataset %s is gone; normalising with %s's own statistics", base_dataset, dataset_path)
    stats = Manifest.load(normalisation) if normalisation else manifest
    speaker_languages = info.get("speaker_languages") or [None] * len(info["speakers"])
    candidates = [
        (info["languages"].index(code), s) for s, code in enumerate(speaker_languages) if code in info["languages"]
    ]
    result, history = adapt_model_on_prepared(
        model,
        dataset_path,
        language,
        speaker,
        out_dir,
        options,
        normalisation=stats,
        candidates=candidates or None,
        callbacks=[keras.callbacks.TensorBoard(log_dir=str(out_dir / LOG_FOLDER), write_graph=False)],
        verbose=verbose,
    )
    distance = result.speaker_distance
    logger.info("%s started from %s's output layer", speaker, info["speakers"][distance.speaker])
    save_model_atomically(model, out_dir / FINAL_MODEL_NAME)
    base_facts = {key: value for key, value in info.items() if key not in _NOT_INHERITED}
    record = new_run_record(
        model,
        command=command,
        **{
            **base_facts,
            "languages": info["languages"] + [language],
            "speakers": info["speakers"] + [speaker],
            "speaker_languages": list(speaker_languages) + [language],
            "model_file": FINAL_MODEL_NAME,
            "adaptation": {
                "base_model": str(Path(model_path).absolute()),
                "dataset": str(manifest.folder.absolute()),
                "normalisation": str(stats.folder.absolute()),
                "variant": options.variant,
                "phases": [{"groups": list(p.groups), "epochs": p.epochs} for p in result.phases],
                "language_id": result.language_id,
                "speaker_id": result.speaker_id,
                "initial_speaker": info["speakers"][distance.speaker],
                "initial_speaker_mse": distance.mse,
                "speaker_mse_table": {
                    f"{info['languages'][u]}/{info['speakers'][s]}": v for (u, s), v in distance.table.items()
                },
                "final_dev_mse": history["val_loss"][-1] if history.get("val_loss") else None,
                "training": {
                    "batch_size": options.batch_size,
                    "learning_rate": options.learning_rate,
                    "seed": options.seed,
                    "steps_per_epoch": options.steps_per_epoch,
                },
            },
            "history": history,
            "settings": settings,
            "complete": True,
        },
    )
    write_run_record(out_dir, record)
    return result


def adaptation_run_settings(model_path, manifest: Manifest, language: str, speaker: str, options) -> dict:
    """What a resume of `adapt_on_prepared` must match: the base model (path and sha256 of its model file), the
    dataset and its content fingerprint, the new pair and every `AdaptationOptions` field."""
    model_path = Path(model_path)
    model_file = model_path / FINAL_MODEL_NAME if model_path.is_dir() else model_path
    return {
        "base_model": str(model_path.absolute()),
        "base_model_sha256": sha256_of(model_file),
        "dataset": str(manifest.folder.absolute()),
        "dataset_fingerprint": manifest.fingerprint,
        "language": language,
        "speaker": speaker,
        "options": dataclasses.asdict(options),
    }


def _claim_run_folder(out_dir: Path, model, settings: dict, command: str | None) -> None:
    """Refuses to resume an adaptation in `out_dir` started with other settings; records these (not complete)."""
    if not (out_dir / RUN_INFO_NAME).is_file() and (out_dir / BACKUP_FOLDER).is_dir():
        # Earlier versions wrote training.json only at the end: an unfinished folder of theirs has no record.
        logger.warning("%s: an unfinished adaptation without a record of its settings; resuming it unchecked", out_dir)
    check_run_settings(out_dir, settings)
    write_run_record(out_dir, new_run_record(model, command=command, settings=settings))
