"""Adapt a trained MLMS model to a new language and speaker with the Python API (Li & Zen 2016, sec. 4.2).

The same work as `mlms adapt RUN DATASET --language pl --speaker pl-female --variant v3 --out OUT`, written out so
that each step can be changed: the adaptation data, how the new speaker's output layer starts, the phases.

Usage:
    mlms train data/prepared --preset small --out runs/mlms
    python examples/adapt_new_language.py runs/mlms data/prepared --language pl --speaker pl-female --variant v3 \
        --out runs/pl-v3.keras
"""

import argparse

from mlms_keras.data import load_dataset
from mlms_keras.training.adaptation import AdaptationOptions, adapt, add_language_and_speaker, closest_speaker
from mlms_keras.training.runs import load_run
from mlms_keras.utils.fileio import save_model_atomically


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run folder from `mlms train`")
    parser.add_argument("dataset", help="prepared dataset with the new language")
    parser.add_argument("--language", default="pl")
    parser.add_argument("--speaker", default="pl-female")
    parser.add_argument("--variant", default="v3", choices=("v1", "v2", "v3", "v4"))
    parser.add_argument("--epochs-per-phase", type=int, default=10)
    parser.add_argument("--out", required=True, help="output .keras file")
    args = parser.parse_args()

    model, info = load_run(args.run)

    def split(name):
        # The base model's normalisation statistics, so the new data is scaled as the model expects.
        return load_dataset(
            args.dataset,
            name,
            batch_size=8,
            languages=[args.language],
            speakers=[args.speaker],
            normalisation=info.get("dataset"),
        )

    train, dev = split("train"), split("dev")
    # The closest trained speaker: each speaker with its own training language, lowest MSE on the new data.
    candidates = [(info["languages"].index(code), s) for s, code in enumerate(info["speaker_languages"])]
    distance = closest_speaker(model, train, candidates=candidates)
    print(f"{args.speaker} starts from {info['speakers'][distance.speaker]} (MSE {distance.mse:.4f})")
    language_id, speaker_id = add_language_and_speaker(model, copy_speaker_from=distance.speaker)

    result = adapt(
        model,
        train,
        dev,
        AdaptationOptions(variant=args.variant, epochs_per_phase=args.epochs_per_phase, learning_rate=1e-3),
        language=language_id,
        speaker=speaker_id,
    )
    for phase in result.phases:
        print(f"phase {phase.name}: {phase.epochs} epochs")
    print(f"dev MSE after adaptation: {result.history['val_loss'][-1]:.4f}")
    save_model_atomically(model, args.out)


if __name__ == "__main__":
    main()
