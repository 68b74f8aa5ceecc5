"""The shipped multilingual aligner (`zoo/aligner-multilingual/`) and `load_aligner`.

The model folder lives beside the shipped voices (`mlms_keras.zoo.registry.zoo_folder`). `aligner.json` is pinned
here by its sha256 and lists the sha256 of `weights.npz`, so a changed or corrupted file is an error, never a silent
load. Rebuild it with `python -m mlms_keras.align.pretrain zoo/aligner-multilingual` and update `SHIPPED_SHA256`.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from mlms_keras.align.model import CONFIG_NAME, AlignerModel
from mlms_keras.zoo.registry import zoo_folder

__all__ = ["SHIPPED_NAME", "SHIPPED_SHA256", "load_aligner", "shipped_folder"]

SHIPPED_NAME = "aligner-multilingual"
#: sha256 of the shipped `aligner.json` (which holds the sha256 of the weights).
SHIPPED_SHA256 = "8fde87c4e3e89a41297ce0b2c3349c19ff14a8d9dc0a6ba942b89270419a423d"


def shipped_folder() -> Path:
    """The shipped aligner's folder."""
    return zoo_folder() / SHIPPED_NAME


@functools.cache
def _load_shipped() -> AlignerModel:
    folder = shipped_folder()
    if not (folder / CONFIG_NAME).is_file():
        raise FileNotFoundError(
            f"{folder}: the shipped aligner is missing; reinstall mlms-keras, or rebuild it with "
            f"`python -m mlms_keras.align.pretrain {folder}`."
        )
    return AlignerModel.load(folder, sha256=SHIPPED_SHA256 or None)


def load_aligner(source: str | os.PathLike | None = None) -> AlignerModel:
    """The aligner's acoustic model: `None` or `"aligner-multilingual"` the shipped one (hash-checked, cached),
    otherwise a folder written by `AlignerModel.save` (a corpus-adapted model, for example)."""
    if source is None or str(source) == SHIPPED_NAME:
        return _load_shipped()
    return AlignerModel.load(source)
