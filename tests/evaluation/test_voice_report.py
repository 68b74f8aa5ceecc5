"""`mlms eval-voice`: held-out sentences, DTW, the report's rows and the floor, on the tiny test voice and the
shipped voice."""

import json
from pathlib import Path

import numpy as np
import pytest
from voice_testing import TEST_LANGUAGES, TEST_SPEAKERS, build_test_voice

from mlms_keras import vocoder
from mlms_keras.cli import main
from mlms_keras.data.sentences import generate_sentences
from mlms_keras.evaluation.dtw import dtw_path, mcep_distance_matrix
from mlms_keras.evaluation.heldout import HELDOUT_SENTENCES, MIN_UNSEEN_WORDS, read_sentence_file, unseen_words
from mlms_keras.evaluation.voice_report import SIDES, VoiceReportOptions, evaluate_voice, speech_span

REPOSITORY = Path(__file__).resolve().parents[2]
ROW_FIELDS = {"utterances", "failed", "mcd_db", "f0_rmse_hz", "vuv_error_percent", "voiced_ratio", "length_ratio"}


def test_held_out_sentences_are_beyond_every_corpus_grammar():
    for language, sentences in HELDOUT_SENTENCES.items():
        assert len(sentences) >= 2, language
        for sentence in sentences:
            assert len(unseen_words(sentence, language)) >= MIN_UNSEEN_WORDS, (language, sentence)
    # The check itself: a grammar's own sentences have no unseen word (number phrases aside).
    for language in ("en-us", "fr", "pl"):
        for sentence in generate_sentences(language, 20, seed=1):
            assert all(word.isdigit() for word in unseen_words(sentence, language)), sentence


def test_sentence_files_name_the_bad_line(tmp_path):
    path = tmp_path / "sentences.txt"
    path.write_text("# mine\nfr|Bonjour à tous.\n\nfr|Encore une phrase.\nen-us|Hello there.\n", encoding="utf-8")
    assert read_sentence_file(path) == {"fr": ["Bonjour à tous.", "Encore une phrase."], "en-us": ["Hello there."]}
    path.write_text("fr|Bonjour.\nno separator here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        read_sentence_file(path)


def test_dtw_finds_the_warp_of_a_stretched_sequence():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(40, 5))
    repeats = rng.integers(1, 4, size=40)  # each frame held 1-3 times
    generated = np.repeat(reference, repeats, axis=0)
    rows, columns = dtw_path(mcep_distance_matrix(reference, generated))
    np.testing.assert_array_equal(columns, np.arange(len(generated)))
    np.testing.assert_array_equal(rows, np.repeat(np.arange(40), repeats))
    # Brute force on a small case: the path's cost is the least over all monotonic paths.
    cost = rng.uniform(size=(4, 5))
    rows, columns = dtw_path(cost)

    def best(i, j):
        if (i, j) == (0, 0):
            return cost[0, 0]
        steps = [(i - 1, j - 1), (i - 1, j), (i, j - 1)]
        return cost[i, j] + min(best(a, b) for a, b in steps if a >= 0 and b >= 0)

    assert cost[rows, columns].sum() == pytest.approx(best(3, 4))


def test_the_speech_span_leaves_out_edge_silence():
    rate = vocoder.DEFAULT_SAMPLE_RATE
    tone = 0.5 * np.sin(2 * np.pi * 200 * np.arange(rate) / rate)
    wave = np.concatenate([np.full(rate // 2, 1e-5), tone, np.full(rate // 4, 1e-5)])
    span = speech_span(wave, rate, vocoder.num_frames_for(wave.size, rate))
    assert abs(span.start - 100) <= 2 and abs(span.stop - 300) <= 2  # 0.5 s to 1.5 s in 5 ms frames


@pytest.fixture(scope="module")
def test_voice(tmp_path_factory):
    folder = tmp_path_factory.mktemp("voices") / "test-voice"
    build_test_voice(folder)
    return folder


def test_eval_voice_reports_every_row_and_measures_the_floor_in_the_same_run(test_voice, tmp_path, capsys):
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("en-us|The old lighthouse keeper painted his boat.\npl|Rybak naprawia sieci.\n", "utf-8")
    out = tmp_path / "report"
    arguments = ["eval-voice", str(test_voice), "--sentences", str(sentences), "--out", str(out), "--plots", "2"]
    assert main([*arguments, "--speakers", "en-us-female,pl-female"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["format"] == "mlms-voice-report" and "WORLD copy synthesis" in printed
    assert (out / "report.md").read_text() in printed
    # 2 speakers x 2 languages: 2 native, 2 cross-language; the floor scores every teacher wave of this run.
    assert [(u["speaker"], u["language"], u["kind"]) for u in report["utterances"]] == [
        ("en-us-female", "en-us", "native_training"),
        ("pl-female", "en-us", "cross_language"),
        ("en-us-female", "pl", "cross_language"),
        ("pl-female", "pl", "native_training"),
    ]
    rows = report["rows"]
    assert rows["floor"]["utterances"] == 4 and rows["native_adapted"]["utterances"] == 0
    assert set(rows["floor"]) >= ROW_FIELDS and rows["native_training"]["utterances"] == 2
    assert set(report["per_language"]) == set(TEST_LANGUAGES) and set(report["per_language"]["pl"]) == set(SIDES)
    # The floor is WORLD copy synthesis: near the teacher (the issue measured 3.55 dB, 0.93, 1.00, no clipping).
    floor = rows["floor"]
    assert 2.0 < floor["mcd_db"] < 5.0 and 0.85 < floor["voiced_ratio"] < 1.1 and 0.97 < floor["length_ratio"] < 1.03
    assert floor["clipped_samples"] == 0 and floor["peak_dbfs"] < -1.0
    # An untrained voice is far from its teacher: worse than the floor on every count.
    voice = rows["native_training"]
    assert voice["failed"] + voice["utterances"] == 2
    if voice["utterances"]:
        assert voice["mcd_db"] > floor["mcd_db"] + 2.0
    assert len(report["plots"]) == 2 and all(Path(path).stat().st_size > 10_000 for path in report["plots"])


def test_eval_voice_refuses_unknown_speakers_and_languages(test_voice, tmp_path, capsys):
    assert main(["eval-voice", str(test_voice), "--speakers", "nobody", "--out", str(tmp_path)]) == 2
    assert "nobody" in capsys.readouterr().err
    with pytest.raises(ValueError, match="does not speak"):
        from mlms_keras.zoo import load_voice

        evaluate_voice(load_voice(test_voice), VoiceReportOptions(sentences={"de": ["Guten Tag."]}))
    assert set(TEST_SPEAKERS) == {"en-us-female", "fr-female", "pl-female"}


@pytest.mark.slow
def test_the_shipped_voice_speaks_natively_and_cross_language_with_real_voicing_and_no_clipping():
    from mlms_keras.zoo import list_voices, load_voice

    voice = load_voice(list_voices()[0]["name"])  # the default voice, teacher-polyglot-small
    # Native: es-female, 2 Spanish sentences.
    options = VoiceReportOptions(sentences={"es": list(HELDOUT_SENTENCES["es"][:2])}, speakers=("es-female",))
    row = evaluate_voice(voice, options)["rows"]["native_training"]
    assert row["failed"] == 0 and 0.8 < row["voiced_ratio"] < 1.2 and 0.9 < row["length_ratio"] < 1.1
    assert row["clipped_samples"] == 0
    # Cross-language: it-female, 2 French sentences. (teacher-small, trained with one language per speaker,
    # whispers here: a voiced-frame ratio of 0.32 over all its cross-language pairs, docs/voices.md.)
    options = VoiceReportOptions(sentences={"fr": list(HELDOUT_SENTENCES["fr"][:2])}, speakers=("it-female",))
    row = evaluate_voice(voice, options)["rows"]["cross_language"]
    assert row["failed"] == 0 and row["clipped_samples"] == 0
    assert 0.7 < row["voiced_ratio"] < 1.3 and 0.9 < row["length_ratio"] < 1.1, row
