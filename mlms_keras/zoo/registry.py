"""The voice format's names, the registry of built-in voices, and the sha256 checks every load goes through.

**The registry** (`zoo/registry.json`, shipped as package data with the voices) lists each built-in voice with its
folder and the sha256 of each of its files, `metadata.json` included. A voice's own `metadata.json` lists the
sha256 of every other file of the voice.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from mlms_keras.utils.fileio import atomic_write_json
from mlms_keras.utils.jsonfile import read_versioned_json

__all__ = [
    "ACOUSTIC_CONFIG_NAME",
    "ACOUSTIC_WEIGHTS_NAME",
    "DURATION_CONFIG_NAME",
    "DURATION_WEIGHTS_NAME",
    "METADATA_NAME",
    "MODEL_FILES",
    "REGISTRY_FORMAT",
    "REGISTRY_FORMAT_VERSION",
    "REGISTRY_NAME",
    "VOICE_FORMAT",
    "VOICE_FORMAT_VERSION",
    "UnknownVoiceError",
    "VoiceHashError",
    "check_sha256",
    "list_voices",
    "load_registry",
    "read_voice_metadata",
    "sha256_of",
    "write_registry",
    "zoo_folder",
]

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


class VoiceHashError(ValueError):
    """A voice file's sha256 differs from the expected one (corrupted download, edited or replaced file)."""


class UnknownVoiceError(ValueError):
    """`load_voice` got something that is neither a built-in voice name, a voice folder nor a URL."""


# Hashes -----------------------------------------------------------------------------------------------------------
def sha256_of(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(path: str | os.PathLike, expected: str, shown_name: str) -> None:
    """Raises `VoiceHashError` (naming `shown_name`, the expected and the actual hash) unless `path` has `expected`."""
    actual = sha256_of(path)
    if actual != expected:
        raise VoiceHashError(
            f"{shown_name}: sha256 mismatch: expected {expected}, got {actual}. The file is corrupted or was "
            "changed after the voice was published; download or copy the voice again (a cached download was "
            "removed, so loading again fetches it afresh)."
        )


# Voice metadata ---------------------------------------------------------------------------------------------------
def read_voice_metadata(path: str | os.PathLike, shown_name: str | None = None) -> dict:
    """Reads a voice's `metadata.json`, checking its format and version.

    Args:
        path: the `metadata.json` file.
        shown_name: how the user named the voice (a built-in name, a URL), put in front of error messages when
            the file's path alone would not say it.

    Raises:
        FileNotFoundError: no `metadata.json` (not a voice folder).
        ValueError: not valid JSON, not a voice, or a format version this package does not read.
    """
    try:
        return read_versioned_json(
            path,
            VOICE_FORMAT,
            VOICE_FORMAT_VERSION,
            what="zoo voice metadata file",
            remedy="download or copy the voice again, or re-create it with `mlms zoo pack`",
        )
    except (FileNotFoundError, ValueError) as error:
        if shown_name is None or str(path).startswith(shown_name):
            raise
        raise type(error)(f"{shown_name}: {error}") from error


# The registry -----------------------------------------------------------------------------------------------------
def zoo_folder() -> Path:
    """The folder of the shipped voices and their registry.

    After `pip install .` it is the installed `zoo` package (package data); in a source checkout it is the
    repository's `zoo/` beside `mlms_keras/`.
    """
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


def load_registry(path: str | os.PathLike | None = None) -> dict:
    """The registry (default: the shipped one) as a dict with `voices`: name -> entry."""
    path = Path(path) if path is not None else zoo_folder() / REGISTRY_NAME
    return read_versioned_json(
        path,
        REGISTRY_FORMAT,
        REGISTRY_FORMAT_VERSION,
        what="zoo registry",
        remedy="reinstall mlms-keras (the shipped registry) or rewrite it with `mlms zoo pack --registry`",
    )


def list_voices() -> list[dict]:
    """The built-in voices, sorted by name.

    Returns:
        One dict per voice with `name`, `description`, `path` (its folder), `languages`, `speakers`, `size_bytes`
        and `files` (file name -> sha256).
    """
    registry = load_registry()
    folder = zoo_folder()
    return [
        dict(entry, name=name, path=str(folder / entry["path"])) for name, entry in sorted(registry["voices"].items())
    ]


def write_registry(path: str | os.PathLike, voices: dict) -> None:
    """Writes a registry file listing `voices` (name -> entry from `save_voice`), atomically."""
    atomic_write_json(
        path,
        {"format": REGISTRY_FORMAT, "format_version": REGISTRY_FORMAT_VERSION, "voices": dict(sorted(voices.items()))},
    )
