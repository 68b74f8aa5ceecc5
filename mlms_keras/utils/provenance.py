"""Provenance: which versions and which command made a file (datasets, runs, voices, corpora, sweeps).

One record for every artefact the package writes, so that any two of them can be compared:

    {"versions": {"mlms_keras": "0.2.0", "python": "3.11.7", "tensorflow": "2.21.0", "keras": "3.15.1",
                  "numpy": "2.1.3", "pyworld": "0.3.5", "pysptk": "1.0.1", "soundfile": "0.13.1",
                  "keras_tuner": "1.4.8", "espeak_ng": "1.52.0"},
     "command": "mlms train data/prepared --preset small --out runs/mlms"}

Versions are read from the installed package metadata, so recording them imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import importlib.metadata
import platform
import shlex
import sys

__all__ = ["PACKAGES", "command_line", "provenance", "versions"]

#: The distributions whose versions change what the package computes (keras_tuner only for sweeps).
PACKAGES = ("tensorflow", "keras", "numpy", "pyworld", "pysptk", "soundfile", "keras_tuner")


def versions() -> dict[str, str | None]:
    """`{name: version}` of mlms-keras, Python, `PACKAGES` and libespeak-ng; `None` for one not installed."""
    import mlms_keras
    from mlms_keras.frontend import espeak

    found: dict[str, str | None] = {"mlms_keras": mlms_keras.__version__, "python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    found["espeak_ng"] = espeak.espeak_version()
    return found


def command_line(argv: list[str] | None = None) -> str:
    """The shell command that started this process (`sys.argv` by default), quoted so it can be pasted back."""
    argv = sys.argv if argv is None else argv
    program = "mlms" if argv and argv[0].endswith(("mlms", "__main__.py")) else argv[0] if argv else ""
    return shlex.join([program, *argv[1:]]) if argv else ""


def provenance(command: str | None = None) -> dict:
    """`{"versions": versions(), "command": command}`; `command` defaults to `command_line()`."""
    return {"versions": versions(), "command": command_line() if command is None else command}
