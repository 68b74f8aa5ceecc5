"""WORLD synthesis returns finite audio near full scale, or raises: `mlms_keras.vocoder.limits`."""

import logging

import numpy as np
import pytest
from voice_testing import speech_statistics

from mlms_keras import vocoder
from mlms_keras.vocoder.limits import EXTREME_PEAK, check_synthesized


@pytest.fixture(scope="module")
def features():
    """(200, 49) speech-like frames: the speech statistics plus noise, all voiced."""
    mean, std = speech_statistics()
    frames = mean + 0.5 * std * np.random.default_rng(0).standard_normal((200, vocoder.FEATURE_DIM))
    frames[:, vocoder.VUV] = 1.0
    return frames.astype(np.float32)


def test_speech_like_features_pass_untouched(features):
    wave = vocoder.synthesize(features)
    assert np.all(np.isfinite(wave)) and np.abs(wave).max() <= 1.0


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (slice(0, 1), 400.0, "overflows or vanishes"),  # exp(800) = inf: WORLD returns NaN everywhere
        (slice(0, 1), -400.0, "overflows or vanishes"),  # exp(-800) = 0: NaN too
        (slice(1, 40), 10.0, "overflows or vanishes"),
        (slice(0, 1), 5.0, "peaks at"),  # finite but about e^10 times louder than speech
    ],
    ids=["c0-huge", "c0-tiny", "c1-c39-huge", "c0-loud"],
)
def test_features_world_cannot_voice_are_refused(features, column, value, message):
    broken = features.copy()
    broken[:, column] = value
    with pytest.raises(ValueError, match=message):
        vocoder.synthesize(broken, name="predicted")


def test_a_slightly_hot_wave_is_clipped_with_a_warning_and_nan_is_refused(caplog):
    with caplog.at_level(logging.WARNING, logger="mlms_keras.vocoder"):
        clipped = check_synthesized(np.array([0.5, 1.5, -2.0]), "wave")
    np.testing.assert_array_equal(clipped, [0.5, 1.0, -1.0])
    assert "exceeds full scale" in caplog.text
    with pytest.raises(ValueError, match="peaks at"):
        check_synthesized(np.array([0.0, EXTREME_PEAK + 0.1]), "wave")
    with pytest.raises(ValueError, match="1 NaN samples"):
        check_synthesized(np.array([0.0, np.nan]), "wave")
