"""The phoneme duration model: how many 5 ms frames each phoneme lasts, for a given language and speaker.

It is the acoustic model's idea one level up (Li & Zen 2016 model acoustics; durations follow the same recipe,
as in Zen & Sak 2015): phoneme-level linguistic vectors (the `FeatureLayout` rows, sil/pau included) go through
the cluster-adaptive towers, whose language code selects the language's point in the language space, and a
speaker-dependent recurrent output layer gives one number per phoneme, the duration in frames (normalised). It
is literally `build_mlms_model` with `input_dim = layout.dimension` and `output_dim = 1`, run over phonemes
instead of frames, so everything that works on the acoustic model works here: masking of padded rows,
`add_language` / `add_speaker`, the adaptation variants v1-v4 of `mlms_keras.training.adaptation`, and streaming.
The towers' LSTMs are unidirectional, so a phoneme's duration sees the phonemes before it and, through the
quinphone identity and structure features, two phonemes ahead and the position in the syllable, word and phrase.

Data: `mlms prepare` stores each utterance's phoneme-level features (``phoneme_linguistic``, unnormalised) and
its durations in frames after the frame fit (``durations``) in the shards; this module reads only those fields.

Normalisation (`DurationStatistics`, computed on the train split): inputs follow the acoustic inputs' rule of
`mlms_keras.data.manifest` (phoneme-identity one-hots left as 0/1 so a real phoneme row is never all zero, other
features to zero mean and unit variance, near-constant dimensions only centred); the target is
``(frames - mean) / std`` with the mean and std of the training phonemes' durations, pauses included.

The silences that open and close an utterance are not learnt (weight 0 in the loss): their length is the
recording's (the teacher corpus draws 150-350 ms at random), not the text's. Synthesis gives them the training
mean (`DurationStatistics.edge_silence_frames`).

Metrics (`evaluate_duration_model`): RMSE in frames (`mlms_keras.evaluation.metrics.duration_rmse_frames`, Merlin's
definition: silence and pause rows excluded) and the Pearson correlation over the same phonemes.

Example:
    >>> stats = compute_duration_statistics("data/prepared")                        # doctest: +SKIP
    >>> model = build_duration_model(duration_config("small", stats.input_dim, 6, 8))  # doctest: +SKIP
    >>> model.compile("adam", "mse")                                                 # doctest: +SKIP
    >>> model.fit(load_duration_dataset("data/prepared", "train", stats), epochs=10)  # doctest: +SKIP
    >>> predict_durations(model, stats, layout.phoneme_features("Hello.", "en-us"), 0, 0, layout)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from mlms_keras.data.manifest import MIN_STD, Manifest, effective_normalisation, is_identity_feature
from mlms_keras.data.records import parse_phoneme_example
from mlms_keras.models.acoustic import MLMSConfig, build_mlms_model

#: Sizes of the duration model's towers (a phoneme needs far less capacity than a 49-dim frame).
DURATION_PRESETS = {
    "small": dict(language_space_dim=3, relu_units=64, lstm_layers=2, lstm_cells=64, lstm_projection=32),
    "tiny": dict(language_space_dim=2, relu_units=8, lstm_layers=1, lstm_cells=8, lstm_projection=4),
}
#: Padded phoneme counts of the training batches (one XLA compilation per shape); a longer utterance is an error.
PHONEME_BUCKETS = (32, 64, 128, 256, 512, 2048)
STATISTICS_FORMAT = "mlms-duration-statistics"
SILENCE_IDENTITIES = ("C_phoneme=sil", "C_phoneme=pau")


def duration_config(preset, phoneme_dim, num_languages, num_speakers, **overrides):
    """An `MLMSConfig` for a duration model: `DURATION_PRESETS[preset]` sizes, one output per phoneme.

    Args:
        preset: "small" (zoo voices) or "tiny" (tests).
        phoneme_dim: D_phone, the phoneme-level feature dimension (`FeatureLayout.dimension`).
        num_languages, num_speakers: table sizes.
        **overrides: any other `MLMSConfig` field.
    """
    if preset not in DURATION_PRESETS:
        raise ValueError(f"Unknown duration preset {preset!r}; choose one of {sorted(DURATION_PRESETS)}")
    values = dict(
        DURATION_PRESETS[preset],
        input_dim=int(phoneme_dim),
        num_languages=int(num_languages),
        num_speakers=int(num_speakers),
        output_dim=1,
    )
    values.update(overrides)
    return MLMSConfig(**values)


def build_duration_model(config, stateful=False, batch_size=None, jit_recurrence="training"):
    """The duration model: `build_mlms_model(config)` named "duration" (see the module docstring).

    Args:
        config: an `MLMSConfig` with `input_dim` = D_phone and `output_dim` = 1 (`duration_config`).
        stateful, batch_size, jit_recurrence: as in `build_mlms_model`.

    Returns:
        A Functional `keras.Model`: inputs `{"linguistic": (batch, phonemes, D_phone) float32 normalised phoneme
        rows, "language": (batch,) int32, "speaker": (batch,) int32}`, output `(batch, phonemes, 1)`:
        normalised durations. All-zero rows are padding.
    """
    if config.output_dim != 1:
        raise ValueError(f"A duration model has output_dim=1 (frames per phoneme); got output_dim={config.output_dim}")
    return build_mlms_model(
        config, stateful=stateful, batch_size=batch_size, jit_recurrence=jit_recurrence, name="duration"
    )


@dataclasses.dataclass
class DurationStatistics:
    """Normalisation of the duration model's inputs and target (train split).

    Attributes:
        input_mean, input_std: (D_phone,) float32; the model sees `(phoneme_features - mean) / std`.
        duration_mean, duration_std: frames; the model's output `y` means `y * std + mean` frames.
        layout_fingerprint: the `FeatureLayout` the features were built with.
        count: training phonemes the statistics come from.
        edge_silence_frames: mean length of the silences that open and close the training utterances; they
            are not learnt (their length is the recording's, not the text's) and synthesis uses this value.
    """

    input_mean: np.ndarray
    input_std: np.ndarray
    duration_mean: float
    duration_std: float
    layout_fingerprint: str
    count: int
    edge_silence_frames: float = 40.0

    @property
    def input_dim(self) -> int:
        """D_phone."""
        return int(self.input_mean.shape[0])

    def normalise_inputs(self, phoneme_features):
        """(..., D_phone) raw phoneme rows -> normalised float32."""
        return ((np.asarray(phoneme_features, np.float32) - self.input_mean) / self.input_std).astype(np.float32)

    def normalise_durations(self, frames):
        """Durations in frames -> the model's target units."""
        return ((np.asarray(frames, np.float32) - self.duration_mean) / self.duration_std).astype(np.float32)

    def denormalise_durations(self, outputs):
        """Model outputs -> durations in frames (float, unrounded)."""
        return np.asarray(outputs, np.float64) * self.duration_std + self.duration_mean

    def to_dict(self) -> dict:
        """JSON-serialisable form; `from_dict` inverts it."""
        return {
            "format": STATISTICS_FORMAT,
            "input_mean": self.input_mean.tolist(),
            "input_std": self.input_std.tolist(),
            "duration_mean": float(self.duration_mean),
            "duration_std": float(self.duration_std),
            "layout_fingerprint": self.layout_fingerprint,
            "count": int(self.count),
            "edge_silence_frames": float(self.edge_silence_frames),
        }

    @classmethod
    def from_dict(cls, data: dict) -> DurationStatistics:
        if not isinstance(data, dict) or data.get("format") != STATISTICS_FORMAT:
            raise ValueError(f"Not duration statistics (expected format {STATISTICS_FORMAT!r})")
        return cls(
            np.asarray(data["input_mean"], np.float32),
            np.asarray(data["input_std"], np.float32),
            float(data["duration_mean"]),
            float(data["duration_std"]),
            str(data["layout_fingerprint"]),
            int(data["count"]),
            float(data.get("edge_silence_frames", 40.0)),
        )


def _phoneme_records(manifest, split, languages=None, speakers=None):
    """tf.data of dicts: phoneme_linguistic (P, D_phone) float32 raw, durations (P,) float32, language, speaker."""
    import tensorflow as tf

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


def compute_duration_statistics(prepared, languages=None) -> DurationStatistics:
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
    split,
    stats,
    batch_size=16,
    *,
    languages=None,
    speakers=None,
    shuffle=None,
    seed=None,
    cache=True,
    repeat=False,
):
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
    import tensorflow as tf

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


def predict_durations(model, stats, phoneme_features, language, speaker, layout):
    """Durations in whole frames for one utterance.

    Args:
        model: a duration model (`build_duration_model`, trained).
        stats: its `DurationStatistics`.
        phoneme_features: (P, D_phone) raw phoneme rows (`FeatureLayout.phoneme_features`), sil/pau included.
        language, speaker: the model's ids.
        layout: the `FeatureLayout` of the rows (to find the opening and closing silences).

    Returns:
        (P,) int64 frames (`frames_from_outputs`).
    """
    features = np.asarray(phoneme_features, np.float32)
    if features.ndim != 2 or features.shape[1] != stats.input_dim:
        raise ValueError(f"phoneme_features must be (phonemes, {stats.input_dim}), got shape {features.shape}")
    inputs = {
        "linguistic": stats.normalise_inputs(features)[None],
        "language": np.array([language], np.int32),
        "speaker": np.array([speaker], np.int32),
    }
    outputs = np.asarray(model(inputs, training=False))[0, :, 0]
    return frames_from_outputs(outputs, stats, edge_silences(features, layout))


def edge_silences(phoneme_features, layout):
    """(P,) bool: the first and last rows when they are silences (their length is set, not predicted)."""
    silent = silence_rows(phoneme_features, layout)
    edges = np.zeros_like(silent)
    edges[[0, -1]] = True
    return silent & edges


def frames_from_outputs(outputs, stats, edge_silence):
    """Duration-model outputs (P,) -> whole frames (P,) int64: rounded, at least 0, edge silences set to
    `stats.edge_silence_frames`, at least one frame in total."""
    frames = np.maximum(np.rint(stats.denormalise_durations(outputs)), 0).astype(np.int64)
    frames[np.asarray(edge_silence, bool)] = int(round(stats.edge_silence_frames))
    if frames.sum() == 0:
        frames[int(np.argmax(outputs))] = 1
    return frames


def silence_rows(phoneme_features, layout):
    """(P,) bool: rows that are sil or pau (from their `C_phoneme=sil|pau` identity, raw or normalised)."""
    columns = [layout.index(name) for name in SILENCE_IDENTITIES]
    return np.asarray(phoneme_features)[:, columns].max(axis=1) > 0.5


def evaluate_duration_model(model, stats, prepared, split="dev", languages=None, speakers=None):
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
    from mlms_keras.evaluation.metrics import duration_rmse_frames

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


def save_duration_statistics(stats, path) -> None:
    """Write `stats` as JSON atomically."""
    from mlms_keras.utils.fileio import atomic_write_text

    atomic_write_text(path, json.dumps(stats.to_dict()))


def load_duration_statistics(path) -> DurationStatistics:
    """Read statistics written by `save_duration_statistics`; errors name the file."""
    try:
        with open(path, encoding="utf-8") as file:
            return DurationStatistics.from_dict(json.load(file))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no duration statistics file") from None
    except (ValueError, KeyError) as error:
        raise ValueError(f"{path}: not valid duration statistics ({error})") from error


DURATION_MODEL_NAME = "duration.keras"
DURATION_STATISTICS_NAME = "duration_statistics.json"
DURATION_RUN_NAME = "duration.json"


def train_duration_on_prepared(
    prepared,
    out_dir,
    preset="small",
    epochs=20,
    batch_size=16,
    learning_rate=1e-3,
    patience=4,
    adapt_languages=(),
    variant="v3",
    epochs_per_phase=5,
    seed=0,
    verbose="auto",
):
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

    Writes into `out_dir`: ``duration.keras``, ``duration_statistics.json`` and ``duration.json`` (tables,
    metrics, history, settings, seconds spent).

    Args:
        prepared: prepared dataset folder (`mlms prepare`).
        out_dir: output folder.
        preset: `DURATION_PRESETS` key.
        epochs, batch_size, learning_rate, patience: base training.
        adapt_languages: adaptation language codes, each with exactly one speaker in the dataset.
        variant, epochs_per_phase: adaptation settings (`mlms_keras.training.adaptation.adaptation_phases`).
        seed: seeds the initialisation and shuffling.
        verbose: passed to `fit`.

    Returns:
        The `duration.json` dict.
    """
    import time
    from pathlib import Path

    import keras

    from mlms_keras.languages import TRAINING
    from mlms_keras.training.adaptation import adapt, closest_speaker
    from mlms_keras.utils.fileio import atomic_write_text

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
        if roles.get(code, TRAINING) == TRAINING and code not in adapt_languages
    ]
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
        callbacks=[keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)],
    )
    record = {
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
            variant=variant,
            epochs_per_phase=epochs_per_phase,
            copy_speaker_from=distance.speaker,
            optimizer=keras.optimizers.Adam(learning_rate),
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
    from mlms_keras.training.fit import save_model_atomically

    save_model_atomically(model, out_dir / DURATION_MODEL_NAME)
    atomic_write_text(out_dir / DURATION_RUN_NAME, json.dumps(record, indent=1, default=float))
    return record
