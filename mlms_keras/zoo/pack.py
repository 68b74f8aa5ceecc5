"""A zoo voice from run folders: an acoustic run and a duration run, with held-out metrics (`mlms zoo pack`)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlms_keras.data.manifest import Manifest
from mlms_keras.data.pipeline import read_utterances
from mlms_keras.evaluation.metrics import evaluate_acoustic
from mlms_keras.training.runs import load_run
from mlms_keras.zoo.registry import load_registry, write_registry
from mlms_keras.zoo.voice import save_voice

if TYPE_CHECKING:
    import keras

__all__ = ["held_out_acoustic_metrics", "pack_voice"]

#: Frames whose linguistic input has one of these phoneme identities are left out of the metrics.
SILENCE_FEATURES = ("C_phoneme=sil", "C_phoneme=pau")


def _ids(table: Sequence[str] | Mapping[str, int]) -> dict[str, int]:
    return dict(table) if isinstance(table, Mapping) else {name: index for index, name in enumerate(table)}


def held_out_acoustic_metrics(
    model: keras.Model,
    languages: Sequence[str] | Mapping[str, int],
    speakers: Sequence[str] | Mapping[str, int],
    prepared: str | os.PathLike,
    split: str = "dev",
    statistics: Manifest | None = None,
) -> dict[str, dict]:
    """Merlin-style metrics of an acoustic model on a prepared split, with natural (aligned) durations.

    Frames of each language are pooled over its utterances; silence and pause frames are left out (their
    `C_phoneme=sil|pau` input). Utterances of languages or speakers the model does not have are skipped.

    Args:
        model: acoustic model.
        languages: its language codes in id order, or a mapping code -> id (only these are scored).
        speakers: its speaker names in id order, or a mapping name -> id.
        prepared: prepared dataset folder.
        split: usually `"dev"`.
        statistics: the normalisation and layout the model was trained with (a `Manifest`); default: the
            prepared dataset's own (an adapted voice keeps its base voice's statistics instead).

    Returns:
        code -> `{mcd_db, f0_rmse_hz, f0_corr, vuv_error_percent, bap_distortion_db, utterances, frames}`, and
        `"all"` pooled over every language.
    """
    from mlms_keras.models.inference import predict  # TensorFlow only when a model is scored

    manifest = statistics if statistics is not None else Manifest.load(prepared)
    language_ids = _ids(languages)
    speaker_ids = _ids(speakers)
    silence = [manifest.layout.index(name) for name in SILENCE_FEATURES]
    references, generated, counts = {}, {}, {}
    for record in read_utterances(prepared, split):
        code, speaker = record["language_code"], record["speaker_name"]
        if code not in language_ids or speaker not in speaker_ids:
            continue
        inputs = {
            "linguistic": manifest.normalise_inputs(record["linguistic"])[None],
            "language": np.array([language_ids[code]], np.int32),
            "speaker": np.array([speaker_ids[speaker]], np.int32),
        }
        predicted = manifest.denormalise_outputs(predict(model, inputs)[0])
        speech = record["linguistic"][:, silence].max(axis=1) < 0.5
        references.setdefault(code, []).append(record["acoustic"][speech])
        generated.setdefault(code, []).append(predicted[speech])
        counts[code] = counts.get(code, 0) + 1
    if not references:
        raise ValueError(f"{prepared}: split {split!r} has no utterance of the model's languages {languages}")
    results = {}
    for code in references:
        reference, prediction = np.concatenate(references[code]), np.concatenate(generated[code])
        results[code] = dict(
            evaluate_acoustic(reference, prediction), utterances=counts[code], frames=int(reference.shape[0])
        )
    reference = np.concatenate([frames for code in references for frames in references[code]])
    prediction = np.concatenate([frames for code in generated for frames in generated[code]])
    results["all"] = dict(
        evaluate_acoustic(reference, prediction), utterances=sum(counts.values()), frames=int(reference.shape[0])
    )
    return results


def _metrics_section(acoustic_metrics: dict, duration_metrics: dict) -> dict:
    """`metadata.json`'s `metrics`: the acoustic metrics with the duration run's dev metrics beside them."""
    duration_keys = ("duration_rmse_frames", "duration_corr")
    return {
        "split": "dev",
        "durations": "natural (aligned) for the acoustic metrics",
        "all": dict(acoustic_metrics.pop("all"), **{key: duration_metrics[key] for key in duration_keys}),
        "per_language": {
            code: dict(
                values, **{key: duration_metrics["per_language"].get(code, {}).get(key) for key in duration_keys}
            )
            for code, values in acoustic_metrics.items()
        },
    }


def pack_voice(
    acoustic_run: str | os.PathLike,
    duration_run: str | os.PathLike,
    prepared: str | os.PathLike,
    out_folder: str | os.PathLike,
    name: str,
    description: str = "",
    commands: Iterable[str] = (),
    timings: dict | None = None,
    registry_path: str | os.PathLike | None = None,
) -> dict:
    """Makes a zoo voice from an acoustic run (`mlms train` / `mlms adapt`) and a duration run.

    Computes the held-out metrics (`held_out_acoustic_metrics` and the duration run's dev metrics), writes the
    voice folder (`save_voice`) and, when `registry_path` is given, adds or replaces the voice's entry there.

    Args:
        acoustic_run: run folder of the final acoustic model (its `training.json` lists languages and speakers).
        duration_run: folder written by `mlms_keras.training.duration.train_duration_on_prepared`
            (`mlms zoo train-duration`).
        prepared: the prepared dataset both were trained on.
        out_folder: the voice folder to write.
        name: the voice's name.
        description: its one-line description.
        commands: the exact commands that rebuild the voice from nothing.
        timings: seconds per step (training time), stored as `training_time_s`.
        registry_path: registry file to update (created when missing).

    Returns:
        The registry entry.
    """
    import keras

    import mlms_keras.layers  # noqa: F401  (registers the custom layers for deserialization)
    from mlms_keras.models.duration import load_duration_statistics
    from mlms_keras.training.duration import DURATION_MODEL_NAME, DURATION_RUN_NAME, DURATION_STATISTICS_NAME

    acoustic_model, info = load_run(acoustic_run)
    duration_folder = Path(duration_run)
    duration_model = keras.models.load_model(duration_folder / DURATION_MODEL_NAME)
    duration_record = json.loads((duration_folder / DURATION_RUN_NAME).read_text(encoding="utf-8"))
    statistics = load_duration_statistics(duration_folder / DURATION_STATISTICS_NAME)
    languages, speakers = list(info["languages"]), list(info["speakers"])
    if duration_record["languages"] != languages or duration_record["speakers"] != speakers:
        raise ValueError(
            f"the acoustic run {acoustic_run} has languages {languages} and speakers {speakers}, the "
            f"duration run {duration_run} {duration_record['languages']} and "
            f"{duration_record['speakers']}: train both on the same dataset, adapting in the same order"
        )
    manifest = Manifest.load(prepared)
    manifest.layout.require_compatible(statistics.layout_fingerprint, what="duration model's inputs")
    metrics = _metrics_section(
        held_out_acoustic_metrics(acoustic_model, languages, speakers, prepared), duration_record["dev_metrics"]
    )
    speaker_languages = info.get("speaker_languages") or [manifest.speakers[s]["language"] for s in speakers]
    speaker_table = {
        speaker: {
            "id": index,
            "language": speaker_languages[index],
            "gender": manifest.speakers.get(speaker, {}).get("gender"),
        }
        for index, speaker in enumerate(speakers)
    }
    sample_rates = manifest.data.get("sample_rates_hz") or []
    if len(sample_rates) != 1:
        raise ValueError(f"{prepared}: a voice needs one sample rate, the dataset has {sample_rates}")
    adaptation = {code: run.get("variant") for code, run in duration_record.get("adaptation", {}).items()}
    entry = save_voice(
        out_folder,
        name=name,
        acoustic_model=acoustic_model,
        duration_model=duration_model,
        layout=manifest.layout,
        normalisation={
            "input_mean": manifest.input_mean,
            "input_std": manifest.input_std,
            "output_mean": manifest.output_mean,
            "output_std": manifest.output_std,
        },
        duration_statistics=statistics,
        languages={code: index for index, code in enumerate(languages)},
        speakers=speaker_table,
        sample_rate=int(sample_rates[0]),
        description=description,
        extra_metadata={
            "metrics": metrics,
            "commands": list(commands),
            "training_time_s": timings or {},
            "adapted_languages": adaptation,
            "training": {
                # epochs_run, best_epoch and stopped_by are the base training's (an adaptation inherits them).
                "acoustic": {
                    k: info.get(k)
                    for k in ("preset", "training", "epochs", "epochs_run", "best_epoch", "stopped_by", "adaptation")
                },
                "duration": {k: duration_record.get(k) for k in ("preset", "training")},
            },
        },
    )
    if registry_path is not None:
        registry_path = Path(registry_path)
        voices = load_registry(registry_path)["voices"] if registry_path.is_file() else {}
        voices[name] = entry
        write_registry(registry_path, voices)
    return entry
