"""`mlms prepare` on a real tiny teacher corpus (espeak-ng speech, WORLD dio analysis)."""

import json
import shutil
import zlib

import numpy as np
import pytest
import soundfile

# `corpus` and `prepared` (a tiny teacher corpus of these speakers, prepared) come from conftest.py.
from corpus_testing import TINY_CORPUS_SPEAKERS as SPEAKERS  # noqa: E402

from mlms_keras import vocoder
from mlms_keras.cli import main as mlms_main
from mlms_keras.data.manifest import MIN_STD, Manifest, is_identity_feature
from mlms_keras.data.pipeline import read_utterances
from mlms_keras.data.prepare import (
    FrameCountMismatchError,
    PrepareOptions,
    extract_utterance,
    fit_durations_to_frames,
    prepare_dataset,
)
from mlms_keras.data.readers import read_corpus
from mlms_keras.frontend import linguistic
from mlms_keras.vocoder import audio


def _records(folder, split=None):
    return {record["utterance_id"]: record for record in read_utterances(folder, split)}


def test_fit_durations_follows_the_documented_rule():
    # Hand-computed: a shortfall goes to the last phoneme, an excess comes off the last phonemes backwards,
    # frames before the first segment join the first phoneme.
    assert fit_durations_to_frames([3, 5, 2], 0, 11).tolist() == [3, 5, 3]
    assert fit_durations_to_frames([3, 5, 2], 0, 9).tolist() == [3, 5, 1]
    assert fit_durations_to_frames([3, 5, 2], 0, 7).tolist() == [3, 4, 0]
    assert fit_durations_to_frames([3, 5, 2], 1, 11).tolist() == [4, 5, 2]
    assert fit_durations_to_frames([3, 5, 2], 0, 15, max_frame_mismatch=5).tolist() == [3, 5, 7]
    with pytest.raises(FrameCountMismatchError, match=r"utt-7.*gives 16; .*move 6 frames.*max_frame_mismatch=5"):
        fit_durations_to_frames([3, 5, 2], 0, 16, max_frame_mismatch=5, name="utt-7")


@pytest.mark.parametrize("verb", [["prepare"], ["corpus", "build"]])
def test_help_of_the_data_verbs_loads_no_tensorflow(verb):
    import subprocess
    import sys

    code = (
        "import sys\nfrom mlms_keras.cli import main\ntry:\n"
        f"    main({verb + ['--help']!r})\nexcept SystemExit:\n    pass\nprint('tensorflow' in sys.modules)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert f"usage: mlms {' '.join(verb)}" in output and output.strip().endswith("False")


def test_records_hold_world_frames_and_aligned_linguistic_frames(corpus, prepared):
    records = _records(prepared)
    manifest = Manifest.load(prepared)
    speakers = manifest.speakers
    for item in list(read_corpus(corpus))[:3]:
        record = records[item.utterance_id]
        wave, sample_rate = audio.load(item.wav_path)
        speaker = speakers[item.speaker]
        # Independent expectation: the vocoder run directly with the speaker's corpus.json F0 range.
        expected_acoustic = vocoder.analyze(
            wave, sample_rate, f0_method="dio", f0_floor=speaker["f0_floor_hz"], f0_ceil=speaker["f0_ceil_hz"]
        ).to_vector()
        np.testing.assert_array_equal(record["acoustic"], expected_acoustic)
        assert record["num_frames"] == vocoder.num_frames_for(len(wave), sample_rate) == record["linguistic"].shape[0]
        aligned = linguistic.features_for_label_file(item.text, item.language, item.alignment_path, manifest.layout)
        # The alignment ends at the wav's last sample: the rule moves at most one frame, onto the final silence.
        assert 0 <= record["num_frames"] - aligned.durations_frames.sum() <= 1
        assert record["durations"][:-1].tolist() == aligned.durations_frames[:-1].tolist()
        assert aligned.symbols[-1] == "sil"
        np.testing.assert_array_equal(record["phoneme_linguistic"], aligned.phoneme_features)
        expected_frames = linguistic.expand_to_frames(aligned.phoneme_features, record["durations"])
        np.testing.assert_array_equal(record["linguistic"], expected_frames)
        assert manifest.languages[record["language_code"]] == record["language"]
        assert speakers[record["speaker_name"]]["id"] == record["speaker"]


def test_shards_round_trip_exactly(corpus, prepared):
    manifest = Manifest.load(prepared)
    items = {item.utterance_id: item for item in read_corpus(corpus)}
    for utterance_id, record in list(_records(prepared, "dev").items())[:2]:
        item = items[utterance_id]
        speaker = manifest.speakers[item.speaker]
        written = extract_utterance(item, manifest.layout, (speaker["f0_floor_hz"], speaker["f0_ceil_hz"]), "dio")
        for field in ("linguistic", "acoustic", "phoneme_linguistic", "durations"):
            np.testing.assert_array_equal(record[field], getattr(written, field), err_msg=field)
        assert record["linguistic"].dtype == np.float32 and record["acoustic"].dtype == np.float32


def test_statistics_match_numpy_on_the_train_split_only(prepared):
    manifest = Manifest.load(prepared)
    train = list(_records(prepared, "train").values())
    dev = list(_records(prepared, "dev").values())
    inputs = np.concatenate([r["linguistic"] for r in train]).astype(np.float64)
    outputs = np.concatenate([r["acoustic"] for r in train]).astype(np.float64)
    stats = manifest.data["normalisation"]
    for key, frames in (("inputs", inputs), ("outputs", outputs)):
        np.testing.assert_allclose(stats[key]["raw_mean"], frames.mean(axis=0), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(stats[key]["raw_std"], frames.std(axis=0), rtol=1e-7, atol=1e-9)
        assert stats[key]["frames"] == frames.shape[0] == manifest.num_frames("train")
    # Including dev would change the statistics, so "train only" is a real property here.
    all_outputs = np.concatenate([outputs] + [r["acoustic"] for r in dev])
    assert not np.allclose(all_outputs.mean(axis=0), stats["outputs"]["raw_mean"])
    # Effective normalisation: identity one-hots and V/UV unnormalised, near-constant dims only centred.
    identity = np.array([is_identity_feature(name) for name in manifest.layout.frame_feature_names])
    assert identity.sum() > 0 and not identity[-4:].any()
    np.testing.assert_array_equal(manifest.input_mean[identity], 0.0)
    np.testing.assert_array_equal(manifest.input_std[identity], 1.0)
    assert manifest.output_mean[vocoder.VUV] == 0.0 and manifest.output_std[vocoder.VUV] == 1.0
    others = ~identity & (inputs.std(axis=0) >= MIN_STD)
    np.testing.assert_allclose(manifest.input_std[others], inputs.std(axis=0)[others], rtol=1e-6)
    np.testing.assert_allclose(manifest.input_mean[others], inputs.mean(axis=0)[others], rtol=1e-6, atol=1e-7)
    constant = ~identity & (inputs.std(axis=0) < MIN_STD)
    np.testing.assert_array_equal(manifest.input_std[constant], 1.0)
    keep = np.arange(49) != vocoder.VUV
    np.testing.assert_allclose(manifest.output_std[keep], outputs.std(axis=0)[keep], rtol=1e-6)


def test_splits_are_disjoint_and_follow_the_corpus(corpus, prepared):
    manifest = Manifest.load(prepared)
    index = json.loads((corpus / "corpus.json").read_text())
    train, dev = set(manifest.utterance_ids("train")), set(manifest.utterance_ids("dev"))
    assert not train & dev
    assert train == set(index["splits"]["train"]) and dev == set(index["splits"]["dev"])
    assert {manifest.utterances[u]["speaker"] for u in dev} == set(SPEAKERS)  # dev per speaker
    assert manifest.languages == {"en-us": 0, "fr": 1}  # corpus.json order, training languages first
    assert [manifest.speakers[name]["id"] for name in SPEAKERS] == [0, 1, 2]
    for entry in index["speakers"]:
        speaker = manifest.speakers[entry["id"]]
        assert (speaker["f0_floor_hz"], speaker["f0_ceil_hz"]) == (entry["f0_floor_hz"], entry["f0_ceil_hz"])
    # Deterministic shard assignment: sorted ids dealt round-robin over ceil(12 / 3) = 4 train shards.
    ordered = sorted(train)
    for position, utterance_id in enumerate(ordered):
        assert manifest.utterances[utterance_id]["shard"] == f"train-{position % 4:05d}-of-00004.tfrecord.gz"
    assert manifest.input_dim == manifest.layout.frame_dimension
    assert (prepared / "feature_layout.json").is_file()


@pytest.mark.slow
def test_resumed_run_gives_the_same_dataset_as_an_uninterrupted_one(corpus, prepared, tmp_path):
    out = tmp_path / "resumed"
    first = prepare_dataset(
        corpus,
        out,
        workers=1,
        f0_method="dio",
        utterances_per_shard=3,
        progress=False,
        options=PrepareOptions(max_shards=2),
    )
    assert not first.complete and first.shards_written == 2
    assert not (out / "dataset.json").exists()
    stale = out / "shards" / ".train-00003-of-00004.tfrecord.gz.tmp"
    stale.write_bytes(b"half-written shard of a killed run")
    # The rest on 2 worker processes: the result must not depend on workers or on the interruption.
    second = prepare_dataset(corpus, out, workers=2, f0_method="dio", utterances_per_shard=3, progress=False)
    assert second.complete and second.shards_reused == 2 and second.shards_written == 3
    assert not stale.exists()
    expected, resumed = _records(prepared), _records(out)
    assert sorted(expected) == sorted(resumed)
    for utterance_id, record in expected.items():
        for field in ("linguistic", "acoustic", "durations", "language", "speaker"):
            np.testing.assert_array_equal(resumed[utterance_id][field], record[field])
    a, b = Manifest.load(prepared).data, Manifest.load(out).data
    for key in ("normalisation", "splits", "utterances", "languages", "speakers", "input_dim"):
        assert a[key] == b[key], key
    third = prepare_dataset(corpus, out, workers=1, f0_method="dio", utterances_per_shard=3, progress=False)
    assert third.shards_written == 0 and third.shards_reused == 5


@pytest.mark.slow
def test_corrupt_wav_and_unparsable_label_are_skipped_and_reported(corpus, prepared, tmp_path, capsys):
    copy = tmp_path / "corpus"
    shutil.copytree(corpus, copy)
    (copy / "corpus.json").unlink()  # no splits, genders or F0 ranges: the fallbacks run too
    broken_wav = copy / "wavs" / "en-us-male-train-00002.wav"
    data = broken_wav.read_bytes()
    broken_wav.write_bytes(data[: len(data) // 2])  # truncated: the header promises more samples
    broken_label = copy / "labels" / "fr-female-train-00001.lab"
    broken_label.write_text("0 50000 sil\nthis is not a label line\n")
    out = tmp_path / "prepared"
    code = mlms_main(["prepare", str(copy), str(out), "--workers", "1", "--f0-method", "dio", "--quiet"])
    assert code == 1  # finished, with skipped items
    err = capsys.readouterr().err
    assert str(broken_wav) in err and str(broken_label) in err
    manifest = Manifest.load(out)
    skipped = {entry["id"]: entry for entry in manifest.skipped}
    assert set(skipped) == {"en-us-male-train-00002", "fr-female-train-00001"}
    assert "truncated" in skipped["en-us-male-train-00002"]["reason"]
    assert str(broken_label) in skipped["fr-female-train-00001"]["reason"]
    assert len(manifest.utterances) == 13
    assert manifest.data["command"].startswith(f"mlms prepare {copy} {out} --f0-method dio")
    assert soundfile.info(str(corpus / "wavs" / "en-us-male-train-00002.wav")).frames > 0  # original untouched
    # Without corpus.json: dev = 1 utterance per speaker of 5 (5 %, at least 1), F0 ranges estimated per speaker.
    ids_by_speaker = {}
    for item in read_corpus(copy):
        ids_by_speaker.setdefault(item.speaker, []).append(item.utterance_id)
    expected_dev = {min(ids, key=lambda u: (zlib.crc32(u.encode()), u)) for ids in ids_by_speaker.values()}
    assert set(manifest.utterance_ids("dev")) == expected_dev - set(skipped)  # a skipped dev item stays out
    reference = Manifest.load(prepared)
    for name in SPEAKERS:
        speaker = manifest.speakers[name]
        assert speaker["f0_range_source"].startswith("estimated from")
        voiced = np.concatenate(
            [
                np.exp(r["acoustic"][r["acoustic"][:, vocoder.VUV] > 0.5, vocoder.LF0])
                for r in read_utterances(prepared)
                if r["speaker_name"] == name
            ]
        )
        # Invariant: the estimated range holds the speaker's typical pitch (measured with corpus.json's range).
        assert speaker["f0_floor_hz"] < np.percentile(voiced, 10) and np.percentile(voiced, 90) < speaker["f0_ceil_hz"]
        assert reference.speakers[name]["f0_range_source"] == "corpus.json"


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_dataset(corpus, prepared, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "mlms_keras.cli",
        "prepare",
        str(corpus),
        str(out),
        "--workers",
        "1",
        "--f0-method",
        "dio",
        "--utterances-per-shard",
        "1",
        "--quiet",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while len(list((out / "shards").glob("*.json"))) < 2 and process.poll() is None:
            assert time.monotonic() < deadline, "mlms prepare made no progress"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    finished = len(list((out / "shards").glob("*.json")))
    assert 2 <= finished < 15 and not (out / "dataset.json").exists()  # really interrupted mid-run
    report = prepare_dataset(corpus, out, workers=1, f0_method="dio", utterances_per_shard=1, progress=False)
    assert report.complete and report.shards_reused == finished and report.shards_written == 15 - finished
    expected, resumed = _records(prepared), _records(out)
    assert sorted(expected) == sorted(resumed)
    for utterance_id, record in expected.items():
        for field in ("linguistic", "acoustic", "durations"):
            np.testing.assert_array_equal(resumed[utterance_id][field], record[field])
    # Other shard sizes group the moments differently: equal up to float64 rounding.
    resumed_stats = Manifest.load(out).data["normalisation"]
    expected_stats = Manifest.load(prepared).data["normalisation"]
    for key in ("inputs", "outputs"):
        for field in ("mean", "std", "raw_mean", "raw_std"):
            np.testing.assert_allclose(resumed_stats[key][field], expected_stats[key][field], rtol=1e-12, atol=1e-12)


def test_layout_from_appends_the_corpus_languages_the_base_layout_lacks(corpus, tmp_path):
    """`mlms prepare --layout-from VOICE`: the voice's layout, then the corpus's new languages in order."""
    from mlms_keras.frontend.layout import FeatureLayout

    base = FeatureLayout.for_languages(["de", "en-us"])  # a voice that knows en-us but not fr
    with pytest.raises(ValueError, match="not both"):
        both = PrepareOptions(layout=base, layout_from=base)
        prepare_dataset(corpus, tmp_path / "both", workers=1, progress=False, options=both)
    report = prepare_dataset(
        corpus,
        tmp_path / "grown",
        workers=1,
        f0_method="dio",
        utterances_per_shard=15,
        progress=False,
        options=PrepareOptions(layout_from=base),
    )
    assert report.complete
    manifest = Manifest.load(tmp_path / "grown")
    assert manifest.layout == base.add_language("fr") and manifest.layout.languages == ("de", "en-us", "fr")
    assert manifest.layout.feature_names[: base.dimension] == base.feature_names
    assert manifest.data["options"]["layout_from"] == base.fingerprint
    assert manifest.input_dim == manifest.layout.frame_dimension


def test_the_layout_from_option_takes_a_zoo_voice_by_name(corpus, tmp_path, monkeypatch):
    import mlms_keras.cli.prepare as prepare_cli
    from mlms_keras.data.prepare import PrepareReport
    from mlms_keras.zoo import load_registry, resolve_voice

    if "teacher-small" not in load_registry()["voices"]:
        pytest.skip("the shipped voice teacher-small is not installed")
    received = {}

    def fake_prepare(corpus_path, out, **settings):
        received.update(settings)
        return PrepareReport(str(out), True, 0, 0, 0, [], 0.0)

    monkeypatch.setattr(prepare_cli, "prepare_dataset", fake_prepare)
    assert mlms_main(["prepare", str(corpus), str(tmp_path / "out"), "--layout-from", "teacher-small", "--quiet"]) == 0
    options = received["options"]
    assert options.layout_from.fingerprint == resolve_voice("teacher-small")[1]["feature_layout"]["fingerprint"]
    assert options.layout is None and "--layout-from teacher-small" in options.command
    assert mlms_main(["prepare", str(corpus), str(tmp_path / "out"), "--layout-from", str(tmp_path / "none")]) == 2


def test_a_polyglot_speaker_keeps_its_native_language_in_the_speaker_table():
    from mlms_keras.data.prepare.driver import _CorpusTables, _speaker_table

    tables = _CorpusTables(
        languages=["en-us", "fr"],
        speakers=["anna", "bert"],
        roles={},
        f0_ranges={"anna": ((80.0, 400.0), "corpus.json"), "bert": ((60.0, 200.0), "corpus.json")},
        reader_genders={},
    )
    # Counted in shard order; both speak French last, which a last-utterance rule would have taken.
    spoken = {"anna": {"en-us": 7, "fr": 3}, "bert": {"en-us": 7, "fr": 3}}
    index = {"speakers": [{"id": "bert", "language": "fr", "gender": "male"}]}
    table = {row["name"]: row for row in _speaker_table(tables, index, spoken)}
    assert table["anna"]["language"] == "en-us"  # no corpus.json entry: the language of most utterances
    assert table["bert"]["language"] == "fr" and table["bert"]["gender"] == "male"  # corpus.json's own word
