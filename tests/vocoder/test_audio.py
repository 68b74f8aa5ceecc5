"""Audio I/O on both backends.

This file imports only `mlms_keras.vocoder.audio` (plus soundfile / pysptk for reference data), because CI runs it
a second time in a venv with TensorFlow 2.17.1 + tensorflow-io 0.37.1, where `MLMS_REQUIRE_TFIO=1` demands that
the tensorflow-io backend is the one in use. Reference values always come from soundfile read directly (an
independent decoder when the backend is tensorflow-io) or from closed-form signals.
"""

import importlib.util
import os

import numpy as np
import pysptk
import pytest
import soundfile

from mlms_keras.vocoder import audio

REQUIRE_TFIO = os.environ.get("MLMS_REQUIRE_TFIO") == "1"


@pytest.fixture(autouse=True)
def _no_backend_override(monkeypatch):
    monkeypatch.delenv(audio.BACKEND_ENV_VAR, raising=False)


@pytest.fixture(scope="module")
def arctic():
    wave, sample_rate = soundfile.read(pysptk.util.example_audio_file(), dtype="float32")
    return wave, sample_rate


def test_backend_is_tensorflow_io_when_ci_requires_it():
    if not REQUIRE_TFIO:
        pytest.skip("only in the tensorflow-io venv (MLMS_REQUIRE_TFIO=1)")
    assert audio.backend() == audio.TFIO_BACKEND


def test_backend_is_soundfile_without_tensorflow_io():
    if REQUIRE_TFIO:
        pytest.skip("the tensorflow-io venv must use tensorflow-io")
    if importlib.util.find_spec("tensorflow_io") is not None:
        pytest.skip("tensorflow-io is installed here; the tfio venv run covers it")
    assert audio.backend() == audio.SOUNDFILE_BACKEND


def test_backend_override_forces_soundfile_and_rejects_unknown_names(monkeypatch):
    monkeypatch.setenv(audio.BACKEND_ENV_VAR, "soundfile")
    assert audio.backend() == audio.SOUNDFILE_BACKEND
    monkeypatch.setenv(audio.BACKEND_ENV_VAR, "sox")
    with pytest.raises(ValueError, match="MLMS_AUDIO_BACKEND='sox'"):
        audio.backend()


@pytest.mark.parametrize("extension", [".wav", ".flac"])
def test_lossless_round_trip_matches_the_16_bit_source(tmp_path, arctic, extension):
    wave, sample_rate = arctic
    path = tmp_path / f"clip{extension}"
    audio.save(path, wave, sample_rate)
    loaded, loaded_rate = audio.load(path)
    assert loaded_rate == sample_rate and loaded.dtype == np.float32 and loaded.shape == wave.shape
    # The source is 16-bit PCM, so a 16-bit write and read reproduce it to within one quantisation step.
    np.testing.assert_allclose(loaded, wave, atol=1.0 / 32768 + 1e-7)


def test_ogg_vorbis_round_trip_is_close_to_the_source(tmp_path, arctic):
    wave, sample_rate = arctic
    path = tmp_path / "clip.ogg"
    audio.save(path, wave, sample_rate)
    loaded, loaded_rate = audio.load(path)
    reference, _ = soundfile.read(path, dtype="float32")  # libsndfile's decode of the same file
    assert loaded_rate == sample_rate
    assert abs(loaded.size - wave.size) < 2048  # Vorbis may pad the last block
    length = min(loaded.size, reference.size)
    np.testing.assert_allclose(loaded[:length], reference[:length], atol=1e-3)
    length = min(loaded.size, wave.size)
    signal_to_noise_db = 10 * np.log10(np.sum(wave[:length] ** 2) / np.sum((loaded[:length] - wave[:length]) ** 2))
    assert signal_to_noise_db > 10.0


def test_stereo_is_mixed_to_the_channel_mean(tmp_path, arctic):
    wave, sample_rate = arctic
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([wave, 0.5 * wave], axis=1), sample_rate, subtype="FLOAT")
    mono, _ = audio.load(path)
    np.testing.assert_allclose(mono, 0.75 * wave, atol=1e-6)
    both, _ = audio.load(path, mono=False)
    assert both.shape == (wave.size, 2)
    np.testing.assert_allclose(both[:, 1], 0.5 * wave, atol=1e-6)


def test_downsampling_preserves_a_sine_below_the_new_nyquist(tmp_path):
    sample_rate, target = 48000, 16000
    seconds = np.arange(sample_rate) / sample_rate
    path = tmp_path / "sine.wav"
    soundfile.write(path, 0.5 * np.sin(2 * np.pi * 1000 * seconds), sample_rate, subtype="FLOAT")
    loaded, loaded_rate = audio.load(path, target_sample_rate=target)
    assert loaded_rate == target
    assert abs(loaded.size - target) <= 1
    expected = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(loaded.size) / target)
    middle = slice(1000, loaded.size - 1000)  # away from the filter's edge transients
    np.testing.assert_allclose(loaded[middle], expected[middle], atol=0.01)


def test_downsampling_removes_content_above_the_new_nyquist(tmp_path):
    sample_rate, target = 48000, 16000
    seconds = np.arange(sample_rate) / sample_rate
    path = tmp_path / "high.wav"
    soundfile.write(path, 0.5 * np.sin(2 * np.pi * 12000 * seconds), sample_rate, subtype="FLOAT")
    loaded, _ = audio.load(path, target_sample_rate=target)
    assert np.sqrt(np.mean(loaded[1000:-1000] ** 2)) < 0.02  # would alias to 4 kHz at full level otherwise


def test_upsampling_is_refused_with_advice(tmp_path, arctic):
    wave, sample_rate = arctic
    path = tmp_path / "clip.wav"
    soundfile.write(path, wave, sample_rate)
    with pytest.raises(audio.UpsamplingError, match=r"clip\.wav.*16000 Hz to 22050 Hz.*native rate"):
        audio.load(path, target_sample_rate=22050)


def test_empty_file_is_a_clear_error_naming_it(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(audio.AudioFileError, match=r"empty\.wav: the file is empty"):
        audio.load(path)


def test_corrupt_file_is_a_clear_error_naming_it(tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(audio.AudioFileError, match=r"noise\.wav: not a readable audio file"):
        audio.load(path)
    with pytest.raises(audio.AudioFileError, match=r"missing\.wav: no such audio file"):
        audio.load(tmp_path / "missing.wav")


@pytest.mark.parametrize("extension", [".wav", ".flac", ".ogg"])
def test_truncated_file_is_a_clear_error_naming_it(tmp_path, arctic, extension):
    wave, sample_rate = arctic
    whole = tmp_path / f"whole{extension}"
    audio.save(whole, wave, sample_rate)
    truncated = tmp_path / f"cut{extension}"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(audio.AudioFileError, match=rf"cut\{extension}.*truncated"):
        audio.load(truncated)


def test_save_is_atomic_and_leaves_the_old_file_on_failure(tmp_path, arctic):
    wave, sample_rate = arctic
    path = tmp_path / "out" / "clip.wav"
    audio.save(path, wave, sample_rate)
    audio.save(path, 0.5 * wave, sample_rate)  # overwrite in place
    np.testing.assert_allclose(soundfile.read(path, dtype="float32")[0], 0.5 * wave, atol=1.0 / 32768)
    broken = wave.copy()
    broken[10] = np.nan
    with pytest.raises(ValueError, match=r"clip\.wav: .*NaN"):
        audio.save(path, broken, sample_rate)
    np.testing.assert_allclose(soundfile.read(path, dtype="float32")[0], 0.5 * wave, atol=1.0 / 32768)
    assert sorted(os.listdir(path.parent)) == ["clip.wav"]  # no temporary files left behind
    with pytest.raises(ValueError, match=r"\.mp3"):
        audio.save(tmp_path / "clip.mp3", wave, sample_rate)


def test_save_clips_samples_beyond_full_scale(tmp_path):
    path = tmp_path / "loud.flac"
    audio.save(path, np.array([0.0, 1.5, -2.0, 0.25]), 16000)
    np.testing.assert_allclose(soundfile.read(path)[0], [0.0, 32767 / 32768, -1.0, 0.25], atol=1e-9)
