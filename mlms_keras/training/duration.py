"""Training the phoneme duration model (`mlms_keras.models.duration`) on a prepared dataset, adapting it to new
languages, and scoring it.

Data: `mlms prepare` stores each utterance's phoneme-level features (`phoneme_linguistic`, unnormalised) and its
durations in frames after the frame fit (`durations`) in the shards; this module reads only those fields
(`mlms_keras.data.records.parse_phoneme_example`).

- `compute_duration_statistics`: the `DurationStatistics` of a prepared dataset's train split;
- `load_duration_dataset`: `tf.data` batches of normalised phoneme rows and durations, padded to
  `PHONEME_BUCKETS`, the opening and closing silences weighted 0;
- `evaluate_duration_model`: RMSE in frames (`mlms_keras.evaluation.metrics.duration_rmse_frames`, Merlin's
  definition: silence and pause rows excluded) and the Pearson correlation over the same phonemes;
- `train_duration_on_prepared`: the whole recipe (`mlms zoo train-duration`), into a duration run folder.

Example:
    >>> stats = compute_duration_statistics("data/prepared")                        # doctest: +SKIP
    >>> model = build_duration_model(duration_config("small", stats.input_dim, 6, 8))  # doctest: +SKIP
    >>> model.compile("adam", "mse")                                                 # doctest: +SKIP
    >>> model.fit(load_duration_dataset("data/prepared", "train", stats), epochs=10)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mlms_keras.data.manifest import MIN_STD, Manifest, effective_normalisation, is_identity_feature
from mlms_keras.data.records import parse_phoneme_example
from mlms_keras.evaluation.metrics import duration_rmse_frames
from mlms_keras.languages import TRAINING
from mlms_keras.models.duration import (
    SILENCE_IDENTITIES,
    DurationStatistics,
    build_duration_model,
    duration_config,
    predict_durations,
    save_duration_statistics,
    silence_rows,
)
from mlms_keras.models.growth import zero_untrained_language_inputs
from mlms_keras.training.adaptation import AdaptationOptions, adapt, closest_speaker
from mlms_keras.training.callbacks import check_finite_weights
from mlms_keras.utils.fileio import atomic_write_json, save_model_atomically

__all__ = [
    "DURATION_MODEL_NAME",
    "DURATION_RUN_FORMAT",
    "DURATION_RUN_FORMAT_VERSION",
    "DURATION_RUN_NAME",
    "DURATION_STATISTICS_NAME",
    "PHONEME_BUCKETS",
    "compute_duration_statistics",
    "evaluate_duration_model",
    "load_duration_dataset",
    "train_duration_on_prepared",
]

#: Padded phoneme counts of the training batches (one XLA compilation per shape); a longer utterance is an error.
PHONEME_BUCKETS = (32, 64, 128, 256, 512, 2048)

#: The files of a duration run folder (`train_duration_on_prepared`).
DURATION_MODEL_NAME = "duration.keras"
DURATION_STATISTICS_NAME = "duration_statistics.json"
DURATION_RUN_NAME = "duration.json"
DURATION_RUN_FORMAT = "mlms-duration-run"
DURATION_RUN_FORMAT_VERSION = 1


def _phoneme_records(manifest, split, languages=None, speakers=None):
    """tf.data of dicts: phoneme_linguistic (P, D_phone) float32 raw, durations (P,) float32, language, speaker."""
    files = manifest.shard_paths(split)
    phoneme_dim = manifest.layout.dimension
    language_ids = None if languages is None else [manifest.language_id(code) for code in languages]
    speaker_ids = None if speakers is None else [manifest.speaker_id(name) for name in speakers]
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").map(
        lambda serialized: parse_phoneme_example(serialized, phoneme_dim), num_parallel_calls=tf.data.AUTOTUNE
    )
    if language_ids is not None:
        dataset = dataset.filter(lambda r: tf.reduce_any(tf.equal(r["language"], language_ids)))
    if speaker_ids is not None:
        dataset = dataset.filter(lambda r: tf.reduce_any(tf.equal(r["speaker"], speaker_ids)))
    return dataset


def compute_duration_statistics(prepared, languages: list[str] | None = None) -> DurationStatistics:
    """Normalisation statistics of phoneme features and durations over a prepared dataset's train split.

    Args:
        prepared: prepared dataset folder (`mlms prepare`) or its `Manifest`.
        languages: language codes to include (None: all), e.g. the training languages only.

    Returns:
        `DurationStatistics` (module docstring for the rules).
    """
    manifest = prepared if isinstance(prepared, Manifest) else Manifest.load(prepared)
    layout = manifest.layout
    count, total, total_squares = 0, None, None
    durations, edge_silences = [], []
    for record in _phoneme_records(manifest, "train", languages=languages).as_numpy_iterator():
        features = record["phoneme_linguistic"].astype(np.float64)
        total = features.sum(axis=0) if total is None else total + features.sum(axis=0)
        total_squares = (features**2).sum(axis=0) if total_squares is None else total_squares + (features**2).sum(0)
        count += features.shape[0]
        edges = silence_rows(record["phoneme_linguistic"], layout)[[0, -1]]
        edge_silences.extend(record["durations"][[0, -1]][edges])
        durations.append(record["durations"][1:-1] if record["durations"].size > 2 else record["durations"])
    if count == 0:
        raise ValueError(f"{manifest.folder}: the train split has no phonemes for languages={languages}")
    mean = total / count
    std = np.sqrt(np.maximum(total_squares / count - mean**2, 0.0))
    identity = [index for index, name in enumerate(layout.feature_names) if is_identity_feature(name)]
    mean, std = effective_normalisation(mean, std, identity, MIN_STD)
    all_durations = np.concatenate(durations).astype(np.float64)
    edge_silence_frames = float(np.mean(edge_silences)) if edge_silences else float(all_durations.mean())
    return DurationStatistics(
        mean.astype(np.float32),
        std.astype(np.float32),
        float(all_durations.mean()),
        float(max(all_durations.std(), 1e-3)),
        layout.fingerprint,
        int(count),
        edge_silence_frames,
    )


def load_duration_dataset(
    prepared,
    split: str,
    stats: DurationStatistics,
    batch_size: int = 16,
    *,
    languages: list[str] | None = None,
    speakers: list[str] | None = None,
    shuffle: bool | None = None,
    seed: int | None = None,
    cache: bool = True,
    repeat: bool = False,
) -> tf.data.Dataset:
    """A tf.data.Dataset of `({"linguistic", "language", "speaker"}, durations)` batches for the duration model.

    Args:
        prepared: prepared dataset folder or `Manifest`.
        split: "train" or "dev".
        stats: the `DurationStatistics` to normalise with.
        batch_size: utterances per batch.
        languages, speakers: keep only these language codes / speaker names (None: all).
        shuffle: default True for "train".
        seed: shuffle seed.
        cache: keep the decoded, normalised phoneme sequences in memory after the first pass (about 0.3 MB
            per utterance of 60 phonemes at D_phone 1 189: 1 GB for the small teacher corpus).
        repeat: repeat forever.

    Returns:
        Batches `({"linguistic": (batch, P, D_phone), "language": (batch,), "speaker": (batch,)},
        (batch, P, 1) normalised durations, (batch, P) sample weights)`, P padded to a `PHONEME_BUCKETS`
        boundary with all-zero rows (the padding mask). The weight is 0 on padding and on the utterance's
        opening and closing silences (see `DurationStatistics.edge_silence_frames`), 1 elsewhere.
    """
    manifest = prepared if isinstance(prepared, Manifest) else Manifest.load(prepared)
    if stats.layout_fingerprint != manifest.layout.fingerprint:
        raise ValueError(
            f"{manifest.folder}: its feature layout {manifest.layout.fingerprint} differs from the "
            f"duration statistics' {stats.layout_fingerprint}; compute statistics on this dataset."
        )
    shuffle = (split == "train") if shuffle is None else shuffle
    input_mean, input_std = tf.constant(stats.input_mean), tf.constant(stats.input_std)

    silence_columns = tf.constant([manifest.layout.index(name) for name in SILENCE_IDENTITIES], tf.int32)

    def normalise(record):
        features = (record["phoneme_linguistic"] - input_mean) / input_std
        target = (record["durations"] - stats.duration_mean) / stats.duration_std
        # Weight 0 for the opening and closing silences: their length is the recording's, not the text's.
        silent = tf.reduce_max(tf.gather(record["phoneme_linguistic"], silence_columns, axis=1), axis=1) > 0.5
        length = tf.shape(silent)[0]
        edge = tf.logical_or(tf.range(length) == 0, tf.range(length) == length - 1)
        weight = tf.where(tf.logical_and(silent, edge), 0.0, 1.0)
        inputs = {"linguistic": features, "language": record["language"], "speaker": record["speaker"]}
        return inputs, target[:, None], weight

    dataset = _phoneme_records(manifest, split, languages, speakers).map(normalise, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(2048, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    boundaries = [boundary + 1 for boundary in PHONEME_BUCKETS]  # a bucket holds lengths < boundary
    dataset = dataset.bucket_by_sequence_length(
        lambda inputs, target, weight: tf.shape(inputs["linguistic"])[0],
        bucket_boundaries=boundaries[:-1],
        bucket_batch_sizes=[batch_size] * len(boundaries),
        pad_to_bucket_boundary=False,
        padded_shapes=({"linguistic": [None, stats.input_dim], "language": [], "speaker": []}, [None, 1], [None]),
    )

    def pad_to_bucket(inputs, target, weight):
        # Pad to the bucket's boundary so that batches come in len(PHONEME_BUCKETS) shapes (XLA compiles per shape).
        length = tf.shape(inputs["linguistic"])[1]
        padded = tf.gather(tf.constant(PHONEME_BUCKETS), tf.argmax(tf.constant(PHONEME_BUCKETS) >= length))
        extra = padded - length
        inputs = dict(inputs, linguistic=tf.pad(inputs["linguistic"], [[0, 0], [0, extra], [0, 0]]))
        return inputs, tf.pad(target, [[0, 0], [0, extra], [0, 0]]), tf.pad(weight, [[0, 0], [0, extra]])

    return dataset.map(pad_to_bucket).prefetch(tf.data.AUTOTUNE)


def evaluate_duration_model(
    model: keras.Model,
    stats: DurationStatistics,
    prepared,
    split: str = "dev",
    languages: list[str] | None = None,
    speakers: list[str] | None = None,
) -> dict:
    """Duration RMSE (frames) and correlation on a split, overall and per language.

    Predictions are rounded to whole frames, as at synthesis time; silence and pause rows are excluded
    (Merlin's convention, `mlms_keras.evaluation.metrics.duration_rmse_frames`).

    Args:
        model, stats: the duration model and its statistics.
        prepared: prepared dataset folder or `Manifest`; language ids are the model's.
        split, languages, speakers: what to evaluate.

    Returns:
        dict: `duration_rmse_frames`, `duration_corr`, `phonemes` (count), and `per_language`:
        code -> {`duration_rmse_frames`, `duration_corr`, `phonemes`}.
    """
    manifest = prepared if isinstance(prepared, Manifest) else Manifest.load(prepared)
    code_of = {language_id: code for code, language_id in manifest.languages.items()}
    references, predictions = {}, {}
    for record in _phoneme_records(manifest, split, languages, speakers).as_numpy_iterator():
        features = record["phoneme_linguistic"]
        predicted = predict_durations(
            model, stats, features, int(record["language"]), int(record["speaker"]), manifest.layout
        )
        speech = ~silence_rows(features, manifest.layout)
        code = code_of[int(record["language"])]
        references.setdefault(code, []).append(record["durations"][speech])
        predictions.setdefault(code, []).append(predicted[speech].astype(np.float64))
    if not references:
        raise ValueError(f"{manifest.folder}: split {split!r} selects no utterance (languages={languages})")

    def scores(reference, predicted):
        return {
            "duration_rmse_frames": duration_rmse_frames(reference, predicted),
            "duration_corr": float(np.corrcoef(reference, predicted)[0, 1]) if reference.size > 1 else math.nan,
            "phonemes": int(reference.size),
        }

    per_language = {
        code: scores(np.concatenate(references[code]), np.concatenate(predictions[code])) for code in references
    }
    overall = scores(
        np.concatenate([np.concatenate(r) for r in references.values()]),
        np.concatenate([np.concatenate(p) for p in predictions.values()]),
    )
    return dict(overall, per_language=per_language)


def train_duration_on_prepared(
    prepared,
    out_dir,
    preset: str = "small",
    epochs: int = 20,
    batch_size: int = 16,
    learning_rate: float = 1e-3,
    patience: int = 4,
    adapt_languages=(),
    variant: str = "v3",
    epochs_per_phase: int = 5,
    seed: int = 0,
    verbose="auto",
    languages: list[str] | None = None,
) -> dict:
    """Trains a duration model on a prepared dataset, then adapts it to new languages (the acoustic recipe).

    1. Statistics on the train split (`compute_duration_statistics`).
    2. A model over the dataset's training-role languages and their speakers (the ids of the manifest's
       tables, which list those first), trained with Adam on the MSE of normalised durations, keeping the
       weights of the best dev epoch (early stopping with `patience`).
    3. For each code in `adapt_languages` (e.g. ["pl", "pt-br"]), in order: a new language code and a new
       speaker output layer copied from the closest trained speaker, trained with the paper's `variant`
       (`mlms_keras.training.adaptation.adapt`) on that language's train split, keeping each phase's best dev epoch.
       The ids handed out follow the manifest's order, so they equal the dataset's (and the acoustic model's).
    4. Dev metrics per language (`evaluate_duration_model`).

    Writes into `out_dir`: `duration.keras`, `duration_statistics.json` and `duration.json`
    (`DURATION_RUN_FORMAT`: tables, metrics, history, settings, seconds spent).

    Args:
        prepared: prepared dataset folder (`mlms prepare`).
        out_dir: output folder.
        preset: `mlms_keras.models.duration.DURATION_PRESETS` key.
        epochs, batch_size, learning_rate, patience: base training.
        adapt_languages: adaptation language codes, each with exactly one speaker in the dataset.
        variant, epochs_per_phase: adaptation settings (`mlms_keras.training.adaptation.adaptation_phases`).
        seed: seeds the initialisation and shuffling.
        verbose: passed to `fit`.
        languages: the base model's language codes, which must hold the first ids of the dataset's table
            (default: the dataset's training-role languages); e.g. `["sv"]` for a scratch model of a dataset
            prepared for adaptation.

    Returns:
        The `duration.json` dict.
    """
    started = time.time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest.load(prepared)
    roles = {entry["code"]: entry.get("role") for entry in manifest.data["languages"]}
    adapt_languages = list(adapt_languages)
    unknown = [code for code in adapt_languages if code not in manifest.languages]
    if unknown:
        raise ValueError(
            f"adapt_languages {unknown} are not in {manifest.folder} (languages: {sorted(manifest.languages)})"
        )
    base_languages = [
        code
        for code in sorted(manifest.languages, key=manifest.languages.get)
        if (roles.get(code, TRAINING) == TRAINING if languages is None else code in languages)
        and code not in adapt_languages
    ]
    missing = sorted(set(languages or ()) - set(manifest.languages))
    if missing:
        raise ValueError(f"languages {missing} are not in {manifest.folder} (languages: {sorted(manifest.languages)})")
    speakers = sorted(manifest.speakers.values(), key=lambda entry: entry["id"])
    base_speakers = [entry["name"] for entry in speakers if entry["language"] in base_languages]
    if [manifest.languages[c] for c in base_languages] != list(range(len(base_languages))) or [
        manifest.speaker_id(s) for s in base_speakers
    ] != list(range(len(base_speakers))):
        raise ValueError(
            f"{manifest.folder}: the training languages and their speakers must have the first ids of "
            "the dataset's tables (as `mlms prepare` writes them)"
        )
    stats = compute_duration_statistics(manifest)
    save_duration_statistics(stats, out_dir / DURATION_STATISTICS_NAME)
    keras.utils.set_random_seed(seed)
    model = build_duration_model(duration_config(preset, stats.input_dim, len(base_languages), len(base_speakers)))
    # The adaptation languages and the layout's other languages have no training data here: their own input rows
    # start at zero (and stay zero in base training), so a frozen-tower adaptation (v1) gets no noise from them.
    zero_untrained_language_inputs(model, manifest.layout, base_languages)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")

    def data(split, languages, speakers=None, **options):
        return load_duration_dataset(
            manifest, split, stats, batch_size, languages=languages, speakers=speakers, seed=seed, **options
        )

    history = model.fit(
        data("train", base_languages, base_speakers),
        validation_data=data("dev", base_languages, base_speakers),
        epochs=epochs,
        verbose=verbose,
        callbacks=[
            keras.callbacks.TerminateOnNaN(),
            keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True),
        ],
    )
    check_finite_weights(model, f"{out_dir}: duration model", history.history)
    record = {
        "format": DURATION_RUN_FORMAT,
        "format_version": DURATION_RUN_FORMAT_VERSION,
        "preset": preset,
        "languages": base_languages,
        "speakers": base_speakers,
        "training": {
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "patience": patience,
            "seed": seed,
            "history": history.history,
        },
        "adaptation": {},
    }
    speaker_languages = [manifest.speakers[name]["language"] for name in base_speakers]
    for code in adapt_languages:
        new_speakers = [entry["name"] for entry in speakers if entry["language"] == code]
        if len(new_speakers) != 1:
            raise ValueError(
                f"adaptation language {code!r} needs exactly one speaker in {manifest.folder}, found {new_speakers}"
            )
        candidates = [(record["languages"].index(language), s) for s, language in enumerate(speaker_languages)]
        train_data, dev_data = data("train", [code], new_speakers), data("dev", [code], new_speakers)
        distance = closest_speaker(model, train_data, candidates=candidates)
        result = adapt(
            model,
            train_data,
            dev_data,
            AdaptationOptions(variant=variant, epochs_per_phase=epochs_per_phase, learning_rate=learning_rate),
            copy_speaker_from=distance.speaker,
            verbose=verbose,
        )
        if (result.language_id, result.speaker_id) != (
            manifest.language_id(code),
            manifest.speaker_id(new_speakers[0]),
        ):
            raise RuntimeError(
                f"adapting {code}: the model gave ids {(result.language_id, result.speaker_id)}, the "
                "dataset has other ids; adapt the languages in the dataset's order"
            )
        record["languages"].append(code)
        record["speakers"].append(new_speakers[0])
        speaker_languages.append(code)
        record["adaptation"][code] = {
            "variant": variant,
            "epochs_per_phase": epochs_per_phase,
            "initial_speaker": record["speakers"][distance.speaker],
            "history": result.history,
        }
    record["dev_metrics"] = evaluate_duration_model(model, stats, manifest, "dev", languages=record["languages"])
    record["seconds"] = time.time() - started
    save_model_atomically(model, out_dir / DURATION_MODEL_NAME)
    atomic_write_json(out_dir / DURATION_RUN_NAME, record)
    return record
