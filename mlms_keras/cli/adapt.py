"""`mlms adapt`: adapt a zoo voice or a model from `mlms train` to a new language and speaker (paper sec. 4.2,
variants v1-v4; `mlms_keras.training.adaptation`).

A zoo voice (a built-in name, a voice folder or a URL) gives a new voice folder (`adapt_voice`: both models grown to
the new language and adapted); a run folder from `mlms train` gives a run folder, as it always has
(`adapt_on_prepared`: the acoustic model; `mlms reproduce` uses it).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

__all__ = ["add_parser", "command_line", "is_run_source", "run"]

#: The paper's adaptation variants (`mlms_keras.training.adaptation.VARIANTS`, not imported: it loads TensorFlow).
VARIANT_CHOICES = ("v1", "v2", "v3", "v4")
#: The files that make a folder a run folder (`mlms_keras.training.runs`; not imported, to keep `--help` light).
_RUN_FILES = ("model.keras", "training.json")


def add_parser(subparsers) -> None:
    """Registers `mlms adapt`."""
    parser = subparsers.add_parser(
        "adapt",
        help="adapt a zoo voice or a trained MLMS model to a new language and speaker (paper sec. 4.2, v1-v4)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Add a language code (random init) and a speaker output layer (copied from the closest trained speaker)\n"
            "to a model, then train per variant; the new speaker's layer trains in every phase:\n"
            "  v1: the code only (the voice's other languages keep bit-identical output)\n"
            "  v2: the code and the mean tower jointly\n"
            "  v3: v1, then the mean tower alone\n  v4: v3, then the code and the mean tower jointly\n"
            "Each phase lasts --epochs-per-phase epochs and keeps its best dev epoch. Re-running the same command\n"
            "after a kill resumes.\n\n"
            "MODEL is a zoo voice (built-in name, voice folder or URL): both its models grow to the new language\n"
            "and adapt, and --out becomes a new voice for `mlms say`; prepare the data with\n"
            "`mlms prepare CORPUS DATASET --layout-from VOICE`. Or MODEL is a run folder from `mlms train`: --out\n"
            "becomes a run folder (the acoustic model only).\n\n"
            "examples:\n"
            "  mlms corpus build data/sv --languages sv --utterances 120 --voice-variant f2\n"
            "  mlms prepare data/sv data/sv-prepared --layout-from teacher-small\n"
            "  mlms adapt teacher-small data/sv-prepared --language sv --speaker sv-f2 --variant v1 --out my-voice\n"
            '  mlms say --voice ./my-voice --lang sv --speaker sv-f2 "Hej, hur mår du?" -o hej.wav\n'
            "  mlms adapt runs/mlms data/prepared --language pl --speaker pl-female --variant v3 --out runs/pl-v3"
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="zoo voice (name, folder or URL) or run folder of `mlms train`")
    parser.add_argument("dataset", help="prepared dataset with the new language's train and dev splits")
    parser.add_argument("--language", required=True, help="new language code, e.g. sv (`mlms languages` lists them)")
    parser.add_argument("--speaker", required=True, help="new speaker name in the dataset, e.g. sv-f2")
    parser.add_argument("--variant", required=True, choices=VARIANT_CHOICES)
    parser.add_argument("--out", required=True, help="output folder (a voice folder for a voice, else a run folder)")
    parser.add_argument("--epochs-per-phase", type=int, default=10, help="epochs per phase (default 10)")
    parser.add_argument(
        "--steps-per-epoch",
        type=int,
        default=None,
        help="batches per epoch from the repeated training data (default: one pass per epoch)",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None, help="a voice's new name (default: the --out folder's name)")
    parser.add_argument("--description", default=None, help="a voice's one-line description")
    parser.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    parser.set_defaults(handler=run)


def is_run_source(model: str) -> bool:
    """True when MODEL names a run of `mlms train` (a `.keras` file, or a folder with `model.keras` or
    `training.json`); anything else is taken for a zoo voice."""
    path = Path(model).expanduser()
    if path.is_file():
        return path.suffix == ".keras"
    return path.is_dir() and any((path / name).is_file() for name in _RUN_FILES)


def command_line(args: argparse.Namespace) -> str:
    """The `mlms adapt` command with every option spelled out (recorded in a voice's `metadata.json`)."""
    words = ["mlms", "adapt", args.model, args.dataset, "--language", args.language, "--speaker", args.speaker]
    words += ["--variant", args.variant, "--out", args.out, "--epochs-per-phase", str(args.epochs_per_phase)]
    words += ["--batch-size", str(args.batch_size), "--learning-rate", str(args.learning_rate)]
    words += ["--seed", str(args.seed)]
    for flag, value in (
        ("--steps-per-epoch", args.steps_per_epoch),
        ("--name", args.name),
        ("--description", args.description),
    ):
        if value is not None:
            words += [flag, str(value)]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    """Adapts a voice (`adapt_voice`) or a run (`adapt_on_prepared`) and prints the result."""
    from mlms_keras.training.adaptation import AdaptationOptions

    options = AdaptationOptions(
        variant=args.variant,
        epochs_per_phase=args.epochs_per_phase,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        steps_per_epoch=args.steps_per_epoch,
    )
    verbose = 2 if args.quiet else "auto"
    if is_run_source(args.model):
        for option, value in (("--name", args.name), ("--description", args.description)):
            if value is not None:
                raise ValueError(f"{option} names a voice; {args.model} is a run folder of `mlms train`")
        return _adapt_run(args, options, verbose)
    return _adapt_voice(args, options, verbose)


def _adapt_run(args: argparse.Namespace, options, verbose) -> int:
    from mlms_keras.training.adaptation import adapt_on_prepared

    language, speaker = args.language, args.speaker
    result = adapt_on_prepared(args.model, args.dataset, language, speaker, args.out, options, verbose=verbose)
    dev = result.history.get("val_loss")
    print(
        f"{args.out}/model.keras: {args.variant} adapted to {args.language}/{args.speaker}"
        + (f", dev MSE {dev[-1]:.4f}" if dev else "")
    )
    return 0


def _adapt_voice(args: argparse.Namespace, options, verbose) -> int:
    from mlms_keras.training.adaptation import adapt_voice
    from mlms_keras.zoo import UnknownVoiceError

    try:
        result = adapt_voice(
            args.model,
            args.dataset,
            args.language,
            args.speaker,
            args.out,
            options,
            name=args.name,
            description=args.description,
            command=command_line(args),
            verbose=verbose,
        )
    except UnknownVoiceError as error:
        raise ValueError(f"{error} Or give a run folder of `mlms train` (model.keras, training.json).") from None
    metrics = result.metrics
    print(
        f"{result.folder}: voice {result.name!r}, {args.variant} adapted to {args.language}/{args.speaker} in "
        f"{result.seconds:.0f} s; dev MCD {metrics['mcd_db']:.2f} dB, F0 RMSE {metrics['f0_rmse_hz']:.1f} Hz, "
        f"V/UV {metrics['vuv_error_percent']:.1f} %, duration RMSE {metrics['duration_rmse_frames']:.2f} frames\n"
        f'try: mlms say --voice {result.folder} --lang {args.language} --speaker {args.speaker} "..."'
    )
    return 0
