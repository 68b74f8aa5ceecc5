"""Voices are safe to load: every file listed and hashed, plain file names, https only, pinned hashes, offline
loads from the cache, and damaged files reported by name."""

import json
import logging
import shutil

import pytest
from voice_testing import shared_test_voice

from mlms_keras import zoo
from mlms_keras.cli import main


@pytest.fixture(scope="module")
def voice(tmp_path_factory):
    return shared_test_voice(tmp_path_factory)


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    home = tmp_path / "keras-home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


def edited_copy(voice, tmp_path, edit):
    """A copy of the voice whose metadata.json went through `edit(metadata)` (its hash then changes too)."""
    folder, _ = voice
    copy = tmp_path / "served" / "test-voice"
    shutil.copytree(folder, copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    edit(metadata)
    (copy / "metadata.json").write_text(json.dumps(metadata))
    return copy


@pytest.mark.parametrize("as_url", [False, True], ids=["folder", "url"])
def test_metadata_that_leaves_a_model_file_out_is_refused(voice, tmp_path, keras_home, as_url):
    copy = edited_copy(voice, tmp_path, lambda metadata: metadata["files"].pop("config.json"))
    with pytest.raises(zoo.VoiceFilesError, match=r"config.json not listed with a sha256.*refused"):
        zoo.resolve_voice(copy.as_uri() if as_url else copy)


@pytest.mark.parametrize("name", ["../../evil.h5", "sub/model.weights.h5", "/etc/passwd", "..", ".hidden", "a\\b"])
def test_file_names_from_remote_metadata_must_be_plain_names(voice, tmp_path, keras_home, name):
    copy = edited_copy(voice, tmp_path, lambda metadata: metadata["files"].update({name: "0" * 64}))
    with pytest.raises(zoo.VoiceFilesError, match="not a plain file name"):
        zoo.resolve_voice(copy.as_uri())
    cache = zoo.voice_cache_folder(copy.as_uri())
    assert sorted(path.name for path in cache.iterdir()) == ["metadata.json"]  # nothing else was fetched
    assert not (tmp_path / "evil.h5").exists()


def test_an_unlisted_file_in_a_voice_folder_is_refused_and_hidden_files_are_not(voice, tmp_path):
    folder, _ = voice
    copy = tmp_path / "test-voice"
    shutil.copytree(folder, copy)
    (copy / ".model.weights.h5.x1y2.tmp.h5").write_bytes(b"a killed writer's leftover")
    assert zoo.resolve_voice(copy)[0] == copy
    (copy / "extra.weights.h5").write_bytes(b"unlisted")
    with pytest.raises(zoo.VoiceFilesError, match=r"extra.weights.h5 .*not listed"):
        zoo.resolve_voice(copy)


def test_sha256_pins_builtin_folder_and_url_voices(voice, keras_home):
    folder, entry = voice
    right, wrong = entry["files"]["metadata.json"], "f" * 64
    builtin = zoo.list_voices()[0]
    with pytest.raises(zoo.VoiceHashError, match=f"expected {wrong}"):
        zoo.resolve_voice(builtin["name"], sha256=wrong)
    assert zoo.resolve_voice(builtin["name"], sha256=builtin["files"]["metadata.json"].upper())[1]["name"]
    for source in (folder, folder.as_uri()):
        with pytest.raises(zoo.VoiceHashError, match=f"expected {wrong}"):
            zoo.resolve_voice(source, sha256=wrong)
        assert zoo.resolve_voice(source, sha256=right)[1]["name"] == "test-voice"
    with pytest.raises(ValueError, match="64 hex digits"):
        zoo.resolve_voice(folder, sha256="abc")


def test_cli_sha256_on_say_and_zoo_info(voice, tmp_path, capsys):
    folder, entry = voice
    assert main(["zoo", "info", str(folder), "--sha256", "0" * 64]) == 2
    error = capsys.readouterr().err
    assert error.startswith("mlms zoo info: ") and "sha256 mismatch" in error and error.count("\n") == 1
    assert main(["zoo", "info", str(folder), "--sha256", entry["files"]["metadata.json"]]) == 0
    out = tmp_path / "out.wav"
    arguments = ["say", "--voice", str(folder), "--lang", "fr", "Salut.", "-o", str(out), "--sha256"]
    assert main([*arguments, "0" * 64]) == 2
    assert "sha256 mismatch" in capsys.readouterr().err and not out.exists()


def test_a_cached_url_voice_loads_offline(voice, tmp_path, keras_home, caplog):
    folder, entry = voice
    served = tmp_path / "served" / "test-voice"
    shutil.copytree(folder, served)
    url = served.as_uri()
    cache, _ = zoo.resolve_voice(url)
    shutil.rmtree(served)  # the server is gone
    with caplog.at_level(logging.WARNING, logger="mlms_keras.zoo"):
        again, metadata = zoo.resolve_voice(url)
    assert again == cache and metadata["name"] == "test-voice"
    assert "loading the copy cached in" in caplog.text
    assert zoo.resolve_voice(url, sha256=entry["files"]["metadata.json"])[0] == cache  # pinned: no fetch at all
    (cache / "duration.weights.h5").write_bytes(b"damaged in the cache")
    with pytest.raises(OSError, match=r"No complete copy is cached either \(duration.weights.h5 has another sha256"):
        zoo.resolve_voice(url)


def test_a_voice_with_consistent_hashes_but_a_broken_config_names_the_file(voice, tmp_path):
    folder, _ = voice
    copy = tmp_path / "test-voice"
    shutil.copytree(folder, copy)
    (copy / "config.json").write_text("{not json")
    metadata = json.loads((copy / "metadata.json").read_text())
    metadata["files"]["config.json"] = zoo.sha256_of(copy / "config.json")
    (copy / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match=r"config.json: not valid JSON"):
        zoo.load_voice(copy)
    (copy / "config.json").write_text(json.dumps({"class_name": "NoSuchLayer", "config": {}}))
    metadata["files"]["config.json"] = zoo.sha256_of(copy / "config.json")
    (copy / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match=r"cannot rebuild the model of config.json"):
        zoo.load_voice(copy)
