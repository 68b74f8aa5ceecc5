"""The `mlms` command: one verb per job.

Each verb lives in the module that owns the work; this file only wires argparse to it.
Imports happen inside the handlers so that `mlms --help` stays fast (TensorFlow is slow to import).
"""

import argparse
import os
import sys

# TensorFlow's C++ info and warning logs during a run are noise for a command-line user (the few lines
# printed before absl initialises cannot be silenced this way).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="mlms",
        description="Multi-language multi-speaker LSTM-RNN TTS (Li & Zen 2016) on Keras 3.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    # Each owning module adds its verb here through `add_cli_parser(subparsers)`.
    for register in _command_registrars():
        register(subparsers)
    return parser


def _command_registrars():
    registrars = []
    from mlms_keras.data import teacher

    registrars.append(teacher.add_cli_parser)
    from mlms_keras.data import prepare

    registrars.append(prepare.add_cli_parser)
    from mlms_keras import training

    registrars.append(training.add_cli_parser)
    from mlms_keras import adaptation

    registrars.append(adaptation.add_cli_parser)
    from mlms_keras import oracle_synthesis

    registrars.append(oracle_synthesis.add_cli_parser)
    from mlms_keras import experiments

    registrars.append(experiments.add_cli_parser)
    from tuning import sweep as tuning_sweep

    registrars.append(tuning_sweep.add_cli_parser)
    from mlms_keras import synthesis, zoo

    registrars.append(synthesis.add_cli_parser)
    registrars.append(zoo.add_cli_parser)
    # <register-more-commands-here>
    return registrars


def main(argv=None):
    """Entry point of the `mlms` console script. Returns the process exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
