"""Clean failures in every verb: a read-only output folder, a full disk, malformed JSON, a missing shard and a
NaN loss each end in one line `mlms VERB: ...` naming the file or cause, exit code 2, and no partial output.

The read-only folder and the full disk are real: the verbs run in a child process inside a private mount
namespace (`unshare -rm`) where a folder is bind-mounted read-only and a 96 KiB tmpfs is mounted; where user
namespaces are not allowed, a non-root user gets a chmod 555 folder and a file-size limit (`RLIMIT_FSIZE`, EFBIG)
stands in for the full disk. All the verbs of one kind run in one child, so TensorFlow starts once.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
from voice_testing import shared_test_voice

from mlms_keras.cli import main

RUNNER = r"""
import contextlib, io, json, resource, sys
limit = int(sys.argv[2])
if limit:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from mlms_keras.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    error = io.StringIO()
    with contextlib.redirect_stderr(error):
        try:
            code = main(argv)
        except SystemExit as exit:
            code = exit.code
        except BaseException as exception:  # a traceback: the test fails on it
            code = f"{type(exception).__name__}: {exception}"
    results.append([code, error.getvalue()])
print("RESULTS " + json.dumps(results))
"""
TEXT = "The quiet garden was full of light. We walked along the river after lunch. " * 3


def _unshare_works():
    try:
        return subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def run_verbs(argvs, mount=None, file_size_limit=0, cwd=None):
    """Runs `main(argv)` for each argv in one child; `mount` is a shell command run first in a private mount
    namespace. Returns [(exit code, stderr)]."""
    command = [sys.executable, "-c", RUNNER, json.dumps(argvs), str(file_size_limit)]
    if mount:
        command = ["unshare", "-rm", "sh", "-c", f'{mount} && exec "$0" "$@"', *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=cwd)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULTS ")]
    assert lines, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(lines[-1][len("RESULTS ") :])


def assert_one_clean_line(result, verb, *expected):
    code, stderr = result
    lines = [line for line in stderr.splitlines() if line.strip() and ": warning: " not in line]
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith(f"mlms {verb}: "), stderr
    assert "Traceback" not in stderr
    for text in expected:
        assert text in lines[0], lines[0]


def files_in(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


@pytest.fixture(scope="module")
def voice_folder(tmp_path_factory):
    return shared_test_voice(tmp_path_factory)[0]


def verbs_writing_into(folder, voice_folder, prepared):
    corpus = prepared.parent / "corpus"
    return {
        "say": ["say", "--voice", str(voice_folder), "--lang", "en-us", TEXT, "-o", str(folder / "out.wav")],
        "corpus build": [
            "corpus",
            "build",
            str(folder / "corpus"),
            "--speakers",
            "fr-female",
            "--workers",
            "1",
            "--quiet",
        ],
        "prepare": [
            "prepare",
            str(corpus),
            str(folder / "prepared"),
            "--workers",
            "1",
            "--f0-method",
            "dio",
            "--quiet",
        ],
        "train": ["train", str(prepared), "--out", str(folder / "run"), "--preset", "tiny", "--epochs", "1", "--quiet"],
        "zoo train-duration": ["zoo", "train-duration", str(prepared), "--out", str(folder / "dur"), "--epochs", "1"],
    }


@pytest.fixture(scope="module")
def read_only_run(voice_folder, prepared, tmp_path_factory):
    """`(folder, {verb: (exit code, stderr)})`: each verb writing into a read-only folder."""
    folder = tmp_path_factory.mktemp("read-only")
    verbs = verbs_writing_into(folder, voice_folder, prepared)
    if _unshare_works():
        remount = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder}"
        results = run_verbs(list(verbs.values()), mount=remount)
    elif os.geteuid() != 0:
        folder.chmod(0o555)
        results = run_verbs(list(verbs.values()))
    else:
        pytest.skip("root without user namespaces: no way to make a folder read-only")
    return folder, dict(zip(verbs, results))


@pytest.fixture(scope="module")
def full_disk_run(voice_folder, prepared, tmp_path_factory):
    """`(folder, reason, {verb: (exit code, stderr)})`: each verb writing onto a full disk."""
    folder = tmp_path_factory.mktemp("full")
    verbs = verbs_writing_into(folder, voice_folder, prepared)
    if _unshare_works():
        results = run_verbs(list(verbs.values()), mount=f"mount -t tmpfs -o size=96k tmpfs {folder}")
        reason = "No space left on device"
    else:
        results = run_verbs(list(verbs.values()), file_size_limit=48 * 1024)
        reason = "File too large"
    return folder, reason, dict(zip(verbs, results))


VERBS_WRITING = ["say", "corpus build", "prepare", "train", "zoo train-duration"]


@pytest.mark.slow
@pytest.mark.parametrize("verb", VERBS_WRITING)
def test_a_read_only_output_folder(read_only_run, verb):
    folder, results = read_only_run
    assert_one_clean_line(results[verb], verb, str(folder), "choose a")
    assert files_in(folder) == []


@pytest.mark.slow
@pytest.mark.parametrize("verb", VERBS_WRITING)
def test_a_full_disk(full_disk_run, verb):
    folder, reason, results = full_disk_run
    assert_one_clean_line(results[verb], verb)
    assert "skipped" not in results[verb][1]  # the disk, not the utterances: stopped, not skipped one by one
    assert reason in results[verb][1] or "writing the audio failed" in results[verb][1], results[verb][1]
    assert [name for name in files_in(folder) if ".tmp" in name] == []  # no temporary file left
    assert not (folder / "out.wav").exists()


def test_malformed_json_names_the_file(damaged_dataset, voice_folder, tmp_path, capsys):
    (damaged_dataset / "dataset.json").write_text('{"format": "mlms-prepared-dataset", ')
    run = tmp_path / "run"
    assert main(["train", str(damaged_dataset), "--out", str(run), "--preset", "tiny", "--epochs", "1"]) == 2
    assert_one_clean_line((2, capsys.readouterr().err), "train", "dataset.json")
    assert not run.exists() or files_in(run) == []
    voice = tmp_path / "voice"
    shutil.copytree(voice_folder, voice)
    (voice / "metadata.json").write_text("{")
    for argv, verb in (
        (["zoo", "info", str(voice)], "zoo info"),
        (["say", "--voice", str(voice), "--lang", "fr", "Salut.", "-o", str(tmp_path / "o.wav")], "say"),
    ):
        assert main(argv) == 2
        assert_one_clean_line((2, capsys.readouterr().err), verb, "metadata.json")
    assert not (tmp_path / "o.wav").exists()


def test_a_missing_shard_names_the_shard(damaged_dataset, tmp_path, capsys):
    shard = sorted((damaged_dataset / "shards").glob("train-*.tfrecord.gz"))[0]
    shard.unlink()
    run = tmp_path / "run"
    assert main(["train", str(damaged_dataset), "--out", str(run), "--preset", "tiny", "--epochs", "1"]) == 2
    assert_one_clean_line((2, capsys.readouterr().err), "train", shard.name)
    assert not (run / "model.keras").exists()


@pytest.mark.slow
def test_a_nan_loss_is_one_line(prepared, tmp_path, capsys):
    run = tmp_path / "run"
    arguments = ["--out", str(run), "--preset", "tiny", "--epochs", "3", "--learning-rate", "1e38", "--quiet"]
    assert main(["train", str(prepared), *arguments]) == 2
    assert_one_clean_line((2, capsys.readouterr().err), "train", "no epoch gave a finite dev MSE", "learning rate")
    assert not (run / "model.keras").exists() and not (run / "best.keras").exists()
    # Stopped in the first epoch, not after running the other two on NaN weights.
    assert len(json.loads((run / "history.json").read_text())["epochs"]) == 1
