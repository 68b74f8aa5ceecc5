"""Synthesis never writes broken audio: text cleaning, per-sentence skipping, the default speaker, the vocoder
guard before any file is written."""

import dataclasses

import numpy as np
import pytest
import soundfile
from voice_testing import shared_test_voice

from mlms_keras import vocoder
from mlms_keras.cli import main
from mlms_keras.frontend.espeak import FrontendInputError
from mlms_keras.frontend.text import clean_text, split_sentences
from mlms_keras.synthesis import Synthesizer
from mlms_keras.zoo import load_voice


@pytest.fixture(scope="module")
def voice(tmp_path_factory):
    return load_voice(shared_test_voice(tmp_path_factory)[0])


@pytest.fixture(scope="module")
def synthesizer(voice):
    return Synthesizer(voice, chunk_frames=32)


@pytest.fixture(scope="module")
def lenient(voice):
    return Synthesizer(voice, chunk_frames=32, strict=False)


def test_clean_text_removes_controls_and_drops_emoji_and_symbols():
    cleaned = clean_text("Hi\x00 there\x07 \u202eyou 😀 and 👨\u200d👩\u200d👧 ©2024, 5 € + 3 = 8, 20 °C\tok\n")
    assert cleaned.text == "Hi there you and 2024, 5 € + 3 = 8, 20 °C\tok\n"
    assert cleaned.controls == ("\x00", "\x07", "\u202e")
    assert "😀" in cleaned.symbols and "©" in cleaned.symbols and "\u200d" in cleaned.symbols
    controls, symbols = cleaned.warnings()
    assert controls.startswith("removed 3 control characters (U+0000 control character, U+0007")
    assert "U+1F600 grinning face" in symbols and "--read-symbols" in symbols
    kept = clean_text("Hi 😀\x00", read_symbols=True)
    assert kept.text == "Hi 😀" and not kept.symbols
    assert clean_text("plain text.").warnings() == []


def test_sentences_split_and_long_words_stay_whole():
    assert split_sentences("One. Two!  Three? ") == ["One.", "Two!", "Three?"]
    assert split_sentences("x" * 30, max_characters=10) == ["x" * 30]  # the frontend then refuses it


def test_a_nul_no_longer_cuts_the_text_and_emoji_are_not_read(synthesizer):
    reference = synthesizer.synthesize("Hello there.", "en-us", "en-us-female")
    np.testing.assert_array_equal(synthesizer.synthesize("Hello\x00 there.", "en-us", "en-us-female"), reference)
    np.testing.assert_array_equal(synthesizer.synthesize("Hello 😀 there.", "en-us", "en-us-female"), reference)
    reader = Synthesizer(synthesizer.voice, chunk_frames=32, read_symbols=True)
    assert len(reader.synthesize("Hello 😀 there.", "en-us", "en-us-female")) > len(reference)  # "grinning face"


def test_every_sentence_that_can_be_spoken_is_spoken_and_each_skip_reported(synthesizer, lenient, caplog):
    text = "Hello there. ... Здравствуйте. I do not know."
    with caplog.at_level("WARNING", logger="mlms_keras.synthesis"):
        wave = lenient.synthesize(text, "en-us", "en-us-female")
    expected = np.concatenate(
        [synthesizer.synthesize(sentence, "en-us", "en-us-female") for sentence in ("Hello there.", "I do not know.")]
    )
    np.testing.assert_array_equal(wave, expected)
    assert [sentence for sentence, _ in lenient.skipped] == ["Здравствуйте."]
    assert "skipped the sentence 'Здравствуйте.'" in caplog.text and "CYRILLIC" in caplog.text
    with pytest.raises(FrontendInputError, match="CYRILLIC"):
        synthesizer.synthesize(text, "en-us", "en-us-female")  # strict
    np.testing.assert_array_equal(synthesizer.synthesize("Hello there. ... I do not know.", "en-us"), expected)
    with pytest.raises(FrontendInputError, match="none of the 2 sentences could be spoken"):
        lenient.synthesize("Здравствуйте. Привет.", "en-us", "en-us-female")


def test_without_a_speaker_the_first_native_speaker_speaks(synthesizer, voice, tmp_path, capsys):
    assert synthesizer.default_speaker("fr") == "fr-female"
    assert synthesizer.default_speaker("pl") == "pl-female"
    no_native = Synthesizer(dataclasses.replace(voice, speakers={"en-us-female": voice.speakers["en-us-female"]}))
    assert no_native.default_speaker("fr") == "en-us-female"
    with pytest.raises(ValueError, match="does not speak language 'de'"):
        synthesizer.default_speaker("de")
    out = tmp_path / "out.wav"
    assert main(["say", "--voice", str(voice.folder), "--lang", "fr", "Salut.", "-o", str(out)]) == 0
    assert capsys.readouterr().out.startswith("speaker fr-female (the first native fr speaker of voice test-voice;")
    reference = synthesizer.synthesize("Salut.", "fr", "fr-female")
    assert soundfile.info(out).frames == len(reference)


@pytest.mark.parametrize(("shift", "message"), [(400.0, "overflows or vanishes"), (8.0, "peaks at")])
def test_features_far_outside_speech_are_refused_before_any_file_is_written(voice, tmp_path, shift, message):
    mean = voice.output_mean.copy()
    mean[vocoder.MCEP.start] += shift  # c0: a loud envelope (8) or one exp() overflows (400) -> WORLD gives NaN
    broken = Synthesizer(dataclasses.replace(voice, output_mean=mean), chunk_frames=32)
    out = tmp_path / "out.wav"
    with pytest.raises(ValueError, match=message):
        broken.synthesize_to_file("Hello there.", "en-us", "en-us-female", out)
    broken.strict = False
    with pytest.raises(ValueError, match=message):  # nothing could be spoken: still an error, not a silent file
        broken.synthesize_to_file("Hello there. I do not know.", "en-us", "en-us-female", out, stream=False)
    assert list(tmp_path.iterdir()) == []


def test_a_vocoder_failure_mid_text_skips_only_that_sentence(voice, synthesizer, tmp_path, monkeypatch):
    lenient = Synthesizer(voice, chunk_frames=32, strict=False)
    original = lenient._vocode

    def vocode(vectors, name):  # the second sentence's features go far outside speech
        if "know" in name:
            vectors = vectors.copy()
            vectors[:, 1:40] = 10.0
        return original(vectors, name)

    monkeypatch.setattr(lenient, "_vocode", vocode)
    out = tmp_path / "out.wav"
    seconds = lenient.synthesize_to_file("Hello there. I do not know. Good bye.", "en-us", "en-us-female", out)
    expected = [synthesizer.synthesize(text, "en-us", "en-us-female") for text in ("Hello there.", "Good bye.")]
    assert seconds * voice.sample_rate == sum(len(wave) for wave in expected)
    assert [sentence for sentence, _ in lenient.skipped] == ["I do not know."]
    assert "overflows or vanishes" in lenient.skipped[0][1]
    written, _ = soundfile.read(out, dtype="float32")
    assert np.all(np.isfinite(written)) and np.abs(written).max() < 1.0
