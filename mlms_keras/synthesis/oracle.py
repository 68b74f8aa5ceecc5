"""Hearing a trained acoustic model: a prepared utterance, with its natural (oracle) durations, to a WAV.

`mlms synth-utterance MODEL DATASET UTT_ID -o out.wav` reads the utterance's frame-level linguistic features from
the prepared dataset (they already carry the aligned phone durations, as in the paper's experiments, sec. 2:
"the oracle duration information was used"), normalises them with the statistics the model was trained with,
runs the model for the utterance's language and speaker (or others the model knows), de-normalises the
prediction and synthesises it with WORLD (`mlms_keras.vocoder.synthesize`, cepstral postfilter on by default).
It also scores the prediction against the utterance's natural features (MCD, F0 RMSE, V/UV error on speech frames).
This lets a user hear a model before a duration model exists.
"""

import dataclasses
import sys
from pathlib import Path

import numpy as np


@dataclasses.dataclass
class UtteranceSynthesis:
    """Result of `synthesize_utterance`.

    Attributes:
        wave: (samples,) float64 in [-1, 1].
        sample_rate: Hz.
        predicted: (frames, 49) de-normalised model output (vocoder units, `vocoder` layout).
        natural: (frames, 49) the utterance's analysed features.
        metrics: `mlms_keras.evaluation.metrics.evaluate_acoustic` of predicted vs natural on speech frames.
        language, speaker: the language code and speaker name the model was run with.
    """

    wave: np.ndarray
    sample_rate: int
    predicted: np.ndarray
    natural: np.ndarray
    metrics: dict
    language: str
    speaker: str


def _normalisation_manifest(info, dataset_manifest):
    from mlms_keras.data import Manifest

    for candidate in ((info.get("adaptation") or {}).get("normalisation"), info.get("dataset")):
        if candidate and Path(candidate).is_dir():
            return Manifest.load(candidate)
    return dataset_manifest


def synthesize_utterance(model_path, dataset_path, utterance_id, language=None, speaker=None, postfilter=True):
    """Synthesises one prepared utterance with a trained model and its oracle durations.

    Args:
        model_path: a run folder from `mlms train` / `mlms adapt` (or its model.keras with training.json beside it).
        dataset_path: the prepared dataset holding `utterance_id`.
        utterance_id: e.g. "fr-female-dev-00001".
        language: language code to run the model with (default: the utterance's own).
        speaker: speaker name to run the model with (default: the utterance's own).
        postfilter: apply the cepstral postfilter (`vocoder.DEFAULT_POSTFILTER_BETA`); False synthesises as is.

    Returns:
        An `UtteranceSynthesis`.
    """
    from mlms_keras import vocoder
    from mlms_keras.data import Manifest, read_utterances
    from mlms_keras.evaluation import metrics
    from mlms_keras.training.fit import load_run

    model, info = load_run(model_path)
    manifest = Manifest.load(dataset_path)
    if utterance_id not in manifest.utterances:
        known = sorted(manifest.utterances)
        raise ValueError(
            f"utterance {utterance_id!r} is not in {manifest.folder} (e.g. {known[:3]}); see its dataset.json"
        )
    entry = manifest.utterances[utterance_id]
    language = language or entry["language"]
    speaker = speaker or entry["speaker"]
    languages, speakers = info.get("languages") or [], info.get("speakers") or []
    if info.get("model_type") == "slss":
        language_id = speaker_id = 0
    else:
        if language not in languages:
            raise ValueError(
                f"{model_path} does not know language {language!r} (it knows {languages}); pass --language"
            )
        if speaker not in speakers:
            raise ValueError(f"{model_path} does not know speaker {speaker!r} (it knows {speakers}); pass --speaker")
        language_id, speaker_id = languages.index(language), speakers.index(speaker)

    stats = _normalisation_manifest(info, manifest)
    record = next(read_utterances(dataset_path, ids=[utterance_id]))
    linguistic = stats.normalise_inputs(record["linguistic"])
    inputs = {
        "linguistic": linguistic[None],
        "language": np.array([language_id], "int32"),
        "speaker": np.array([speaker_id], "int32"),
    }
    predicted = stats.denormalise_outputs(model.predict_on_batch(inputs)[0]).astype(np.float64)
    natural = np.asarray(record["acoustic"], np.float64)
    silence = [
        i for i, name in enumerate(manifest.layout.frame_feature_names) if name in ("C_phoneme=sil", "C_phoneme=pau")
    ]
    speech = np.asarray(record["linguistic"])[:, silence].max(axis=1) < 0.5 if silence else np.ones(len(natural), bool)
    scores = metrics.evaluate_acoustic(natural, predicted, frame_mask=speech if speech.any() else None)
    sample_rates = manifest.data.get("sample_rates_hz") or [vocoder.DEFAULT_SAMPLE_RATE]
    if len(sample_rates) != 1:
        raise ValueError(f"{manifest.folder} mixes sample rates {sample_rates}; synthesis needs one")
    beta = vocoder.DEFAULT_POSTFILTER_BETA if postfilter else 1.0
    wave = vocoder.synthesize(predicted, sample_rate=int(sample_rates[0]), postfilter_beta=beta, name=utterance_id)
    return UtteranceSynthesis(wave, int(sample_rates[0]), predicted, natural, scores, language, speaker)


def _run(args):
    from mlms_keras.vocoder import audio

    try:
        result = synthesize_utterance(
            args.model,
            args.dataset,
            args.utterance_id,
            language=args.language,
            speaker=args.speaker,
            postfilter=not args.no_postfilter,
        )
    except (ValueError, FileNotFoundError) as error:
        print(f"mlms synth-utterance: {error}", file=sys.stderr)
        return 2
    audio.save(args.output, result.wave, result.sample_rate)
    if args.natural_output:
        from mlms_keras import vocoder

        audio.save(
            args.natural_output,
            vocoder.synthesize(result.natural, result.sample_rate, postfilter_beta=1.0),
            result.sample_rate,
        )
    scores = result.metrics
    print(
        f"{args.output}: {len(result.wave) / result.sample_rate:.2f} s, {result.language}/{result.speaker}; vs natural: "
        f"MCD {scores['mcd_db']:.2f} dB, F0 RMSE {scores['f0_rmse_hz']:.1f} Hz, V/UV {scores['vuv_error_percent']:.1f} %"
    )
    return 0


def add_cli_parser(subparsers):
    """Registers `mlms synth-utterance`."""
    import argparse

    parser = subparsers.add_parser(
        "synth-utterance",
        help="synthesise a prepared utterance with a trained model (oracle durations) to a WAV",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Run a trained model on a prepared utterance's linguistic features (natural durations), de-normalise,\n"
            "post-filter and synthesise with WORLD. Prints MCD / F0 RMSE / V/UV error against the natural features.\n\n"
            "examples:\n"
            "  mlms synth-utterance runs/mlms data/prepared fr-female-dev-00000 -o fr.wav\n"
            "  mlms synth-utterance runs/pl-v3 data/prepared pl-female-dev-00001 -o pl.wav --natural-output pl-natural.wav"
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
    parser.set_defaults(handler=_run)
