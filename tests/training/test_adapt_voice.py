"""`mlms adapt VOICE`: a zoo voice grown to a new language (Swedish) and adapted into a new voice, end to end on a
real teacher corpus (`mlms corpus build --languages sv`) prepared with `mlms prepare --layout-from VOICE`."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import soundfile
from voice_testing import TEST_LANGUAGES, TEST_SPEAKERS, build_test_voice

from mlms_keras.cli import main
from mlms_keras.cli.adapt import is_run_source
from mlms_keras.data.manifest import MANIFEST_NAME, Manifest
from mlms_keras.data.teacher import build_teacher_corpus
from mlms_keras.frontend.layout import FeatureLayout
from mlms_keras.training.adaptation import AdaptationOptions, adapt_voice
from mlms_keras.training.adaptation import voice as voice_module
from mlms_keras.zoo import load_voice

LANGUAGE, SPEAKER = "sv", "sv-f2"
#: A sentence per old language of the test voice.
TEXTS = {"en-us": "We were away a year ago.", "fr": "Nous étions partis hier.", "pl": "Dzień dobry, jak się masz?"}

#: Compares the old voice with the adapted one on every old (language, speaker): raw duration-model outputs, whole
#: frames, frame inputs (zero at the new features) and vocoder frames, bit for bit; prints the pairs compared. It runs
#: in a subprocess with TensorFlow's default oneDNN kernels, what `mlms say` runs with: this test session runs Eigen,
#: whose blocked sums over more than about 300 inputs may differ in the last bit (`tests/models/test_growth.py`).
SAME_OUTPUTS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from mlms_keras.models.growth import feature_positions
    from mlms_keras.synthesis import Synthesizer
    from mlms_keras.zoo import load_voice

    old, new = load_voice(sys.argv[1]), load_voice(sys.argv[2])
    before, after = Synthesizer(old), Synthesizer(new)
    positions = feature_positions(old.layout.frame_feature_names, new.layout.frame_feature_names)
    added = np.setdiff1d(np.arange(new.layout.frame_dimension), positions)
    phoneme_positions = feature_positions(old.layout.feature_names, new.layout.feature_names)
    compared = 0
    for language, text in json.loads(sys.argv[3]).items():
        phonemes = old.layout.phoneme_features(text, language)
        grown_phonemes = new.layout.phoneme_features(text, language)
        np.testing.assert_array_equal(grown_phonemes[:, phoneme_positions], phonemes)
        for speaker in old.speakers:
            ids = {"language": np.array([old.languages[language]], "int32"),
                   "speaker": np.array([old.speakers[speaker]["id"]], "int32")}
            raw = old.duration_model.predict_on_batch(
                dict(ids, linguistic=old.duration_statistics.normalise_inputs(phonemes)[None]))
            grown_raw = new.duration_model.predict_on_batch(
                dict(ids, linguistic=new.duration_statistics.normalise_inputs(grown_phonemes)[None]))
            np.testing.assert_array_equal(grown_raw, raw)
            frames, durations = before.frame_features(text, language, speaker)
            grown_frames, grown_durations = after.frame_features(text, language, speaker)
            np.testing.assert_array_equal(grown_durations, durations)
            np.testing.assert_array_equal(grown_frames[:, positions], frames)
            assert not grown_frames[:, added].any()
            np.testing.assert_array_equal(
                after.acoustic_features(text, language, speaker), before.acoustic_features(text, language, speaker)
            )
            compared += 1
    print(compared)
    """
)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """`(voice folder, prepared Swedish dataset)`: the tiny test voice and 16 teacher utterances of sv-f2."""
    root = tmp_path_factory.mktemp("adapt-voice")
    build_test_voice(root / "voice")
    report = build_teacher_corpus(
        root / "sv", languages=[LANGUAGE], utterances=16, voice_variant="f2", workers=1, progress=False
    )
    assert report.built == 16 and not report.skipped
    prepare = ["prepare", str(root / "sv"), str(root / "sv-prepared"), "--layout-from", str(root / "voice")]
    assert main([*prepare, "--f0-method", "dio", "--workers", "1", "--utterances-per-shard", "8", "--quiet"]) == 0
    return root / "voice", root / "sv-prepared"


def adapt_command(voice, dataset, out, variant="v1", language=LANGUAGE):
    return [
        "adapt",
        str(voice),
        str(dataset),
        "--language",
        language,
        "--speaker",
        SPEAKER,
        "--variant",
        variant,
        "--epochs-per-phase",
        "1",
        "--batch-size",
        "4",
        "--out",
        str(out),
        "--quiet",
    ]


def test_the_prepared_dataset_has_the_grown_voice_layout(base):
    voice, dataset = base
    old = load_voice(voice).layout
    manifest = json.loads((dataset / MANIFEST_NAME).read_text())
    layout = FeatureLayout.from_config(manifest["feature_layout"])
    assert layout == old.add_language(LANGUAGE) and layout.languages == (*TEST_LANGUAGES, LANGUAGE)
    assert manifest["options"]["layout_from"] == old.fingerprint
    assert "--layout-from" in manifest["command"]


@pytest.mark.slow
def test_a_voice_adapts_to_a_new_language_and_keeps_its_old_ones_bit_identical(base, tmp_path, capsys):
    voice, dataset = base
    out = tmp_path / "my-voice"
    assert main(adapt_command(voice, dataset, out)) == 0
    assert "dev MCD" in capsys.readouterr().out
    assert not (out / voice_module.WORK_FOLDER).exists()

    old, new = load_voice(voice), load_voice(out)  # load_voice checks every file's sha256
    assert new.name == "my-voice"
    assert new.languages == {**old.languages, LANGUAGE: len(TEST_LANGUAGES)}
    assert {name: entry["id"] for name, entry in new.speakers.items()} == {
        **{name: index for index, name in enumerate(TEST_SPEAKERS)},
        SPEAKER: len(TEST_SPEAKERS),
    }
    assert new.speakers[SPEAKER]["language"] == LANGUAGE
    assert new.layout == old.layout.add_language(LANGUAGE)
    assert new.acoustic_model.input["linguistic"].shape[-1] == new.layout.frame_dimension
    assert new.duration_model.input["linguistic"].shape[-1] == new.layout.dimension

    # Every old language with every old speaker: the same durations and vocoder frames, bit for bit.
    completed = subprocess.run(
        [sys.executable, "-c", SAME_OUTPUTS_SCRIPT, str(voice), str(out), json.dumps(TEXTS)],
        env=dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1", TF_CPP_MIN_LOG_LEVEL="3"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.split()[-1] == str(len(TEXTS) * len(TEST_SPEAKERS))

    metadata = new.metadata
    metrics = metadata["metrics"]["per_language"][LANGUAGE]
    for key in ("mcd_db", "f0_rmse_hz", "vuv_error_percent", "duration_rmse_frames"):
        assert np.isfinite(metrics[key]), key
    assert metrics["utterances"] == 2 and metrics["split"] == "dev"
    assert metadata["adapted_languages"] == {LANGUAGE: "v1"}
    assert metadata["training_time_s"][f"adapt_{LANGUAGE}"] > 0
    record = metadata["adaptation"][-1]
    assert record["old_languages_unchanged"] and record["variant"] == "v1"
    assert record["acoustic"]["initial_speaker"] in TEST_SPEAKERS
    assert record["duration"]["initial_speaker"] in TEST_SPEAKERS
    assert [phase["groups"] for phase in record["acoustic"]["phases"]] == [["language_code", "speaker_layer"]]
    assert metadata["commands"][-2].startswith("mlms prepare") and metadata["commands"][-1].startswith("mlms adapt")

    wav = tmp_path / "hej.wav"
    assert (
        main(["say", "--voice", str(out), "--lang", LANGUAGE, "--speaker", SPEAKER, "Hej, hur mår du?", "-o", str(wav)])
        == 0
    )
    wave, rate = soundfile.read(wav)
    assert rate == new.sample_rate and len(wave) > rate // 10 and np.isfinite(wave).all() and np.abs(wave).max() > 0
    capsys.readouterr()
    assert main(["zoo", "info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "languages    en-us, fr, pl, sv" in info and f"{SPEAKER} ({LANGUAGE})" in info and "mcd_db" in info

    # The finished voice is not adapted again into the same folder.
    assert main(adapt_command(voice, dataset, out)) == 2
    assert "already holds a voice" in capsys.readouterr().err


class Killed(Exception):
    """Stands for a kill in the middle of a stage."""


class KillAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Killed(f"killed at epoch {epoch}")


def test_a_diverging_adaptation_stops_with_one_line_and_writes_no_voice(base, tmp_path, capsys):
    voice, dataset = base
    out = tmp_path / "diverged"
    assert main([*adapt_command(voice, dataset, out, variant="v3"), "--learning-rate", "1e38"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("mlms adapt: ") and "diverged" in error and "learning rate" in error, error
    assert error.count("\n") == 1 and not (out / "metadata.json").exists()


@pytest.mark.slow
def test_a_killed_voice_adaptation_resumes_where_it_stopped(base, tmp_path, monkeypatch):
    voice, dataset = base
    out = tmp_path / "resumed"
    options = AdaptationOptions(variant="v3", epochs_per_phase=1, batch_size=4)
    original = voice_module.adapt_model_on_prepared
    calls = []

    def killed_in_the_second_phase(*args, **kwargs):
        calls.append("acoustic")
        return original(*args, callbacks=[KillAtEpoch(1)], **kwargs)

    monkeypatch.setattr(voice_module, "adapt_model_on_prepared", killed_in_the_second_phase)
    with pytest.raises(Killed):
        adapt_voice(voice, dataset, LANGUAGE, SPEAKER, out, options, verbose=0)
    work = out / voice_module.WORK_FOLDER / "acoustic"
    assert len(json.loads((work / "history.json").read_text())["epochs"]) == 1 and (work / "backup").is_dir()
    other = AdaptationOptions(variant="v2", epochs_per_phase=1, batch_size=4)
    with pytest.raises(ValueError, match="unfinished adaptation with other settings"):
        adapt_voice(voice, dataset, LANGUAGE, SPEAKER, out, other, verbose=0)

    # Second run: the acoustic stage resumes in its second phase, then the duration stage is killed once.
    monkeypatch.setattr(voice_module, "adapt_model_on_prepared", original)
    original_duration = voice_module.adapt_duration_on_prepared

    def killed_duration(*args, **kwargs):
        raise Killed("killed before the duration stage")

    monkeypatch.setattr(voice_module, "adapt_duration_on_prepared", killed_duration)
    with pytest.raises(Killed):
        adapt_voice(voice, dataset, LANGUAGE, SPEAKER, out, options, verbose=0)
    assert (work / "stage.json").is_file() and (work / "acoustic.keras").is_file()

    # Third run: the finished acoustic stage is reused as it is, the duration stage runs, the voice is written.
    monkeypatch.setattr(voice_module, "adapt_duration_on_prepared", original_duration)
    monkeypatch.setattr(voice_module, "adapt_model_on_prepared", lambda *a, **k: pytest.fail("acoustic stage rerun"))
    result = adapt_voice(voice, dataset, LANGUAGE, SPEAKER, out, options, verbose=0)
    record = load_voice(out).metadata["adaptation"][-1]
    assert len(record["acoustic"]["history"]["loss"]) == 2  # epoch 1 of the killed run, epoch 2 of the resumed one
    assert [p["groups"] for p in record["acoustic"]["phases"]] == [
        ["language_code", "speaker_layer"],
        ["mean_tower", "speaker_layer"],
    ]
    assert not record["old_languages_unchanged"]  # v3 trains the mean tower, which every language shares
    assert result.language_id == len(TEST_LANGUAGES) and calls == ["acoustic"]
    assert not (out / voice_module.WORK_FOLDER).exists()


@pytest.fixture(scope="module")
def voice_only(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-input") / "voice"
    build_test_voice(folder)
    return folder


def fake_dataset(folder, layout):
    """A prepared-dataset manifest (no shards) of sv-f2 with the given feature layout: enough for the checks."""
    folder.mkdir()
    manifest = {
        "format": "mlms-prepared-dataset",
        "format_version": 1,
        "feature_layout": layout.get_config(),
        "input_dim": layout.frame_dimension,
        "output_dim": 49,
        "sample_rates_hz": [22050],
        "languages": [{"code": LANGUAGE, "id": 0, "role": "adaptation"}],
        "speakers": [{"name": SPEAKER, "id": 0, "language": LANGUAGE}],
        "splits": {},
        "utterances": {},
        "normalisation": {
            "inputs": {"mean": [0.0] * layout.frame_dimension, "std": [1.0] * layout.frame_dimension},
            "outputs": {"mean": [0.0] * 49, "std": [1.0] * 49},
        },
    }
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    return folder


def test_an_unknown_language_code_is_refused_with_close_codes(voice_only, tmp_path):
    with pytest.raises(ValueError, match=r"Unknown language code 'svv'.*Did you mean.*'sv'"):
        adapt_voice(voice_only, tmp_path / "no-dataset", "svv", SPEAKER, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_language_the_voice_has_is_refused_by_name(voice_only, tmp_path, capsys):
    with pytest.raises(ValueError, match=r"already speaks 'fr' \(French\)"):
        adapt_voice(voice_only, tmp_path / "no-dataset", "fr", SPEAKER, tmp_path / "out")
    assert main(adapt_command(voice_only, tmp_path / "no-dataset", tmp_path / "out", language="fr")) == 2
    assert "already speaks 'fr'" in capsys.readouterr().err


def test_a_dataset_of_another_layout_is_refused_with_both_fingerprints(voice_only, tmp_path):
    voice = load_voice(voice_only)
    other = FeatureLayout.for_languages(["en-us", "fr", LANGUAGE])  # pl missing: prepared without --layout-from
    dataset = fake_dataset(tmp_path / "other", other)
    with pytest.raises(ValueError, match=r"does not fit") as error:
        adapt_voice(voice_only, dataset, LANGUAGE, SPEAKER, tmp_path / "out")
    message = str(error.value)
    assert other.fingerprint in message and voice.layout.fingerprint in message
    assert f"--layout-from {voice_only}" in message and "mlms prepare" in message
    # The grown layout fits (the checks pass; adaptation then needs the shards this fake lacks).
    fits = Manifest.load(fake_dataset(tmp_path / "fits", voice.layout.add_language(LANGUAGE)))
    voice_module.check_adaptation_data(voice, fits, LANGUAGE, SPEAKER, str(voice_only))


def test_a_run_folder_is_told_from_a_voice(voice_only, tmp_path):
    assert not is_run_source(str(voice_only)) and not is_run_source("teacher-small")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "training.json").write_text("{}")
    (tmp_path / "model.keras").write_text("")
    assert is_run_source(str(tmp_path / "run")) and is_run_source(str(tmp_path / "model.keras"))


def test_a_voice_that_is_not_there_names_both_kinds_of_model(tmp_path, capsys):
    assert main(adapt_command(tmp_path / "nothing", tmp_path / "no-dataset", tmp_path / "out")) == 2
    error = capsys.readouterr().err
    assert "Unknown voice" in error and "run folder" in error
