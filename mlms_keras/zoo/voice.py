"""A voice folder: writing one (`save_voice`), finding one (`resolve_voice`) and loading it (`load_voice`).

**Resolution** (`resolve_voice(source)`, which `load_voice` calls):

1. a built-in name (`list_voices()`): the shipped folder, every file checked against the registry's hashes;
2. a local folder: loaded in place, every file checked against its `metadata.json` hashes;
3. a `file://` or `https://` URL of a voice folder: downloaded into the cache and checked
   (`mlms_keras.zoo.cache`; `http://` is refused).

A mismatch is never a silent load: `VoiceHashError` names the file and gives the expected and the actual hash.
Every model file must be listed (`voice_files`), and a folder holding a file its table does not list is refused
(`check_voice_folder`). `sha256` pins the hash of `metadata.json` (which holds the others) for every kind of
source, a built-in name included.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlms_keras.frontend.layout import FeatureLayout
from mlms_keras.utils.fileio import atomic_output, atomic_write_json
from mlms_keras.utils.provenance import provenance
from mlms_keras.zoo.cache import download_voice, is_url
from mlms_keras.zoo.registry import (
    ACOUSTIC_CONFIG_NAME,
    ACOUSTIC_WEIGHTS_NAME,
    DURATION_CONFIG_NAME,
    DURATION_WEIGHTS_NAME,
    METADATA_NAME,
    MODEL_FILES,
    VOICE_FORMAT,
    VOICE_FORMAT_VERSION,
    UnknownVoiceError,
    check_sha256,
    check_voice_folder,
    load_registry,
    pinned_sha256,
    read_voice_metadata,
    sha256_of,
    voice_files,
    zoo_folder,
)

if TYPE_CHECKING:
    import keras

    from mlms_keras.models.duration import DurationStatistics

__all__ = ["Voice", "load_voice", "resolve_voice", "save_voice"]


# Writing a voice --------------------------------------------------------------------------------------------------
def _save_weights_atomically(model: keras.Model, path: Path) -> None:
    with atomic_output(path, suffix=".weights.h5") as temporary:  # Keras insists on the .weights.h5 ending
        model.save_weights(temporary)


def save_voice(
    folder: str | os.PathLike,
    *,
    name: str,
    acoustic_model: keras.Model,
    duration_model: keras.Model,
    layout: FeatureLayout,
    normalisation: dict,
    duration_statistics: DurationStatistics,
    languages: dict[str, int],
    speakers: dict[str, dict],
    sample_rate: int,
    description: str = "",
    extra_metadata: dict | None = None,
) -> dict:
    """Writes a voice folder (`mlms_keras.zoo`'s docstring) and returns its registry entry.

    Args:
        folder: output folder (created).
        name: the voice's name.
        acoustic_model: an MLMS acoustic model (`build_mlms_model`, possibly adapted).
        duration_model: its duration model (`mlms_keras.models.duration.build_duration_model`).
        layout: the `FeatureLayout` of both models' inputs.
        normalisation: dict with `input_mean`, `input_std` ((input_dim,) frame inputs) and `output_mean`,
            `output_std` ((49,) acoustic outputs), as the acoustic model was trained with.
        duration_statistics: `mlms_keras.models.duration.DurationStatistics`.
        languages: language code -> id in both models.
        speakers: speaker name -> dict with at least `id` (both models) and `language` (native language).
        sample_rate: Hz of the training audio.
        description: one line for `mlms zoo list`.
        extra_metadata: more JSON fields (metrics, commands, training time, ...).

    Returns:
        The registry entry: `description`, `path` (the folder name), `languages`, `speakers`, `size_bytes` and
        `files` (name -> sha256, `metadata.json` included).
    """
    import keras

    from mlms_keras.models.acoustic import build_mlms_model, config_of

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    acoustic_config, duration_config = config_of(acoustic_model), config_of(duration_model)
    # Serialise freshly built twins: an adapted model grew its tables in place; the twin has them in its config.
    for model, config, config_name, weights_name, model_name in (
        (acoustic_model, acoustic_config, ACOUSTIC_CONFIG_NAME, ACOUSTIC_WEIGHTS_NAME, "mlms"),
        (duration_model, duration_config, DURATION_CONFIG_NAME, DURATION_WEIGHTS_NAME, "duration"),
    ):
        twin = build_mlms_model(config, name=model_name)
        twin.set_weights(model.get_weights())
        atomic_write_json(folder / config_name, keras.saving.serialize_keras_object(twin))
        _save_weights_atomically(twin, folder / weights_name)
    for code, language_id in languages.items():
        if not 0 <= int(language_id) < acoustic_config.num_languages:
            raise ValueError(
                f"language {code!r} has id {language_id}, but the model has {acoustic_config.num_languages}"
            )
    for speaker, entry in speakers.items():
        if not 0 <= int(entry["id"]) < acoustic_config.num_speakers:
            raise ValueError(
                f"speaker {speaker!r} has id {entry['id']}, but the model has {acoustic_config.num_speakers}"
            )
    metadata = {
        "format": VOICE_FORMAT,
        "format_version": VOICE_FORMAT_VERSION,
        "name": name,
        "description": description,
        "sample_rate": int(sample_rate),
        "languages": {code: int(language_id) for code, language_id in languages.items()},
        "speakers": {speaker: dict(entry, id=int(entry["id"])) for speaker, entry in speakers.items()},
        "acoustic_model": {"config": acoustic_config.to_dict(), "parameters": int(acoustic_model.count_params())},
        "duration_model": {"config": duration_config.to_dict(), "parameters": int(duration_model.count_params())},
        "feature_layout": layout.get_config(),
        "normalisation": {
            key: np.asarray(normalisation[key], np.float64).tolist()
            for key in ("input_mean", "input_std", "output_mean", "output_std")
        },
        "duration_statistics": duration_statistics.to_dict(),
        **provenance(),
        **(extra_metadata or {}),
        "files": {file_name: sha256_of(folder / file_name) for file_name in MODEL_FILES},
    }
    atomic_write_json(folder / METADATA_NAME, metadata)
    files = dict(metadata["files"], **{METADATA_NAME: sha256_of(folder / METADATA_NAME)})
    return {
        "description": description,
        "path": folder.name,
        "languages": sorted(metadata["languages"], key=metadata["languages"].get),
        "speakers": sorted(metadata["speakers"], key=lambda s: metadata["speakers"][s]["id"]),
        "size_bytes": int(sum((folder / file_name).stat().st_size for file_name in files)),
        "files": files,
    }


# Loading ----------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Voice:
    """A loaded voice: the two models and everything needed to use them.

    Attributes:
        name: the voice's name.
        folder: where its files are (the shipped folder, a local folder or the download cache).
        acoustic_model: the MLMS acoustic model (stateless), inputs normalised frames, outputs normalised.
        duration_model: the phoneme duration model.
        layout: the `FeatureLayout` of the inputs.
        input_mean: (input_dim,) float32 frame-input mean.
        input_std: (input_dim,) float32 frame-input standard deviation.
        output_mean: (49,) float32 output mean (`y * std + mean` = vocoder units).
        output_std: (49,) float32 output standard deviation.
        duration_statistics: `DurationStatistics`.
        languages: code -> id.
        speakers: name -> dict(id, language, ...).
        sample_rate: Hz.
        metadata: the whole `metadata.json`.
    """

    name: str
    folder: Path
    acoustic_model: keras.Model
    duration_model: keras.Model
    layout: FeatureLayout
    input_mean: np.ndarray
    input_std: np.ndarray
    output_mean: np.ndarray
    output_std: np.ndarray
    duration_statistics: DurationStatistics
    languages: dict[str, int]
    speakers: dict[str, dict]
    sample_rate: int
    metadata: dict


def _load_models(folder: Path) -> list[keras.Model]:
    import keras

    import mlms_keras.layers  # noqa: F401  (registers the custom layers for deserialization)

    models = []
    for config_name, weights_name in (
        (ACOUSTIC_CONFIG_NAME, ACOUSTIC_WEIGHTS_NAME),
        (DURATION_CONFIG_NAME, DURATION_WEIGHTS_NAME),
    ):
        try:
            config = json.loads((folder / config_name).read_text(encoding="utf-8"))
        except ValueError as error:
            raise ValueError(f"{folder / config_name}: not valid JSON ({error}); copy the voice again") from error
        try:
            model = keras.saving.deserialize_keras_object(config)  # safe mode: no code from the config runs
            model.load_weights(folder / weights_name)
        except Exception as error:  # Keras raises TypeError, KeyError, ValueError, ... for a config it cannot use
            raise ValueError(
                f"{folder}: cannot rebuild the model of {config_name} and {weights_name} ({type(error).__name__}: "
                f"{error}); the voice is damaged or was made by an incompatible mlms-keras"
            ) from error
        models.append(model)
    return models


def _voice_from_folder(folder: Path, metadata: dict) -> Voice:
    try:
        return _voice_from_checked_folder(folder, metadata)
    except KeyError as error:
        raise ValueError(
            f"{folder / METADATA_NAME}: the field {error} is missing; re-create the voice with `mlms zoo pack`"
        ) from error


def _voice_from_checked_folder(folder: Path, metadata: dict) -> Voice:
    from mlms_keras.models.duration import DurationStatistics

    acoustic_model, duration_model = _load_models(folder)
    normalisation = metadata["normalisation"]
    return Voice(
        name=metadata["name"],
        folder=Path(folder),
        acoustic_model=acoustic_model,
        duration_model=duration_model,
        layout=FeatureLayout.from_config(metadata["feature_layout"]),
        input_mean=np.asarray(normalisation["input_mean"], np.float32),
        input_std=np.asarray(normalisation["input_std"], np.float32),
        output_mean=np.asarray(normalisation["output_mean"], np.float32),
        output_std=np.asarray(normalisation["output_std"], np.float32),
        duration_statistics=DurationStatistics.from_dict(metadata["duration_statistics"]),
        languages=dict(metadata["languages"]),
        speakers=dict(metadata["speakers"]),
        sample_rate=int(metadata["sample_rate"]),
        metadata=metadata,
    )


def resolve_voice(source: str | os.PathLike, sha256: str | None = None) -> tuple[Path, dict]:
    """Finds (and downloads when needed) a voice's files, checking every hash.

    Args:
        source: a built-in voice name, a voice folder, or a `file://` / `https://` URL of one.
        sha256: the expected sha256 of the voice's `metadata.json` (which holds the other files' hashes), for any
            kind of source.

    Returns:
        `(folder, metadata)`.

    Raises:
        UnknownVoiceError: listing the built-in voices.
        VoiceHashError: a file's hash differs (the message names the file, the expected and the actual hash).
        VoiceFilesError: a model file unlisted, an unsafe file name, a listed file missing or an unlisted file.
    """
    source = os.fspath(source) if isinstance(source, os.PathLike) else source
    if not isinstance(source, str) or not source.strip():
        raise UnknownVoiceError(f"voice must be a name, a folder or a URL, got {source!r}")
    sha256 = None if sha256 is None else pinned_sha256(sha256)
    try:
        registry = load_registry()
        builtin_folder = zoo_folder()
    except FileNotFoundError:
        registry, builtin_folder = {"voices": {}}, None
    if source in registry["voices"]:
        entry = registry["voices"][source]
        folder = builtin_folder / entry["path"]
        files = voice_files(entry.get("files"), f"built-in voice {source!r}", (*MODEL_FILES, METADATA_NAME))
        if sha256 is not None:
            check_sha256(folder / METADATA_NAME, sha256, f"{source}: {METADATA_NAME}")
        check_voice_folder(folder, files, source)
        return folder, read_voice_metadata(folder / METADATA_NAME, source)
    if is_url(source):
        return download_voice(source, sha256)
    folder = Path(source).expanduser()
    if folder.is_dir():
        if sha256 is not None and (folder / METADATA_NAME).is_file():
            check_sha256(folder / METADATA_NAME, sha256, str(folder / METADATA_NAME))
        metadata = read_voice_metadata(folder / METADATA_NAME, str(folder))
        check_voice_folder(folder, voice_files(metadata.get("files"), str(folder / METADATA_NAME)), str(folder))
        return folder, metadata
    known = ", ".join(sorted(registry["voices"])) or "(none installed)"
    raise UnknownVoiceError(
        f"Unknown voice {source!r}: not a built-in voice, not a folder, not a file:// or https:// URL. "
        f"Built-in voices: {known}. See `mlms zoo list`."
    )


def load_voice(source: str | os.PathLike, sha256: str | None = None) -> Voice:
    """Loads a voice by built-in name, folder or URL (resolution order in this module's docstring).

    Args:
        source: e.g. `"teacher-small"`, `"path/to/voice"`, `"file:///srv/voices/teacher-small"`,
            `"https://example.org/voices/teacher-small"`.
        sha256: the expected sha256 of the voice's `metadata.json` (64 hex digits), which pins every other file.

    Returns:
        A `Voice`.

    Raises:
        UnknownVoiceError: not a built-in name, a folder or a URL.
        VoiceHashError: a file's sha256 differs from the expected one.
        VoiceFilesError: the voice's file table is incomplete or unsafe, or its folder holds an unlisted file.
        OSError: a download failed (and no complete copy is cached).
        ValueError: not a voice.
    """
    folder, metadata = resolve_voice(source, sha256=sha256)
    return _voice_from_folder(folder, metadata)
