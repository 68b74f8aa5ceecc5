"""The shipped voice's output is bit-identical to the one recorded before the [structure] reorganisation.

`tests/resources/shipped_voice_reference.npz` was written by `tests/resources/make_shipped_voice_reference.py` on
the code before any module moved; moving code must not move a single bit of what a voice says.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1] / "resources"
_spec = importlib.util.spec_from_file_location("make_reference", DATA / "make_shipped_voice_reference.py")
make_reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_reference)


@pytest.fixture(scope="module")
def outputs():
    from mlms_keras.synthesis import Synthesizer

    return make_reference.voice_outputs(Synthesizer.from_zoo(make_reference.VOICE))


@pytest.mark.parametrize("language", sorted(make_reference.SENTENCES))
def test_shipped_voice_output_is_bit_identical_to_the_recorded_reference(outputs, language):
    reference = np.load(DATA / "shipped_voice_reference.npz")
    durations, features, wave_sha256 = outputs[language]
    np.testing.assert_array_equal(durations, reference[f"{language}/durations"])
    assert features.dtype == reference[f"{language}/features"].dtype
    np.testing.assert_array_equal(features, reference[f"{language}/features"])
    assert wave_sha256 == str(reference[f"{language}/wave_sha256"])
