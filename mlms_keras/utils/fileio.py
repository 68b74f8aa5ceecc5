"""Atomic file output: nothing the user had is lost to a crash or a kill halfway through a write.

Every writer goes through a temporary file in the target's own folder (same file system), which is
renamed onto the target with `os.replace` only once it is complete; on failure it is removed.

Leftovers of killed writers: `atomic_output("X.wav")` writes `.X.wav.<random>.tmp.wav` (a dot, the target's name,
a random part from `tempfile.mkstemp`, `.tmp`, the target's suffix) beside its target, and the shard writer of
`mlms prepare` writes `.<shard>.tmp`. A process killed halfway leaves them behind; they are never a finished file,
so a resumed batch job removes them (`remove_leftover_temporaries`) and loses nothing.
"""

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path

from mlms_keras.utils.jsonfile import json_default


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()
#: The names of temporary files: `.<name>.<random>.tmp<suffix>` (`atomic_output`) and `.<name>.tmp` (shards).
TEMPORARY_NAME = re.compile(r"^\..+\.tmp(\.[A-Za-z0-9_]+)?$")
#: `atomic_output`'s temporary names, with the target's file name as the group `name`.
ATOMIC_OUTPUT_TEMPORARY_NAME = re.compile(r"^\.(?P<name>.+)\.[^.]+\.tmp[^/]*$")


@contextlib.contextmanager
def atomic_output(path, suffix=None):
    """Yields a temporary path beside `path`; on success it replaces `path`, on error it is removed.

    Args:
        path: the final file.
        suffix: the temporary file's suffix (default: `path`'s own, for writers that check it,
            such as `model.save(".keras")`).

    Example:
    >>> with atomic_output("out.wav") as temporary:
    ...     soundfile.write(temporary, wave, 22050)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix if suffix is None else suffix}"
    )
    os.close(handle)
    os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp makes owner-only files; give it an ordinary file's mode
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    """Writes `data` to `path` atomically."""
    with atomic_output(path) as temporary:
        temporary.write_bytes(data)


def atomic_write_text(path, text: str) -> None:
    """Writes `text` (UTF-8, `\\n` line ends) to `path` atomically."""
    with atomic_output(path) as temporary, open(temporary, "w", encoding="utf-8", newline="\n") as file:
        file.write(text)


def atomic_write_json(path, payload, indent=1, **json_options) -> None:
    """Writes `payload` as JSON (UTF-8, non-ASCII kept; numpy values and paths allowed) to `path` atomically."""
    json_options.setdefault("default", json_default)
    atomic_write_text(path, json.dumps(payload, indent=indent, ensure_ascii=False, **json_options) + "\n")


def save_model_atomically(model, path) -> None:
    """`model.save(path)` (a `.keras` file) through a temporary file, so an old model survives a failed save."""
    with atomic_output(path) as temporary:
        model.save(temporary)


def remove_leftover_temporaries(*folders) -> list[Path]:
    """Removes the temporary files (`TEMPORARY_NAME`) directly inside `folders` (missing folders are skipped).

    Returns:
        The removed files.
    """
    removed = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if TEMPORARY_NAME.match(path.name) and path.is_file():
                path.unlink()
                removed.append(path)
    return removed
