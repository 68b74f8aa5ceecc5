"""The `mlms` command: every verb is wired to its module, `--help` stays light, expected errors are one line."""

import os
import re
import subprocess
import sys

import pytest

from mlms_keras import cli

# TensorFlow's start-up lines (when a verb does import it) are not the command's output; the few it prints before
# absl initialises cannot be silenced, so the error tests leave them out.
ENVIRONMENT = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
TENSORFLOW_LOG_LINE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|[IWEF]\d{4} \d\d:)")


def run_python(code, timeout=300):
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=ENVIRONMENT
    )


HELP_PROBE = """
import sys
from mlms_keras import cli
try:
    cli.main({argv!r})
except SystemExit as exit:
    print("exit code", exit.code)
print("tensorflow imported", "tensorflow" in sys.modules)
"""


def test_help_lists_every_verb_without_importing_tensorflow():
    result = run_python(HELP_PROBE.format(argv=["--help"]))
    assert result.returncode == 0, result.stderr
    for verb in cli.VERBS:
        assert verb in result.stdout
    assert result.stdout.strip().splitlines()[-2:] == ["exit code 0", "tensorflow imported False"]


@pytest.mark.parametrize("verb", sorted(cli.VERBS))
def test_each_verb_answers_help_without_importing_tensorflow(verb):
    result = run_python(HELP_PROBE.format(argv=[verb, "--help"]))
    assert result.returncode == 0, result.stderr
    assert f"usage: mlms {verb}" in result.stdout
    assert result.stdout.strip().splitlines()[-2:] == ["exit code 0", "tensorflow imported False"]


@pytest.mark.parametrize("verb", sorted(cli.VERBS))
def test_each_verb_builds_its_own_parser_with_help(verb, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([verb, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: mlms {verb}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "verb", "expected"),
    [
        (["say", "--voice", "/nonexistent", "--lang", "en-us", "--speaker", "x", "Hello."], "say", "Unknown voice"),
        (["zoo", "info", "/nonexistent"], "zoo info", "Built-in voices"),
        (
            ["synth-utterance", "/nonexistent", "/nonexistent", "utt", "-o", "out.wav"],
            "synth-utterance",
            "no trained model here",
        ),
    ],
    ids=["say", "zoo-info", "synth-utterance"],
)
def test_an_expected_error_is_one_line_with_exit_code_2(argv, verb, expected, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mlms_keras.cli", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env=ENVIRONMENT,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.strip().splitlines() if not TENSORFLOW_LOG_LINE.match(line)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"mlms {verb}: ") and expected in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.wav").exists()


def test_a_closed_pipe_ends_the_listing_quietly():
    """`mlms languages | head -1`: the reader leaves early; no error line, the broken-pipe exit code."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mlms_keras.cli", "languages"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENVIRONMENT,
    )
    # The reader leaves before the verb has written anything (it takes a while to start), so the first write
    # fails: reading a line first would race with a listing that fits in the pipe's buffer.
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=300) == 141
    assert "Broken pipe" not in stderr and "Traceback" not in stderr


def test_no_tensorflow_start_up_lines_unless_verbose(tmp_path_factory, tmp_path):
    from voice_testing import shared_test_voice

    folder = shared_test_voice(tmp_path_factory)[0]
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    argv = [sys.executable, "-m", "mlms_keras.cli", "say", "--voice", str(folder), "--lang", "fr", "Salut."]
    quiet = subprocess.run([*argv, "-o", str(tmp_path / "a.wav")], capture_output=True, text=True, env=environment)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    loud = subprocess.run(
        [*argv, "-o", str(tmp_path / "b.wav"), "--verbose"], capture_output=True, text=True, env=environment
    )
    assert loud.returncode == 0
    assert any(TENSORFLOW_LOG_LINE.match(line) for line in loud.stderr.splitlines()), loud.stderr
