"""The teacher corpus builder, with real espeak-ng and real audio files."""

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile
from kill_testing import kill_when

from mlms_keras.data import teacher
from mlms_keras.data.teacher.speakers import POLYGLOT_GAIN_DB, POLYGLOT_SHARE
from mlms_keras.frontend.labels import read_hts_labels
from mlms_keras.frontend.layout import FeatureLayout
from mlms_keras.frontend.linguistic import expand_to_frames

# Table 1 of Li & Zen (2016): training utterances per speaker.
TABLE_1 = {
    "en-us-female": 35493,
    "en-us-male": 7652,
    "en-gb-female": 21403,
    "en-gb-male": 3587,
    "fr-female": 29924,
    "it-female": 29897,
    "de-female": 24535,
    "es-female": 19872,
    "pl-female": 900,
    "pt-br-female": 900,
}
SUBSET = ["en-gb-male", "it-female", "pl-female"]


def _digests(folder):
    folder = Path(folder)
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher") / "tiny"
    report = teacher.build_teacher_corpus(out, preset="tiny", seed=3, workers=2, progress=False)
    return out, report


def test_presets_follow_table_1():
    paper = teacher.preset_counts("paper-scale")
    assert {speaker: train for speaker, (train, _) in paper.items()} == TABLE_1
    assert all(dev == 100 for _, dev in paper.values())
    small = teacher.preset_counts("small")
    for speaker, (train, dev) in small.items():
        assert abs(train - TABLE_1[speaker] / 50) <= 0.5 and dev == 5
    # Adaptation languages keep their limited relative amount (900 / 35 493 in the paper).
    assert small["pl-female"][0] / small["en-us-female"][0] == pytest.approx(900 / 35493, rel=0.03)
    tiny = teacher.preset_counts("tiny")
    assert tiny["en-us-female"] == (4, 1) and tiny["pt-br-female"] == (2, 1)
    with pytest.raises(ValueError, match="Unknown preset"):
        teacher.preset_counts("huge")


def test_polyglot_presets_keep_table_1_counts_and_give_training_speakers_the_other_languages():
    table1 = teacher.plan_utterances("small", 0)
    polyglot = teacher.plan_utterances("polyglot-small", 0)
    training = ["en-us", "en-gb", "fr", "it", "de", "es"]
    for speaker in teacher.TEACHER_SPEAKERS:
        mine = [spec for spec in polyglot if spec.speaker_id == speaker.speaker_id]
        before = [spec for spec in table1 if spec.speaker_id == speaker.speaker_id]
        for split in ("train", "dev"):
            assert sum(s.split == split for s in mine) == sum(s.split == split for s in before), speaker.speaker_id
        foreign = [spec for spec in mine if spec.language != speaker.language]
        if speaker.language in training:
            # 30 % of the utterances in the five other training languages, spread evenly (round-robin per split).
            assert len(foreign) / len(mine) == pytest.approx(POLYGLOT_SHARE, abs=0.5 / len(mine) + 0.01)
            per_language = {code: sum(s.language == code for s in foreign) for code in training}
            assert per_language.pop(speaker.language) == 0
            assert max(per_language.values()) - min(per_language.values()) <= 2, per_language
        else:  # the adaptation speakers keep their one language, as in the paper
            assert foreign == []
        assert all(spec.gain_db == POLYGLOT_GAIN_DB for spec in mine)
        assert len({spec.utterance_id for spec in mine}) == len(mine)
    assert all(spec.gain_db == 0 for spec in table1)  # the Table 1 presets are not touched


def test_speakers_are_distinct_voices():
    variants = [s.voice.variant for s in teacher.TEACHER_SPEAKERS]
    assert len(set(variants)) == len(variants) == 10
    rates = {s.voice.rate_wpm for s in teacher.TEACHER_SPEAKERS}
    assert len(rates) >= 8  # timing differs between speakers, not only pitch and timbre
    genders = {(s.language, s.gender) for s in teacher.TEACHER_SPEAKERS}
    assert ("en-us", "male") in genders and ("en-gb", "male") in genders and len(genders) == 10


def test_tiny_corpus_layout(tiny_corpus):
    out, report = tiny_corpus
    assert report.skipped == {} and report.built == 46 and report.reused == 0
    rows = [
        line.rstrip("\n").split("|") for line in (out / "metadata.csv").read_text(encoding="utf-8").splitlines(True)
    ]
    assert len(rows) == 46 and all(len(row) == 4 for row in rows)
    index = json.loads((out / "corpus.json").read_text(encoding="utf-8"))
    assert index["seed"] == 3 and index["preset"] == "tiny" and index["total_utterances"] == 46
    assert {s["id"] for s in index["speakers"]} == set(TABLE_1)
    assert index["counts"]["de-female"] == {"train": 4, "dev": 1}
    assert index["counts"]["pl-female"] == {"train": 2, "dev": 1}
    assert len(index["splits"]["dev"]) == 10
    assert {entry["code"]: entry["role"] for entry in index["languages"]}["pt-br"] == "adaptation"
    assert "espeak_ng" in index["versions"]
    speakers = {s["id"]: s for s in index["speakers"]}
    for utterance_id, text, language, speaker in rows:
        assert speakers[speaker]["language"] == language
        assert 4 <= len(text.split()) <= 8
        info = soundfile.info(out / "wavs" / f"{utterance_id}.wav")
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        segments = read_hts_labels(out / "labels" / f"{utterance_id}.lab")
        assert segments[0].label == "sil" and segments[-1].label == "sil" and segments[0].start_s == 0
        assert segments[-1].end_s == pytest.approx(info.frames / 22050, abs=1e-6)
        for previous, current in zip(segments, segments[1:]):
            assert previous.end_s == current.start_s  # contiguous


def test_labels_match_the_frontend_and_cover_every_frame(tiny_corpus):
    from mlms_keras.data.readers import read_metadata_csv
    from mlms_keras.frontend.linguistic import features_for_label_file

    out, _ = tiny_corpus
    layout = FeatureLayout.for_languages()
    items = read_metadata_csv(out / "metadata.csv")  # the package's reader understands the layout
    assert len(items) == 46 and not items.skipped
    for item in items:
        assert item.alignment_path == out / "labels" / f"{item.utterance_id}.lab"
        aligned = features_for_label_file(item.text, item.language, item.alignment_path, layout)
        samples = soundfile.info(item.wav_path).frames
        # 5 ms frames: boundaries round to the nearest frame, so the total is the rounded duration.
        assert aligned.durations_frames.sum() == int(np.floor(samples / 110.25 + 0.5))
        assert aligned.symbols[0] == "sil" and aligned.symbols[-1] == "sil"
        assert expand_to_frames(aligned.phoneme_features, aligned.durations_frames).shape[1] == layout.frame_dimension


def test_speech_f0_lies_in_the_speakers_declared_range(tiny_corpus):
    import pyworld

    out, _ = tiny_corpus
    index = json.loads((out / "corpus.json").read_text(encoding="utf-8"))
    medians = {}
    for speaker in index["speakers"]:
        utterance_id = f"{speaker['id']}-train-00001"
        wave, rate = soundfile.read(out / "wavs" / f"{utterance_id}.wav")
        wave = wave.astype(np.float64)
        # Two independent F0 estimators; frames where they agree within 10 % are reliable (each alone makes
        # occasional sub-harmonic errors at voicing edges).
        f0_dio, _ = pyworld.dio(wave, rate, f0_floor=40.0, f0_ceil=800.0, frame_period=5.0)
        f0_harvest, _ = pyworld.harvest(wave, rate, f0_floor=40.0, f0_ceil=800.0, frame_period=5.0)
        count = min(len(f0_dio), len(f0_harvest))
        dio, harvest = f0_dio[:count], f0_harvest[:count]
        agree = (dio > 0) & (harvest > 0) & (np.abs(dio - harvest) < 0.1 * harvest)
        voiced = harvest[agree]
        assert len(voiced) > 50, utterance_id
        assert speaker["f0_floor_hz"] <= voiced.min() and voiced.max() <= speaker["f0_ceil_hz"], utterance_id
        medians[speaker["id"]] = np.median(voiced)
    # Male voices are clearly lower than the female voices of the same language.
    assert medians["en-us-male"] < 0.7 * medians["en-us-female"]
    assert medians["en-gb-male"] < 0.7 * medians["en-gb-female"]


def test_build_is_deterministic_across_worker_counts(tmp_path):
    first = teacher.build_teacher_corpus(tmp_path / "a", "tiny", seed=5, workers=1, speakers=SUBSET, progress=False)
    second = teacher.build_teacher_corpus(tmp_path / "b", "tiny", seed=5, workers=2, speakers=SUBSET, progress=False)
    assert first.built == second.built == 13  # (4 + 1) + (4 + 1) + (2 + 1)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    other_seed = teacher.build_teacher_corpus(
        tmp_path / "c", "tiny", seed=6, workers=1, speakers=SUBSET, progress=False
    )
    assert other_seed.built == first.built
    assert (tmp_path / "c" / "metadata.csv").read_text() != (tmp_path / "a" / "metadata.csv").read_text()


def test_interrupted_build_resumes_without_redoing_finished_utterances(tmp_path):
    out = tmp_path / "corpus"
    teacher.build_teacher_corpus(out, "tiny", seed=2, workers=1, speakers=SUBSET, progress=False)
    complete = _digests(out)
    # Simulate an interruption: one utterance lost its label (written last), another its wav, the index
    # files were never written, and a temporary file was left behind.
    (out / "labels" / "it-female-train-00002.lab").unlink()
    (out / "wavs" / "pl-female-dev-00001.wav").unlink()
    (out / "metadata.csv").unlink()
    (out / "corpus.json").unlink()
    # A killed writer's temporary file, named as `atomic_output` names it: `.<name>.<random>.tmp<suffix>`.
    leftover = out / "wavs" / ".it-female-train-00003.wav.k2_9xq1v.tmp.wav"
    leftover.write_bytes(b"partial")
    untouched = out / "wavs" / "en-gb-male-train-00001.wav"
    before = untouched.stat().st_mtime_ns
    report = teacher.build_teacher_corpus(out, "tiny", seed=2, workers=2, speakers=SUBSET, progress=False)
    assert (report.built, report.reused) == (2, 11)
    assert untouched.stat().st_mtime_ns == before and not leftover.exists()
    assert _digests(out) == complete


def test_a_bad_utterance_is_skipped_and_reported(tmp_path, monkeypatch):
    from mlms_keras.data.teacher import build

    planned = teacher.plan_utterances("tiny", 0, ["es-female"])
    bad = teacher.UtteranceSpec("es-female-train-09999", "Hola Привет", "es", "es-female", "train", 1)
    monkeypatch.setattr(build, "plan_utterances", lambda preset, seed, speakers=None: planned + [bad])
    report = teacher.build_teacher_corpus(tmp_path / "c", "tiny", seed=0, workers=1, progress=False)
    assert list(report.skipped) == ["es-female-train-09999"]
    assert "outside the LATIN script" in report.skipped["es-female-train-09999"]
    index = json.loads((tmp_path / "c" / "corpus.json").read_text(encoding="utf-8"))
    assert index["skipped"][0]["id"] == "es-female-train-09999" and index["total_utterances"] == len(planned)
    assert "09999" not in (tmp_path / "c" / "metadata.csv").read_text(encoding="utf-8")


def test_corpus_build_verb_builds_and_reports(tmp_path, capsys):
    from mlms_keras.cli import main

    out = str(tmp_path / "cli")
    assert main(["corpus", "build", out, "--preset", "tiny", "--speakers", "fr-female", "--quiet"]) == 0
    assert "5 built, 0 reused, 0 skipped" in capsys.readouterr().out
    assert len((tmp_path / "cli" / "metadata.csv").read_text(encoding="utf-8").splitlines()) == 5
    assert main(["corpus", "build", out, "--speakers", "fr-female", "--quiet"]) == 0
    assert "0 built, 5 reused" in capsys.readouterr().out
    assert main(["corpus", "build", str(tmp_path / "cli2"), "--speakers", "xx-female"]) == 2
    assert "Unknown speakers" in capsys.readouterr().err


def test_mlms_command_has_the_corpus_verb(capsys):
    from mlms_keras.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["corpus", "build", "--help"])
    assert exit_info.value.code == 0
    assert "mlms corpus build data/teacher --preset small" in capsys.readouterr().out


# A corpus of any languages (`--languages`) ------------------------------------------------------------------------

NEW_LANGUAGES = ["sv", "el", "cmn"]  # Latin, Greek, and a tone language in Han characters


@pytest.fixture(scope="module")
def language_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher") / "languages"
    report = teacher.build_teacher_corpus(
        out, seed=4, workers=2, progress=False, languages=NEW_LANGUAGES, utterances=5, voice_variant="f2"
    )
    return out, report


def test_a_corpus_of_any_languages_has_one_new_speaker_per_language(language_corpus):
    from mlms_keras.frontend import espeak

    out, report = language_corpus
    assert report.skipped == {} and report.built == 15
    index = json.loads((out / "corpus.json").read_text(encoding="utf-8"))
    assert index["preset"] is None and index["total_utterances"] == 15
    assert index["build"] == {"languages": NEW_LANGUAGES, "utterances_per_language": 5, "voice_variant": "f2"}
    assert [(s["id"], s["language"], s["gender"]) for s in index["speakers"]] == [
        ("sv-f2", "sv", "female"),
        ("el-f2", "el", "female"),
        ("cmn-f2", "cmn", "female"),
    ]
    assert all(s["espeak_voice"]["variant"] == "f2" and s["table1_train"] is None for s in index["speakers"])
    assert [entry["sentences"] for entry in index["languages"]] == ["wordfreq:sv", "wordfreq:el", "wordfreq:zh"]
    assert index["counts"]["el-f2"] == {"train": 4, "dev": 1}
    rows = [line.split("|") for line in (out / "metadata.csv").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 15 and len({text for _, text, _, _ in rows}) == 15
    for _utterance_id, text, language, speaker in rows:
        assert speaker == f"{language}-f2" and 4 <= len(text.split()) <= 9
        espeak.validate_text(text, language)  # the language's own script
        assert not any(word.endswith("σ") for word in text.split()), text  # wordfreq's folded final sigma fixed


def test_labels_of_any_languages_match_the_frontend_tones_included(language_corpus):
    from mlms_keras.data.readers import read_metadata_csv
    from mlms_keras.frontend import espeak
    from mlms_keras.frontend.linguistic import features_for_label_file

    out, _ = language_corpus
    layout = FeatureLayout.for_languages(NEW_LANGUAGES)
    items = read_metadata_csv(out / "metadata.csv")
    tones = 0
    for item in items:
        segments = read_hts_labels(item.alignment_path)
        phones = [segment.label for segment in segments if segment.label not in ("sil", "pau")]
        phonemes = espeak.analyze(item.text, item.language).phonemes
        assert phones == [phoneme.symbol for phoneme in phonemes]
        kinds = espeak.phoneme_inventory(item.language)
        for segment in segments:  # a tone spans no audio: a zero-length segment after its vowel
            if kinds.get(segment.label) == espeak.TONE_KIND:
                tones += 1
                assert segment.start_s == segment.end_s
        aligned = features_for_label_file(item.text, item.language, item.alignment_path, layout)
        samples = soundfile.info(item.wav_path).frames
        assert aligned.durations_frames.sum() == int(np.floor(samples / 110.25 + 0.5))
    assert tones >= 5 * 4  # Mandarin: a tone on (nearly) every syllable


def test_language_builds_are_deterministic_and_resume(tmp_path):
    kwargs = {"seed": 9, "progress": False, "languages": ["ru", "cs"], "utterances": 3, "voice_variant": "m1"}
    first = teacher.build_teacher_corpus(tmp_path / "a", workers=1, **kwargs)
    second = teacher.build_teacher_corpus(tmp_path / "b", workers=2, **kwargs)
    assert first.built == second.built == 6 and not first.skipped
    assert _digests(tmp_path / "a").keys() == _digests(tmp_path / "b").keys()
    digests = {k: v for k, v in _digests(tmp_path / "a").items() if k != "corpus.json"}  # corpus.json: versions
    assert digests == {k: v for k, v in _digests(tmp_path / "b").items() if k != "corpus.json"}
    assert "ru-m1-dev-00001.wav" in {Path(name).name for name in digests}
    (tmp_path / "a" / "labels" / "cs-m1-train-00002.lab").unlink()
    report = teacher.build_teacher_corpus(tmp_path / "a", workers=1, **kwargs)
    assert (report.built, report.reused) == (1, 5)
    assert {k: v for k, v in _digests(tmp_path / "a").items() if k != "corpus.json"} == digests


def test_language_builds_refuse_bad_settings(tmp_path):
    with pytest.raises(ValueError, match=r"'hy' has no word-frequency list.*Languages with one: .*\bsv\b"):
        teacher.build_teacher_corpus(tmp_path / "x", languages=["hy"], utterances=3, progress=False)
    with pytest.raises(ValueError, match="Did you mean 'sv'"):
        teacher.build_teacher_corpus(tmp_path / "x", languages=["SV"], utterances=3, progress=False)
    with pytest.raises(ValueError, match="not an espeak-ng voice variant; use one of .*f1"):
        teacher.build_teacher_corpus(tmp_path / "x", languages=["sv"], voice_variant="f9", progress=False)
    with pytest.raises(ValueError, match="do not go together"):
        teacher.build_teacher_corpus(tmp_path / "x", languages=["sv"], speakers=["fr-female"], progress=False)
    with pytest.raises(ValueError, match="at least 1"):
        teacher.build_teacher_corpus(tmp_path / "x", languages=["sv"], utterances=0, progress=False)
    assert not (tmp_path / "x").exists()  # refused before any folder is made


def test_word_sentences_are_deterministic_and_native():
    from mlms_keras.frontend import espeak

    assert teacher.word_sentences("ru", 5, seed=1) == teacher.word_sentences("ru", 5, seed=1)
    assert teacher.word_sentences("ru", 5, seed=1) != teacher.word_sentences("ru", 5, seed=2)
    # Explicit wordfreq codes: wordfreq itself would silently give Russian words for Armenian.
    assert [teacher.wordfreq_code(code) for code in ("sv", "cmn", "sr", "pt-br", "en-gb-x-rp")] == [
        "sv",
        "zh",
        "sh",
        "pt",
        "en",
    ]
    japanese = teacher.word_pool("ja")
    assert len(japanese) == teacher.words.POOL_SIZE
    assert all(espeak.validate_text(word, "ja") for word in japanese[:300])  # kana only: the voice reads no Kanji
    hindi = teacher.word_pool("hi")
    assert len(hindi) == teacher.words.POOL_SIZE  # words with vowel signs (combining marks) are kept
    assert any(word.endswith("ς") for word in teacher.word_pool("el"))


def test_corpus_build_verb_builds_languages(tmp_path, capsys):
    from mlms_keras.cli import main

    out = str(tmp_path / "cli")
    command = ["corpus", "build", out, "--languages", "sv,ru", "--utterances", "2", "--voice-variant", "m3", "--quiet"]
    assert main(command) == 0
    assert "4 built, 0 reused, 0 skipped" in capsys.readouterr().out
    assert [line.split("|")[3] for line in (tmp_path / "cli" / "metadata.csv").read_text().splitlines()] == [
        "sv-m3",
        "sv-m3",
        "ru-m3",
        "ru-m3",
    ]
    assert main(["corpus", "build", out, "--languages", "sv", "--preset", "small"]) == 2
    assert "--preset and --languages do not go together" in capsys.readouterr().err
    assert main(["corpus", "build", out, "--utterances", "3"]) == 2
    assert "--utterances goes with --languages" in capsys.readouterr().err


@pytest.mark.slow
def test_a_build_killed_with_sigkill_resumes_to_the_uninterrupted_corpus(tmp_path, capsys):
    """A real kill of `mlms corpus build` mid-way; the rerun gives byte-identical files, and a rerun with another
    seed is refused (it would have kept the old audio under new text)."""
    from mlms_keras.cli import main

    def build(out, *extra):
        return ["corpus", "build", str(out), "--preset", "tiny", "--speakers", "fr-female,de-female", "--quiet", *extra]

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert main(build(whole)) == 0
    kill_when(build(killed), lambda: len(list((killed / "labels").glob("*.lab"))) >= 2)
    done = len(list((killed / "labels").glob("*.lab")))
    assert 2 <= done < 10 and not (killed / "corpus.json").exists()
    capsys.readouterr()
    assert main(build(killed, "--seed", "1")) == 2
    assert "seed: recorded 0, now 1" in capsys.readouterr().err
    assert main(build(killed)) == 0
    # The killed build's worker may finish the utterance it had started before it notices: at least `done` reused.
    built, reused = (int(word) for word in re.search(r"(\d+) built, (\d+) reused", capsys.readouterr().out).groups())
    assert built + reused == 10 and reused >= done
    assert _digests(killed) == _digests(whole)
