"""Text to speech: the Synthesizer's pipeline, streaming, long text, bad input and `mlms say`."""

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile
from voice_testing import TEST_LANGUAGES, TEST_SPEAKERS, build_test_voice

from mlms_keras import vocoder
from mlms_keras.cli import main
from mlms_keras.evaluation import metrics
from mlms_keras.frontend.espeak import FrontendInputError
from mlms_keras.models.duration import SENTENCE_EDGE_SILENCE_FRAMES
from mlms_keras.synthesis.synthesizer import STREAM_CROSSFADE_FRAMES, Synthesizer, split_sentences
from mlms_keras.zoo import load_voice

REPOSITORY = Path(__file__).resolve().parents[2]
SAMPLES_PER_FRAME = vocoder.DEFAULT_SAMPLE_RATE * 0.005


@pytest.fixture(scope="module")
def voice_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("voices") / "test-voice"
    build_test_voice(folder)
    return folder


@pytest.fixture(scope="module")
def synthesizer(voice_folder):
    return Synthesizer(load_voice(voice_folder), chunk_frames=32)


def test_unknown_language_or_speaker_lists_the_valid_ones(synthesizer):
    with pytest.raises(ValueError) as error:
        synthesizer.synthesize("Hello.", "de", "fr-female")
    assert all(code in str(error.value) for code in TEST_LANGUAGES)
    with pytest.raises(ValueError) as error:
        synthesizer.synthesize("Hello.", "en-us", "nobody")
    assert all(name in str(error.value) for name in TEST_SPEAKERS)


def test_empty_and_unsupported_text_follow_the_frontend_rules(synthesizer):
    for text in ("", "   \n"):
        with pytest.raises(FrontendInputError, match="empty"):
            synthesizer.synthesize(text, "en-us", "en-us-female")
        with pytest.raises(FrontendInputError, match="empty"):
            list(synthesizer.stream(text, "en-us", "en-us-female"))
    with pytest.raises(FrontendInputError, match="script"):
        synthesizer.synthesize("Bonjour Москва.", "fr", "fr-female")
    with pytest.raises(FrontendInputError, match="no letters or digits"):
        synthesizer.synthesize("?!", "fr", "fr-female")


def test_audio_lasts_the_predicted_frames(synthesizer):
    text = "Hello there, how are you today?"
    _, durations = synthesizer.frame_features(text, "en-us", "fr-female")
    wave = synthesizer.synthesize(text, "en-us", "fr-female")
    assert wave.dtype == np.float32 and np.abs(wave).max() <= 1.0
    assert len(wave) == int(durations.sum() * SAMPLES_PER_FRAME)
    stats = synthesizer.voice.duration_statistics
    assert durations[0] == durations[-1] == min(round(stats.edge_silence_frames), SENTENCE_EDGE_SILENCE_FRAMES)


def test_any_speaker_speaks_any_language(synthesizer):
    text = "Dzień dobry, jak się masz?"
    voice = synthesizer.voice
    native = synthesizer.acoustic_features(text, "pl", "pl-female")
    frames, _ = synthesizer.frame_features(text, "pl", "pl-female")  # fixed durations: the same frames for all

    def outputs(speaker):
        ids = {"language": np.array([voice.languages["pl"]], np.int32)}
        ids["speaker"] = np.array([voice.speakers[speaker]["id"]], np.int32)
        return np.asarray(voice.acoustic_model({"linguistic": frames[None], **ids}))[0] * voice.output_std

    np.testing.assert_allclose(outputs("pl-female") + voice.output_mean, native, rtol=1e-4, atol=1e-4)
    for speaker in ("en-us-female", "fr-female"):
        assert np.all(np.isfinite(synthesizer.acoustic_features(text, "pl", speaker)))
        # Same frames, another speaker's output layer: features differ by far more than float noise.
        assert np.abs(outputs(speaker) - outputs("pl-female")).mean() > 0.01


def test_streamed_frames_equal_the_one_pass_frames(synthesizer):
    text = "Bonjour, je suis très content de vous voir aujourd'hui."
    one_pass = synthesizer.acoustic_features(text, "fr", "en-us-female")
    chunks = list(synthesizer.stream_acoustic_features(text, "fr", "en-us-female"))
    assert [last for _, last in chunks] == [False] * (len(chunks) - 1) + [True]
    assert all(len(chunk) == synthesizer.chunk_frames for chunk, _ in chunks[:-1])
    np.testing.assert_allclose(np.concatenate([chunk for chunk, _ in chunks]), one_pass, rtol=1e-4, atol=1e-4)


def test_streamed_audio_matches_the_one_pass_audio_without_clicks(synthesizer):
    text = "Hello there, how are you today? I am fine."
    one_pass = synthesizer.synthesize(text, "en-us", "fr-female")
    pieces = list(synthesizer.stream(text, "en-us", "fr-female"))
    streamed = np.concatenate(pieces)
    assert len(pieces) > 3
    assert len(streamed) == len(one_pass)
    # Same sound: WORLD re-analysis of both is close, closer than to another speaker saying the same thing.
    reference = vocoder.analyze(one_pass.astype(np.float64), vocoder.DEFAULT_SAMPLE_RATE, f0_method="dio").to_vector()
    streamed_features = vocoder.analyze(
        streamed.astype(np.float64), vocoder.DEFAULT_SAMPLE_RATE, f0_method="dio"
    ).to_vector()
    close = metrics.evaluate_acoustic(reference, streamed_features)
    other = synthesizer.synthesize(text, "en-us", "pl-female")
    frames = min(len(other), len(one_pass))
    other_features = vocoder.analyze(
        other[:frames].astype(np.float64), vocoder.DEFAULT_SAMPLE_RATE, f0_method="dio"
    ).to_vector()
    far = metrics.evaluate_acoustic(reference[: len(other_features)], other_features[: len(reference)])
    assert close["mcd_db"] < 2.0 and close["mcd_db"] < far["mcd_db"]
    assert close["f0_rmse_hz"] < 5.0
    # Every sentence is streamed on its own: a piece ends where the sentence's one-pass audio ends.
    joins = np.cumsum([len(piece) for piece in pieces])[:-1]
    durations = [synthesizer.frame_features(s, "en-us", "fr-female")[1] for s in split_sentences(text)]
    sentence_ends = np.cumsum([int(frames.sum() * SAMPLES_PER_FRAME) for frames in durations])
    assert len(sentence_ends) == 2 and set(sentence_ends[:-1]) <= set(joins)
    # No clicks: no sample step near a join inside a sentence exceeds the largest step of the one-pass audio. A
    # sentence end is no such join: there both paths butt two sentences synthesised apart, and the streamed one ends
    # up to a pitch period off (the last piece's lag, mlms_keras/synthesis/streaming.py), in silence for a trained
    # voice but, for this random one, a cut through voiced audio whose step is pulse-phase luck (over 60 weight seeds:
    # up to 3.9 times the one-pass step at sentence ends, at most 1.07 at joins inside sentences). This voice's
    # noisy buzz hides clicks; test_streaming.py shows the joins click-free on a clean pulse train.
    inner_joins = [join for join in joins if join not in set(sentence_ends)]
    window = int(STREAM_CROSSFADE_FRAMES * SAMPLES_PER_FRAME)
    steps = np.abs(np.diff(streamed.astype(np.float64)))
    around_joins = np.concatenate([steps[max(0, j - window) : j + window] for j in inner_joins])
    assert around_joins.max() <= 1.1 * np.abs(np.diff(one_pass.astype(np.float64))).max()


def test_sentences_split_at_punctuation_and_respect_the_length_limit():
    text = "Hello there. How are you?  Fine, thanks! Next: a list; more"
    assert split_sentences(text) == ["Hello there.", "How are you?", "Fine, thanks!", "Next:", "a list;", "more"]
    long_sentence = ", ".join(["word " * 30] * 20)
    pieces = split_sentences(long_sentence, max_characters=200)
    assert all(len(piece) <= 200 for piece in pieces)
    assert " ".join(pieces).split() == long_sentence.split()


@pytest.mark.slow
def test_a_2000_word_text_streams_to_a_file_in_bounded_memory(synthesizer, tmp_path):
    sentence = "The quick brown fox jumps over the lazy dog and runs away."  # 12 words
    sentence_samples = int(synthesizer.frame_features(sentence, "en-us", "en-us-female")[1].sum() * SAMPLES_PER_FRAME)
    peaks = {}
    for repeats in (17, 167):  # about 200 and 2 004 words
        tracemalloc.start()
        seconds = synthesizer.synthesize_to_file(
            " ".join([sentence] * repeats), "en-us", "en-us-female", tmp_path / f"long-{repeats}.flac"
        )
        peaks[repeats] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        audio, rate = soundfile.read(tmp_path / f"long-{repeats}.flac")
        assert len(audio) == repeats * sentence_samples
        assert seconds == pytest.approx(len(audio) / rate)
    # Memory follows one sentence, not the text: ten times the text, (almost) the same peak.
    assert peaks[167] < 1.3 * peaks[17]
    assert peaks[167] < 167 * sentence_samples * 4 / 4  # well under the whole text's audio as float32


def test_mlms_say_writes_a_wav_and_lists_speakers(voice_folder, tmp_path, capsys):
    out = tmp_path / "out.wav"
    code = main(
        [
            "say",
            "--voice",
            str(voice_folder),
            "--lang",
            "fr",
            "--speaker",
            "en-us-female",
            "Bonjour tout le monde.",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    audio, rate = soundfile.read(out)
    assert rate == vocoder.DEFAULT_SAMPLE_RATE and len(audio) > rate * 0.3
    assert main(["say", "--voice", str(voice_folder), "--list-speakers"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in TEST_SPEAKERS)
    assert (
        main(["say", "--voice", str(voice_folder), "--lang", "fr", "--speaker", "bob", "Salut.", "-o", str(out)]) == 2
    )
    assert "en-us-female" in capsys.readouterr().err


def test_mlms_say_errors_say_what_to_do(voice_folder, tmp_path, capsys):
    assert main(["say", "--voice", str(voice_folder), "Salut."]) == 2
    message = capsys.readouterr().err
    assert message.startswith("mlms say: missing --lang.") and "fr-female" in message and "Example:" in message
    book = tmp_path / "book.txt"
    book.write_bytes(b"Salut \xff\xfe.")
    arguments = ["--lang", "fr", "--speaker", "fr-female", "--file", str(book), "-o", str(tmp_path / "out.wav")]
    assert main(["say", "--voice", str(voice_folder), *arguments]) == 2
    assert capsys.readouterr().err.startswith(f"mlms say: cannot read --file {book}: not UTF-8 text")
    assert main(["say", "--voice", str(voice_folder), *arguments[:-3], str(tmp_path / "none.txt")]) == 2
    assert capsys.readouterr().err.startswith(f"mlms say: cannot read --file {tmp_path / 'none.txt'}")
    assert not (tmp_path / "out.wav").exists()


@pytest.mark.slow
def test_the_shipped_voice_speaks_its_training_languages_with_each_speakers_pitch():
    registry = json.loads((REPOSITORY / "zoo" / "registry.json").read_text())
    synthesizer = Synthesizer.from_zoo(sorted(registry["voices"])[0])
    texts = {
        "en-us": "Hello, how are you doing today?",
        "fr": "Bonjour, je suis content de vous voir.",
        "de": "Guten Morgen, wie geht es dir heute?",
        "es": "Hola, ¿cómo estás hoy, amigo?",
    }
    median_f0 = {}
    for speaker, language in (
        ("en-us-female", "en-us"),
        ("en-us-male", "en-us"),
        ("fr-female", "fr"),
        ("de-female", "de"),
        ("es-female", "es"),
    ):
        wave = synthesizer.synthesize(texts[language], language, speaker)
        features = vocoder.analyze(
            wave.astype(np.float64), synthesizer.sample_rate, f0_method="dio", max_clipped_fraction=0.05
        )
        voiced = features.vuv > 0.5
        assert voiced.mean() > 0.3, (speaker, language)  # it speaks: a good share of voiced frames
        median_f0[speaker] = float(np.median(np.exp(features.lf0[voiced])))
    # The teacher's male voice (espeak-ng m3) is lower than the female one (f2): the speaker layer keeps it.
    assert median_f0["en-us-male"] < 0.8 * median_f0["en-us-female"]
