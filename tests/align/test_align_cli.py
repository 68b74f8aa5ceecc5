"""`mlms align` on one file, and its help without TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import pysptk

from mlms_keras.cli import main as mlms_main
from mlms_keras.frontend.labels import read_hts_labels, read_textgrid

ARCTIC_PROMPT = "And you always want to see it in the superlative degree."


def test_help_loads_no_tensorflow():
    code = (
        "import sys\nfrom mlms_keras.cli import main\ntry:\n    main(['align', '--help'])\nexcept SystemExit:\n"
        "    pass\nprint('tensorflow' in sys.modules)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "usage: mlms align" in output and output.strip().endswith("False")


def test_one_real_recording(tmp_path, capsys):
    """CMU ARCTIC a0007 (real speech): words in order, inside the audio, with the pause-free prompt's 11 words."""
    wav = pysptk.util.example_audio_file()
    code = mlms_main(["align", wav, "--text", ARCTIC_PROMPT, "--language", "en-us", "--out", str(tmp_path)])
    assert code == 0 and "score" in capsys.readouterr().out
    words = [w for w in read_textgrid(tmp_path / "arctic_a0007.TextGrid", "words") if w.label]
    # espeak-ng speaks "in the" as one word; the word tier names it by both tokens
    assert [w.label for w in words] == ["And", "you", "always", "want", "to", "see", "it", "in the", "superlative",
                                        "degree"]  # fmt: skip
    assert 0.2 < words[0].start_s < 0.6 and 3.0 < words[-1].end_s < 4.0  # speech starts after ~0.35 s, ends ~3.6 s
    phones = read_hts_labels(tmp_path / "arctic_a0007.lab")
    assert phones[0].label == "sil" and phones[-1].label == "sil"
    code = mlms_main(["align", wav, "--language", "en-us", "--out", str(tmp_path)])
    assert code == 2 and "--text" in capsys.readouterr().err
