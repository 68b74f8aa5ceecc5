"""A tiny zoo voice for tests: untrained tiny models with realistic output statistics.

The models are random (no training: tests of the zoo format and of the synthesis mechanics need exact
behaviour, not good speech); the output normalisation comes from WORLD analysis of real espeak-ng speech,
so de-normalised frames are speech-like vocoder parameters, and V/UV is centred on "voiced" so that the
WORLD pulse train (the hard part of streaming synthesis) is exercised.
"""

import numpy as np

from mlms_keras import vocoder
from mlms_keras.frontend import espeak
from mlms_keras.frontend.layout import FeatureLayout
from mlms_keras.models.acoustic import MLMSConfig, build_mlms_model
from mlms_keras.models.duration import DurationStatistics, build_duration_model, duration_config
from mlms_keras.zoo import save_voice

TEST_LANGUAGES = ("en-us", "fr", "pl")
TEST_SPEAKERS = {"en-us-female": "en-us", "fr-female": "fr", "pl-female": "pl"}


def speech_statistics():
    """(mean, std) (49,) of WORLD features of a real espeak-ng sentence, V/UV mean set to 1 (voiced)."""
    synthesis = espeak.synthesize("We were away a year ago.", "en-us")
    wave = np.asarray(synthesis.waveform, np.float64)
    features = vocoder.analyze(wave, synthesis.sample_rate, f0_method="dio").to_vector()
    mean, std = features.mean(axis=0), np.maximum(features.std(axis=0), 1e-3)
    mean[vocoder.VUV], std[vocoder.VUV] = 1.0, 1.0
    return mean, std


def build_test_voice(folder, name="test-voice", seed=0):
    """Write a tiny voice into `folder`; returns (registry entry, acoustic model, duration model, layout)."""
    import keras

    keras.utils.set_random_seed(seed)
    layout = FeatureLayout.for_languages(TEST_LANGUAGES)
    acoustic = build_mlms_model(
        MLMSConfig.preset(
            "tiny", input_dim=layout.frame_dimension, num_languages=len(TEST_LANGUAGES), num_speakers=len(TEST_SPEAKERS)
        )
    )
    duration = build_duration_model(duration_config("tiny", layout.dimension, len(TEST_LANGUAGES), len(TEST_SPEAKERS)))
    output_mean, output_std = speech_statistics()
    input_mean = np.zeros(layout.frame_dimension, np.float32)
    input_std = np.ones(layout.frame_dimension, np.float32)
    input_std[-1] = 10.0  # the duration-in-frames input, so that it stays of order one
    statistics = DurationStatistics(
        np.zeros(layout.dimension, np.float32),
        np.ones(layout.dimension, np.float32),
        duration_mean=9.0,
        duration_std=3.0,
        layout_fingerprint=layout.fingerprint,
        count=1,
    )
    entry = save_voice(
        folder,
        name=name,
        acoustic_model=acoustic,
        duration_model=duration,
        layout=layout,
        normalisation={
            "input_mean": input_mean,
            "input_std": input_std,
            "output_mean": output_mean,
            "output_std": output_std,
        },
        duration_statistics=statistics,
        languages={code: index for index, code in enumerate(TEST_LANGUAGES)},
        speakers={
            speaker: {"id": index, "language": language}
            for index, (speaker, language) in enumerate(TEST_SPEAKERS.items())
        },
        sample_rate=vocoder.DEFAULT_SAMPLE_RATE,
        description="untrained test voice",
        extra_metadata={"metrics": {}, "commands": ["tests/voice_testing.py"]},
    )
    return entry, acoustic, duration, layout


_SHARED = {}


def shared_test_voice(tmp_path_factory):
    """`(folder, registry entry)` of a test voice built once per test session (seed 0); copy it before changing it."""
    if "folder" not in _SHARED:
        folder = tmp_path_factory.mktemp("shared-voice") / "test-voice"
        _SHARED["entry"] = build_test_voice(folder)[0]
        _SHARED["folder"] = folder
    return _SHARED["folder"], _SHARED["entry"]
