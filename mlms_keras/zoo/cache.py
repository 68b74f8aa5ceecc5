"""Voices at a URL: resolution of `file://`, `https://` and `http://` sources and the download cache.

Each file of a voice at a URL is downloaded once with `keras.utils.get_file` into
`$KERAS_HOME/mlms_zoo/<folder name>-<hash of the URL>/` (`$KERAS_HOME` defaults to `~/.keras`) and checked:
`metadata.json` against `sha256=` when given, every other file against the hashes in `metadata.json`. Files
already in the cache with the right hash are not downloaded again; a downloaded file that fails its check is
deleted from the cache, so the next try downloads it afresh.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.parse
from pathlib import Path

from mlms_keras.zoo.registry import METADATA_NAME, VoiceHashError, read_voice_metadata, sha256_of

__all__ = ["CACHE_SUBDIR", "URL_SCHEMES", "download_voice", "is_url", "voice_cache_folder"]

CACHE_SUBDIR = "mlms_zoo"
URL_SCHEMES = ("file", "http", "https")


def is_url(source: object) -> bool:
    """Whether `source` is a string with one of the `URL_SCHEMES`."""
    return isinstance(source, str) and urllib.parse.urlsplit(source).scheme in URL_SCHEMES


def _cache_root() -> Path:
    return Path(os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras"))


def voice_cache_folder(url: str) -> Path:
    """Where `load_voice(url)` caches a voice: `$KERAS_HOME/mlms_zoo/<folder name>-<sha256(url)[:12]>`."""
    url = url.rstrip("/")
    base_name = re.sub(r"[^A-Za-z0-9._-]+", "_", urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]) or "voice"
    return _cache_root() / CACHE_SUBDIR / f"{base_name}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def _download(url: str, file_name: str, cache_folder: Path, expected_sha256: str | None, force: bool = False) -> Path:
    import keras

    origin = f"{url.rstrip('/')}/{file_name}"
    cache_root = _cache_root()
    target = cache_folder / file_name
    # get_file falls back to /tmp/.keras when the cache folder is not writable yet (e.g. missing): create it.
    cache_folder.mkdir(parents=True, exist_ok=True)
    try:
        path = keras.utils.get_file(
            fname=file_name,
            origin=origin,
            file_hash=expected_sha256,
            hash_algorithm="sha256",
            cache_dir=str(cache_root),
            cache_subdir=str(cache_folder.relative_to(cache_root)),
            force_download=force,
        )
    except ValueError as error:
        if expected_sha256 is None or not target.exists() or "hash" not in str(error):
            raise
        actual = sha256_of(target)
        target.unlink()
        raise VoiceHashError(
            f"{origin}: sha256 mismatch: expected {expected_sha256}, got {actual}. The download is corrupted or "
            "the voice was changed on the server; it was removed from the cache, try again or check the URL."
        ) from None
    except Exception as error:  # urllib errors arrive wrapped in a plain Exception by get_file
        raise OSError(f"{origin}: download failed ({error}). Check the URL and the network.") from error
    return Path(path)


def download_voice(url: str, sha256: str | None = None) -> tuple[Path, dict]:
    """Downloads (or finds in the cache) every file of the voice at `url`, checking each one's sha256.

    Args:
        url: a `file://`, `https://` or `http://` URL of a voice folder.
        sha256: the expected sha256 of its `metadata.json` (which holds the other files' hashes).

    Returns:
        `(cache folder, metadata)`.

    Raises:
        VoiceHashError: a file's hash differs (the file was removed from the cache).
        OSError: a download failed.
        ValueError: the URL's `metadata.json` is not a voice's.
    """
    cache_folder = voice_cache_folder(url)
    # Without a known hash, fetch metadata.json every time: it is small and says what the other files must be.
    metadata_path = _download(url, METADATA_NAME, cache_folder, sha256, force=sha256 is None)
    metadata = read_voice_metadata(metadata_path, url)
    for file_name, expected in metadata.get("files", {}).items():
        _download(url, file_name, cache_folder, expected)
    return cache_folder, metadata
