"""A tiny zoo voice for tests: untrained tiny models with realistic output statistics.

The models are random (no training: tests of the zoo format and of the synthesis mechanics need exact
behaviour, not good speech); the output normalisation comes from WORLD analysis of real espeak-ng speech,
so de-normalised frames are speech-like vocoder parameters, and V/UV is centred on "voiced" so that the
WORLD pulse train (the hard part of streaming synthesis) is exercised. The weights are seeded and the statistics
come from a fresh process, so a test voice is the same whatever ran before it in the session.
"""

import functools
import json
import subprocess
import sys

import numpy as np

from mlms_keras import vocoder
from mlms_keras.frontend.layout import FeatureLayout
from mlms_keras.models.acoustic import MLMSConfig, build_mlms_model
from mlms_keras.models.duration import DurationStatistics, build_duration_model, duration_config
from mlms_keras.zoo import save_voice

TEST_LANGUAGES = ("en-us", "fr", "pl")
TEST_SPEAKERS = {"en-us-female": "en-us", "fr-female": "fr", "pl-female": "pl"}
SPEECH_TEXT = ("We were away a year ago.", "en-us")

# Run in a fresh interpreter: libespeak-ng keeps glottal phase, pitch flutter and filter states in static
# variables across utterances (`mlms_keras.frontend.espeak.synthesize`), so in this process the same sentence
# comes out a few samples different after every earlier synthesis, and the test voice would depend on which tests
# ran before it. A fresh process always starts from espeak-ng's initial state.
_MOMENTS_SCRIPT = f"""
import json
import numpy as np
from mlms_keras import vocoder
from mlms_keras.frontend import espeak
synthesis = espeak.synthesize(*{SPEECH_TEXT!r})
wave = np.asarray(synthesis.waveform, np.float64)
features = vocoder.analyze(wave, synthesis.sample_rate, f0_method="dio").to_vector()
print(json.dumps([features.mean(axis=0).tolist(), features.std(axis=0).tolist()]))
"""


@functools.cache
def _speech_moments():
    """(mean, std) lists of the WORLD features of `SPEECH_TEXT`, synthesised by a fresh process (once per session)."""
    result = subprocess.run(
        [sys.executable, "-c", _MOMENTS_SCRIPT], capture_output=True, text=True, check=False, timeout=300
    )
    if result.returncode != 0:
        raise RuntimeError(f"the speech statistics process failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def speech_statistics():
    """(mean, std) (49,) float32 of WORLD features of a real espeak-ng sentence, V/UV mean set to 1 (voiced).

    The same numbers in every process, whatever was synthesised before (`_MOMENTS_SCRIPT`)."""
    mean, std = (np.array(values, np.float32) for values in _speech_moments())  # exact: JSON holds float32 values
    std = np.maximum(std, 1e-3)
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
