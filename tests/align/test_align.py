"""`align` on generated speech with known boundaries, and its labels through the frontend."""

from __future__ import annotations

import numpy as np
import pytest

from mlms_keras.align import align, write_alignment
from mlms_keras.align.aligner import SilentAudioError
from mlms_keras.align.augment import add_noise
from mlms_keras.align.evaluation import boundary_errors, summarise_errors
from mlms_keras.align.phones import phones_for_text
from mlms_keras.data.readers import read_corpus
from mlms_keras.frontend import espeak
from mlms_keras.frontend.labels import read_hts_labels, read_textgrid
from mlms_keras.frontend.layout import FeatureLayout
from mlms_keras.frontend.linguistic import features_for_label_file
from mlms_keras.vocoder import audio


def test_boundaries_of_held_out_voices_in_noise(labelled_corpus):
    """Held-out voices and rates, 20 dB SNR, four languages: the benchmark's bound at a loose margin."""
    errors = []
    for item in read_corpus(labelled_corpus):
        wave, rate = audio.load(item.wav_path)
        noisy = add_noise(wave, 20.0, np.random.default_rng(0))
        result = align(noisy, rate, item.text, item.language)
        reference = read_hts_labels(item.alignment_path)
        errors.append(boundary_errors(reference, result.phones, phones_for_text(item.text, item.language)))
        assert result.phones[0].start_s == 0.0 and result.phones[-1].end_s == pytest.approx(wave.size / rate)
    figures = summarise_errors(np.concatenate(errors))
    assert figures["within_20ms"] >= 0.75, figures
    assert figures["mean_error_ms"] <= 30.0, figures


@pytest.mark.parametrize(
    ("text", "language"),
    [("Hej, hur mår du idag?", "sv"), ("我们今天去北京。", "cmn"), ("The quick brown fox jumps.", "en-us")],
)
def test_labels_round_trip_through_the_frontend(tmp_path, text, language):
    synthesis = espeak.synthesize(text, language, espeak.SpeakerVoice("m2", 170))
    result = align(synthesis.waveform, synthesis.sample_rate, text, language)
    write_alignment(result, tmp_path / "u.lab", tmp_path / "u.TextGrid")
    layout = FeatureLayout.for_languages([language])
    from_lab = features_for_label_file(text, language, tmp_path / "u.lab", layout)
    from_grid = features_for_label_file(text, language, tmp_path / "u.TextGrid", layout, tier="phones")
    # The TextGrid cannot hold the zero-length tones: the frontend puts them back, so both agree exactly.
    assert from_lab.symbols == from_grid.symbols
    np.testing.assert_array_equal(from_lab.durations_frames, from_grid.durations_frames)
    np.testing.assert_array_equal(from_lab.phoneme_features, from_grid.phoneme_features)
    spoken = [s for s in from_lab.symbols if s not in ("sil", "pau")]
    assert spoken == [p.symbol for p in espeak.analyze(text, language).phonemes]
    words = read_textgrid(tmp_path / "u.TextGrid", "words")
    assert [w.label for w in words if w.label] == [w.strip(",.?!") for w in text.split()] or language == "cmn"


def test_bad_input_is_a_clear_error():
    with pytest.raises(SilentAudioError, match="silent"):
        align(np.zeros(16000, np.float32), 16000, "hello", "en-us")
    with pytest.raises(espeak.FrontendInputError):
        align(np.random.default_rng(0).normal(0, 0.1, 16000).astype("float32"), 16000, "Привет", "en-us")
    with pytest.raises(ValueError, match="too short"):
        align(np.random.default_rng(0).normal(0, 0.1, 160).astype("float32"), 16000, "a long sentence here", "en-us")
    with pytest.raises(ValueError, match="16 kHz"):
        align(np.random.default_rng(0).normal(0, 0.1, 8000).astype("float32"), 8000, "hello", "en-us")
