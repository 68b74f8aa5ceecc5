"""JSON files the package writes and reads back: one encoder, and one reader for versioned formats.

Every file format of the package is a JSON object with `"format"` (its name, e.g. `"mlms-prepared-dataset"`) and
`"format_version"` (an integer). `read_versioned_json` reads one and `check_versioned` checks both (also for an
object stored inside another file, like the feature layout inside `dataset.json`), so that every format gives the
same clear errors: the file, what is wrong, and what to do next.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["check_versioned", "json_default", "read_versioned_json"]


def json_default(value):
    """`json.dumps(default=...)` for the values the package stores: numpy scalars and arrays, paths.

    Anything else raises `TypeError`, so that an object never lands in a file as its `repr`.
    """
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__} ({value!r:.60})")


def read_versioned_json(path, format_name: str, format_version: int, what: str, remedy: str) -> dict:
    """Reads a JSON object of format `format_name`, version `format_version`, from `path`.

    Args:
        path: the file.
        format_name: the expected `"format"` field.
        format_version: the only `"format_version"` this package reads.
        what: what the file is, for messages ("prepared-dataset manifest").
        remedy: what to do when the file is malformed or of another version ("re-run `mlms prepare`").

    Returns:
        The parsed object.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not valid JSON, not an object, another format, or another version; the message names the
            file and says what to do.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file; expected a {what} here") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a text file ({error}); {remedy}") from error
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ValueError(f"{path}: not valid JSON ({error}); {remedy}") from error
    check_versioned(data, format_name, format_version, what, remedy, where=str(path))
    return data


def check_versioned(data, format_name: str, format_version: int, what: str, remedy: str, where: str | None = None):
    """Raises `ValueError` unless `data` is a JSON object of format `format_name`, version `format_version`.

    Args:
        data: the parsed JSON value.
        format_name, format_version, what, remedy: as for `read_versioned_json`.
        where: the file it came from, put before the message (None: no prefix).
    """
    prefix = f"{where}: " if where else ""
    if not isinstance(data, dict) or data.get("format") != format_name:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{prefix}not a {what} (format {found!r}, expected {format_name!r}); {remedy}")
    if data.get("format_version") != format_version:
        raise ValueError(
            f"{prefix}{what} format_version {data.get('format_version')!r} is not supported (this package reads "
            f"{format_version}); {remedy} or upgrade mlms-keras"
        )
