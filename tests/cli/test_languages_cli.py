"""`mlms languages`: the language universe on the command line (no model is loaded)."""

import re
import subprocess
import sys

import pytest

from mlms_keras.cli import main


def _rows(output: str) -> dict[str, list[str]]:
    """Table lines -> code -> the line's columns (split on runs of two or more spaces)."""
    lines = output.splitlines()
    return {line.split()[0]: re.split(r"\s{2,}", line.strip()) for line in lines[1:-1]}


def test_languages_lists_every_language_with_scripts_and_voices(capsys):
    assert main(["languages"]) == 0
    output = capsys.readouterr().out
    header, *_ = output.splitlines()
    assert header.split() == ["code", "name", "script", "corpus", "zoo", "voices"]
    rows = _rows(output)
    assert len(rows) >= 138 and list(rows)[:8] == ["en-us", "en-gb", "fr", "it", "de", "es", "pl", "pt-br"]
    assert rows["en-us"] == ["en-us", "US English", "Latin", "grammar", "teacher-polyglot-small, teacher-small"]
    assert rows["ru"] == ["ru", "Russian", "Cyrillic", "words", "-"]
    assert rows["ja"][2] == "Hiragana+Katakana" and rows["sr"][2] == "Cyrillic+Latin" and rows["cmn"][2] == "Han"
    assert rows["hy"][3] == "-"  # no word-frequency list: no teacher corpus
    assert "fo" not in rows and "Left out (espeak-ng voices without a dictionary): fo, kaa, xex." in output


def test_languages_filters_by_script_and_voice(capsys):
    assert main(["languages", "--script", "greek"]) == 0
    assert list(_rows(capsys.readouterr().out)) == ["el", "grc"]
    assert main(["languages", "--script", "Han"]) == 0
    assert set(_rows(capsys.readouterr().out)) == {"cmn", "cmn-latn-pinyin", "yue", "yue-latn-jyutping"}
    assert main(["languages", "--voice", "teacher-small"]) == 0
    output = capsys.readouterr().out
    assert list(_rows(output)) == ["en-us", "en-gb", "fr", "it", "de", "es", "pl", "pt-br"]
    assert "8 languages, 8 of them from the paper" in output


@pytest.mark.parametrize(
    "arguments, message",
    [
        (
            ["--voice", "no-such-voice"],
            "--voice 'no-such-voice' is not an installed zoo voice; installed: teacher-polyglot-small, teacher-small",
        ),
        (["--script", "klingon"], "--script 'klingon' matches no language; scripts: arabic"),
    ],
)
def test_languages_bad_options_exit_2_with_one_line(capsys, arguments, message):
    assert main(["languages", *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"mlms languages: {message}") and error.count("\n") == 1


def test_languages_help_loads_no_tensorflow():
    code = (
        "import sys\n"
        "from mlms_keras.cli import main\n"
        "try:\n    main(['languages', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('tensorflow' in sys.modules, 'mlms_keras.languages' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert "mlms languages --script cyrillic" in result.stdout
    assert result.stdout.split()[-2:] == ["False", "False"]


def test_languages_loads_no_model():
    code = (
        "import sys\n"
        "from mlms_keras.cli import main\n"
        "main(['languages', '--voice', 'teacher-small'])\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.split()[-2:] == ["False", "False"]
