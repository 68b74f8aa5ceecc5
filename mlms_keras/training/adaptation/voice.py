"""Adapting a zoo voice to a new language and speaker in one call (`mlms adapt VOICE DATASET ...`): the result is a
new zoo voice folder that `mlms say` and `mlms zoo info` use.

Why here and not in `mlms_keras.zoo`: this is adaptation work (the paper's sec. 4.2 variants on both models,
resumable like `adapt_on_prepared`); the zoo package only defines, finds and writes voice folders (`save_voice`).

The steps of `adapt_voice`:

1. **Checks** (`check_adaptation_data`): the language code is known to the universe (`get_language`, which
   suggests close codes), new to the voice, and in the dataset with the speaker; the speaker is new to the voice;
   the dataset has the voice's sample rate; and the dataset's feature layout is the voice's layout grown by the
   dataset's languages (`FeatureLayout.add_language`, in the dataset layout's order), as
   `mlms prepare CORPUS DATASET --layout-from VOICE` makes it.
2. **Growth** (`mlms_keras.models.growth`): the acoustic and the duration model get zero input rows at the new
   features (`grow_model_inputs`), the input statistics mean 0 and std 1 there (`grow_normalisation`). Training
   uses the voice's statistics, never the dataset's: the old languages must see the inputs they were trained on.
3. **Adaptation**: the acoustic model (`adapt_model_on_prepared`) and then the duration model
   (`adapt_duration_on_prepared`, `mlms zoo train-duration --adapt`'s recipe), each with a new language code and a
   new speaker layer copied from its closest speaker, trained with the chosen variant. Each stage works in
   `OUT/adaptation/<stage>/` and resumes there after a kill; a finished stage leaves its model and `stage.json`.
4. **The voice**: held-out dev metrics of the new pair (MCD, F0 RMSE, V/UV error with natural durations,
   `mlms_keras.zoo.pack.held_out_acoustic_metrics` with the voice's statistics; duration RMSE), then `save_voice`
   into `OUT` with the hashes, provenance, the commands, the metrics and the wall time; the working folder is removed.

**Old languages.** Variant v1 trains only the new language code and the new speaker layer, so every old
language and speaker keeps bit-identical outputs (the new input rows stay zero, and old inputs are zero there).
Variants v2-v4 also train the mean tower, which every language shares (Eq. 1), as the paper defines them: the
old languages' outputs then change. `metadata.json` records which (`adaptation[-1]["old_languages_unchanged"]`).

Example:
    >>> result = adapt_voice("teacher-small", "data/sv-prepared", "sv", "sv-f2", "voices/sv",
    ...                      AdaptationOptions(variant="v1", epochs_per_phase=10))   # doctest: +SKIP
    >>> result.metrics["mcd_db"], result.seconds                                      # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np

import mlms_keras.layers  # noqa: F401  (registers the custom layers for loading a finished stage's model)
from mlms_keras.data.manifest import Manifest
from mlms_keras.frontend.layout import FeatureLayout
from mlms_keras.languages import get_language
from mlms_keras.models.growth import grow_model_inputs, grow_normalisation
from mlms_keras.training.adaptation.driver import AdaptationOptions, AdaptationResult, adapt_model_on_prepared
from mlms_keras.training.adaptation.duration import adapt_duration_on_prepared, duration_pair_metrics
from mlms_keras.training.adaptation.speakers import check_dataset_pair
from mlms_keras.training.resume import claim_settings_file
from mlms_keras.utils.fileio import atomic_write_json, save_model_atomically
from mlms_keras.utils.provenance import command_line
from mlms_keras.zoo import METADATA_NAME, Voice, load_voice, save_voice, sha256_of
from mlms_keras.zoo.pack import held_out_acoustic_metrics

__all__ = ["WORK_FOLDER", "VoiceAdaptationResult", "adapt_voice", "check_adaptation_data"]

logger = logging.getLogger(__name__)

#: The working folder inside the output voice folder while an adaptation is unfinished.
WORK_FOLDER = "adaptation"
_STAGE_RECORD = "stage.json"
_REQUEST_RECORD = "request.json"


@dataclasses.dataclass
class VoiceAdaptationResult:
    """What `adapt_voice` made.

    Attributes:
        folder: the new voice folder.
        name: the new voice's name.
        language, speaker: the added language code and speaker name.
        language_id, speaker_id: their ids in both models.
        variant: `"v1"`..`"v4"`.
        metrics: the new pair's dev metrics: `mcd_db`, `f0_rmse_hz`, `f0_corr`, `vuv_error_percent`,
            `bap_distortion_db`, `utterances`, `frames`, `duration_rmse_frames`, `duration_corr`, `phonemes`.
        seconds: wall time of this call, from loading the voice to writing the new one (a resumed call counts from
            its restart; `metadata.json`'s adaptation record has each stage's own time).
        entry: `save_voice`'s registry entry (files and their sha256).
    """

    folder: Path
    name: str
    language: str
    speaker: str
    language_id: int
    speaker_id: int
    variant: str
    metrics: dict
    seconds: float
    entry: dict


def check_adaptation_data(voice: Voice, manifest: Manifest, language: str, speaker: str, source: str) -> None:
    """Raises a `ValueError` that says what to do when `voice` cannot be adapted to this pair of `manifest`.

    Args:
        voice: the loaded base voice.
        manifest: the prepared dataset.
        language: a language code (checked against the universe: unknown codes get close suggestions).
        speaker: the new speaker's name in the dataset.
        source: how the user named the voice (for the `mlms prepare ... --layout-from` advice).
    """
    _check_new_to_voice(voice, language, speaker, source)
    check_dataset_pair(manifest, language, speaker)
    rates = manifest.data.get("sample_rates_hz") or []
    if rates != [voice.sample_rate]:
        raise ValueError(
            f"{manifest.folder} has audio at {rates} Hz but voice {voice.name!r} is at {voice.sample_rate} Hz; "
            f"resample the corpus to {voice.sample_rate} Hz and prepare it again"
        )
    expected = _grown_layout(voice.layout, manifest.layout.languages)
    corpus = (manifest.data.get("corpus") or {}).get("path") or "CORPUS"
    if expected.fingerprint != manifest.layout.fingerprint:
        raise ValueError(
            f"the dataset {manifest.folder} does not fit voice {voice.name!r}: its feature layout is "
            f"{manifest.layout.fingerprint} ({list(manifest.layout.languages)}), the voice's is "
            f"{voice.layout.fingerprint} ({list(voice.layout.languages)}), and grown by the dataset's languages it "
            f"would be {expected.fingerprint}. Prepare the corpus again for this voice, into a new folder: "
            f"`mlms prepare {corpus} NEW_DATASET --layout-from {source}`"
        )


def _check_new_to_voice(voice: Voice, language: str, speaker: str, source: str) -> None:
    """Raises unless `language` is a known code that `voice` does not speak and `speaker` is not one of its speakers."""
    get_language(language)
    if language in voice.languages:
        raise ValueError(
            f"voice {voice.name!r} ({source}) already speaks {language!r} ({get_language(language).display_name}); "
            f"adaptation adds a new language (the voice has {sorted(voice.languages, key=voice.languages.get)})"
        )
    if speaker in voice.speakers:
        raise ValueError(f"voice {voice.name!r} already has a speaker {speaker!r}; name the new speaker differently")


def _grown_layout(layout: FeatureLayout, languages) -> FeatureLayout:
    """`layout` with each of `languages` it lacks appended, in order (what `mlms prepare --layout-from` builds)."""
    for code in languages:
        layout = layout.add_language(code)
    return layout


def _dataset_with_statistics(manifest: Manifest, input_mean, input_std, output_mean, output_std) -> Manifest:
    """The dataset's manifest carrying the voice's normalisation (for `load_dataset(normalisation=...)`)."""
    normalisation = {
        "inputs": {"mean": np.asarray(input_mean).tolist(), "std": np.asarray(input_std).tolist()},
        "outputs": {"mean": np.asarray(output_mean).tolist(), "std": np.asarray(output_std).tolist()},
    }
    return Manifest(manifest.folder, {**manifest.data, "normalisation": normalisation})


def _candidates(voice: Voice) -> list[tuple[int, int]]:
    """Each speaker of the voice with its own language: the `closest_speaker` candidates (`mlms adapt`'s rule)."""
    return [
        (int(voice.languages[entry["language"]]), int(entry["id"]))
        for entry in voice.speakers.values()
        if entry.get("language") in voice.languages
    ]


def _stage_summary(result: AdaptationResult, history: dict, names: list[str], started: float) -> dict:
    distance = result.speaker_distance
    return {
        "language_id": result.language_id,
        "speaker_id": result.speaker_id,
        "phases": [{"groups": list(phase.groups), "epochs": phase.epochs} for phase in result.phases],
        "initial_speaker": names[distance.speaker],
        "initial_speaker_mse": distance.mse,
        "history": history,
        "seconds": time.perf_counter() - started,
    }


def _claim_work_folder(work: Path, request: dict) -> None:
    """Records what `work` adapts, or raises naming each difference when it holds an unfinished adaptation of
    something else (`mlms_keras.training.resume`)."""
    claim_settings_file(
        work / _REQUEST_RECORD,
        request,
        what="an unfinished adaptation",
        remedy=f"re-run the command that started it to finish it, or delete {work} to start this one",
    )


def _run_stage(folder: Path, model_name: str, run) -> tuple[keras.Model, dict]:
    """A finished stage's `(model, summary)` from `folder`, or `run()`'s, saved there first (resume unit)."""
    if (folder / _STAGE_RECORD).is_file():
        logger.info("%s: stage already finished, reusing it", folder)
        summary = json.loads((folder / _STAGE_RECORD).read_text(encoding="utf-8"))
        return keras.models.load_model(folder / model_name), summary
    folder.mkdir(parents=True, exist_ok=True)
    model, summary = run()
    save_model_atomically(model, folder / model_name)
    atomic_write_json(folder / _STAGE_RECORD, summary)
    return model, summary


def adapt_voice(
    voice: str | os.PathLike,
    dataset: str | os.PathLike,
    language: str,
    speaker: str,
    out_dir: str | os.PathLike,
    options: AdaptationOptions | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    command: str | None = None,
    verbose="auto",
) -> VoiceAdaptationResult:
    """Adapts a zoo voice to a new language and speaker of a prepared dataset and writes the new voice (module doc).

    Re-running the same call after a kill resumes: a finished stage (acoustic, duration) is reused, an unfinished
    one continues from its last finished epoch.

    Args:
        voice: the base voice: a built-in name, a voice folder or a URL (`mlms_keras.zoo.load_voice`).
        dataset: a prepared dataset of the new language (`mlms prepare CORPUS DATASET --layout-from VOICE`) with
            train and dev splits of `speaker`.
        language: the new language's code, e.g. `"sv"` (`mlms languages` lists them).
        speaker: the new speaker's name in the dataset, e.g. `"sv-f2"`.
        out_dir: the new voice folder (must not hold a finished voice).
        options: the variant and training settings of both models (default `AdaptationOptions()`).
        name: the new voice's name (default: the folder's name).
        description: its one-line description (default: says what was adapted to what).
        command: the command recorded in `metadata.json` (default: this process's).
        verbose: passed to `fit`.

    Returns:
        A `VoiceAdaptationResult`.

    Raises:
        ValueError: an unknown language code, a language or speaker the voice already has, a pair the dataset
            lacks, or a dataset that does not fit the voice (`check_adaptation_data`).
        FileExistsError: `out_dir` already holds a voice.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    options = options or AdaptationOptions()
    if (out_dir / METADATA_NAME).is_file():
        raise FileExistsError(f"{out_dir} already holds a voice ({METADATA_NAME}); choose a new --out folder")
    source = os.fspath(voice)
    get_language(language)  # an unknown code fails before anything loads
    base = load_voice(voice)
    _check_new_to_voice(base, language, speaker, source)  # before the dataset: these need no data to answer
    manifest = Manifest.load(dataset)
    check_adaptation_data(base, manifest, language, speaker, source)
    layout = manifest.layout
    input_mean, input_std = grow_normalisation(
        base.input_mean, base.input_std, base.layout.frame_feature_names, layout.frame_feature_names
    )
    statistics = _dataset_with_statistics(manifest, input_mean, input_std, base.output_mean, base.output_std)
    phoneme_mean, phoneme_std = grow_normalisation(
        base.duration_statistics.input_mean, base.duration_statistics.input_std, base.layout.feature_names,
        layout.feature_names,
    )  # fmt: skip
    duration_statistics = dataclasses.replace(
        base.duration_statistics, input_mean=phoneme_mean, input_std=phoneme_std, layout_fingerprint=layout.fingerprint
    )
    candidates = _candidates(base)
    names = {int(entry["id"]): speaker_name for speaker_name, entry in base.speakers.items()}
    work = out_dir / WORK_FOLDER
    base_record = {"name": base.name, "source": source, "metadata_sha256": sha256_of(base.folder / METADATA_NAME)}
    _claim_work_folder(
        work,
        {
            "base_voice": base_record,
            "dataset": str(manifest.folder.absolute()),
            "dataset_fingerprint": manifest.fingerprint,
            "language": language,
            "speaker": speaker,
            "options": dataclasses.asdict(options),
        },
    )

    def acoustic_stage():
        stage_started = time.perf_counter()
        model = grow_model_inputs(base.acoustic_model, base.layout.frame_feature_names, layout.frame_feature_names)
        result, history = adapt_model_on_prepared(
            model,
            manifest.folder,
            language,
            speaker,
            work / "acoustic",
            options,
            normalisation=statistics,
            candidates=candidates,
            verbose=verbose,
        )
        return model, _stage_summary(result, history, names, stage_started)

    def duration_stage():
        stage_started = time.perf_counter()
        model = grow_model_inputs(base.duration_model, base.layout.feature_names, layout.feature_names)
        result, history = adapt_duration_on_prepared(
            model,
            duration_statistics,
            manifest.folder,
            language,
            speaker,
            work / "duration",
            options,
            candidates=candidates,
            verbose=verbose,
        )
        return model, _stage_summary(result, history, names, stage_started)

    acoustic, acoustic_summary = _run_stage(work / "acoustic", "acoustic.keras", acoustic_stage)
    duration, duration_summary = _run_stage(work / "duration", "duration.keras", duration_stage)
    ids = [(summary["language_id"], summary["speaker_id"]) for summary in (acoustic_summary, duration_summary)]
    if ids[0] != ids[1]:
        raise RuntimeError(
            f"the adapted pair has ids {ids[0]} in the acoustic model but {ids[1]} in the duration model of "
            f"{base.folder}; the voice's two models must have the same language and speaker tables"
        )
    language_id, speaker_id = ids[0]
    metrics = {
        **held_out_acoustic_metrics(
            acoustic, {language: language_id}, {speaker: speaker_id}, manifest.folder, statistics=statistics
        )[language],
        **duration_pair_metrics(
            duration, duration_statistics, manifest.folder, language, speaker, language_id, speaker_id
        ),
    }
    name = name or out_dir.resolve().name
    description = description or (
        f"{base.name} adapted to {get_language(language).display_name} ({language}): speaker {speaker}, "
        f"variant {options.variant}"
    )
    seconds = time.perf_counter() - started
    record = {
        "base_voice": base_record,
        "dataset": str(manifest.folder.absolute()),
        "feature_layout": layout.fingerprint,
        "language": language,
        "speaker": speaker,
        "variant": options.variant,
        "old_languages_unchanged": options.variant == "v1",
        "options": dataclasses.asdict(options),
        "acoustic": acoustic_summary,
        "duration": duration_summary,
        "seconds": seconds,
    }
    entry = save_voice(
        out_dir,
        name=name,
        acoustic_model=acoustic,
        duration_model=duration,
        layout=layout,
        normalisation={
            "input_mean": input_mean,
            "input_std": input_std,
            "output_mean": base.output_mean,
            "output_std": base.output_std,
        },
        duration_statistics=duration_statistics,
        languages={**base.languages, language: language_id},
        speakers={
            **base.speakers,
            speaker: {"id": speaker_id, "language": language, "gender": manifest.speakers[speaker].get("gender")},
        },
        sample_rate=base.sample_rate,
        description=description,
        extra_metadata=_extra_metadata(base.metadata, manifest, record, metrics, command),
    )
    shutil.rmtree(work, ignore_errors=True)
    return VoiceAdaptationResult(
        folder=out_dir,
        name=name,
        language=language,
        speaker=speaker,
        language_id=language_id,
        speaker_id=speaker_id,
        variant=options.variant,
        metrics=metrics,
        seconds=seconds,
        entry=entry,
    )


def _extra_metadata(base: dict, manifest: Manifest, record: dict, metrics: dict, command: str | None) -> dict:
    """The new voice's metrics, commands, times and adaptation records: the base voice's, plus this adaptation."""
    language = record["language"]
    section = json.loads(json.dumps(base.get("metrics") or {}))  # a deep copy of the base voice's metrics
    section.setdefault("per_language", {})[language] = dict(metrics, split="dev", dataset=record["dataset"])
    commands = list(base.get("commands") or [])
    if manifest.data.get("command"):
        commands.append(manifest.data["command"])
    commands.append(command or command_line())
    return {
        "metrics": section,
        "commands": commands,
        "training_time_s": {**(base.get("training_time_s") or {}), f"adapt_{language}": record["seconds"]},
        "adapted_languages": {**(base.get("adapted_languages") or {}), language: record["variant"]},
        "training": base.get("training") or {},
        "adaptation": list(base.get("adaptation") or []) + [record],
    }
