"""Shared pytest configuration, and the fixtures more than one test file uses. Fixtures used by one test file
live in that file (a module fixture of the same name overrides these, as in test_experiments.py)."""

import os

import pytest

# Keep TensorFlow quiet and deterministic on the 2-core CI machine.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

#: Speakers of the shared tiny corpus: 2 languages, 3 speakers, 15 utterances (train: 8 en-us, 4 fr).
TINY_CORPUS_SPEAKERS = ["en-us-female", "en-us-male", "fr-female"]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A real tiny teacher corpus (espeak-ng speech + HTS labels) of `TINY_CORPUS_SPEAKERS`; read-only."""
    from mlms_keras.data.teacher import build_teacher_corpus

    folder = tmp_path_factory.mktemp("teacher")
    build_teacher_corpus(folder, preset="tiny", seed=0, workers=1, speakers=TINY_CORPUS_SPEAKERS, progress=False)
    return folder


@pytest.fixture(scope="session")
def prepared(corpus, tmp_path_factory):
    """`corpus` prepared with WORLD dio analysis, 3 utterances per shard (4 training shard files); read-only."""
    from mlms_keras.data.prepare import prepare_dataset

    out = tmp_path_factory.mktemp("prepared")
    report = prepare_dataset(corpus, out, workers=1, f0_method="dio", utterances_per_shard=3, progress=False)
    assert report.complete and not report.skipped
    return out
