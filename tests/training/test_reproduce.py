"""End-to-end tests on a real prepared teacher corpus (espeak-ng voices, WORLD features): the `mlms train`,
`mlms adapt`, `mlms synth-utterance` and `mlms reproduce` verbs, including a run killed with SIGKILL."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile

from mlms_keras.cli import main

SPEAKERS = ["fr-female", "de-female", "pl-female"]


@pytest.fixture(scope="module")
def prepared(prepared_corpus):
    """A tiny teacher corpus of two training languages and one adaptation language, prepared (dio F0)."""
    return prepared_corpus(SPEAKERS)


def manifest_of(prepared):
    return json.loads((prepared / "dataset.json").read_text())


@pytest.mark.slow
def test_train_cli_resumes_after_sigkill_at_the_next_epoch(prepared, tmp_path):
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "mlms_keras.cli",
        "train",
        str(prepared),
        "--preset",
        "tiny",
        "--out",
        str(run),
        "--epochs",
        "4",
        "--patience",
        "0",
        "--batch-size",
        "4",
        "--quiet",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = run / "history.json"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if history.is_file() and (run / "backup" / "training_metadata.json").is_file():
                break
            time.sleep(0.2)
        assert process.poll() is None, "training finished before it could be killed; the test needs a slower run"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    done_before_kill = len(json.loads(history.read_text())["epochs"])
    assert 1 <= done_before_kill < 4
    assert (
        main(
            [
                "train",
                str(prepared),
                "--preset",
                "tiny",
                "--out",
                str(run),
                "--epochs",
                "4",
                "--patience",
                "0",
                "--batch-size",
                "4",
                "--quiet",
            ]
        )
        == 0
    )
    info = json.loads((run / "training.json").read_text())
    assert [r["epoch"] for r in json.loads(history.read_text())["epochs"]] == [0, 1, 2, 3]
    # The finishing process started where the killed one had stopped (it may have finished one more epoch
    # between the history write and the backup, which the resumed run then repeats).
    assert info["final_session_first_epoch"] in (done_before_kill, done_before_kill - 1)
    assert info["final_session_first_epoch"] >= 1
    assert info["languages"] == ["fr", "de"] and info["speakers"] == ["fr-female", "de-female"]
    assert set(info["history"]) >= {"val_mse_fr", "val_mse_de", "val_mcd_db", "val_f0_rmse_hz", "val_vuv_error_percent"}


@pytest.mark.slow
def test_adapt_then_synthesize_an_utterance_of_the_new_language(prepared, tmp_path):
    base, adapted = tmp_path / "base", tmp_path / "pl-v3"
    assert (
        main(
            [
                "train",
                str(prepared),
                "--preset",
                "tiny",
                "--out",
                str(base),
                "--epochs",
                "1",
                "--batch-size",
                "4",
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "adapt",
                str(base),
                str(prepared),
                "--language",
                "pl",
                "--speaker",
                "pl-female",
                "--variant",
                "v3",
                "--epochs-per-phase",
                "1",
                "--steps-per-epoch",
                "3",
                "--batch-size",
                "4",
                "--out",
                str(adapted),
                "--quiet",
            ]
        )
        == 0
    )
    info = json.loads((adapted / "training.json").read_text())
    assert info["languages"] == ["fr", "de", "pl"] and info["speakers"] == ["fr-female", "de-female", "pl-female"]
    assert [p["groups"] for p in info["adaptation"]["phases"]] == [
        ["language_code", "speaker_layer"],
        ["mean_tower", "speaker_layer"],
    ]
    assert info["adaptation"]["initial_speaker"] in ("fr-female", "de-female")
    assert len(info["history"]["val_loss"]) == 2
    assert info["adaptation"]["training"]["steps_per_epoch"] == 3
    assert not (adapted / "backup").exists()  # the phase-best record lives there only while the run is unfinished

    manifest = manifest_of(prepared)
    utterance = next(
        u for u, entry in manifest["utterances"].items() if entry["speaker"] == "pl-female" and entry["split"] == "dev"
    )
    wav = tmp_path / "pl.wav"
    assert main(["synth-utterance", str(adapted), str(prepared), utterance, "-o", str(wav)]) == 0
    wave, rate = soundfile.read(wav)
    frames = manifest["utterances"][utterance]["frames"]
    assert rate == 22050 and len(wave) == int(frames * 0.005 * 22050)
    assert np.isfinite(wave).all() and np.abs(wave).max() > 0
    # The base model never saw Polish: asking it for pl is an error that names the known languages.
    assert main(["synth-utterance", str(base), str(prepared), utterance, "-o", str(tmp_path / "x.wav")]) == 2
    assert (
        main(
            [
                "adapt",
                str(base),
                str(prepared),
                "--language",
                "fr",
                "--speaker",
                "pl-female",
                "--variant",
                "v1",
                "--out",
                str(tmp_path / "bad"),
            ]
        )
        == 2
    )


@pytest.mark.slow
def test_reproduce_smoke_writes_both_figures_and_resumes_from_finished_runs(prepared, tmp_path):
    from mlms_keras.training.reproduce import Scale, reproduce

    # One batch per model: this checks the plumbing (the smoke scale itself is `mlms reproduce --scale smoke`).
    minimal = Scale(
        "tiny",
        {},
        epochs=1,
        steps_per_epoch=1,
        batch_size=4,
        learning_rate=3e-3,
        patience=None,
        adapt_epochs_per_phase=1,
        scratch_epochs=1,
    )
    out = tmp_path / "reproduce"
    results = reproduce(prepared, out, scale=minimal)
    rows = results["rows"]
    figure2 = {(r["system"], r["language"]) for r in rows if r["figure"] == 2}
    figure3 = {(r["system"], r["language"]) for r in rows if r["figure"] == 3}
    assert figure2 == {
        (system, language)
        for system in ("SLSS", "MLMS rand", "MLMS 1-hot (init)", "MLMS 1-hot (fixed)")
        for language in ("fr", "de")
    }
    assert figure3 == {(s, "pl") for s in ("scratch", "v1", "v2", "v3", "v4")}
    for row in rows:
        assert row["dev_mse"] > 0 and row["mcd_db"] > 0 and 0 <= row["vuv_error_percent"] <= 100
    for name in ("figure2.png", "figure3.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = json.loads((out / "results.json").read_text())
    assert written["rows"] == json.loads(json.dumps(rows))
    assert set(written["claims"]) == {
        "mlms_close_to_slss",
        "random_init_best",
        "v2_v3_better_than_scratch",
        "v1_most_constrained",
    }
    markdown = (out / "results.md").read_text()
    assert "| pl |" in markdown and "MLMS 1-hot (fixed)" in markdown
    # 2 SLSS + 3 MLMS + 1 scratch + 4 adaptations ran; a second call reuses all of them and scores the same.
    assert len(results["run_seconds"]) == 10
    again = reproduce(prepared, out, scale=minimal)
    assert again["run_seconds"] == {} and sorted(again["reused_runs"]) == sorted(results["run_seconds"])
    assert again["wall_seconds"] < results["wall_seconds"]
    assert [r["dev_mse"] for r in again["rows"]] == pytest.approx([r["dev_mse"] for r in rows], rel=1e-6)
    # Another scale into the same folder: the finished runs are not relabelled with it, the call is refused.
    with pytest.raises(ValueError, match=r"slss-fr-female.*epochs: recorded 1, now 2"):
        reproduce(prepared, out, scale=dataclasses.replace(minimal, epochs=2))
    with pytest.raises(ValueError, match=r"training.seed: recorded 0, now 1"):
        reproduce(prepared, out, scale=minimal, seed=1)
