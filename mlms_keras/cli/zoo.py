"""`mlms zoo list|info|train-duration|pack`: the pretrained voices, and making one from run folders."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    """Registers `mlms zoo` and its sub-verbs `list`, `info`, `train-duration` and `pack`."""
    parser = subparsers.add_parser(
        "zoo",
        help="list the pretrained voices and show their details",
        description="The zoo of pretrained voices.\n\nexamples:\n  mlms zoo list\n  mlms zoo info teacher-small\n"
        "  mlms zoo info file:///srv/voices/teacher-small --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=run)
    verbs = parser.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND")
    verbs.required = True
    verbs.add_parser("list", help="the built-in voices")
    info = verbs.add_parser(
        "info",
        help="languages, speakers, metrics and rebuild commands of a voice",
        description="example:\n  mlms zoo info teacher-small",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument("voice", help="built-in voice name, voice folder, or file:// / https:// URL")
    info.add_argument("--json", action="store_true", help="print the metadata as JSON (without the large tables)")
    info.add_argument("--sha256", default=None, help="pin the voice: the expected sha256 of its metadata.json")

    duration = verbs.add_parser(
        "train-duration",
        help="train (and adapt) a voice's duration model on a prepared dataset",
        description="Train the phoneme duration model (mlms_keras.models.duration) on the training languages of a "
        "prepared\ndataset, then adapt it to each --adapt language with the paper's --variant.\n\nexample:\n"
        "  mlms zoo train-duration data/prepared --out runs/duration --adapt pl,pt-br --variant v3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    duration.add_argument("dataset", help="prepared dataset folder")
    duration.add_argument("--out", required=True, help="output folder")
    duration.add_argument("--preset", default="small", help="duration model size (small, tiny)")
    duration.add_argument("--epochs", type=int, default=20)
    duration.add_argument("--patience", type=int, default=4)
    duration.add_argument("--batch-size", type=int, default=16)
    duration.add_argument("--learning-rate", type=float, default=1e-3)
    duration.add_argument(
        "--languages", default=None, help="comma-separated base languages (default: the training-role languages)"
    )
    duration.add_argument("--adapt", default="", help="comma-separated adaptation languages, in the dataset's order")
    duration.add_argument("--variant", default="v3", choices=("v1", "v2", "v3", "v4"))
    duration.add_argument("--epochs-per-phase", type=int, default=5)
    duration.add_argument("--seed", type=int, default=0)

    pack = verbs.add_parser(
        "pack",
        help="make a zoo voice from an acoustic run and a duration run (computes held-out metrics)",
        description="example:\n  mlms zoo pack --acoustic runs/pt-br --duration runs/duration --dataset data/prepared "
        "\\\n      --name teacher-small --out zoo/teacher-small --registry zoo/registry.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pack.add_argument("--acoustic", required=True, help="acoustic run folder (mlms train / mlms adapt)")
    pack.add_argument("--duration", required=True, help="duration run folder (mlms zoo train-duration)")
    pack.add_argument("--dataset", required=True, help="the prepared dataset both were trained on")
    pack.add_argument("--name", required=True)
    pack.add_argument("--description", default="")
    pack.add_argument("--out", required=True, help="voice folder to write")
    pack.add_argument("--registry", default=None, help="registry file to add the voice to")
    pack.add_argument("--commands", default=None, help="text file: the commands that rebuild the voice, one a line")
    pack.add_argument("--timings", default=None, help="JSON file: seconds per build step")


def run(args: argparse.Namespace) -> int:
    """Runs the chosen `mlms zoo` sub-verb."""
    handlers = {"list": _run_list, "info": _run_info, "train-duration": _run_train_duration, "pack": _run_pack}
    return handlers[args.zoo_command](args)


def _run_list(args: argparse.Namespace) -> int:
    from mlms_keras.zoo import list_voices

    voices = list_voices()
    if not voices:
        print("no built-in voices installed")
        return 0
    for voice in voices:
        print(
            f"{voice['name']:<20} {len(voice['languages'])} languages, {len(voice['speakers'])} speakers, "
            f"{voice['size_bytes'] / 1e6:.1f} MB  {voice.get('description', '')}"
        )
    return 0


def _run_info(args: argparse.Namespace) -> int:
    from mlms_keras.zoo import resolve_voice

    folder, metadata = resolve_voice(args.voice, sha256=args.sha256)
    if args.json:
        shown = {
            key: value
            for key, value in metadata.items()
            if key not in ("feature_layout", "normalisation", "duration_statistics")
        }
        print(json.dumps(shown, indent=1, ensure_ascii=False))
        return 0
    print(f"{metadata['name']}: {metadata.get('description', '')}")
    print(f"  folder       {folder}")
    print(f"  sample rate  {metadata['sample_rate']} Hz")
    print(f"  languages    {', '.join(sorted(metadata['languages'], key=metadata['languages'].get))}")
    speakers = sorted(metadata["speakers"].items(), key=lambda item: item[1]["id"])
    print("  speakers     " + ", ".join(f"{name} ({entry['language']})" for name, entry in speakers))
    print(
        f"  parameters   acoustic {metadata['acoustic_model']['parameters']:,}, "
        f"duration {metadata['duration_model']['parameters']:,}"
    )
    for section in ("metrics", "training_time_s"):
        if section in metadata:
            print(f"  {section:<12} {json.dumps(metadata[section])}")
    for command in metadata.get("commands", []):
        print(f"  rebuild      {command}")
    return 0


def _run_train_duration(args: argparse.Namespace) -> int:
    from mlms_keras.training.duration import train_duration_on_prepared

    record = train_duration_on_prepared(
        args.dataset,
        args.out,
        preset=args.preset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        patience=args.patience,
        adapt_languages=[code.strip() for code in args.adapt.split(",") if code.strip()],
        variant=args.variant,
        epochs_per_phase=args.epochs_per_phase,
        seed=args.seed,
        languages=[code.strip() for code in args.languages.split(",") if code.strip()] if args.languages else None,
    )
    metrics = record["dev_metrics"]
    print(
        f"{args.out}: dev duration RMSE {metrics['duration_rmse_frames']:.2f} frames, "
        f"correlation {metrics['duration_corr']:.3f} ({metrics['phonemes']} phonemes)"
    )
    return 0


def _read_commands(path: str) -> list[str]:
    """The non-empty, non-comment lines of `--commands`."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _read_timings(path: str):
    """`--timings`: a JSON object of seconds per build step."""
    try:
        timings = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"--timings {path}: not valid JSON ({error}); give an object of seconds per step") from error
    return timings


def _run_pack(args: argparse.Namespace) -> int:
    from mlms_keras.zoo import pack_voice

    entry = pack_voice(
        args.acoustic,
        args.duration,
        args.dataset,
        args.out,
        args.name,
        args.description,
        commands=_read_commands(args.commands) if args.commands else [],
        timings=_read_timings(args.timings) if args.timings else None,
        registry_path=args.registry,
    )
    print(
        f"{args.out}: voice {args.name!r}, {len(entry['languages'])} languages, {len(entry['speakers'])} speakers, "
        f"{entry['size_bytes'] / 1e6:.1f} MB"
    )
    return 0
