"""Leftovers of killed writers: the temporary files of `mlms_keras.utils.fileio.atomic_output` and of the shard
writer, which a resumed batch job removes before it starts.

`atomic_output("X.wav")` writes `.X.wav.<random>.tmp.wav` (a dot, the target's name, a random part from
`tempfile.mkstemp`, `.tmp`, the target's suffix) beside its target; the shard writer writes `.<shard>.tmp`. A process
killed halfway leaves them behind; they are never a finished file, so removing them loses nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["TEMPORARY_NAME", "remove_leftover_temporaries"]

#: The names of those temporary files: `.<name>.<random>.tmp<suffix>` and `.<name>.tmp`.
TEMPORARY_NAME = re.compile(r"^\..+\.tmp(\.[A-Za-z0-9_]+)?$")


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
