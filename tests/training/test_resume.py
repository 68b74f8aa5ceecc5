"""Resumes check what they resume (`mlms_keras.training.resume`), and `mlms train` / `mlms adapt` killed with SIGKILL
end exactly like uninterrupted runs."""

import json
import logging

import keras
import numpy as np
import pytest
from kill_testing import kill_when
from test_fit import KillAt, fresh_model, make_data

import mlms_keras.layers  # noqa: F401 - registers the custom layers for load_model
from mlms_keras.cli import main
from mlms_keras.training.fit import TrainingOptions, train
from mlms_keras.training.resume import check_settings, claim_settings_file, settings_differences

#: Three training languages (the base model's, or a selection of them) and one more to adapt to; the same corpus as
#: tests/tuning's, so a session builds it once.
SPEAKERS = ["en-us-female", "fr-female", "de-female", "pl-female"]


@pytest.fixture(scope="module")
def prepared(prepared_corpus):
    return prepared_corpus(SPEAKERS)


def test_differences_are_named_by_their_dotted_path():
    recorded = {"epochs": 3, "training": {"seed": 0, "batch_size": 8}, "languages": ["fr", "de"], "gone": 1}
    current = {"epochs": 4, "training": {"seed": 1, "batch_size": 8}, "languages": ("fr", "de"), "new": {"a": 2}}
    differences, unrecorded = settings_differences(recorded, current)
    # Tuples compare as the lists they become in JSON; a setting only the record has is a difference.
    assert differences == [
        "epochs: recorded 3, now 4",
        "gone: recorded 1, now None",
        "training.seed: recorded 0, now 1",
    ]
    assert unrecorded == ["new.a"]


def test_a_settings_file_refuses_each_difference_and_an_older_one_resumes_with_a_warning(tmp_path, caplog):
    path = tmp_path / "job.json"
    claim_settings_file(path, {"seed": 0, "preset": "tiny"}, what="a job", remedy="do X")
    assert json.loads(path.read_text()) == {"preset": "tiny", "seed": 0}
    with pytest.raises(ValueError) as refused:
        claim_settings_file(path, {"seed": 1, "preset": "small"}, what="a job", remedy="do X")
    assert str(refused.value) == (
        f"{path}: this folder holds a job with other settings (preset: recorded 'tiny', now 'small'; seed: recorded "
        "0, now 1); do X"
    )
    with caplog.at_level(logging.WARNING, logger="mlms_keras.training.resume"):
        claim_settings_file(path, {"seed": 0, "preset": "tiny", "espeak_ng": "1.52"}, what="a job", remedy="do X")
    assert "espeak_ng" in caplog.text and "not checked" in caplog.text
    assert json.loads(path.read_text())["espeak_ng"] == "1.52"  # recorded from now on
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mlms_keras.training.resume"):
        check_settings(path, None, {"seed": 0}, what="a job", remedy="do X")
    assert "records no settings" in caplog.text
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a settings record"):
        claim_settings_file(path, {"seed": 0}, what="a job", remedy="do X")


def test_train_refuses_a_resume_with_other_settings_and_resumes_an_old_record_with_a_warning(tmp_path, caplog):
    train_data, *_ = make_data(seed=7)
    dev_data, *_ = make_data(seed=8)
    run = tmp_path / "run"
    options = TrainingOptions(epochs=2, early_stopping_patience=None)
    with pytest.raises(KeyboardInterrupt):
        train(fresh_model(), train_data, dev_data, run, options, callbacks=[KillAt(1)], verbose=0)
    with pytest.raises(ValueError, match=r"early_stopping_patience: recorded None, now 2; epochs: recorded 2, now 4"):
        train(fresh_model(), train_data, dev_data, run, TrainingOptions(epochs=4, early_stopping_patience=2), verbose=0)
    # A record written before settings were recorded: checked on its older fields, the rest named in a warning.
    record = json.loads((run / "training.json").read_text())
    del record["settings"]
    (run / "training.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="epochs: recorded 2, now 4"):
        train(fresh_model(), train_data, dev_data, run, TrainingOptions(epochs=4, early_stopping_patience=None))
    with caplog.at_level(logging.WARNING, logger="mlms_keras.training.resume"):
        result = train(fresh_model(), train_data, dev_data, run, options, verbose=0)
    assert "not checked: steps_per_epoch" in caplog.text
    assert result.epochs_run == 2 and json.loads((run / "training.json").read_text())["settings"]["epochs"] == 2


def backed_up_epochs(run):
    metadata = run / "backup" / "training_metadata.json"
    try:
        return json.loads(metadata.read_text())["epoch"]
    except (FileNotFoundError, ValueError):  # not there yet, or caught halfway through Keras's (plain) write
        return 0


def assert_same_run(resumed, whole, models=("model.keras", "best.keras")):
    """Bit-identical: the same final weights and the same dev curve."""
    for name in models:
        a, b = keras.models.load_model(resumed / name), keras.models.load_model(whole / name)
        for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
            np.testing.assert_array_equal(x, y, err_msg=name)
    a, b = (json.loads((folder / "training.json").read_text()) for folder in (resumed, whole))
    assert a["history"]["val_loss"] == b["history"]["val_loss"] and a["history"]["loss"] == b["history"]["loss"]
    assert a["settings"] == b["settings"]


@pytest.mark.slow
def test_train_and_adapt_killed_with_sigkill_resume_to_the_uninterrupted_results(prepared, tmp_path, capsys):
    """`mlms train` (one pass per epoch over shuffled data) and `mlms adapt RUN` (v3, two phases, on the repeated
    stream of `--steps-per-epoch`), each killed after its first backed-up epoch and run again: the resumed epochs
    train on the batches the uninterrupted run used, so weights and dev curves are bit-identical. A resume with
    another seed, or an adaptation to another --language into the same --out, is refused naming the differences."""

    def train_command(out, *extra):
        return ["train", str(prepared), "--preset", "tiny", "--epochs", "2", "--patience", "0", "--batch-size", "4",
                "--chunk-frames", "64", "--languages", "en-us,fr", "--quiet", *extra, "--out", str(out)]  # fmt: skip

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert main(train_command(whole)) == 0
    kill_when(train_command(killed), lambda: backed_up_epochs(killed) >= 1)
    assert backed_up_epochs(killed) == 1 and not json.loads((killed / "training.json").read_text())["complete"]
    capsys.readouterr()
    assert main(train_command(killed, "--seed", "1")) == 2
    assert "training.seed: recorded 0, now 1" in capsys.readouterr().err
    assert main(train_command(killed)) == 0
    assert json.loads((killed / "training.json").read_text())["final_session_first_epoch"] == 1
    assert_same_run(killed, whole)

    def adapt_command(out, language="de", speaker="de-female"):
        return ["adapt", str(whole), str(prepared), "--language", language, "--speaker", speaker, "--variant", "v3",
                "--epochs-per-phase", "1", "--steps-per-epoch", "2", "--batch-size", "4", "--quiet",
                "--out", str(out)]  # fmt: skip

    whole_adapted, killed_adapted = tmp_path / "whole-de", tmp_path / "killed-de"
    assert main(adapt_command(whole_adapted)) == 0
    kill_when(adapt_command(killed_adapted), lambda: backed_up_epochs(killed_adapted) >= 1)
    assert backed_up_epochs(killed_adapted) == 1 and not (killed_adapted / "model.keras").exists()
    capsys.readouterr()
    assert main(adapt_command(killed_adapted, "pl", "pl-female")) == 2
    error = capsys.readouterr().err
    assert "language: recorded 'de', now 'pl'" in error and "speaker: recorded 'de-female', now 'pl-female'" in error
    assert main(adapt_command(killed_adapted)) == 0
    assert_same_run(killed_adapted, whole_adapted, models=("model.keras",))
    assert len(json.loads((killed_adapted / "training.json").read_text())["history"]["val_loss"]) == 2
