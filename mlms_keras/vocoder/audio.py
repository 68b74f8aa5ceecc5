"""Audio file I/O: read, mix to mono, resample (down only), write atomically.

Two decoding backends give the same result:

- `"soundfile"` (always available): libsndfile through `soundfile`, resampling through `soxr` (its "VHQ"
  quality).
- `"tensorflow-io"`: `tfio.audio.AudioIOTensor` to decode and `tfio.audio.resample` to resample. It is used only
  when the `tfio` extra is installed *and* its audio ops actually load. tensorflow-io 0.37.1 is built for
  TensorFlow 2.16/2.17; on TensorFlow >= 2.18 the import works but the ops fail with undefined symbols, so the
  backend probes one op before choosing itself. TensorFlow and tensorflow-io are imported only then, never when
  this module is imported.

`backend()` reports which one is in use. The environment variable `MLMS_AUDIO_BACKEND` overrides the choice:
`soundfile` forces soundfile, `tensorflow-io` demands tfio and raises if it cannot load.

Whatever the backend, every file first passes an integrity check through libsndfile's header information (empty,
unrecognised, or truncated files raise `AudioFileError` naming the file), because a truncated WAV otherwise decodes
silently to fewer samples than its header promises.

We never upsample: band-limited audio resampled up to a higher rate has an empty top band, and WORLD's mel-cepstra
then spend their resolution on that empty band (on pysptk's 16 kHz CMU ARCTIC clip, resynthesis MCD went from
3.1 dB at 16 kHz to 11.3 dB after upsampling to 22.05 kHz). Analyse such audio at its native rate instead.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import os
import re

import numpy as np
import soundfile
import soxr

from mlms_keras.utils.fileio import atomic_output

__all__ = [
    "BACKEND_ENV_VAR",
    "SOUNDFILE_BACKEND",
    "TFIO_BACKEND",
    "WRITE_FORMATS",
    "AudioFileError",
    "UpsamplingError",
    "backend",
    "load",
    "open_writer",
    "resample",
    "save",
]

logger = logging.getLogger(__name__)

SOUNDFILE_BACKEND = "soundfile"
TFIO_BACKEND = "tensorflow-io"
BACKEND_ENV_VAR = "MLMS_AUDIO_BACKEND"

# Container formats `save` writes, by file extension.
WRITE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS")}


class AudioFileError(ValueError):
    """A file that cannot be read as audio: empty, unrecognised, corrupt or truncated. The message names the file."""


class UpsamplingError(ValueError):
    """Raised instead of upsampling band-limited audio (see the module docstring)."""


def _probe_tfio():
    """Return the tensorflow_io module if it imports and its audio ops run, else None (with the reason logged)."""
    if importlib.util.find_spec("tensorflow_io") is None:
        return None
    try:
        import tensorflow as tf
        import tensorflow_io as tfio

        # Executing one op loads the shared library; on TF >= 2.18 this is where the undefined symbols surface.
        tfio.audio.resample(tf.zeros([32, 1], tf.float32), rate_in=16000, rate_out=8000)
        return tfio
    except Exception as error:  # any failure to load means "not usable", never a crash at import time
        logger.info("tensorflow-io is installed but its audio ops do not load (%s); using soundfile", error)
        return None


@functools.cache
def _tfio_module():
    return _probe_tfio()


def backend() -> str:
    """Name of the decoding backend in use: `"soundfile"` or `"tensorflow-io"`.

    Honours `MLMS_AUDIO_BACKEND` (`soundfile` / `tensorflow-io`); raises `RuntimeError` when `tensorflow-io` is
    demanded but its ops do not load.
    """
    requested = os.environ.get(BACKEND_ENV_VAR, "").strip().lower()
    if requested == SOUNDFILE_BACKEND:
        return SOUNDFILE_BACKEND
    if requested in (TFIO_BACKEND, "tfio"):
        if _tfio_module() is None:
            raise RuntimeError(
                f"{BACKEND_ENV_VAR}={requested} but tensorflow-io's audio ops do not load here. Install the extra "
                "with TensorFlow 2.17: pip install 'mlms-keras[tfio]' 'tensorflow==2.17.1' 'tensorflow-io==0.37.1', "
                f"or unset {BACKEND_ENV_VAR}."
            )
        return TFIO_BACKEND
    if requested:
        raise ValueError(f"{BACKEND_ENV_VAR}={requested!r} is not a backend; use 'soundfile' or 'tensorflow-io'.")
    return TFIO_BACKEND if _tfio_module() is not None else SOUNDFILE_BACKEND


_SHORT_DATA_CHUNK = re.compile(r"data\s*:\s*(\d+)\s*\(should be (\d+)\)")


def _check_integrity(path):
    """Raise `AudioFileError` if `path` is missing, empty, unreadable or truncated; return its `soundfile.info`."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise AudioFileError(f"{path}: no such audio file.")
    if os.path.getsize(path) == 0:
        raise AudioFileError(f"{path}: the file is empty (0 bytes). Re-export or re-download it.")
    try:
        info = soundfile.info(path)
    except Exception as error:
        raise AudioFileError(
            f"{path}: not a readable audio file ({error}). Supported: wav, flac, ogg; check the file is not corrupt."
        ) from error
    extra = info.extra_info or ""
    short = _SHORT_DATA_CHUNK.search(extra)
    if short and int(short.group(2)) < int(short.group(1)):
        raise AudioFileError(
            f"{path}: truncated: its header promises {short.group(1)} bytes of audio but only {short.group(2)} "
            "are present. Re-export or re-download the file."
        )
    if "lacks an end-of-stream bit" in extra:
        raise AudioFileError(f"{path}: truncated Ogg stream (no end-of-stream page). Re-export or re-download it.")
    if info.frames <= 0:
        raise AudioFileError(f"{path}: contains no audio samples.")
    return info


def _read_soundfile(path, expected_frames):
    try:
        wave, sample_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as error:
        raise AudioFileError(f"{path}: decoding failed ({error}); the file is corrupt or truncated.") from error
    if wave.shape[0] < expected_frames:
        raise AudioFileError(
            f"{path}: truncated: decoded {wave.shape[0]} of the {expected_frames} samples its header promises."
        )
    return wave, int(sample_rate)


def _read_tfio(path, expected_frames):
    import tensorflow as tf

    tfio = _tfio_module()
    try:
        audio = tfio.audio.AudioIOTensor(path)
        wave = audio.to_tensor()
        sample_rate = int(audio.rate.numpy())
    except Exception as error:
        raise AudioFileError(
            f"{path}: decoding failed in tensorflow-io ({error}); the file is corrupt or truncated."
        ) from error
    if wave.dtype.is_integer:
        # Integer PCM: scale to [-1, 1) like libsndfile does.
        wave = tf.cast(wave, tf.float32) / float(2 ** (wave.dtype.size * 8 - 1))
    wave = np.asarray(wave.numpy(), dtype=np.float32)
    if wave.ndim == 1:
        wave = wave[:, None]
    if wave.shape[0] < expected_frames:
        raise AudioFileError(
            f"{path}: truncated: decoded {wave.shape[0]} of the {expected_frames} samples its header promises."
        )
    return wave, sample_rate


def resample(wave: np.ndarray, sample_rate: int, target_sample_rate: int, name: str = "wave") -> np.ndarray:
    """Downsample `wave` `(samples,)` or `(samples, channels)` float from `sample_rate` to `target_sample_rate` Hz.

    Uses the active backend (soxr VHQ, or `tfio.audio.resample`). Equal rates return the input unchanged.
    Raises `UpsamplingError` when `target_sample_rate > sample_rate`.
    """
    sample_rate, target_sample_rate = int(sample_rate), int(target_sample_rate)
    if target_sample_rate == sample_rate:
        return wave
    if target_sample_rate > sample_rate:
        raise UpsamplingError(
            f"{name}: refusing to upsample from {sample_rate} Hz to {target_sample_rate} Hz. Upsampled audio has an "
            f"empty band above {sample_rate // 2} Hz that wrecks mel-cepstral analysis; analyse it at its native "
            f"rate instead (target_sample_rate=None, or {sample_rate})."
        )
    if backend() == TFIO_BACKEND:
        import tensorflow as tf

        as_2d = wave if wave.ndim == 2 else wave[:, None]
        out = _tfio_module().audio.resample(
            tf.convert_to_tensor(as_2d, tf.float32), rate_in=sample_rate, rate_out=target_sample_rate
        )
        out = np.asarray(out.numpy(), dtype=np.float32)
        return out if wave.ndim == 2 else out[:, 0]
    return soxr.resample(wave, sample_rate, target_sample_rate, quality="VHQ").astype(np.float32)


def load(path: str | os.PathLike, target_sample_rate: int | None = None, mono: bool = True) -> tuple[np.ndarray, int]:
    """Read an audio file; return `(wave, sample_rate)`.

    Args:
        path: wav, flac or ogg file.
        target_sample_rate: Hz to downsample to, or `None` to keep the native rate. Never upsamples (raises
            `UpsamplingError`, which suggests analysing at the native rate).
        mono: average the channels into one.

    Returns:
        `(wave, sample_rate)`: `wave` float32 of shape `(samples,)` if `mono` else `(samples, channels)`, in
        [-1, 1]; `sample_rate` an int, Hz.

    Raises:
        AudioFileError: empty, corrupt, unrecognised or truncated file (the message names the file).
    """
    path = os.fspath(path)
    info = _check_integrity(path)
    reader = _read_tfio if backend() == TFIO_BACKEND else _read_soundfile
    wave, sample_rate = reader(path, info.frames)
    if mono:
        wave = wave.mean(axis=1)
    if target_sample_rate is not None:
        wave = resample(wave, sample_rate, target_sample_rate, name=path)
        sample_rate = int(target_sample_rate)
    return np.ascontiguousarray(wave, dtype=np.float32), int(sample_rate)


@contextlib.contextmanager
def open_writer(path: str | os.PathLike, sample_rate: int, channels: int = 1):
    """Yields an open `soundfile.SoundFile` that writes `path` atomically (format from the extension).

    The audio goes to a temporary file beside `path`, which replaces `path` only when the block ends without an
    error; otherwise it is removed, and an old `path` is left as it was. Checked before anything is written: the
    extension (`WRITE_FORMATS`), and that `path` is not a folder. A write that fails in libsndfile (a full disk,
    a file-size limit) raises `OSError` naming `path`.

    Example:
        >>> with open_writer("out.wav", 22050) as output:  # doctest: +SKIP
        ...     output.write(wave)
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a folder; give an audio file name such as {os.path.join(path, 'out.wav')}")
    extension = os.path.splitext(path)[1].lower()
    if extension not in WRITE_FORMATS:
        raise ValueError(f"{path}: unsupported extension {extension!r}; use one of {sorted(WRITE_FORMATS)}.")
    container, subtype = WRITE_FORMATS[extension]
    try:
        with (
            atomic_output(path) as temporary,
            soundfile.SoundFile(
                temporary, "w", samplerate=int(sample_rate), channels=channels, format=container, subtype=subtype
            ) as output,
        ):
            yield output
    except soundfile.SoundFileError as error:  # libsndfile reports a failed write as "System error."
        raise OSError(
            f"{path}: writing the audio failed ({error}); check the free space and the file-size limit of its "
            "folder. Nothing was written."
        ) from error


def save(path: str | os.PathLike, wave: np.ndarray, sample_rate: int) -> None:
    """Write `wave` `(samples,)` or `(samples, channels)`, float in [-1, 1], to `path` atomically.

    The format follows the extension (`.wav` and `.flac` as 16-bit PCM, `.ogg` as Vorbis). The data goes to a
    temporary file in the same folder, which then replaces `path`, so readers never see a half-written file
    (`open_writer`). Samples outside [-1, 1] are clipped (with a warning); non-finite samples raise `ValueError`.
    """
    path = os.fspath(path)
    wave = np.asarray(wave, dtype=np.float32)
    if not np.all(np.isfinite(wave)):
        raise ValueError(f"{path}: the wave to save contains NaN or inf samples; nothing was written.")
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    if peak > 1.0:
        logger.warning("%s: peak %.3f exceeds full scale; clipping", path, peak)
        wave = np.clip(wave, -1.0, 1.0)
    with open_writer(path, sample_rate, channels=1 if wave.ndim == 1 else wave.shape[1]) as output:
        output.write(wave)
