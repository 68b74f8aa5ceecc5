"""The bad-input set: audio, text, ids and files through the public entry points.

Each case ends in a clear error (the message names the file, field or argument) or in a documented repair, with
no traceback, no hang and no partial file. Cases run through Python entry points (`audio.load`, `vocoder.analyze`,
`Synthesizer`, `load_voice`, `load_dataset`, `prepare_dataset`) and `mlms_keras.cli.main` in-process (the command's
own error wrapper); `tests/cli/test_failures.py` runs the verbs in child processes for the read-only folder and
the full disk. One tiny test voice and one prepared tiny corpus are shared by every case.

Counts: 64 test ids (25 audio, one of them through `prepare_dataset`; 22 text; 17 ids and files), several of
which try more than one input or entry point: 87 checked inputs (27 audio, 23 text, 37 ids and files).
"""

import json
import shutil

import numpy as np
import pytest
import soundfile
from voice_testing import shared_test_voice

from mlms_keras import vocoder, zoo
from mlms_keras.cli import main
from mlms_keras.data import load_dataset
from mlms_keras.frontend import espeak
from mlms_keras.frontend.espeak import FrontendInputError
from mlms_keras.synthesis import Synthesizer
from mlms_keras.vocoder import audio

RATE = 22050


def tone(seconds=0.5, rate=RATE, amplitude=0.5):
    """A 150 Hz sawtooth-rich tone (voiced, speech-like pitch)."""
    time = np.arange(int(seconds * rate)) / rate
    return (amplitude * (2 * ((150 * time) % 1.0) - 1)).astype(np.float32)


@pytest.fixture(scope="module")
def voice_folder(tmp_path_factory):
    return shared_test_voice(tmp_path_factory)[0]


@pytest.fixture(scope="module")
def synthesizer(voice_folder):
    return Synthesizer(zoo.load_voice(voice_folder), chunk_frames=32)


# Audio ------------------------------------------------------------------------------------------------------------
def write(path, wave, rate=RATE, subtype="PCM_16"):
    soundfile.write(path, wave, rate, subtype=subtype)
    return path


AUDIO_ERRORS = {
    "corrupt": (lambda p: p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4), "not a readable"),
    "truncated": (lambda p: p.write_bytes(write(p, tone(1.0)).read_bytes()[:20000]), "truncated"),
    "empty": (lambda p: p.write_bytes(b""), r"empty \(0 bytes\)"),
    "not-audio-named-wav": (lambda p: p.write_text("id|text\nthis is a csv file\n"), "not a readable audio file"),
    "header-only": (lambda p: p.write_bytes(write(p, tone(1.0)).read_bytes()[:44]), "truncated"),
    "a-folder": (lambda p: p.mkdir(), "not a readable audio file"),
    "missing": (lambda p: None, "no such audio file"),
}


@pytest.mark.parametrize("case", sorted(AUDIO_ERRORS))
def test_unreadable_audio_files_are_named(tmp_path, case):
    make, message = AUDIO_ERRORS[case]
    path = tmp_path / "input.wav"
    make(path)
    with pytest.raises(audio.AudioFileError, match=message) as error:
        audio.load(path)
    assert str(path) in str(error.value)


AUDIO_ANALYSIS_ERRORS = {
    "nan-in-float-wav": (lambda w: np.where(np.arange(w.size) == 100, np.nan, w), "FLOAT", "NaN or inf"),
    "inf-in-float-wav": (lambda w: np.where(np.arange(w.size) == 7, np.inf, w), "FLOAT", "NaN or inf"),
    "beyond-full-scale-float": (lambda w: w * 3.0, "FLOAT", "exceeds full scale"),
    "heavily-clipped": (lambda w: np.clip(w * 4.0, -1.0, 1.0), "PCM_16", "clipped"),
}


@pytest.mark.parametrize("case", sorted(AUDIO_ANALYSIS_ERRORS))
def test_audio_that_loads_but_is_not_speech_is_refused_by_analysis(tmp_path, case):
    change, subtype, message = AUDIO_ANALYSIS_ERRORS[case]
    path = write(tmp_path / "input.wav", change(tone()), subtype=subtype)
    wave, rate = audio.load(path)
    with pytest.raises(ValueError, match=message) as error:
        vocoder.analyze(wave, rate, f0_method="dio", name=str(path))
    assert str(path) in str(error.value)


def test_8_khz_audio_is_refused_with_advice(tmp_path):
    path = write(tmp_path / "phone.wav", tone(rate=8000), rate=8000)
    wave, rate = audio.load(path)
    with pytest.raises(ValueError, match=r"8000 Hz is below the supported minimum.*upsampling does not restore"):
        vocoder.analyze(wave, rate, name=str(path))
    with pytest.raises(audio.UpsamplingError, match="refusing to upsample"):
        audio.load(path, target_sample_rate=RATE)


@pytest.mark.parametrize(
    ("case", "subtype", "channels", "rate", "seconds"),
    [
        ("8-bit", "PCM_U8", 1, RATE, 0.5),
        ("24-bit", "PCM_24", 1, RATE, 0.5),
        ("32-bit-float", "FLOAT", 1, RATE, 0.5),
        ("stereo", "PCM_16", 2, RATE, 0.5),
        ("96-khz", "PCM_24", 1, 96000, 0.5),
        ("10-ms", "PCM_16", 1, RATE, 0.01),
        ("silent", "PCM_16", 1, RATE, 0.5),
        ("very-long-10-minutes", "PCM_16", 1, 16000, 600.0),
        ("lightly-clipped", "PCM_16", 1, RATE, 0.5),
    ],
)
def test_unusual_but_valid_audio_is_read_and_analysed(tmp_path, case, subtype, channels, rate, seconds):
    """Documented handling: any PCM depth or float is scaled to [-1, 1], channels are averaged, any rate >= 16 kHz
    is analysed at its native rate (or downsampled on request), silence gives all-unvoiced frames, a few clipped
    samples only warn."""
    wave = np.zeros(int(seconds * rate), np.float32) if case == "silent" else tone(seconds, rate)
    if case == "lightly-clipped":
        wave[1000:1004] = 1.0
    data = np.stack([wave, -wave], axis=1) if channels == 2 else wave
    path = write(tmp_path / "input.wav", data, rate=rate, subtype=subtype)
    loaded, loaded_rate = audio.load(path)
    assert loaded_rate == rate and loaded.shape == (len(wave),) and np.abs(loaded).max() <= 1.0
    if channels == 2:
        np.testing.assert_allclose(loaded, 0.0, atol=1e-4)  # the channel mean of a signal and its negative
        return
    if case == "very-long-10-minutes":
        assert audio.load(path, target_sample_rate=16000)[0].shape == (len(wave),)
        return
    tolerance = {"PCM_U8": 1 / 64, "PCM_16": 1e-4, "PCM_24": 1e-6}.get(subtype, 0)
    np.testing.assert_allclose(loaded, wave, atol=tolerance)
    features = vocoder.analyze(loaded, rate, f0_method="dio", name=str(path))
    assert features.num_frames == vocoder.num_frames_for(len(wave), rate)
    assert np.all(np.isfinite(features.to_vector()))
    if case == "silent":
        assert not features.vuv.any()


@pytest.mark.parametrize(
    ("case", "wave", "message"),
    [
        ("integer-pcm-array", (tone() * 32767).astype(np.int16), "expected float samples"),
        ("stereo-array", np.stack([tone(), tone()], axis=1), "mix to mono"),
        ("empty-array", np.zeros(0, np.float32), "empty"),
    ],
)
def test_arrays_given_to_analysis_directly(case, wave, message):
    with pytest.raises(ValueError, match=message):
        vocoder.analyze(wave, RATE, name=case)


# Text -------------------------------------------------------------------------------------------------------------
TEXT_ERRORS = {
    "empty": ("", "empty"),
    "whitespace-only": (" \t\n  ", "empty"),
    "punctuation-only": ("?! ... -- ;", "no letters or digits"),
    "emoji-only": ("😀 👍🏽 👨\u200d👩\u200d👧", "empty once control characters and symbols are removed"),
    "control-only": ("\x00\x07\x1b", "empty once control characters"),
    "right-to-left-script": ("مرحبا بالعالم", "outside the LATIN script.*ARABIC"),
    "hebrew-in-french": ("Bonjour שלום.", "outside the LATIN script.*HEBREW"),
    "wrong-script-for-the-language": ("Dzień dobry, Здравствуйте.", "CYRILLIC"),
    "a-3000-character-word": ("a" * 3000, "more than 2000"),
    "not-a-string": (b"Hello", "must be a string"),
}


@pytest.mark.parametrize("case", sorted(TEXT_ERRORS))
def test_text_that_cannot_be_spoken_is_a_clear_error(synthesizer, case):
    text, message = TEXT_ERRORS[case]
    language = "fr" if "french" in case or case == "right-to-left-script" else "pl"
    with pytest.raises(FrontendInputError, match=message):
        synthesizer.synthesize(text, language)


TEXT_REPAIRS = {
    "nul-in-the-middle": ("Salut\x00 les amis.", "Salut les amis."),
    "control-characters": ("\x1b[31mSalut\x1b[0m les\x07 amis.", "[31mSalut[0m les amis."),
    "byte-order-mark-and-bidi-controls": ("\ufeffSalut \u202eles\u202c amis.", "Salut les amis."),
    "lone-surrogate": ("Salut\ud800 les amis.", "Salut les amis."),
    "emoji-in-text": ("Salut 😀 les amis 👍🏽.", "Salut les amis ."),
    "symbols-in-text": ("Salut © les amis ™.", "Salut les amis ."),
    "punctuation-only-piece": ("Salut les amis. ... !", "Salut les amis."),
}


@pytest.mark.parametrize("case", sorted(TEXT_REPAIRS))
def test_text_repairs_give_the_audio_of_the_repaired_text(synthesizer, case, caplog):
    text, repaired = TEXT_REPAIRS[case]
    with caplog.at_level("WARNING", logger="mlms_keras"):
        wave = synthesizer.synthesize(text, "fr", "fr-female")
    np.testing.assert_array_equal(wave, synthesizer.synthesize(repaired, "fr", "fr-female"))
    if case != "punctuation-only-piece":
        assert "removed" in caplog.text or "dropped" in caplog.text


def test_a_nul_reaching_the_frontend_directly_is_removed_not_a_cut(caplog):
    with caplog.at_level("WARNING", logger="mlms_keras.frontend"):
        utterance = espeak.analyze("Bonjour\x00 le monde.", "fr")
    assert utterance.text == "Bonjour le monde." and len(utterance.words) == 3
    assert "removed 1 control character (U+0000" in caplog.text


def test_one_foreign_sentence_in_a_long_text_is_skipped_not_fatal(voice_folder, tmp_path, capsys):
    out = tmp_path / "out.wav"
    text = "Salut les amis. Здравствуйте. Merci beaucoup."
    assert main(["say", "--voice", str(voice_folder), "--lang", "fr", text, "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "skipped 1 sentence" in captured.out and "mlms say: warning: skipped the sentence" in captured.err
    assert out.is_file()
    strict = tmp_path / "strict.wav"
    assert main(["say", "--voice", str(voice_folder), "--lang", "fr", text, "-o", str(strict), "--strict"]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not strict.exists()


def test_a_3000_character_word_among_sentences_is_skipped(synthesizer):
    lenient = Synthesizer(synthesizer.voice, chunk_frames=32, strict=False)
    wave = lenient.synthesize(f"Salut. {'a' * 3000}. Merci.", "fr", "fr-female")
    assert len(lenient.skipped) == 1 and "more than 2000" in lenient.skipped[0][1]
    assert len(wave) == sum(len(synthesizer.synthesize(t, "fr", "fr-female")) for t in ("Salut.", "Merci."))


@pytest.mark.slow
def test_a_100000_character_text_streams_to_a_file(synthesizer, tmp_path):
    sentence = "Le petit chat dort sur la chaise, et le chien regarde la pluie. "
    text = (sentence * (100_000 // len(sentence) + 1))[:100_000]
    seconds = synthesizer.synthesize_to_file(text, "fr", "fr-female", tmp_path / "long.wav", stream=False)
    assert seconds > 100 and soundfile.info(tmp_path / "long.wav").duration == pytest.approx(seconds)


def test_digits_and_currency_are_read(synthesizer):
    assert len(synthesizer.synthesize("12 345 €.", "fr", "fr-female")) > 0


# Ids and files -----------------------------------------------------------------------------------------------------
def test_unknown_language_speaker_and_voice_list_the_valid_ones(synthesizer):
    with pytest.raises(ValueError, match=r"does not speak language 'xx'.*en-us, fr, pl"):
        synthesizer.synthesize("Salut.", "xx")
    with pytest.raises(ValueError, match=r"no speaker 'nobody'.*fr-female"):
        synthesizer.synthesize("Salut.", "fr", "nobody")
    with pytest.raises(zoo.UnknownVoiceError, match=r"Unknown voice 'no-such-voice'.*Built-in voices"):
        zoo.load_voice("no-such-voice")
    with pytest.raises(zoo.UnknownVoiceError):
        zoo.load_voice("")


def damage(folder, case):
    if case == "tampered-weights":
        path = folder / "model.weights.h5"
        path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    elif case == "tampered-metadata":
        metadata = json.loads((folder / "metadata.json").read_text())
        (folder / "metadata.json").write_text(json.dumps(dict(metadata, sample_rate=16000)))
    elif case == "missing-weights":
        (folder / "duration.weights.h5").unlink()
    elif case == "missing-metadata":
        (folder / "metadata.json").unlink()
    elif case == "extra-file":
        (folder / "notes.txt").write_text("hello")
    elif case == "malformed-metadata":
        (folder / "metadata.json").write_text('{"format": "mlms-zoo-voice", "files": {')
    elif case == "unlisted-model-file":
        metadata = json.loads((folder / "metadata.json").read_text())
        del metadata["files"]["model.weights.h5"]
        (folder / "metadata.json").write_text(json.dumps(metadata))
    elif case == "file-name-with-dotdot":
        metadata = json.loads((folder / "metadata.json").read_text())
        metadata["files"]["../outside.h5"] = "0" * 64
        (folder / "metadata.json").write_text(json.dumps(metadata))


VOICE_DAMAGE = {
    "tampered-weights": (zoo.VoiceHashError, "model.weights.h5: sha256 mismatch"),
    "tampered-metadata": (zoo.VoiceHashError, "metadata.json"),  # pinned by --sha256 below
    "missing-weights": (zoo.VoiceFilesError, "duration.weights.h5 is listed but missing"),
    "missing-metadata": (FileNotFoundError, "metadata.json: no such file"),
    "extra-file": (zoo.VoiceFilesError, "notes.txt .*not listed"),
    "malformed-metadata": (ValueError, "metadata.json"),
    "unlisted-model-file": (zoo.VoiceFilesError, "model.weights.h5 not listed"),
    "file-name-with-dotdot": (zoo.VoiceFilesError, "not a plain file name"),
}


@pytest.mark.parametrize("case", sorted(VOICE_DAMAGE))
def test_damaged_zoo_voices_are_refused_naming_the_file(voice_folder, tmp_path, case, capsys):
    error_type, message = VOICE_DAMAGE[case]
    folder = tmp_path / "test-voice"
    shutil.copytree(voice_folder, folder)
    pin = zoo.sha256_of(folder / "metadata.json")
    damage(folder, case)
    with pytest.raises(error_type, match=message):
        zoo.load_voice(folder, sha256=pin if case == "tampered-metadata" else None)
    out = tmp_path / "out.wav"
    argv = ["say", "--voice", str(folder), "--lang", "fr", "Salut.", "-o", str(out)]
    assert main([*argv, "--sha256", pin] if case == "tampered-metadata" else argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("mlms say: ") and error.count("\n") == 1 and not out.exists()


@pytest.mark.parametrize(
    ("case", "suffix", "error_type", "message"),
    [
        ("output-is-a-folder", "", IsADirectoryError, "is a folder; give an audio file name"),
        ("parent-is-a-file", "file.txt/out.wav", OSError, "file.txt"),
        ("unsupported-extension", "out.mp3", ValueError, "unsupported extension '.mp3'"),
    ],
)
def test_bad_output_paths_fail_before_synthesis_and_write_nothing(
    synthesizer, tmp_path, case, suffix, error_type, message
):
    (tmp_path / "file.txt").write_text("a file")
    path = tmp_path / suffix if suffix else tmp_path
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(error_type, match=message):
        synthesizer.synthesize_to_file("Salut.", "fr", "fr-female", path)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    with pytest.raises(error_type, match=message):
        audio.save(path, tone(), RATE)


def test_cli_bad_output_paths_are_one_line(voice_folder, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("a file")
    for output, expected in ((tmp_path, "is a folder"), (tmp_path / "file.txt" / "out.wav", "file.txt")):
        assert main(["say", "--voice", str(voice_folder), "--lang", "fr", "Salut.", "-o", str(output)]) == 2
        error = capsys.readouterr().err
        assert error.startswith("mlms say: ") and expected in error and error.count("\n") == 1


def test_cli_unknown_ids_are_one_line(voice_folder, tmp_path, capsys):
    out = str(tmp_path / "out.wav")
    for argv, expected in (
        (["say", "--voice", str(voice_folder), "--lang", "xx", "Salut.", "-o", out], "does not speak language 'xx'"),
        (["say", "--voice", str(voice_folder), "--lang", "fr", "--speaker", "bob", "Salut.", "-o", out], "'bob'"),
        (["say", "--voice", "no-such-voice", "--lang", "fr", "Salut.", "-o", out], "Unknown voice"),
        (["zoo", "info", "http://example.org/voice"], "http:// is refused"),
        (["languages", "--voice", "no-such-voice"], "not an installed zoo voice"),
    ):
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and expected in error, error
    assert not (tmp_path / "out.wav").exists()


def test_malformed_and_missing_dataset_files_are_named(damaged_dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset.json"):
        load_dataset(tmp_path / "nothing-here")
    (damaged_dataset / "dataset.json").write_text("{]")
    with pytest.raises(ValueError, match="dataset.json"):
        load_dataset(damaged_dataset)


def test_a_missing_shard_is_named(damaged_dataset):
    shard = sorted((damaged_dataset / "shards").glob("train-*.tfrecord.gz"))[0]
    shard.unlink()
    import tensorflow as tf

    # tf.data opens shards lazily: the error comes at the first batch, as TensorFlow's NotFoundError naming the
    # shard (the command line prints it as one line: `tests/cli/test_failures.py`).
    with pytest.raises((FileNotFoundError, tf.errors.NotFoundError), match=shard.name):
        for _ in load_dataset(damaged_dataset):
            pass


def test_a_corrupt_shard_is_named(damaged_dataset, capsys):
    shard = sorted((damaged_dataset / "shards").glob("train-*.tfrecord.gz"))[0]
    shard.write_bytes(shard.read_bytes()[:100])
    run = damaged_dataset.parent / "run"
    assert main(["train", str(damaged_dataset), "--out", str(run), "--preset", "tiny", "--epochs", "1", "--quiet"]) == 2
    error = capsys.readouterr().err
    # Named before training starts: dataset.json records every shard's size (tf.data would read it as a short one).
    assert error.startswith("mlms train: ") and shard.name in error and "truncated" in error, error
    assert "Traceback" not in error and error.count("\n") == 1
    assert not (run / "model.keras").exists()


def test_bad_utterances_in_a_corpus_are_skipped_and_reported(corpus, tmp_path):
    from mlms_keras.data.prepare import prepare_dataset

    copy = tmp_path / "corpus"
    shutil.copytree(corpus, copy)
    wavs = sorted((copy / "wavs").glob("*.wav"))
    wavs[0].write_bytes(b"RIFF not really")
    write(wavs[1], np.full(RATE // 2, np.nan, np.float32), subtype="FLOAT")
    report = prepare_dataset(copy, tmp_path / "prepared", workers=1, f0_method="dio", progress=False)
    named = " ".join(json.dumps(item) for item in report.skipped)
    assert wavs[0].stem in named and wavs[1].stem in named, report.skipped
    assert report.complete
