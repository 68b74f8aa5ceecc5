"""Shared data of the aligner tests: small espeak-ng corpora with exact labels, rendered once per session."""

from __future__ import annotations

import pytest

from mlms_keras.align.pretrain import VoicePlan, render_labelled_corpus

#: Voices and rates the shipped aligner never trained on (`mlms_keras.align.pretrain` uses others).
HELD_OUT_VOICES = VoicePlan(variants=("f2", "m2"), rates=(150, 210))


@pytest.fixture(scope="session")
def labelled_corpus(tmp_path_factory):
    """Two utterances in each of four languages (two the aligner never heard), with exact labels."""
    folder = tmp_path_factory.mktemp("aligned") / "corpus"
    return render_labelled_corpus(folder, ("en-us", "de", "sv", "pl"), 2, HELD_OUT_VOICES, seed=7, prefix="t")
