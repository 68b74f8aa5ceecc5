"""The `mlms` command: every verb is wired to its module, and `mlms --help` stays light."""

import subprocess
import sys

import pytest

from mlms_keras import cli


def test_help_lists_every_verb_without_importing_tensorflow():
    probe = (
        "import sys\n"
        "from mlms_keras import cli\n"
        "try:\n"
        "    cli.main(['--help'])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0\n"
        "print('tensorflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    for verb in cli.VERBS:
        assert verb in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("verb", sorted(cli.VERBS))
def test_each_verb_builds_its_own_parser_with_help(verb, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([verb, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: mlms {verb}" in capsys.readouterr().out
