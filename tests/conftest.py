"""Shared pytest configuration, and the fixtures more than one test file uses.

Test files mirror the package's tree (`tests/frontend/` tests `mlms_keras/frontend/`, ...). Support modules that
several folders import sit here beside this file: `model_testing` (the tiny model), `layer_testing` (the standard
layer checks) and `voice_testing` (a tiny zoo voice).
"""

import os
import shutil

import pytest

# Keep TensorFlow quiet and deterministic on the 2-core CI machine.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from corpus_testing import TINY_CORPUS_SPEAKERS  # noqa: E402


@pytest.fixture(scope="session")
def prepared_corpus(tmp_path_factory):
    """Factory of real tiny teacher corpora, prepared: `prepared_corpus(speakers=None, utterances_per_shard=3)`.

    Builds the "tiny" teacher corpus (espeak-ng speech and HTS labels, seed 0) of `speakers` (all ten speakers
    of the presets when None) and prepares it with WORLD dio analysis. Each distinct (speakers, shard size) is
    built once per session and shared: treat the folders as read-only.

    Returns:
        The prepared dataset folder; its corpus is the sibling folder `corpus` (`prepared.parent / "corpus"`).
    """
    from mlms_keras.data.prepare import prepare_dataset
    from mlms_keras.data.teacher import build_teacher_corpus

    built = {}

    def make(speakers=None, utterances_per_shard=3):
        key = (None if speakers is None else tuple(speakers), utterances_per_shard)
        if key not in built:
            root = tmp_path_factory.mktemp("teacher")
            build_teacher_corpus(root / "corpus", preset="tiny", seed=0, workers=1, speakers=speakers, progress=False)
            report = prepare_dataset(
                root / "corpus",
                root / "prepared",
                workers=1,
                f0_method="dio",
                utterances_per_shard=utterances_per_shard,
                progress=False,
            )
            assert report.complete and not report.skipped
            built[key] = root / "prepared"
        return built[key]

    return make


@pytest.fixture(scope="session")
def prepared(prepared_corpus):
    """The default tiny corpus (`TINY_CORPUS_SPEAKERS`), prepared with 3 utterances per shard (4 training shards)."""
    return prepared_corpus(TINY_CORPUS_SPEAKERS)


@pytest.fixture
def damaged_dataset(prepared, tmp_path):
    """A private copy of `prepared` that a test may damage (truncate a shard, break dataset.json)."""
    copy = tmp_path / "prepared"
    shutil.copytree(prepared, copy)
    return copy


@pytest.fixture(scope="session")
def corpus(prepared):
    """The default tiny corpus itself (wavs, HTS labels, metadata.csv, corpus.json); read-only."""
    return prepared.parent / "corpus"
