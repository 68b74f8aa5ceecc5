"""The teacher corpus builder, with real espeak-ng and real audio files."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from mlms_keras.data import teacher
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
    (out / "wavs" / ".it-female-train-00003.wav.abc.tmp").write_bytes(b"partial")
    untouched = out / "wavs" / "en-gb-male-train-00001.wav"
    before = untouched.stat().st_mtime_ns
    report = teacher.build_teacher_corpus(out, "tiny", seed=2, workers=2, speakers=SUBSET, progress=False)
    assert (report.built, report.reused) == (2, 11)
    assert untouched.stat().st_mtime_ns == before
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
