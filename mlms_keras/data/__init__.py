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

from mlms_keras.utils.lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
