"""Corpus data: corpora -> TFRecord shards -> `tf.data`.

- `readers`: LJSpeech, M-AILABS, CSS10 and `metadata.csv` corpora; `teacher` (with `sentences`): the espeak-ng
  teacher corpus;
- `prepare`: `prepare_dataset`, WORLD + linguistic features into TFRecord shards (`records`) and `dataset.json`
  (`manifest`: `Manifest`);
- `pipeline`: `load_dataset`, the `tf.data` pipeline that feeds `model.fit`, and `read_utterances`.

The names below are imported from their modules on first use, so `import mlms_keras.data` loads no TensorFlow.

Example:
>>> from mlms_keras.data import Manifest, load_dataset
>>> train = load_dataset("data/prepared", "train", 16, seed=0)                 # doctest: +SKIP
"""

from __future__ import annotations

import importlib

#: Public name -> the module that defines it.
_HOMES = {
    "Manifest": "mlms_keras.data.manifest",
    "PipelineOptions": "mlms_keras.data.pipeline",
    "PrepareOptions": "mlms_keras.data.prepare",
    "load_dataset": "mlms_keras.data.pipeline",
    "prepare_dataset": "mlms_keras.data.prepare",
    "read_corpus": "mlms_keras.data.readers",
    "read_utterances": "mlms_keras.data.pipeline",
    "steps_per_epoch": "mlms_keras.data.pipeline",
}

__all__ = list(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'mlms_keras.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
