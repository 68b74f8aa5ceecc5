"""Writing a trained acoustic model as a zoo-style preset folder, and reading one back.

The folder follows keras-hub's preset layout and the conventions of `mlms_keras.zoo` voices (docs/architecture.md,
"File formats"), for an acoustic model alone (a zoo *voice* also holds a duration model; `mlms_keras.zoo.load_voice`
refuses this folder by its `format`):

- `config.json`: the serialized Keras model (`keras.saving.serialize_keras_object`, with `registered_name`), which
  `keras.saving.deserialize_keras_object` rebuilds without custom objects because every MLMS layer is registered.
  It holds no compile configuration: a preset is for inference; compile it to fine-tune.
- `model.weights.h5`: the weights (`model.save_weights`), without optimizer state.
- `metadata.json`: everything a user needs besides the network. `export_preset` writes `format`,
  `format_version`, `parameter_count`, `model_config`, `versions` and `files` (the sha256 of the two files
  above, checked by `load_preset`); the caller adds the rest (languages, speakers, normalisation statistics,
  feature layout, metrics, the command).

The folder is assembled beside the target and swapped in by renames, so a reader never sees a half-written preset.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlms_keras.utils.fileio import atomic_write_json
from mlms_keras.utils.jsonfile import read_versioned_json
from mlms_keras.utils.provenance import versions
from mlms_keras.zoo import sha256_of

if TYPE_CHECKING:
    import keras

__all__ = ["PRESET_FORMAT", "PRESET_FORMAT_VERSION", "export_preset", "load_preset"]

PRESET_FORMAT = "mlms-zoo-preset"
PRESET_FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"

#: How the preset's JSON files are written (`atomic_write_json` options).
_JSON_OPTIONS = dict(indent=2, sort_keys=True, allow_nan=False)


def export_preset(model: keras.Model, out_dir: str | os.PathLike, metadata: dict[str, Any]) -> Path:
    """Writes `model` as a preset folder `out_dir` (replacing an existing one atomically).

    Args:
        model: a Keras model built by `mlms_keras.models.acoustic.build_mlms_model` (its `config_of` is recorded).
        out_dir: the preset folder to create.
        metadata: JSON-serialisable dict merged into `metadata.json` (languages, speakers, normalisation
            statistics, metrics, command, ...). NaN and infinity are rejected.

    Returns:
        `Path(out_dir)`.
    """
    import keras

    from mlms_keras.models.acoustic import config_of

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    full_metadata = dict(metadata)
    full_metadata.update(
        format=PRESET_FORMAT,
        format_version=PRESET_FORMAT_VERSION,
        parameter_count=int(model.count_params()),
        model_config=config_of(model).to_dict(),
        versions=versions(),
    )
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(staging, 0o777 & ~mask)  # mkdtemp makes 0700; the preset is an ordinary folder
    # The preset is an inference model: no compile configuration and no optimizer state. Rebuilding it from its
    # own serialized config keeps every layer argument (added languages and speakers included).
    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)
    inference_model = keras.saving.deserialize_keras_object(copy.deepcopy(config))  # it consumes its argument
    inference_model.set_weights(model.get_weights())
    try:
        atomic_write_json(staging / CONFIG_FILE, config, **_JSON_OPTIONS)
        inference_model.save_weights(staging / WEIGHTS_FILE)
        full_metadata["files"] = {name: sha256_of(staging / name) for name in (CONFIG_FILE, WEIGHTS_FILE)}
        atomic_write_json(staging / METADATA_FILE, full_metadata, **_JSON_OPTIONS)
        previous = None
        if out_dir.exists():
            previous = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.replace(out_dir, previous / out_dir.name)
        os.replace(staging, out_dir)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def load_preset(preset_dir: str | os.PathLike) -> tuple[keras.Model, dict[str, Any]]:
    """Reads a preset folder written by `export_preset`.

    Args:
        preset_dir: the folder holding `config.json`, `model.weights.h5` and `metadata.json`.

    Returns:
        `(model, metadata)`: the rebuilt Keras model with its weights (inputs and outputs as
        `build_mlms_model`) and the metadata dict.

    Raises:
        FileNotFoundError: naming the missing file.
        ValueError: when `metadata.json` is not an MLMS preset of a supported format version, or a file's sha256
            differs from the one in `metadata.json` (naming the file, the expected and the actual hash).
    """
    import keras

    import mlms_keras.layers  # noqa: F401  (registers the layers that config.json names)

    preset_dir = Path(preset_dir)
    for name in (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE):
        if not (preset_dir / name).is_file():
            raise FileNotFoundError(
                f"{preset_dir / name} is missing: a preset folder holds {CONFIG_FILE}, {WEIGHTS_FILE} and "
                f"{METADATA_FILE}; export it again (for a sweep: `mlms tune ... --directory DIR` re-exports)"
            )
    metadata = read_versioned_json(
        preset_dir / METADATA_FILE,
        PRESET_FORMAT,
        PRESET_FORMAT_VERSION,
        what="MLMS preset",
        remedy="export it again (for a sweep: `mlms tune ... --directory DIR` re-exports)",
    )
    for name, expected in metadata.get("files", {}).items():
        actual = sha256_of(preset_dir / name)
        if actual != expected:
            raise ValueError(
                f"{preset_dir / name}: sha256 mismatch: expected {expected} (from {METADATA_FILE}), got {actual}. "
                "The file was changed or corrupted after export; export the preset again."
            )
    config = json.loads((preset_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    model = keras.saving.deserialize_keras_object(config)
    model.load_weights(preset_dir / WEIGHTS_FILE)
    return model, metadata
