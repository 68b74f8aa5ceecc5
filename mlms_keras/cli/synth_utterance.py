"""`mlms synth-utterance`: a prepared utterance with its natural (oracle) durations, through a trained model."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    """Registers `mlms synth-utterance`."""
    parser = subparsers.add_parser(
        "synth-utterance",
        help="synthesise a prepared utterance with a trained model (oracle durations) to a WAV",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Run a trained model on a prepared utterance's linguistic features (natural durations), de-normalise,\n"
            "post-filter and synthesise with WORLD. Prints MCD / F0 RMSE / V/UV error against the natural "
            "features.\n\n"
            "examples:\n"
            "  mlms synth-utterance runs/mlms data/prepared fr-female-dev-00000 -o fr.wav\n"
            "  mlms synth-utterance runs/pl-v3 data/prepared pl-female-dev-00001 -o pl.wav "
            "--natural-output pl-natural.wav"
        ),
    )
    parser.add_argument("model", help="run folder from `mlms train` / `mlms adapt` (or its model.keras)")
    parser.add_argument("dataset", help="prepared dataset folder")
    parser.add_argument("utterance_id", help="utterance id (see the dataset's dataset.json)")
    parser.add_argument("-o", "--output", required=True, help="output .wav (.flac, .ogg)")
    parser.add_argument("--language", default=None, help="language code to speak with (default: the utterance's)")
    parser.add_argument("--speaker", default=None, help="speaker name to speak with (default: the utterance's)")
    parser.add_argument("--no-postfilter", action="store_true", help="skip the cepstral postfilter")
    parser.add_argument("--natural-output", default=None, help="also write WORLD resynthesis of the natural features")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Synthesises the utterance, writes the audio file(s) and prints the scores against the natural features."""
    from mlms_keras import vocoder
    from mlms_keras.synthesis.oracle import synthesize_utterance
    from mlms_keras.vocoder import audio

    result = synthesize_utterance(
        args.model,
        args.dataset,
        args.utterance_id,
        language=args.language,
        speaker=args.speaker,
        postfilter=not args.no_postfilter,
    )
    audio.save(args.output, result.wave, result.sample_rate)
    if args.natural_output:
        audio.save(
            args.natural_output,
            vocoder.synthesize(result.natural, result.sample_rate, postfilter_beta=1.0),
            result.sample_rate,
        )
    scores = result.metrics
    print(
        f"{args.output}: {len(result.wave) / result.sample_rate:.2f} s, {result.language}/{result.speaker}; "
        f"vs natural: MCD {scores['mcd_db']:.2f} dB, F0 RMSE {scores['f0_rmse_hz']:.1f} Hz, "
        f"V/UV {scores['vuv_error_percent']:.1f} %"
    )
    return 0
