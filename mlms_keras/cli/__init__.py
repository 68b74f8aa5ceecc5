"""The `mlms` command: one verb per job.

Each verb lives in the module that owns the work; this file only wires argparse to it, importing
just the module of the verb being run so that `mlms --help` stays fast (TensorFlow is slow to import).
"""

import argparse
import importlib
import os
import sys

# TensorFlow's C++ info and warning logs during a run are noise for a command-line user (the few lines
# printed before absl initialises cannot be silenced this way).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# Each verb and the module that owns it (its `add_cli_parser(subparsers)` defines the verb's arguments).
# Only the chosen verb's module is imported: most of them import TensorFlow, which takes seconds.
VERBS = {
    "corpus": ("mlms_keras.data.teacher", "build the teacher corpus (espeak-ng voices, Table 1 of the paper)"),
    "prepare": ("mlms_keras.data.prepare", "extract WORLD + linguistic features of a corpus into TFRecord shards"),
    "train": ("mlms_keras.training.fit", "train an MLMS (or SLSS baseline) acoustic model on a prepared dataset"),
    "adapt": (
        "mlms_keras.training.adaptation",
        "adapt a trained model to a new language and speaker (sec. 4.2, v1-v4)",
    ),
    "synth-utterance": ("mlms_keras.synthesis.oracle", "synthesise a prepared utterance (oracle durations) to a WAV"),
    "reproduce": (
        "mlms_keras.training.reproduce",
        "reproduce the paper's Figures 2 and 3 on a prepared teacher corpus",
    ),
    "tune": ("tuning.sweep", "sweep the language-space dimension L with KerasTuner"),
    "say": ("mlms_keras.synthesis.synthesizer", "speak a text with a zoo voice into an audio file"),
    "zoo": ("mlms_keras.zoo", "list the pretrained voices and show their details"),
}


def _build_parser(verb=None):
    """The `mlms` parser; `verb`'s own sub-parser is built in full, the others only by name."""
    parser = argparse.ArgumentParser(
        prog="mlms",
        description="Multi-language multi-speaker LSTM-RNN TTS (Li & Zen 2016) on Keras 3.",
        epilog="Run `mlms COMMAND --help` for a command's options and an example.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name, (module, summary) in VERBS.items():
        if name == verb:
            importlib.import_module(module).add_cli_parser(subparsers)
        else:
            subparsers.add_parser(name, help=summary)
    return parser


def main(argv=None):
    """Entry point of the `mlms` console script. Returns the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    verb = next((word for word in argv if not word.startswith("-")), None)
    args = _build_parser(verb if verb in VERBS else None).parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
