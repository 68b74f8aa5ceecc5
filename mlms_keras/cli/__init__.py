"""The `mlms` command: one verb per job, one module per verb, one error wrapper.

Each verb module (`mlms_keras/cli/<verb>.py`) has `add_parser(subparsers)`, which defines the verb's arguments
and sets `handler=run`, and `run(args) -> int`, which calls the library and prints. Only the chosen verb's module
is imported, and verb modules import the library inside `run`, so `mlms --help` and `mlms VERB --help` answer
without importing TensorFlow.

Errors: the library raises `ValueError`, `FileNotFoundError`, `FileExistsError` or `OSError` (a full disk, a
read-only folder) with a message that names the file or argument and says what to do; malformed JSON is a
`ValueError` too. `main` prints those as one line, `mlms VERB: message`, and returns exit code 2 (an `OSError`
from the system, such as `[Errno 30] Read-only file system: '.out.wav.x1y2.tmp.wav'`, is shown as
`cannot write out.wav: Read-only file system (errno 30 EROFS); ...`, naming the file the user asked for and what
to do). So are the few errors of the libraries below that a user's input or machine can cause: TensorFlow's
`OpError` (a corrupt or missing shard), libsndfile's `SoundFileError`, espeak-ng's `EspeakError`, and
`FloatingPointError` (a loss that is no longer finite). Anything else is a bug and keeps its traceback.

Logging: warnings of the library (a skipped sentence, a removed character) are printed as `mlms VERB: warning:
message`. TensorFlow's start-up lines (oneDNN, CUDA, cpu_feature_guard, absl) are hidden unless `--verbose`:
`TF_CPP_MIN_LOG_LEVEL=3` hides its C++ logs, the `tensorflow` and `absl` Python loggers are set to errors, and the
lines TensorFlow's C++ code prints while it is imported, before its log level is read, are caught by pointing
file descriptor 2 at a temporary file during `import tensorflow` (replayed if the import fails).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile

from mlms_keras.utils.fileio import ATOMIC_OUTPUT_TEMPORARY_NAME

__all__ = ["EXPECTED_ERRORS", "VERBS", "main", "split_list"]

#: verb -> (module under mlms_keras.cli, one-line summary).
VERBS = {
    "corpus": ("corpus", "build the teacher corpus (espeak-ng voices, Table 1 of the paper)"),
    "prepare": ("prepare", "extract WORLD + linguistic features of a corpus into TFRecord shards"),
    "align": ("align", "forced-align a corpus (or one file): HTS labels + TextGrids with phone and word tiers"),
    "train": ("train", "train an MLMS (or SLSS baseline) acoustic model on a prepared dataset"),
    "adapt": ("adapt", "adapt a trained model to a new language and speaker (sec. 4.2, v1-v4)"),
    "synth-utterance": ("synth_utterance", "synthesise a prepared utterance (oracle durations) to a WAV"),
    "reproduce": ("reproduce", "reproduce the paper's Figures 2 and 3 on a prepared teacher corpus"),
    "tune": ("tune", "sweep the language-space dimension L with KerasTuner"),
    "say": ("say", "speak a text with a zoo voice into an audio file"),
    "zoo": ("zoo", "list the pretrained voices and show their details"),
    "languages": ("languages", "list the languages espeak-ng speaks and which installed voices know each"),
    "serve": ("serve", "serve zoo voices over HTTP: an API (streaming audio) and a web page"),
    "eval-voice": ("eval_voice", "score a voice against its espeak-ng teacher on held-out sentences"),
}

#: The errors a user can cause and fix; shown as one line, exit code 2.
EXPECTED_ERRORS = (ValueError, FileNotFoundError, FileExistsError, OSError, FloatingPointError)
#: Errors of the libraries below, by class (matched by name so that the wrapper imports none of them).
_EXPECTED_LIBRARY_ERRORS = frozenset(
    {
        "tensorflow.python.framework.errors_impl.OpError",
        "soundfile.SoundFileError",
        "mlms_keras.frontend.espeak.library.EspeakError",
    }
)
_OS_ERROR_ADVICE = {
    errno.EROFS: "choose a folder on a writable disk",
    errno.EACCES: "choose a folder you may write to, or change its permissions",
    errno.EPERM: "choose a folder you may write to, or change its permissions",
    errno.ENOSPC: "free some space on that disk, or choose another",
    errno.EDQUOT: "free some space within your disk quota, or choose another disk",
    errno.EFBIG: "the file exceeds the file-size limit (ulimit -f) or the file system's; choose another disk",
    errno.EISDIR: "give a file name, not a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
}


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
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's start-up lines and the library's info logs (allowed anywhere on the line)",
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


def _is_expected(error: BaseException) -> bool:
    if isinstance(error, EXPECTED_ERRORS):
        return True
    return any(f"{cls.__module__}.{cls.__qualname__}" in _EXPECTED_LIBRARY_ERRORS for cls in type(error).__mro__)


def _describe(error: BaseException) -> str:
    """The one-line message of an expected error; a system `OSError` names the user's file and what to do."""
    if not isinstance(error, OSError) or error.errno is None or not error.filename:
        return " ".join(str(error).split()) or type(error).__name__
    folder, name = os.path.split(os.fspath(error.filename))
    temporary = ATOMIC_OUTPUT_TEMPORARY_NAME.match(name)
    path = os.path.join(folder, temporary.group("name")) if temporary else os.fspath(error.filename)
    code = errno.errorcode.get(error.errno, "")
    reason = f"{error.strerror or os.strerror(error.errno)} (errno {error.errno} {code})"
    advice = _OS_ERROR_ADVICE.get(error.errno)
    return f"cannot use {path}: {reason}" + (f"; {advice}" if advice else "")


class _QuietImport(importlib.abc.MetaPathFinder):
    """Imports `tensorflow` with file descriptor 2 pointed at a temporary file (`_stderr_captured`)."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # one use: find the real spec without coming back here
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__spec__.loader = module.__loader__ = self.loader  # the real loader, for resource readers
        with _stderr_captured():
            self.loader.exec_module(module)


@contextlib.contextmanager
def _stderr_captured():
    """Points file descriptor 2 at a temporary file; its content is dropped, or written out again on an error."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _WarningHandler(logging.Handler):
    """Prints the library's records as `mlms VERB: warning: message` on the current `sys.stderr`.

    A verb that configures the root logger itself (`tune`, `reproduce`) prints them its own way instead.
    """

    verb = "?"

    def emit(self, record: logging.LogRecord) -> None:
        if any(
            isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stderr, sys.stdout, sys.__stderr__)
            for handler in logging.getLogger().handlers
        ):
            return
        print(f"mlms {self.verb}: {record.levelname.lower()}: {record.getMessage()}", file=sys.stderr)


_WARNINGS = _WarningHandler()


def _configure_output(verb: str, verbose: bool) -> None:
    """Library warnings as `mlms VERB: warning: ...`; TensorFlow's start-up lines hidden unless `verbose`."""
    _WARNINGS.verb = verb
    library = logging.getLogger("mlms_keras")
    if _WARNINGS not in library.handlers:
        library.addHandler(_WARNINGS)
    if verbose:
        library.setLevel(logging.INFO)
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    for name in ("tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if "tensorflow" not in sys.modules and not any(isinstance(finder, _QuietImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mlms` console script. Returns the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    verbose = "--verbose" in argv
    argv = [word for word in argv if word != "--verbose"]
    verb = next((word for word in argv if not word.startswith("-")), None)
    args = _build_parser(verb if verb in VERBS else None).parse_args(argv)
    _configure_output(_verb_name(args), verbose)
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
    except Exception as error:
        if not _is_expected(error):
            raise
        print(f"mlms {_verb_name(args)}: {_describe(error)}", file=sys.stderr)
        return 2
