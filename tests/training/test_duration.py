"""The phoneme duration model: statistics, batches, training, adaptation and metrics on a real prepared corpus."""

import json

import keras
import numpy as np
import pytest

from mlms_keras.data.manifest import Manifest
from mlms_keras.data.pipeline import read_utterances
from mlms_keras.models.duration import (
    DurationStatistics,
    build_duration_model,
    duration_config,
    load_duration_statistics,
    predict_durations,
    save_duration_statistics,
    silence_rows,
)
from mlms_keras.training.duration import (
    PHONEME_BUCKETS,
    compute_duration_statistics,
    evaluate_duration_model,
    load_duration_dataset,
    train_duration_on_prepared,
)


@pytest.fixture(scope="module")
def prepared(prepared_corpus):
    """All ten speakers of the tiny corpus (46 utterances, 8 languages)."""
    return prepared_corpus(utterances_per_shard=16)


@pytest.fixture(scope="module")
def records(prepared):
    return list(read_utterances(prepared))


def test_padded_phonemes_get_zero_output_and_do_not_change_real_ones():
    keras.utils.set_random_seed(0)
    model = build_duration_model(duration_config("tiny", phoneme_dim=6, num_languages=2, num_speakers=3))
    rows = np.random.default_rng(0).normal(size=(1, 5, 6)).astype("float32")
    padded = np.concatenate([rows, np.zeros((1, 3, 6), "float32")], axis=1)
    ids = {"language": np.array([1], "int32"), "speaker": np.array([2], "int32")}
    short = np.asarray(model(dict(ids, linguistic=rows)))
    long = np.asarray(model(dict(ids, linguistic=padded)))
    assert long.shape == (1, 8, 1)
    np.testing.assert_allclose(long[:, :5], short, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(long[:, 5:], 0.0)


def test_statistics_equal_numpy_over_the_train_split(prepared, records):
    manifest = Manifest.load(prepared)
    stats = compute_duration_statistics(prepared)
    train = [r for r in records if manifest.utterances[r["utterance_id"]]["split"] == "train"]
    features = np.concatenate([r["phoneme_linguistic"] for r in train]).astype(np.float64)
    durations = np.concatenate([r["durations"][1:-1] for r in train]).astype(np.float64)
    edges = np.concatenate([r["durations"][[0, -1]] for r in train]).astype(np.float64)  # all sil in the teacher corpus
    assert stats.count == features.shape[0]
    assert stats.duration_mean == pytest.approx(durations.mean())
    assert stats.duration_std == pytest.approx(durations.std())
    assert stats.edge_silence_frames == pytest.approx(edges.mean())
    names = manifest.layout.feature_names
    identity = np.array(["_phoneme=" in name for name in names])
    np.testing.assert_array_equal(stats.input_mean[identity], 0.0)
    np.testing.assert_array_equal(stats.input_std[identity], 1.0)
    varying = ~identity & (features.std(axis=0) > 1e-3)
    np.testing.assert_allclose(stats.input_mean[varying], features.mean(axis=0)[varying], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stats.input_std[varying], features.std(axis=0)[varying], rtol=1e-4)


def test_batches_are_normalised_records_padded_to_a_bucket(prepared, records):
    manifest = Manifest.load(prepared)
    stats = compute_duration_statistics(prepared)
    dev = {r["utterance_id"]: r for r in records if manifest.utterances[r["utterance_id"]]["split"] == "dev"}
    batches = list(load_duration_dataset(prepared, "dev", stats, batch_size=64, shuffle=False))
    seen = 0
    for inputs, targets, weights in batches:
        linguistic, targets, weights = np.asarray(inputs["linguistic"]), np.asarray(targets), np.asarray(weights)
        assert linguistic.shape[1] in PHONEME_BUCKETS
        for row in range(linguistic.shape[0]):
            real = np.any(linguistic[row] != 0.0, axis=1)
            length = int(real.sum())
            assert real[:length].all() and not real[length:].any()  # padding only at the end
            matches = [
                r
                for r in dev.values()
                if r["durations"].shape[0] == length
                and np.allclose(stats.normalise_inputs(r["phoneme_linguistic"]), linguistic[row, :length], atol=1e-5)
            ]
            assert len(matches) == 1
            expected = (matches[0]["durations"] - stats.duration_mean) / stats.duration_std
            np.testing.assert_allclose(targets[row, :length, 0], expected, rtol=1e-5, atol=1e-5)
            np.testing.assert_array_equal(targets[row, length:], 0.0)
            expected_weights = np.r_[0.0, np.ones(length - 2), 0.0, np.zeros(linguistic.shape[1] - length)]
            np.testing.assert_array_equal(weights[row], expected_weights)  # edge silences and padding weigh 0
            seen += 1
    assert seen == len(dev)


def test_silence_rows_are_the_sil_and_pau_phonemes(prepared, records):
    layout = Manifest.load(prepared).layout
    record = records[0]
    rows = silence_rows(record["phoneme_linguistic"], layout)
    assert rows[0] and rows[-1]  # every teacher utterance starts and ends with silence
    symbol_columns = {
        name.split("=", 1)[1]: i for i, name in enumerate(layout.feature_names) if name.startswith("C_phoneme=")
    }
    symbols = [next(s for s, i in symbol_columns.items() if row[i] == 1.0) for row in record["phoneme_linguistic"]]
    assert list(rows) == [symbol in ("sil", "pau") for symbol in symbols]


@pytest.mark.slow
def test_training_and_adaptation_beat_the_mean_and_keep_the_dataset_ids(prepared, tmp_path):
    manifest = Manifest.load(prepared)
    record = train_duration_on_prepared(
        prepared,
        tmp_path / "duration",
        preset="tiny",
        epochs=40,
        patience=40,
        batch_size=8,
        learning_rate=3e-3,
        adapt_languages=["pl", "pt-br"],
        variant="v2",
        epochs_per_phase=2,
        verbose=0,
    )
    assert record["languages"] == sorted(manifest.languages, key=manifest.languages.get)
    assert record["speakers"] == sorted(manifest.speakers, key=lambda s: manifest.speakers[s]["id"])
    model = keras.models.load_model(tmp_path / "duration" / "duration.keras")
    assert model.get_layer("towers").num_languages == 8 and model.get_layer("acoustic").num_speakers == 10
    # The baseline that needs no model: every phoneme gets the train-split mean duration of speech phonemes.
    stats = compute_duration_statistics(prepared)
    speech_durations = {"train": [], "dev": []}
    for r in read_utterances(prepared):
        speech = ~silence_rows(r["phoneme_linguistic"], manifest.layout)
        speech_durations[manifest.utterances[r["utterance_id"]]["split"]].append(r["durations"][speech])
    train_reference = np.concatenate(speech_durations["train"])
    mean_rmse = np.sqrt(np.mean((train_reference - train_reference.mean()) ** 2))
    dev = evaluate_duration_model(model, stats, prepared, "dev")
    for key in ("duration_rmse_frames", "duration_corr", "phonemes"):
        assert dev[key] == pytest.approx(record["dev_metrics"][key])
    assert dev["phonemes"] == np.concatenate(speech_durations["dev"]).size
    assert set(dev["per_language"]) == set(manifest.languages)
    train = evaluate_duration_model(model, stats, prepared, "train")
    assert train["duration_rmse_frames"] < 0.6 * mean_rmse  # it learnt the training data
    assert dev["duration_corr"] > 0.2  # and generalises a little from 36 utterances


def test_predicted_durations_are_whole_frames_with_fixed_edge_silences(prepared, records):
    keras.utils.set_random_seed(1)
    layout = Manifest.load(prepared).layout
    rows = records[0]["phoneme_linguistic"]
    model = build_duration_model(duration_config("tiny", phoneme_dim=layout.dimension, num_languages=1, num_speakers=1))
    stats = DurationStatistics(
        np.zeros(layout.dimension, "float32"),
        np.full(layout.dimension, 0.1, "float32"),
        duration_mean=2.0,
        duration_std=5.0,
        layout_fingerprint=layout.fingerprint,
        count=1,
        edge_silence_frames=37.4,
    )
    frames = predict_durations(model, stats, rows, 0, 0, layout)
    raw = (
        np.asarray(
            model(
                {
                    "linguistic": (rows / 0.1)[None].astype("float32"),
                    "language": np.zeros(1, "int32"),
                    "speaker": np.zeros(1, "int32"),
                }
            )
        )[0, :, 0]
        * 5.0
        + 2.0
    )
    assert frames.dtype == np.int64 and frames.shape == (rows.shape[0],)
    assert frames[0] == frames[-1] == 32  # teacher utterances open and close with silence
    np.testing.assert_array_equal(frames[1:-1], np.maximum(np.rint(raw[1:-1]), 0))
    with pytest.raises(ValueError, match="phoneme_features must be"):
        predict_durations(model, stats, rows[:, :3], 0, 0, layout)


def test_statistics_files_round_trip_and_old_unversioned_files_still_load(tmp_path):
    stats = DurationStatistics(
        np.array([0.5, -1.0], "float32"),
        np.array([2.0, 0.25], "float32"),
        duration_mean=9.5,
        duration_std=3.25,
        layout_fingerprint="abc123",
        count=42,
        edge_silence_frames=31.5,
    )
    path = tmp_path / "duration_statistics.json"
    save_duration_statistics(stats, path)
    written = json.loads(path.read_text())
    assert (written["format"], written["format_version"]) == ("mlms-duration-statistics", 1)
    loaded = load_duration_statistics(path)
    np.testing.assert_array_equal(loaded.input_mean, stats.input_mean)
    np.testing.assert_array_equal(loaded.input_std, stats.input_std)
    assert (loaded.duration_mean, loaded.duration_std, loaded.count, loaded.edge_silence_frames) == (
        9.5,
        3.25,
        42,
        31.5,
    )
    # A file written before the format had a version (as `json.dumps(stats.to_dict())` wrote it) still loads.
    old = tmp_path / "old.json"
    old.write_text(json.dumps(stats.to_dict()))
    assert load_duration_statistics(old).layout_fingerprint == "abc123"
    later = tmp_path / "later.json"
    later.write_text(json.dumps(dict(written, format_version=2)))
    with pytest.raises(ValueError, match="format_version 2 is not supported"):
        load_duration_statistics(later)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "something-else", "format_version": 1}))
    with pytest.raises(ValueError, match="not a duration-statistics file"):
        load_duration_statistics(other)
