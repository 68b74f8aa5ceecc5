"""`load_dataset` on a real prepared tiny teacher corpus: normalisation, padding, masks, buckets, chunks, filters."""

import numpy as np
import pytest
from model_testing import tiny_model

from mlms_keras.data import Manifest, PipelineOptions, load_dataset, read_utterances
from mlms_keras.data.readers import read_corpus
from mlms_keras.evaluation import metrics
from mlms_keras.frontend.labels import read_hts_labels, segments_to_frames

# `corpus` and `prepared` (a tiny 3-speaker teacher corpus, prepared) come from conftest.py.


@pytest.fixture(scope="module")
def manifest(prepared):
    return Manifest.load(prepared)


def _numpy(dataset):
    return [
        tuple({k: v.numpy() for k, v in part.items()} if isinstance(part, dict) else part.numpy() for part in element)
        for element in dataset
    ]


def _tiny_model(manifest, seed=0):
    import keras

    model = tiny_model(
        seed, input_dim=manifest.input_dim, num_languages=manifest.num_languages, num_speakers=manifest.num_speakers
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return model


def test_batches_hold_normalised_utterances_then_all_zero_padding(prepared, manifest):
    raw = list(read_utterances(prepared, "train"))  # shard order = the unshuffled pipeline's order
    batches = _numpy(load_dataset(prepared, "train", 1, shuffle=False, frame_mask="padding"))
    assert len(batches) == len(raw) == 12 and len(manifest.shard_paths("train")) == 4
    for record, (inputs, acoustic, mask) in zip(raw, batches):
        frames = record["num_frames"]
        expected_inputs = (record["linguistic"] - manifest.input_mean) / manifest.input_std
        expected_outputs = (record["acoustic"] - manifest.output_mean) / manifest.output_std
        np.testing.assert_allclose(inputs["linguistic"][0, :frames], expected_inputs, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(acoustic[0, :frames], expected_outputs, rtol=1e-6, atol=1e-6)
        assert np.all(inputs["linguistic"][0, frames:] == 0.0) and np.all(acoustic[0, frames:] == 0.0)
        assert mask[0].tolist() == [1.0] * frames + [0.0] * (mask.shape[1] - frames)
        assert inputs["language"].tolist() == [record["language"]] and inputs["speaker"].tolist() == [record["speaker"]]
        assert inputs["language"].dtype == np.int32 and inputs["linguistic"].dtype == np.float32
        np.testing.assert_allclose(
            manifest.denormalise_outputs(acoustic[0, :frames]), record["acoustic"], rtol=1e-5, atol=1e-4
        )


def test_masks_mark_exactly_the_real_frames_and_real_frames_are_never_all_zero(prepared, manifest):
    total = 0
    shapes = set()
    for inputs, _, mask in _numpy(load_dataset(prepared, "train", 4, seed=0, frame_mask="padding")):
        nonzero_rows = np.abs(inputs["linguistic"]).max(axis=-1) > 0
        np.testing.assert_array_equal(nonzero_rows, mask > 0)  # the Masking layer sees exactly the real frames
        total += int(mask.sum())
        shapes.add(inputs["linguistic"].shape[1])
    assert total == manifest.num_frames("train")
    lengths = [manifest.utterances[u]["frames"] for u in manifest.utterance_ids("train")]
    boundaries = sorted(
        {int(np.ceil(q / 16) * 16) for q in np.quantile(lengths, [0.25, 0.5, 0.75, 1], method="higher")}
    )
    assert shapes <= set(boundaries) and len(boundaries) <= 4  # few shapes: the model compiles one per shape


def test_explicit_bucket_boundaries_and_dropped_partial_batches(prepared, manifest):
    lengths = sorted(manifest.utterances[u]["frames"] for u in manifest.utterance_ids("train"))
    boundaries = (lengths[5], lengths[-1] + 3)
    counts = [sum(n <= boundaries[0] for n in lengths), sum(n > boundaries[0] for n in lengths)]

    def shapes(options):
        batches = _numpy(load_dataset(prepared, "train", 4, shuffle=False, options=options))
        return sorted(inputs["linguistic"].shape[:2] for inputs, _ in batches)

    # Batches of 4 per bucket, padded to its boundary; each bucket's rest is one partial batch unless dropped.
    full = sorted((4, boundary) for boundary, count in zip(boundaries, counts) for _ in range(count // 4))
    partial = sorted((count % 4, boundary) for boundary, count in zip(boundaries, counts) if count % 4)
    assert partial and shapes(PipelineOptions(bucket_boundaries=boundaries)) == sorted(full + partial)
    assert shapes(PipelineOptions(bucket_boundaries=boundaries, drop_remainder=True)) == full
    with pytest.raises(ValueError, match="bucket_boundaries.*more than the last boundary"):
        load_dataset(prepared, "train", 4, options=PipelineOptions(bucket_boundaries=(lengths[-1] - 1,)))


def test_speech_mask_drops_the_aligned_silences(corpus, prepared, manifest):
    items = {item.utterance_id: item for item in read_corpus(corpus)}
    raw = list(read_utterances(prepared, "dev"))
    batches = _numpy(load_dataset(prepared, "dev", 1, shuffle=False, frame_mask="speech"))
    for record, (_, _, mask) in zip(raw, batches):
        frames = record["num_frames"]
        segments = segments_to_frames(read_hts_labels(items[record["utterance_id"]].alignment_path))
        expected = metrics.frame_mask_from_segments(segments, frames)  # the metrics module's own rule
        np.testing.assert_array_equal(mask[0, :frames] > 0, expected)
        assert 0 < expected.sum() < frames


def test_padded_batch_loss_equals_the_loss_of_the_unpadded_utterances(prepared, manifest):
    model = _tiny_model(manifest)
    inputs, acoustic, mask = _numpy(load_dataset(prepared, "train", 4, shuffle=False, frame_mask="padding"))[0]
    lengths = mask.sum(axis=1).astype(int)
    assert len(set(lengths)) > 1  # rows of different lengths: some are padded
    padded_loss = model.evaluate(inputs, acoustic, batch_size=len(lengths), verbose=0)
    squared, count = 0.0, 0
    for row, frames in enumerate(lengths):
        alone = {
            "linguistic": inputs["linguistic"][row : row + 1, :frames],
            "language": inputs["language"][row : row + 1],
            "speaker": inputs["speaker"][row : row + 1],
        }
        predicted = model.predict_on_batch(alone)[0]
        squared += float(((predicted - acoustic[row, :frames]) ** 2).sum())
        count += frames * acoustic.shape[-1]
    assert padded_loss == pytest.approx(squared / count, rel=1e-4)


def test_model_fit_takes_load_dataset_output_directly(prepared, manifest):
    model = _tiny_model(manifest)
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(load_dataset(prepared, "train", 4, seed=0), epochs=1, steps_per_epoch=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_seeded_runs_are_deterministic(prepared):
    def signature(seed, **options):
        return [
            (inputs["language"].tolist(), inputs["speaker"].tolist(), inputs["linguistic"].shape, float(acoustic.sum()))
            for inputs, acoustic in _numpy(load_dataset(prepared, "train", 4, seed=seed, **options))
        ]

    first = signature(7)
    assert first == signature(7)
    assert first != signature(8)  # the seed matters (fixed seeds: not a chance outcome)
    assert signature(7, chunk_frames=64) == signature(7, chunk_frames=64)
    balanced = PipelineOptions(balance_languages=True)
    draws = [
        _numpy(load_dataset(prepared, "train", 4, seed=7, options=balanced).take(5)),
        _numpy(load_dataset(prepared, "train", 4, seed=7, options=balanced).take(5)),
    ]
    for a, b in zip(*draws):
        np.testing.assert_array_equal(a[1], b[1])


def test_language_and_speaker_filters(prepared, manifest):
    french = _numpy(load_dataset(prepared, "train", 2, languages=["fr"], shuffle=False))
    assert {int(v) for inputs, _ in french for v in inputs["language"]} == {manifest.language_id("fr")}
    assert sum(len(inputs["language"]) for inputs, _ in french) == 4
    male = _numpy(load_dataset(prepared, "train", 2, speakers=["en-us-male"], shuffle=False))
    assert {int(v) for inputs, _ in male for v in inputs["speaker"]} == {manifest.speaker_id("en-us-male")}
    with pytest.raises(ValueError, match="'xx'.*languages"):
        load_dataset(prepared, "train", 2, languages=["xx"])


def test_balanced_sampling_draws_languages_equally(prepared, manifest):
    def french_share(**options):
        dataset = load_dataset(prepared, "train", 4, seed=3, repeat=True, **options)
        languages = np.concatenate([inputs["language"] for inputs, _ in _numpy(dataset.take(60))])
        return float(np.mean(languages == manifest.language_id("fr")))

    assert french_share() == pytest.approx(4 / 12, abs=0.08)  # the data's share: 4 of 12 utterances
    assert french_share(options=PipelineOptions(balance_languages=True)) == pytest.approx(0.5, abs=0.08)


def test_truncated_bptt_chunks_cover_each_utterance_in_order(prepared, manifest):
    raw = list(read_utterances(prepared, "dev"))
    chunks = _numpy(load_dataset(prepared, "dev", 1, shuffle=False, chunk_frames=64, frame_mask="padding"))
    assert {inputs["linguistic"].shape for inputs, _, _ in chunks} == {(1, 64, manifest.input_dim)}
    position = 0
    for record in raw:
        expected = (record["linguistic"] - manifest.input_mean) / manifest.input_std
        count = int(np.ceil(record["num_frames"] / 64))
        pieces = chunks[position : position + count]
        position += count
        joined = np.concatenate([inputs["linguistic"][0][mask[0] > 0] for inputs, _, mask in pieces])
        np.testing.assert_allclose(joined, expected, rtol=1e-6, atol=1e-6)
        assert all(np.all(inputs["linguistic"][0][mask[0] == 0] == 0) for inputs, _, mask in pieces)
    assert position == len(chunks)


def test_worker_shards_partition_the_split(prepared, manifest):
    def frames(**options):
        return sum(
            int(m.sum())
            for _, _, m in _numpy(load_dataset(prepared, "train", 4, frame_mask="padding", shuffle=False, **options))
        )

    assert frames(shard=(0, 2)) + frames(shard=(1, 2)) == manifest.num_frames("train")
    assert 0 < frames(shard=(0, 2)) < manifest.num_frames("train")
    with pytest.raises(ValueError, match="shard"):
        load_dataset(prepared, "train", 4, shard=(0, 9))


def test_auto_cache_keeps_a_small_selection_in_memory_and_leaves_a_big_one_on_disk(prepared, tmp_path, monkeypatch):
    import shutil

    from mlms_keras.data import pipeline

    copy = tmp_path / "prepared"
    shutil.copytree(prepared, copy)
    small = load_dataset(copy, "train", 2, speakers=["fr-female"], shuffle=False, cache="auto")
    monkeypatch.setattr(pipeline, "AUTO_CACHE_BYTES", 0)  # now nothing is small enough
    uncached = load_dataset(copy, "train", 2, speakers=["fr-female"], shuffle=False, cache="auto")
    first = [_flat(b) for b in _numpy(small)]
    assert first == [_flat(b) for b in _numpy(load_dataset(copy, "train", 2, speakers=["fr-female"], shuffle=False))]
    for shard in (copy / "shards").glob("train-*"):
        shard.unlink()
    # The second pass of the cached dataset needs no file; the uncached one reads the (now missing) shards.
    assert [_flat(b) for b in _numpy(small)] == first
    with pytest.raises(Exception, match="train-"):
        _numpy(uncached)
    with pytest.raises(ValueError, match="cache"):
        load_dataset(copy, "dev", 2, cache="sometimes")


def _flat(batch):
    inputs, acoustic = batch
    return (inputs["linguistic"].tobytes(), acoustic.tobytes())
