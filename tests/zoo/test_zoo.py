"""The zoo: voice folders, the registry, resolution by name / folder / URL, hash checks, caching, the CLI."""

import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from voice_testing import TEST_LANGUAGES, TEST_SPEAKERS, build_test_voice

from mlms_keras import zoo
from mlms_keras.cli import main

REPOSITORY = Path(__file__).resolve().parents[2]


def sha256_hex(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def voice(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo") / "test-voice"
    entry, acoustic, duration, layout = build_test_voice(folder)
    return folder, entry, acoustic, duration


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    home = tmp_path / "keras-home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


def test_every_file_is_listed_with_its_sha256(voice):
    folder, entry, _, _ = voice
    on_disk = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert sorted(entry["files"]) == on_disk == sorted(list(zoo.MODEL_FILES) + [zoo.METADATA_NAME])
    for name, digest in entry["files"].items():
        assert digest == sha256_hex(folder / name)
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["files"] == {name: sha256_hex(folder / name) for name in zoo.MODEL_FILES}
    config = json.loads((folder / "config.json").read_text())
    assert config["registered_name"] == "Functional"  # keras-hub style serialized model
    assert entry["size_bytes"] == sum((folder / name).stat().st_size for name in on_disk)
    assert entry["languages"] == list(TEST_LANGUAGES) and entry["speakers"] == list(TEST_SPEAKERS)


def test_a_loaded_voice_computes_what_the_saved_models_computed(voice):
    folder, _, acoustic, duration = voice
    loaded = zoo.load_voice(folder)
    rng = np.random.default_rng(0)
    for original, restored in ((acoustic, loaded.acoustic_model), (duration, loaded.duration_model)):
        dim = original.input["linguistic"].shape[-1]
        inputs = {
            "linguistic": rng.normal(size=(2, 7, dim)).astype("float32"),
            "language": np.array([0, 2], "int32"),
            "speaker": np.array([1, 2], "int32"),
        }
        np.testing.assert_allclose(np.asarray(restored(inputs)), np.asarray(original(inputs)), rtol=1e-5, atol=1e-6)
    assert loaded.languages == {code: i for i, code in enumerate(TEST_LANGUAGES)}
    assert {name: entry["language"] for name, entry in loaded.speakers.items()} == TEST_SPEAKERS


def test_a_changed_local_file_is_refused_naming_it_and_both_hashes(voice, tmp_path):
    folder, entry, _, _ = voice
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    weights = copy / "model.weights.h5"
    payload = bytearray(weights.read_bytes())
    payload[-100] ^= 0xFF
    weights.write_bytes(bytes(payload))
    with pytest.raises(zoo.VoiceHashError) as error:
        zoo.load_voice(copy)
    message = str(error.value)
    assert str(weights) in message
    assert entry["files"]["model.weights.h5"] in message and sha256_hex(weights) in message


def test_file_url_downloads_once_into_keras_home(voice, keras_home, tmp_path):
    folder, entry, _, _ = voice
    served = tmp_path / "served" / "test-voice"
    shutil.copytree(folder, served)
    url = served.as_uri()
    loaded = zoo.load_voice(url)
    cache = loaded.folder
    assert cache.parent == keras_home / "mlms_zoo" and cache.name.startswith("test-voice-")
    for name, digest in entry["files"].items():
        assert sha256_hex(cache / name) == digest
    stamps = {name: (cache / name).stat().st_mtime_ns for name in zoo.MODEL_FILES}
    for name in zoo.MODEL_FILES:  # the served copy loses its model files: a second load must use the cache
        (served / name).unlink()
    again = zoo.load_voice(url)
    assert again.folder == cache
    assert {name: (cache / name).stat().st_mtime_ns for name in zoo.MODEL_FILES} == stamps


def test_a_corrupted_download_is_refused_and_dropped_from_the_cache(voice, keras_home, tmp_path):
    folder, entry, _, _ = voice
    served = tmp_path / "served" / "test-voice"
    shutil.copytree(folder, served)
    (served / "duration.weights.h5").write_bytes(b"not the published weights")
    with pytest.raises(zoo.VoiceHashError) as error:
        zoo.load_voice(served.as_uri())
    message = str(error.value)
    assert "duration.weights.h5" in message
    assert entry["files"]["duration.weights.h5"] in message
    assert hashlib.sha256(b"not the published weights").hexdigest() in message
    assert not (zoo.voice_cache_folder(served.as_uri()) / "duration.weights.h5").exists()


def test_a_url_metadata_hash_is_checked_when_given(voice, keras_home, tmp_path):
    folder, entry, _, _ = voice
    wrong = "0" * 64
    with pytest.raises(
        zoo.VoiceHashError, match=f"metadata.json.*expected {wrong}.*got {entry['files']['metadata.json']}"
    ):
        zoo.load_voice(folder.as_uri(), sha256=wrong)
    assert zoo.load_voice(folder.as_uri(), sha256=entry["files"]["metadata.json"]).name == "test-voice"


@pytest.fixture
def https_server(voice, tmp_path, monkeypatch):
    """Serves the test voice's parent folder over https on 127.0.0.1 with a self-signed certificate that this
    process trusts (`SSL_CERT_FILE`); yields the base URL."""
    import ssl

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    key, certificate = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    folder, _, _, _ = voice
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder.parent))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_https_download_from_a_local_server(https_server, keras_home):
    loaded = zoo.load_voice(f"{https_server}/test-voice/")
    assert loaded.name == "test-voice"
    assert str(loaded.folder).startswith(str(keras_home / "mlms_zoo"))


def test_plain_http_is_refused_before_any_download(keras_home):
    with pytest.raises(ValueError, match=r"http:// is refused.*https://"):
        zoo.load_voice("http://127.0.0.1:9/test-voice/")
    assert not (keras_home / "mlms_zoo").exists()


def test_unknown_voice_lists_the_builtin_ones():
    registry = json.loads((REPOSITORY / "zoo" / "registry.json").read_text())
    with pytest.raises(zoo.UnknownVoiceError) as error:
        zoo.load_voice("no-such-voice")
    for name in registry["voices"]:
        assert name in str(error.value)
    assert [voice["name"] for voice in zoo.list_voices()] == sorted(registry["voices"])


def test_shipped_voices_match_their_registry_and_the_product_requirements():
    registry = json.loads((REPOSITORY / "zoo" / "registry.json").read_text())
    assert registry["voices"], "no shipped voice"
    for name, entry in registry["voices"].items():
        folder = REPOSITORY / "zoo" / entry["path"]
        total = 0
        for file_name, digest in entry["files"].items():
            assert sha256_hex(folder / file_name) == digest, f"{name}/{file_name}"
            total += (folder / file_name).stat().st_size
        assert total <= 20 * 1024 * 1024
        metadata = json.loads((folder / "metadata.json").read_text())
        assert sorted(metadata["languages"]) == sorted(["en-us", "en-gb", "fr", "it", "de", "es", "pl", "pt-br"])
        assert len(metadata["speakers"]) >= 10
        for key in ("mcd_db", "f0_rmse_hz", "vuv_error_percent", "duration_rmse_frames"):
            assert np.isfinite(metadata["metrics"]["all"][key])
        assert metadata["commands"] and metadata["training_time_s"]


def test_cli_lists_and_describes_voices(voice, capsys):
    folder, _, _, _ = voice
    assert main(["zoo", "list"]) == 0
    listing = capsys.readouterr().out
    for voice_entry in json.loads((REPOSITORY / "zoo" / "registry.json").read_text())["voices"]:
        assert voice_entry in listing
    assert main(["zoo", "info", str(folder)]) == 0
    info = capsys.readouterr().out
    assert "test-voice" in info and "pl-female (pl)" in info
    assert main(["zoo", "info", "nope"]) == 2
    assert "Built-in voices" in capsys.readouterr().err


def test_metadata_of_another_format_or_version_is_refused_naming_the_voice_and_what_to_do(voice, tmp_path, keras_home):
    folder, _, _, _ = voice
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    (copy / "metadata.json").write_text(json.dumps(dict(metadata, format_version=99)))
    with pytest.raises(ValueError, match=r"metadata.json.*format_version 99.*upgrade mlms-keras"):
        zoo.load_voice(copy)
    (copy / "metadata.json").write_text(json.dumps(dict(metadata, format="something-else")))
    with pytest.raises(ValueError, match=r"not a zoo voice.*'something-else'.*mlms zoo pack"):
        zoo.load_voice(copy.as_uri())  # a URL: the message starts with the URL, not the cache path
    with pytest.raises(ValueError) as error:
        zoo.load_voice(copy.as_uri())
    assert str(error.value).startswith(f"{copy.as_uri()}: ")
    (copy / "metadata.json").unlink()
    with pytest.raises(FileNotFoundError, match="metadata.json: no such file"):
        zoo.load_voice(copy)


@pytest.mark.slow
def test_zoo_pack_makes_a_voice_with_held_out_metrics_from_run_folders(prepared, tmp_path):
    import keras

    from mlms_keras.data.manifest import Manifest

    acoustic, duration, voice_folder = tmp_path / "acoustic", tmp_path / "duration", tmp_path / "packed"
    tiny = ["--preset", "tiny", "--epochs", "1"]
    assert main(["train", str(prepared), "--out", str(acoustic), *tiny, "--quiet"]) == 0
    assert main(["zoo", "train-duration", str(prepared), "--out", str(duration), *tiny]) == 0
    commands, timings, registry = tmp_path / "commands.txt", tmp_path / "timings.json", tmp_path / "registry.json"
    commands.write_text("# rebuild\nmlms train data --out acoustic\n\nmlms zoo pack --name packed\n")
    timings.write_text('{"acoustic": 1.5}')
    arguments = ["--acoustic", str(acoustic), "--duration", str(duration), "--dataset", str(prepared)]
    arguments += ["--name", "packed", "--out", str(voice_folder), "--registry", str(registry)]
    assert main(["zoo", "pack", *arguments, "--commands", str(commands), "--timings", str(timings)]) == 0

    entry = zoo.load_registry(registry)["voices"]["packed"]
    assert entry["files"]["metadata.json"] == sha256_hex(voice_folder / "metadata.json")
    loaded = zoo.load_voice(voice_folder)
    manifest = Manifest.load(prepared)
    assert list(loaded.languages) == sorted(manifest.languages, key=manifest.languages.get)
    metadata = loaded.metadata
    assert metadata["commands"] == ["mlms train data --out acoustic", "mlms zoo pack --name packed"]
    assert metadata["training_time_s"] == {"acoustic": 1.5}
    assert metadata["versions"]["keras"] == keras.__version__ and "command" in metadata
    metrics = metadata["metrics"]
    assert set(metrics["per_language"]) == set(manifest.languages)
    assert sum(values["utterances"] for values in metrics["per_language"].values()) == len(
        manifest.utterance_ids("dev")
    )
    for key in ("mcd_db", "vuv_error_percent", "duration_rmse_frames"):
        assert np.isfinite(metrics["all"][key])
    assert "f0_rmse_hz" in metrics["all"]  # NaN after one epoch: no frame is voiced in both


@pytest.mark.slow
def test_a_plain_install_ships_the_voices_and_loads_them_from_anywhere(tmp_path):
    wheel_dir, site = tmp_path / "wheel", tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPOSITORY),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheel_dir),
        ],
        check=True,
        cwd=tmp_path,
    )
    wheel = next(wheel_dir.glob("mlms_keras-*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        cwd=tmp_path,
    )
    script = (
        "import mlms_keras, zoo as shipped; from mlms_keras.zoo import list_voices, load_voice;"
        "v = load_voice(list_voices()[0]['name']);"
        "print(mlms_keras.__file__, shipped.__file__, v.folder, len(v.speakers))"
    )
    environment = dict(os.environ, PYTHONPATH=str(site), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", script], check=True, cwd=tmp_path, env=environment, capture_output=True, text=True
    )
    package_file, zoo_file, voice_folder, speakers = result.stdout.split()
    for path in (package_file, zoo_file, voice_folder):
        assert path.startswith(str(site)), path  # the installed copy, not the source checkout
    assert int(speakers) >= 10
