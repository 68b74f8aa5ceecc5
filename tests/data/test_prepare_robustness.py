"""`mlms prepare` fails loudly and never hangs: killed workers, long, silent and mixed-rate audio, edited files, and
the leftovers of killed writers. Real files, real worker processes, real SIGKILLs."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr

from mlms_keras.data.manifest import Manifest
from mlms_keras.data.pipeline import read_utterances
from mlms_keras.data.prepare import PrepareOptions, prepare_dataset
from mlms_keras.data.prepare.shards import WORKER_DIED
from mlms_keras.utils.fileio import remove_leftover_temporaries

DIO = dict(f0_method="dio", utterances_per_shard=3, progress=False)


def _records(folder):
    return {record["utterance_id"]: record for record in read_utterances(folder)}


def test_the_leftovers_of_killed_writers_are_found_by_their_real_names(tmp_path):
    """A process SIGKILLed inside `atomic_output` leaves its temporary file; the cleanup removes exactly those."""
    writer = (
        "import os, signal, sys\nfrom mlms_keras.utils.fileio import atomic_output\n"
        "for name in sys.argv[1:-1]:  # interrupted politely: atomic_output removes its temporary\n"
        "    try:\n"
        "        with atomic_output(name) as temporary:\n"
        "            temporary.write_bytes(b'half a file')\n"
        "            raise KeyboardInterrupt\n"
        "    except KeyboardInterrupt:\n"
        "        pass\n"
        "with atomic_output(sys.argv[-1]) as temporary:  # killed halfway: the temporary stays\n"
        "    temporary.write_bytes(b'half a file')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    (tmp_path / "wavs").mkdir()
    for names in (["wavs/a.wav", "wavs/b.wav"], ["dataset.json"]):
        arguments = [str(tmp_path / name) for name in names]
        assert subprocess.run([sys.executable, "-c", writer, *arguments]).returncode == -signal.SIGKILL
    leftovers = sorted(p.name for folder in (tmp_path, tmp_path / "wavs") for p in folder.iterdir() if p.is_file())
    # The real names: `.b.wav.<random>.tmp.wav` and `.dataset.json.<random>.tmp.json` (none for the polite one).
    assert [name.split(".")[1:3] + name.split(".")[-2:] for name in leftovers] == [
        ["b", "wav", "tmp", "wav"],
        ["dataset", "json", "tmp", "json"],
    ]
    kept = [tmp_path / "wavs" / "c.wav", tmp_path / "wavs" / ".hidden", tmp_path / "notes.tmp.txt"]
    for path in kept:
        path.write_bytes(b"user data")
    removed = remove_leftover_temporaries(tmp_path / "wavs", tmp_path, tmp_path / "missing")
    assert sorted(path.name for path in removed) == leftovers
    assert all(path.exists() for path in kept)


def _spawned_workers():
    """Pids of this process's `multiprocessing` spawn children (not its resource tracker)."""
    pids = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in command and b"resource_tracker" not in command:
                pids.append(int(pid))
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the worker processes in /proc (Linux)")
def test_killed_workers_are_detected_their_utterances_retried_then_reported(corpus, prepared, tmp_path):
    """The out-of-memory killer's way: SIGKILL worker processes mid-run. `multiprocessing.Pool` waited forever here;
    now the run ends, every utterance is either extracted exactly as without kills, or reported as killed twice."""
    kills, done = [], threading.Event()

    def killer(limit=3):  # both workers of the first pool, then the one retrying the first suspect
        while len(kills) < limit and not done.is_set():
            for pid in _spawned_workers():
                if pid not in kills and len(kills) < limit:
                    os.kill(pid, signal.SIGKILL)
                    kills.append(pid)
            time.sleep(0.01)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        report = prepare_dataset(corpus, tmp_path / "out", workers=2, **DIO)
    finally:
        done.set()
        thread.join()
    assert len(kills) == 3 and time.monotonic() - started < 240
    died = {entry["id"] for entry in report.skipped if entry["reason"] == WORKER_DIED}
    assert report.complete and 1 <= len(died) <= 2
    expected, extracted = _records(prepared), _records(tmp_path / "out")
    assert sorted(extracted) == sorted(set(expected) - died)  # retried ones came back
    for utterance_id, record in extracted.items():
        np.testing.assert_array_equal(record["acoustic"], expected[utterance_id]["acoustic"])
        np.testing.assert_array_equal(record["linguistic"], expected[utterance_id]["linguistic"])


@pytest.mark.slow
def test_long_silent_and_mixed_rate_audio_and_edited_files(corpus, tmp_path, capsys):
    from mlms_keras.cli import main

    copy = tmp_path / "corpus"
    shutil.copytree(corpus, copy)
    wavs = sorted((copy / "wavs").glob("*.wav"))
    seconds = {path.stem: soundfile.info(str(path)).duration for path in wavs}
    longest = max(seconds, key=seconds.get)
    silent, low_rate = [stem for stem in sorted(seconds) if stem != longest][:2]
    original = (copy / "wavs" / f"{silent}.wav").read_bytes()
    wave, rate = soundfile.read(copy / "wavs" / f"{silent}.wav", dtype="float32")
    soundfile.write(copy / "wavs" / f"{silent}.wav", np.zeros_like(wave), rate, subtype="PCM_16")
    wave, rate = soundfile.read(copy / "wavs" / f"{low_rate}.wav", dtype="float32")
    soundfile.write(copy / "wavs" / f"{low_rate}.wav", soxr.resample(wave, rate, 16000), 16000, subtype="PCM_16")

    out = tmp_path / "prepared"
    limit = f"{seconds[longest] - 0.01:.3f}"
    assert main(["prepare", str(copy), str(out), "--workers", "1", "--f0-method", "dio", "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "mixes sample rates (16000 Hz: 1 file, e.g." in error and "22050 Hz: 14 files" in error
    assert "--resample" in error and not (out / "dataset.json").exists()

    command = ["prepare", str(copy), str(out), "--workers", "1", "--f0-method", "dio", "--utterances-per-shard", "3",
               "--max-seconds", limit, "--resample", "--quiet"]  # fmt: skip
    assert main(command) == 1  # done, with skipped items
    err = capsys.readouterr().err
    manifest = Manifest.load(out)
    reasons = {entry["id"]: entry["reason"] for entry in manifest.skipped}
    assert set(reasons) == {longest, silent}
    assert f"s long, more than the {float(limit):g} s limit" in reasons[longest]
    assert "silent audio (digital zero" in reasons[silent] and str(copy / "wavs" / f"{silent}.wav") in err
    assert manifest.data["sample_rates_hz"] == [16000] and manifest.data["options"]["sample_rate_hz"] == 16000
    frames = {record["utterance_id"]: record["num_frames"] for record in read_utterances(out)}
    assert len(frames) == 13
    # Every utterance was analysed at 16 kHz: as many 5 ms frames as its duration gives, whatever its file's rate.
    for stem, count in frames.items():
        assert abs(count - seconds[stem] / 0.005) <= 2, stem

    # An edited wav (the silent one gets its speech back): its shard is extracted again, the others are reused.
    fingerprint = manifest.fingerprint
    (copy / "wavs" / f"{silent}.wav").write_bytes(original)
    again = prepare_dataset(
        copy, out, workers=1, **DIO, options=PrepareOptions(max_seconds=float(limit), resample=True)
    )
    assert again.complete and again.shards_written == 1 and again.shards_reused == 4
    assert silent in _records(out) and Manifest.load(out).fingerprint != fingerprint
