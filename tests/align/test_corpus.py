"""The corpus path: resume after SIGKILL, bad items and outliers in the report, and `mlms prepare --align auto`."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from mlms_keras.align import AlignOptions, align_corpus
from mlms_keras.cli import main as mlms_main
from mlms_keras.data.prepare import PrepareOptions, prepare_dataset
from mlms_keras.data.readers import read_corpus

QUIET = AlignOptions(workers=1, corpus_pass="never", progress=False)


def _ljspeech_copy(corpus: Path, folder: Path, language: str | None = None) -> list:
    """An LJSpeech-layout copy (id|text|text, wavs/, no labels) of the corpus's utterances in `language`."""
    (folder / "wavs").mkdir(parents=True)
    items = [item for item in read_corpus(corpus) if language is None or item.language == language]
    lines = []
    for item in items:
        shutil.copy(item.wav_path, folder / "wavs" / item.wav_path.name)
        lines.append(f"{item.utterance_id}|{item.text}|{item.text}\n")
    (folder / "metadata.csv").write_text("".join(lines), encoding="utf-8")
    return items


def test_corpus_resumes_after_sigkill_with_the_same_labels(labelled_corpus, tmp_path):
    reference = align_corpus(labelled_corpus, tmp_path / "reference", QUIET)
    assert reference.aligned == 8 and not reference.skipped
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "mlms_keras.cli", "align", str(labelled_corpus), "--out", str(out)]
    command += ["--workers", "1", "--corpus-pass", "never", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list(out.glob("*.lab")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_before = len(list(out.glob("*.lab")))
    assert 1 <= done_before < 8  # killed in the middle
    resumed = align_corpus(labelled_corpus, out, QUIET)
    assert resumed.reused == done_before and resumed.aligned == 8 - done_before
    for label in sorted((tmp_path / "reference").glob("*.lab")) + sorted((tmp_path / "reference").glob("*.TextGrid")):
        assert (out / label.name).read_bytes() == label.read_bytes(), label.name
    # Worker processes (`mlms_keras.utils.workers`) give the same files as one process.
    two = align_corpus(labelled_corpus, tmp_path / "two-workers", dataclasses.replace(QUIET, workers=2))
    assert two.aligned == 8 and not two.skipped
    for label in sorted((tmp_path / "reference").glob("*.lab")):
        assert (tmp_path / "two-workers" / label.name).read_bytes() == label.read_bytes(), label.name
    assert not list(out.glob(".*.tmp*"))  # no half-written file survives
    report = json.loads((out / "alignment_report.json").read_text())
    assert report["format"] == "mlms-alignment-report" and len(report["utterances"]) == 8


def test_bad_items_are_reported_and_transcript_errors_flagged(labelled_corpus, tmp_path, capsys):
    folder = tmp_path / "lj"
    items = _ljspeech_copy(labelled_corpus, folder, "en-us") + _ljspeech_copy(labelled_corpus, tmp_path / "de", "de")
    rate = 22050
    soundfile.write(folder / "wavs" / "silent.wav", np.zeros(rate, np.float32), rate)
    soundfile.write(folder / "wavs" / "short.wav", np.random.default_rng(0).normal(0, 0.1, 800), rate)
    shutil.copy(items[0].wav_path, folder / "wavs" / "script.wav")
    shutil.copy(items[0].wav_path, folder / "wavs" / "wrong.wav")
    with open(folder / "metadata.csv", "a", encoding="utf-8") as handle:
        handle.write("silent|Nothing is said here at all.|\n")
        handle.write("short|This sentence is much too long for its tiny recording.|\n")
        handle.write("script|Это не английский текст.|\n")
        handle.write(f"wrong|{items[1].text}|\n")  # the transcript of another utterance
    code = mlms_main(["align", str(folder), "--language", "en-us", "--workers", "1", "--quiet", "--plot", "wrong"])
    assert code == 1
    report = json.loads((folder / "labels" / "alignment_report.json").read_text())
    reasons = {entry["id"]: entry["reason"] for entry in report["skipped"]}
    assert set(reasons) == {"silent", "short", "script"}
    assert "silent" in reasons["silent"] and "too short" in reasons["short"] and "CYRILLIC" in reasons["script"]
    scores = {uid: entry["score"] for uid, entry in report["utterances"].items()}
    assert set(scores) == {"wrong", items[0].utterance_id, items[1].utterance_id}
    assert min(scores, key=scores.get) == "wrong"
    assert scores["wrong"] < min(scores[items[0].utterance_id], scores[items[1].utterance_id]) - 0.3
    assert (folder / "labels" / "wrong.png").stat().st_size > 10_000
    assert "skipped" in capsys.readouterr().err


def test_prepare_aligns_an_unaligned_ljspeech_folder(labelled_corpus, tmp_path):
    folder = tmp_path / "lj"
    items = _ljspeech_copy(labelled_corpus, folder, None)
    english = [item for item in items if item.language == "en-us"]
    (folder / "metadata.csv").write_text("".join(f"{i.utterance_id}|{i.text}|{i.text}\n" for i in english))
    report = prepare_dataset(
        folder,
        tmp_path / "prepared",
        workers=1,
        f0_method="dio",
        progress=False,
        options=PrepareOptions(language="en-us", dev_per_speaker=1),
    )
    assert report.complete and report.utterances == len(english) and not report.skipped
    assert sorted(p.stem for p in (tmp_path / "prepared" / "alignments").glob("*.lab")) == sorted(
        i.utterance_id for i in english
    )
    with pytest.raises(ValueError, match="no usable utterances"):  # --align never keeps the old behaviour
        prepare_dataset(
            folder,
            tmp_path / "never",
            workers=1,
            progress=False,
            options=PrepareOptions(language="en-us", dev_per_speaker=1, align="never"),
        )


@pytest.mark.slow
def test_corpus_level_pass_adapts_the_model_and_labels_come_from_it(labelled_corpus, tmp_path):
    from mlms_keras.align import align, load_aligner, write_alignment
    from mlms_keras.align.model import AlignerModel
    from mlms_keras.align.training import FitOptions
    from mlms_keras.vocoder import audio

    out = tmp_path / "adapted"
    options = AlignOptions(workers=2, corpus_pass="always", progress=False, fine_tune=FitOptions(epochs=1))
    report = align_corpus(labelled_corpus, out, options)
    assert report.corpus_pass["ran"] and not report.corpus_pass["resumed"] and report.aligned == 8
    adapted = AlignerModel.load(out / ".align" / "model")
    shipped = load_aligner()
    assert any(not np.array_equal(adapted.weights[k], shipped.weights[k]) for k in shipped.weights)
    item = read_corpus(labelled_corpus)[0]
    wave, rate = audio.load(item.wav_path)
    write_alignment(align(wave, rate, item.text, item.language, model=adapted), tmp_path / "x.lab", None)
    assert (tmp_path / "x.lab").read_bytes() == (out / f"{item.utterance_id}.lab").read_bytes()
    again = align_corpus(labelled_corpus, out, options)
    assert again.aligned == 0 and again.reused == 8 and again.corpus_pass["resumed"]
