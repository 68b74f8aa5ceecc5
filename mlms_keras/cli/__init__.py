"""The `mlms` command: one verb per job, one module per verb, one error wrapper.

Each verb module (`mlms_keras/cli/<verb>.py`) has `add_parser(subparsers)`, which defines the verb's arguments
and sets `handler=run`, and `run(args) -> int`, which calls the library and prints. Only the chosen verb's module
is imported, and verb modules import the library inside `run`, so `mlms --help` and `mlms VERB --help` answer
without importing TensorFlow.

Errors: the library raises `ValueError`, `FileNotFoundError`, `FileExistsError` or `OSError` (a full disk, a
read-only folder) with a message that names the file or argument and says what to do; malformed JSON is a
`ValueError` too. `main` prints those as one line, `mlms VERB: message`, and returns exit code 2. Anything else is
a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

__all__ = ["EXPECTED_ERRORS", "VERBS", "main", "split_list"]

# TensorFlow's C++ info and warning logs during a run are noise for a command-line user (the few lines
# printed before absl initialises cannot be silenced this way).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: verb -> (module under mlms_keras.cli, one-line summary).
VERBS = {
    "corpus": ("corpus", "build the teacher corpus (espeak-ng voices, Table 1 of the paper)"),
    "prepare": ("prepare", "extract WORLD + linguistic features of a corpus into TFRecord shards"),
    "train": ("train", "train an MLMS (or SLSS baseline) acoustic model on a prepared dataset"),
    "adapt": ("adapt", "adapt a trained model to a new language and speaker (sec. 4.2, v1-v4)"),
    "synth-utterance": ("synth_utterance", "synthesise a prepared utterance (oracle durations) to a WAV"),
    "reproduce": ("reproduce", "reproduce the paper's Figures 2 and 3 on a prepared teacher corpus"),
    "tune": ("tune", "sweep the language-space dimension L with KerasTuner"),
    "say": ("say", "speak a text with a zoo voice into an audio file"),
    "zoo": ("zoo", "list the pretrained voices and show their details"),
    "languages": ("languages", "list the languages espeak-ng speaks and which installed voices know each"),
}

#: The errors a user can cause and fix; shown as one line, exit code 2.
EXPECTED_ERRORS = (ValueError, FileNotFoundError, FileExistsError, OSError)


def split_list(text: str | None) -> list[str] | None:
    """A comma-separated option (`--languages fr,de`) -> its items; None for an empty or missing option."""
    return [item.strip() for item in text.split(",") if item.strip()] if text else None


def _build_parser(verb: str | None = None) -> argparse.ArgumentParser:
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
            importlib.import_module(f"mlms_keras.cli.{module}").add_parser(subparsers)
        else:
            subparsers.add_parser(name, help=summary)
    return parser


def _verb_name(args: argparse.Namespace) -> str:
    """`corpus build` for `mlms corpus build ...`: the verb and its sub-verb (stored as `<verb>_command`)."""
    sub_verb = getattr(args, f"{args.command}_command", None)
    return f"{args.command} {sub_verb}" if isinstance(sub_verb, str) else args.command


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mlms` console script. Returns the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    verb = next((word for word in argv if not word.startswith("-")), None)
    args = _build_parser(verb if verb in VERBS else None).parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print(f"mlms {_verb_name(args)}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`mlms languages | head`): not an error. Python would still try to flush stdout
        # at exit and complain, so point it at /dev/null first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except EXPECTED_ERRORS as error:
        print(f"mlms {_verb_name(args)}: {error}", file=sys.stderr)
        return 2
