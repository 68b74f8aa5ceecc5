"""Corpus data: readers for real corpora, the sentence generator and the teacher-corpus builder."""

__all__ = ["load_dataset", "Manifest", "prepare_dataset", "read_utterances"]


def __getattr__(name):
    # Lazy, so that importing the readers does not import the pipeline (kept cheap for `mlms --help`).
    if name in ("load_dataset", "read_utterances", "steps_per_epoch"):
        from mlms_keras.data import pipeline

        return getattr(pipeline, name)
    if name == "Manifest":
        from mlms_keras.data.manifest import Manifest

        return Manifest
    if name == "prepare_dataset":
        from mlms_keras.data.prepare import prepare_dataset

        return prepare_dataset
    raise AttributeError(f"module 'mlms_keras.data' has no attribute {name!r}")
