"""The zoo of pretrained voices: the preset-folder format, the registry, name resolution, hash checks and caching.

**A voice** is a folder in the style of keras-hub presets:

==========================  ===============================================================================
file                        content
==========================  ===============================================================================
``config.json``             the acoustic model, `keras.saving.serialize_keras_object` (``registered_name`` set)
``model.weights.h5``        its weights
``duration_config.json``    the duration model (`mlms_keras.models.duration`), serialized the same way
``duration.weights.h5``     its weights
``metadata.json``           format and versions, sample rate, languages and speakers with the models' ids,
                            parameter counts, the feature layout, the normalisation statistics (acoustic
                            inputs/outputs and duration model), held-out metrics, the commands that rebuild
                            the voice, training time, and ``files``: the sha256 of every other file
==========================  ===============================================================================

**The registry** (``zoo/registry.json``, shipped as package data with the voices) lists each built-in voice with
its folder and the sha256 of each of its files, ``metadata.json`` included.

**Resolution** (`load_voice(source)`):

1. a built-in name (`list_voices()`): the shipped folder, every file checked against the registry's hashes;
2. a local folder: loaded in place, every file checked against its ``metadata.json`` hashes;
3. a ``file://``, ``https://`` or ``http://`` URL of a voice folder: each file is downloaded once with
   `keras.utils.get_file` into ``$KERAS_HOME/mlms_zoo/<folder name>-<hash of the URL>/`` (``$KERAS_HOME``
   defaults to ``~/.keras``) and checked: ``metadata.json`` against ``sha256=`` when given, every other file
   against the hashes in ``metadata.json``. Files already in the cache with the right hash are not downloaded
   again.

A mismatch is never a silent load: `VoiceHashError` names the file and gives the expected and the actual hash
(a downloaded file that fails is deleted from the cache, so the next try downloads it afresh).

Example:
    >>> from mlms_keras.zoo import list_voices, load_voice
    >>> [voice["name"] for voice in list_voices()]                 # doctest: +SKIP
    ['teacher-small']
    >>> voice = load_voice("teacher-small")                        # doctest: +SKIP
    >>> voice.languages, list(voice.speakers)[:2]                   # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import sys
import urllib.parse
from pathlib import Path

import numpy as np

from mlms_keras.utils.fileio import atomic_output, atomic_write_json

VOICE_FORMAT = "mlms-zoo-voice"
VOICE_FORMAT_VERSION = 1
REGISTRY_FORMAT = "mlms-zoo-registry"
REGISTRY_FORMAT_VERSION = 1
REGISTRY_NAME = "registry.json"
METADATA_NAME = "metadata.json"
ACOUSTIC_CONFIG_NAME = "config.json"
ACOUSTIC_WEIGHTS_NAME = "model.weights.h5"
DURATION_CONFIG_NAME = "duration_config.json"
DURATION_WEIGHTS_NAME = "duration.weights.h5"
MODEL_FILES = (ACOUSTIC_CONFIG_NAME, ACOUSTIC_WEIGHTS_NAME, DURATION_CONFIG_NAME, DURATION_WEIGHTS_NAME)
CACHE_SUBDIR = "mlms_zoo"
URL_SCHEMES = ("file", "http", "https")


class VoiceHashError(ValueError):
    """A voice file's sha256 differs from the expected one (corrupted download, edited or replaced file)."""


class UnknownVoiceError(ValueError):
    """`load_voice` got something that is neither a built-in voice name, a voice folder nor a URL."""


def sha256_of(path, chunk_size=1 << 20) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_hash(path, expected, shown_name):
    actual = sha256_of(path)
    if actual != expected:
        raise VoiceHashError(
            f"{shown_name}: sha256 mismatch: expected {expected}, got {actual}. The file is corrupted or was "
            "changed after the voice was published; download or copy the voice again (a cached download was "
            "removed, so loading again fetches it afresh)."
        )


# Built-in voices -------------------------------------------------------------------------------------------------
def zoo_folder() -> Path:
    """The folder of the shipped voices and their registry.

    After `pip install .` it is the installed `zoo` package (package data); in a source checkout it is the
    repository's ``zoo/`` beside ``mlms_keras/``.
    """
    import importlib.util

    checkout = Path(__file__).resolve().parents[2] / "zoo"
    if (checkout / REGISTRY_NAME).is_file():
        return checkout
    spec = importlib.util.find_spec("zoo")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if (Path(location) / REGISTRY_NAME).is_file():
                return Path(location)
    raise FileNotFoundError(
        "The shipped zoo (zoo/registry.json) is not installed with this copy of mlms-keras; reinstall the "
        "package (`pip install mlms-keras` or `pip install .` from a source checkout)."
    )


def load_registry(path=None) -> dict:
    """The registry (default: the shipped one) as a dict with ``voices``: name -> entry."""
    path = Path(path) if path is not None else zoo_folder() / REGISTRY_NAME
    try:
        registry = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no zoo registry here") from None
    except ValueError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    if registry.get("format") != REGISTRY_FORMAT:
        raise ValueError(
            f"{path}: not a zoo registry (format {registry.get('format')!r}, expected {REGISTRY_FORMAT!r})"
        )
    return registry


def list_voices() -> list[dict]:
    """The built-in voices: dicts with ``name``, ``description``, ``path`` (folder), ``languages``, ``speakers``,
    ``size_bytes`` and ``files`` (file name -> sha256), sorted by name."""
    registry = load_registry()
    folder = zoo_folder()
    voices = []
    for name, entry in sorted(registry["voices"].items()):
        voices.append(dict(entry, name=name, path=str(folder / entry["path"])))
    return voices


# Writing a voice ------------------------------------------------------------------------------------------------
def _atomic_write_json(path, payload):
    atomic_write_json(path, payload, default=_json_default)


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _save_weights_atomically(model, path):
    with atomic_output(path, suffix=".weights.h5") as temporary:  # Keras insists on the .weights.h5 ending
        model.save_weights(temporary)


def _versions() -> dict:
    import keras
    import tensorflow as tf

    from mlms_keras.frontend import espeak

    try:
        from importlib.metadata import version

        package_version = version("mlms-keras")
    except Exception:  # a bare source checkout
        package_version = None
    return {
        "mlms_keras": package_version,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "espeak_ng": espeak.espeak_version(),
    }


def save_voice(
    folder,
    *,
    name,
    acoustic_model,
    duration_model,
    layout,
    normalisation,
    duration_statistics,
    languages,
    speakers,
    sample_rate,
    description="",
    extra_metadata=None,
) -> dict:
    """Write a voice folder (module docstring) and return its registry entry.

    Args:
        folder: output folder (created).
        name: the voice's name.
        acoustic_model: an MLMS acoustic model (`build_mlms_model`, possibly adapted).
        duration_model: its duration model (`mlms_keras.models.duration.build_duration_model`).
        layout: the `FeatureLayout` of both models' inputs.
        normalisation: dict with ``input_mean``, ``input_std`` ((input_dim,) frame inputs) and ``output_mean``,
            ``output_std`` ((49,) acoustic outputs), as the acoustic model was trained with.
        duration_statistics: `mlms_keras.models.duration.DurationStatistics`.
        languages: language code -> id in both models.
        speakers: speaker name -> dict with at least ``id`` (both models) and ``language`` (native language).
        sample_rate: Hz of the training audio.
        description: one line for `mlms zoo list`.
        extra_metadata: more JSON fields (metrics, commands, training time, ...).

    Returns:
        The registry entry: ``description``, ``path`` (the folder name), ``languages``, ``speakers``,
        ``size_bytes`` and ``files`` (name -> sha256, ``metadata.json`` included).
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
        _atomic_write_json(folder / config_name, keras.saving.serialize_keras_object(twin))
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
        "versions": _versions(),
        **(extra_metadata or {}),
        "files": {file_name: sha256_of(folder / file_name) for file_name in MODEL_FILES},
    }
    _atomic_write_json(folder / METADATA_NAME, metadata)
    files = dict(metadata["files"], **{METADATA_NAME: sha256_of(folder / METADATA_NAME)})
    return {
        "description": description,
        "path": folder.name,
        "languages": sorted(metadata["languages"], key=metadata["languages"].get),
        "speakers": sorted(metadata["speakers"], key=lambda s: metadata["speakers"][s]["id"]),
        "size_bytes": int(sum((folder / file_name).stat().st_size for file_name in files)),
        "files": files,
    }


def write_registry(path, voices: dict) -> None:
    """Write a registry file listing ``voices`` (name -> entry from `save_voice`), atomically."""
    _atomic_write_json(
        path,
        {"format": REGISTRY_FORMAT, "format_version": REGISTRY_FORMAT_VERSION, "voices": dict(sorted(voices.items()))},
    )


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
        input_mean, input_std: (input_dim,) float32 frame-input normalisation.
        output_mean, output_std: (49,) float32 output normalisation (`y * std + mean` = vocoder units).
        duration_statistics: `DurationStatistics`.
        languages: code -> id.
        speakers: name -> dict(id, language, ...).
        sample_rate: Hz.
        metadata: the whole ``metadata.json``.
    """

    name: str
    folder: Path
    acoustic_model: object
    duration_model: object
    layout: object
    input_mean: np.ndarray
    input_std: np.ndarray
    output_mean: np.ndarray
    output_std: np.ndarray
    duration_statistics: object
    languages: dict
    speakers: dict
    sample_rate: int
    metadata: dict


def _is_url(source) -> bool:
    return isinstance(source, str) and urllib.parse.urlsplit(source).scheme in URL_SCHEMES


def _cache_root() -> Path:
    return Path(os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras"))


def voice_cache_folder(url: str) -> Path:
    """Where `load_voice(url)` caches a voice: ``$KERAS_HOME/mlms_zoo/<folder name>-<sha256(url)[:12]>``."""
    url = url.rstrip("/")
    base_name = re.sub(r"[^A-Za-z0-9._-]+", "_", urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]) or "voice"
    return _cache_root() / CACHE_SUBDIR / f"{base_name}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def _download(url, file_name, cache_folder, expected_sha256, force=False) -> Path:
    import keras

    origin = f"{url.rstrip('/')}/{file_name}"
    cache_root = _cache_root()
    target = cache_folder / file_name
    # get_file falls back to /tmp/.keras when the cache folder is not writable yet (e.g. missing): create it.
    cache_folder.mkdir(parents=True, exist_ok=True)
    try:
        path = keras.utils.get_file(
            fname=file_name,
            origin=origin,
            file_hash=expected_sha256,
            hash_algorithm="sha256",
            cache_dir=str(cache_root),
            cache_subdir=str(cache_folder.relative_to(cache_root)),
            force_download=force,
        )
    except ValueError as error:
        if expected_sha256 is None or not target.exists() or "hash" not in str(error):
            raise
        actual = sha256_of(target)
        target.unlink()
        raise VoiceHashError(
            f"{origin}: sha256 mismatch: expected {expected_sha256}, got {actual}. The download is corrupted or "
            "the voice was changed on the server; it was removed from the cache, try again or check the URL."
        ) from None
    except Exception as error:  # urllib errors arrive wrapped in a plain Exception by get_file
        raise OSError(f"{origin}: download failed ({error}). Check the URL and the network.") from error
    return Path(path)


def _read_metadata(path, shown_name):
    try:
        metadata = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{shown_name}: no {METADATA_NAME}; this is not a voice folder") from None
    except ValueError as error:
        raise ValueError(f"{shown_name}: {METADATA_NAME} is not valid JSON ({error})") from error
    if metadata.get("format") != VOICE_FORMAT:
        raise ValueError(f"{shown_name}: {METADATA_NAME} is not a voice (format {metadata.get('format')!r})")
    if metadata.get("format_version") != VOICE_FORMAT_VERSION:
        raise ValueError(
            f"{shown_name}: voice format_version {metadata.get('format_version')} is not supported "
            f"(this package reads {VOICE_FORMAT_VERSION}); upgrade mlms-keras"
        )
    return metadata


def _load_models(folder, metadata):
    import keras

    import mlms_keras.layers  # noqa: F401  (registers the custom layers for deserialization)

    models = []
    for config_name, weights_name in (
        (ACOUSTIC_CONFIG_NAME, ACOUSTIC_WEIGHTS_NAME),
        (DURATION_CONFIG_NAME, DURATION_WEIGHTS_NAME),
    ):
        config = json.loads((folder / config_name).read_text(encoding="utf-8"))
        model = keras.saving.deserialize_keras_object(config)
        model.load_weights(folder / weights_name)
        models.append(model)
    return models


def _voice_from_folder(folder, metadata) -> Voice:
    from mlms_keras.frontend.linguistic import FeatureLayout
    from mlms_keras.models.duration import DurationStatistics

    acoustic_model, duration_model = _load_models(folder, metadata)
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


def resolve_voice(source, sha256=None) -> tuple[Path, dict]:
    """Find (and download when needed) a voice's files, checking every hash; returns (folder, metadata).

    Args:
        source: a built-in voice name, a voice folder, or a ``file://`` / ``https://`` / ``http://`` URL of one.
        sha256: for a URL, the expected sha256 of its ``metadata.json`` (which holds the other files' hashes).

    Raises:
        UnknownVoiceError: listing the built-in voices.
        VoiceHashError: a file's hash differs (the message names the file, the expected and the actual hash).
    """
    source = os.fspath(source) if isinstance(source, os.PathLike) else source
    if not isinstance(source, str) or not source.strip():
        raise UnknownVoiceError(f"voice must be a name, a folder or a URL, got {source!r}")
    try:
        registry = load_registry()
        builtin_folder = zoo_folder()
    except FileNotFoundError:
        registry, builtin_folder = {"voices": {}}, None
    if source in registry["voices"]:
        entry = registry["voices"][source]
        folder = builtin_folder / entry["path"]
        for file_name, expected in entry["files"].items():
            _check_hash(folder / file_name, expected, str(folder / file_name))
        return folder, _read_metadata(folder / METADATA_NAME, source)
    if _is_url(source):
        cache_folder = voice_cache_folder(source)
        # Without a known hash, fetch metadata.json every time: it is small and says what the other files must be.
        metadata_path = _download(source, METADATA_NAME, cache_folder, sha256, force=sha256 is None)
        metadata = _read_metadata(metadata_path, source)
        for file_name, expected in metadata.get("files", {}).items():
            _download(source, file_name, cache_folder, expected)
        return cache_folder, metadata
    folder = Path(source).expanduser()
    if folder.is_dir():
        metadata = _read_metadata(folder / METADATA_NAME, str(folder))
        if sha256 is not None:
            _check_hash(folder / METADATA_NAME, sha256, str(folder / METADATA_NAME))
        for file_name, expected in metadata.get("files", {}).items():
            _check_hash(folder / file_name, expected, str(folder / file_name))
        return folder, metadata
    known = ", ".join(sorted(registry["voices"])) or "(none installed)"
    raise UnknownVoiceError(
        f"Unknown voice {source!r}: not a built-in voice, not a folder, not a file:// or https:// URL. "
        f"Built-in voices: {known}. See `mlms zoo list`."
    )


def load_voice(source, sha256=None) -> Voice:
    """Load a voice by built-in name, folder or URL (resolution order in the module docstring).

    Args:
        source: e.g. ``"teacher-small"``, ``"path/to/voice"``, ``"file:///srv/voices/teacher-small"``,
            ``"https://example.org/voices/teacher-small"``.
        sha256: for a URL or folder, the expected sha256 of its ``metadata.json``.

    Returns:
        A `Voice`.

    Raises:
        UnknownVoiceError, VoiceHashError, OSError (download failed), ValueError (not a voice).
    """
    folder, metadata = resolve_voice(source, sha256=sha256)
    return _voice_from_folder(folder, metadata)


# Packing a trained voice ----------------------------------------------------------------------------------------
def held_out_acoustic_metrics(model, languages, speakers, prepared, split="dev"):
    """Merlin-style metrics of an acoustic model on a prepared split, with natural (aligned) durations.

    Frames of each language are pooled over its utterances; silence and pause frames are left out (their
    `C_phoneme=sil|pau` input). Utterances of languages or speakers the model does not have are skipped.

    Args:
        model: acoustic model; `languages` (codes) and `speakers` (names) list its tables in id order.
        prepared: prepared dataset folder (the model's training data, for its normalisation and layout).
        split: usually "dev".

    Returns:
        dict code -> {mcd_db, f0_rmse_hz, f0_corr, vuv_error_percent, bap_distortion_db, utterances, frames},
        and "all" pooled over every language.
    """
    from mlms_keras.data.manifest import Manifest
    from mlms_keras.data.pipeline import read_utterances
    from mlms_keras.evaluation.metrics import evaluate_acoustic

    manifest = Manifest.load(prepared)
    silence = [manifest.layout.index(name) for name in ("C_phoneme=sil", "C_phoneme=pau")]
    references, generated, counts = {}, {}, {}
    for record in read_utterances(prepared, split):
        code, speaker = record["language_code"], record["speaker_name"]
        if code not in languages or speaker not in speakers:
            continue
        inputs = {
            "linguistic": manifest.normalise_inputs(record["linguistic"])[None],
            "language": np.array([languages.index(code)], np.int32),
            "speaker": np.array([speakers.index(speaker)], np.int32),
        }
        predicted = manifest.denormalise_outputs(np.asarray(model.predict_on_batch(inputs))[0])
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


def pack_voice(
    acoustic_run,
    duration_run,
    prepared,
    out_folder,
    name,
    description="",
    commands=(),
    timings=None,
    registry_path=None,
) -> dict:
    """Make a zoo voice from an acoustic run (`mlms train` / `mlms adapt`) and a duration run.

    Computes the held-out metrics (`held_out_acoustic_metrics` and the duration run's dev metrics), writes the
    voice folder (`save_voice`) and, when `registry_path` is given, adds or replaces the voice's entry there.

    Args:
        acoustic_run: run folder of the final acoustic model (its `training.json` lists languages and speakers).
        duration_run: folder written by `mlms_keras.models.duration.train_duration_on_prepared`.
        prepared: the prepared dataset both were trained on.
        out_folder: the voice folder to write.
        name, description: the voice's name and one-line description.
        commands: the exact commands that rebuild the voice from nothing.
        timings: dict of seconds per step (training time), stored as ``training_time_s``.
        registry_path: registry file to update (created when missing).

    Returns:
        The registry entry.
    """
    import keras

    import mlms_keras.layers  # noqa: F401
    from mlms_keras.data.manifest import Manifest
    from mlms_keras.models.duration import (
        DURATION_MODEL_NAME,
        DURATION_RUN_NAME,
        DURATION_STATISTICS_NAME,
        load_duration_statistics,
    )
    from mlms_keras.training.fit import load_run

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
    acoustic_metrics = held_out_acoustic_metrics(acoustic_model, languages, speakers, prepared)
    duration_metrics = duration_record["dev_metrics"]
    metrics = {
        "split": "dev",
        "durations": "natural (aligned) for the acoustic metrics",
        "all": dict(
            acoustic_metrics.pop("all"),
            duration_rmse_frames=duration_metrics["duration_rmse_frames"],
            duration_corr=duration_metrics["duration_corr"],
        ),
        "per_language": {
            code: dict(
                values,
                **{
                    key: duration_metrics["per_language"].get(code, {}).get(key)
                    for key in ("duration_rmse_frames", "duration_corr")
                },
            )
            for code, values in acoustic_metrics.items()
        },
    }
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
    sample_rate = int(sample_rates[0])
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
        sample_rate=sample_rate,
        description=description,
        extra_metadata={
            "metrics": metrics,
            "commands": list(commands),
            "training_time_s": timings or {},
            "adapted_languages": adaptation,
            "training": {
                "acoustic": {k: info.get(k) for k in ("preset", "training", "epochs_run", "best_epoch", "adaptation")},
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


# Command line ---------------------------------------------------------------------------------------------------
def _run_list(args) -> int:
    voices = list_voices()
    if not voices:
        print("no built-in voices installed")
        return 0
    for voice in voices:
        print(
            f"{voice['name']:<20} {len(voice['languages'])} languages, {len(voice['speakers'])} speakers, "
            f"{voice['size_bytes'] / 1e6:.1f} MB  {voice.get('description', '')}"
        )
    return 0


def _run_info(args) -> int:
    try:
        folder, metadata = resolve_voice(args.voice)
    except (UnknownVoiceError, VoiceHashError, FileNotFoundError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        shown = {
            key: value
            for key, value in metadata.items()
            if key not in ("feature_layout", "normalisation", "duration_statistics")
        }
        print(json.dumps(shown, indent=1, ensure_ascii=False))
        return 0
    print(f"{metadata['name']}: {metadata.get('description', '')}")
    print(f"  folder       {folder}")
    print(f"  sample rate  {metadata['sample_rate']} Hz")
    print(f"  languages    {', '.join(sorted(metadata['languages'], key=metadata['languages'].get))}")
    print(
        "  speakers     "
        + ", ".join(
            f"{name} ({entry['language']})"
            for name, entry in sorted(metadata["speakers"].items(), key=lambda item: item[1]["id"])
        )
    )
    print(
        f"  parameters   acoustic {metadata['acoustic_model']['parameters']:,}, "
        f"duration {metadata['duration_model']['parameters']:,}"
    )
    for section in ("metrics", "training_time_s"):
        if section in metadata:
            print(f"  {section:<12} {json.dumps(metadata[section])}")
    for command in metadata.get("commands", []):
        print(f"  rebuild      {command}")
    return 0


def add_cli_parser(subparsers) -> None:
    """Registers `mlms zoo list` and `mlms zoo info NAME`."""
    parser = subparsers.add_parser(
        "zoo",
        help="list the pretrained voices and show their details",
        description="The zoo of pretrained voices.\n\nexamples:\n  mlms zoo list\n  mlms zoo info teacher-small\n"
        "  mlms zoo info file:///srv/voices/teacher-small --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND")
    verbs.required = True
    listing = verbs.add_parser("list", help="the built-in voices")
    listing.set_defaults(handler=_run_list)
    info = verbs.add_parser(
        "info",
        help="languages, speakers, metrics and rebuild commands of a voice",
        description="example:\n  mlms zoo info teacher-small",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument("voice", help="built-in voice name, voice folder, or file:// / https:// URL")
    info.add_argument("--json", action="store_true", help="print the metadata as JSON (without the large tables)")
    info.set_defaults(handler=_run_info)

    duration = verbs.add_parser(
        "train-duration",
        help="train (and adapt) a voice's duration model on a prepared dataset",
        description="Train the phoneme duration model (mlms_keras.models.duration) on the training languages of a prepared\n"
        "dataset, then adapt it to each --adapt language with the paper's --variant.\n\nexample:\n"
        "  mlms zoo train-duration data/prepared --out runs/duration --adapt pl,pt-br --variant v3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    duration.add_argument("dataset", help="prepared dataset folder")
    duration.add_argument("--out", required=True, help="output folder")
    duration.add_argument("--preset", default="small", help="duration model size (small, tiny)")
    duration.add_argument("--epochs", type=int, default=20)
    duration.add_argument("--patience", type=int, default=4)
    duration.add_argument("--batch-size", type=int, default=16)
    duration.add_argument("--learning-rate", type=float, default=1e-3)
    duration.add_argument("--adapt", default="", help="comma-separated adaptation languages, in the dataset's order")
    duration.add_argument("--variant", default="v3", choices=("v1", "v2", "v3", "v4"))
    duration.add_argument("--epochs-per-phase", type=int, default=5)
    duration.add_argument("--seed", type=int, default=0)
    duration.set_defaults(handler=_run_train_duration)

    pack = verbs.add_parser(
        "pack",
        help="make a zoo voice from an acoustic run and a duration run (computes held-out metrics)",
        description="example:\n  mlms zoo pack --acoustic runs/pt-br --duration runs/duration --dataset data/prepared "
        "\\\n      --name teacher-small --out zoo/teacher-small --registry zoo/registry.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pack.add_argument("--acoustic", required=True, help="acoustic run folder (mlms train / mlms adapt)")
    pack.add_argument("--duration", required=True, help="duration run folder (mlms zoo train-duration)")
    pack.add_argument("--dataset", required=True, help="the prepared dataset both were trained on")
    pack.add_argument("--name", required=True)
    pack.add_argument("--description", default="")
    pack.add_argument("--out", required=True, help="voice folder to write")
    pack.add_argument("--registry", default=None, help="registry file to add the voice to")
    pack.add_argument("--commands", default=None, help="text file: the commands that rebuild the voice, one a line")
    pack.add_argument("--timings", default=None, help="JSON file: seconds per build step")
    pack.set_defaults(handler=_run_pack)


def _run_train_duration(args) -> int:
    from mlms_keras.models.duration import train_duration_on_prepared

    record = train_duration_on_prepared(
        args.dataset,
        args.out,
        preset=args.preset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        patience=args.patience,
        adapt_languages=[code.strip() for code in args.adapt.split(",") if code.strip()],
        variant=args.variant,
        epochs_per_phase=args.epochs_per_phase,
        seed=args.seed,
    )
    metrics = record["dev_metrics"]
    print(
        f"{args.out}: dev duration RMSE {metrics['duration_rmse_frames']:.2f} frames, "
        f"correlation {metrics['duration_corr']:.3f} ({metrics['phonemes']} phonemes)"
    )
    return 0


def _run_pack(args) -> int:
    commands = []
    if args.commands:
        commands = [
            line.strip()
            for line in Path(args.commands).read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")
        ]
    timings = json.loads(Path(args.timings).read_text(encoding="utf-8")) if args.timings else None
    entry = pack_voice(
        args.acoustic,
        args.duration,
        args.dataset,
        args.out,
        args.name,
        args.description,
        commands=commands,
        timings=timings,
        registry_path=args.registry,
    )
    print(
        f"{args.out}: voice {args.name!r}, {len(entry['languages'])} languages, {len(entry['speakers'])} speakers, "
        f"{entry['size_bytes'] / 1e6:.1f} MB"
    )
    return 0
