"""Hearing a trained acoustic model: a prepared utterance, with its natural (oracle) durations, to a WAV.

`mlms synth-utterance MODEL DATASET UTT_ID -o out.wav` reads the utterance's frame-level linguistic features from
the prepared dataset (they already carry the aligned phone durations, as in the paper's experiments, sec. 2:
"the oracle duration information was used"), normalises them with the statistics the model was trained with,
runs the model for the utterance's language and speaker (or others the model knows), de-normalises the
prediction and synthesises it with WORLD (`mlms_keras.vocoder.synthesize`, cepstral postfilter on by default).
It also scores the prediction against the utterance's natural features (MCD, F0 RMSE, V/UV error on speech frames).
This lets a user hear a model before a duration model exists.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from mlms_keras import vocoder
from mlms_keras.data.manifest import Manifest
from mlms_keras.data.pipeline import read_utterances
from mlms_keras.evaluation import metrics
from mlms_keras.training.runs import load_run

__all__ = ["UtteranceSynthesis", "synthesize_utterance"]


@dataclasses.dataclass
class UtteranceSynthesis:
    """Result of `synthesize_utterance`.

    Attributes:
        wave: (samples,) float64 in [-1, 1].
        sample_rate: Hz.
        predicted: (frames, 49) de-normalised model output (vocoder units, `vocoder` layout).
        natural: (frames, 49) the utterance's analysed features.
        metrics: `mlms_keras.evaluation.metrics.evaluate_acoustic` of predicted vs natural on speech frames.
        language: the language code the model was run with.
        speaker: the speaker name the model was run with.
    """

    wave: np.ndarray
    sample_rate: int
    predicted: np.ndarray
    natural: np.ndarray
    metrics: dict
    language: str
    speaker: str


def _normalisation_manifest(info: dict, dataset_manifest: Manifest) -> Manifest:
    """The manifest whose statistics the model was trained with: the adaptation's, the run's dataset, or ours."""
    for candidate in ((info.get("adaptation") or {}).get("normalisation"), info.get("dataset")):
        if candidate and Path(candidate).is_dir():
            return Manifest.load(candidate)
    return dataset_manifest


def synthesize_utterance(
    model_path: str | os.PathLike,
    dataset_path: str | os.PathLike,
    utterance_id: str,
    language: str | None = None,
    speaker: str | None = None,
    postfilter: bool = True,
) -> UtteranceSynthesis:
    """Synthesises one prepared utterance with a trained model and its oracle durations.

    Args:
        model_path: a run folder from `mlms train` / `mlms adapt` (or its model.keras with training.json beside it).
        dataset_path: the prepared dataset holding `utterance_id`.
        utterance_id: e.g. `"fr-female-dev-00001"`.
        language: language code to run the model with (default: the utterance's own).
        speaker: speaker name to run the model with (default: the utterance's own).
        postfilter: apply the cepstral postfilter (`vocoder.DEFAULT_POSTFILTER_BETA`); False synthesises as is.

    Returns:
        An `UtteranceSynthesis`.
    """
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
