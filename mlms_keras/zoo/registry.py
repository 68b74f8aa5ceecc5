"""The voice format's names, the registry of built-in voices, and the sha256 checks every load goes through.

**The registry** (`zoo/registry.json`, shipped as package data with the voices) lists each built-in voice with its
folder and the sha256 of each of its files, `metadata.json` included. A voice's own `metadata.json` lists the
sha256 of every other file of the voice.

**File tables** (`voice_files`): a table must list every model file (`MODEL_FILES`; a voice whose metadata leaves
one out is refused, since that file would load unchecked), each name must be a plain file name (letters, digits,
`.`, `_`, `-`; no separator, no `..`, so that names from a remote `metadata.json` cannot point outside the voice's
folder) and each hash 64 hex digits.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from collections.abc import Iterable
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
    "VoiceFilesError",
    "VoiceHashError",
    "check_sha256",
    "check_voice_folder",
    "list_voices",
    "load_registry",
    "read_voice_metadata",
    "pinned_sha256",
    "sha256_of",
    "voice_files",
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
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class VoiceHashError(ValueError):
    """A voice file's sha256 differs from the expected one (corrupted download, edited or replaced file)."""


class VoiceFilesError(ValueError):
    """A voice's file table or folder is unsafe or incomplete: a model file unlisted, a file name that is not a plain
    name, a listed file missing, or a file in the folder that is not listed."""


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


def pinned_sha256(value: str, argument: str = "sha256") -> str:
    """A user's `--sha256` value, lower-cased; `ValueError` unless it is 64 hex digits."""
    digest = str(value).strip().lower()
    if not _SHA256.fullmatch(digest):
        raise ValueError(f"{argument} must be the 64 hex digits of a sha256 (`sha256sum metadata.json`), got {value!r}")
    return digest


def voice_files(files: object, shown_name: str, required: Iterable[str] = MODEL_FILES) -> dict[str, str]:
    """Checks a file table (`metadata.json`'s or a registry entry's `files`): file name -> sha256.

    Args:
        files: the table as read from JSON.
        shown_name: the file or voice the table comes from, for messages.
        required: names the table must list.

    Returns:
        The table as a dict of str -> lower-case hex str.

    Raises:
        VoiceFilesError: not a table, a name that is not a plain file name, a malformed hash, or a required name
            missing.
    """
    if not isinstance(files, dict):
        raise VoiceFilesError(f"{shown_name}: `files` must map each file of the voice to its sha256, got {files!r}")
    for name, digest in files.items():
        if not isinstance(name, str) or not _FILE_NAME.fullmatch(name) or ".." in name:
            raise VoiceFilesError(
                f"{shown_name}: {name!r} is not a plain file name (letters, digits, '.', '_', '-'; no folders, no "
                "'..'); the voice's metadata is corrupt or hostile, do not load it"
            )
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise VoiceFilesError(f"{shown_name}: the sha256 of {name} is not 64 hex digits: {digest!r}")
    missing = [name for name in required if name not in files]
    if missing:
        raise VoiceFilesError(
            f"{shown_name}: {', '.join(missing)} not listed with a sha256; every file of a voice must be listed and "
            "hashed, so this voice is refused. Re-create it with `mlms zoo pack` (or `save_voice`)."
        )
    return dict(files)


def check_voice_folder(folder: Path, files: dict[str, str], shown_name: str) -> None:
    """Checks that `folder` holds each of `files` with its sha256, and no other (non-hidden) file.

    Raises:
        VoiceFilesError: a listed file is missing, or a file is not listed (sub-folders and hidden files, such as
            a killed writer's temporary files, are ignored).
        VoiceHashError: a file's sha256 differs.
    """
    for file_name, expected in files.items():
        if not (folder / file_name).is_file():
            raise VoiceFilesError(f"{shown_name}: {folder / file_name} is listed but missing; copy the voice again")
        check_sha256(folder / file_name, expected, str(folder / file_name))
    extra = sorted(
        path.name
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.name not in files and path.name != METADATA_NAME
    )
    if extra:
        raise VoiceFilesError(
            f"{shown_name}: {', '.join(extra)} in {folder} not listed in the voice's metadata; every file of a voice "
            "must be listed and hashed. Remove the extra files, or re-create the voice with `mlms zoo pack`."
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
