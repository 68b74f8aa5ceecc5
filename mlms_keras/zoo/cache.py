"""Voices at a URL: resolution of `file://` and `https://` sources and the download cache.

Each file of a voice at a URL is downloaded once with `keras.utils.get_file` into
`$KERAS_HOME/mlms_zoo/<folder name>-<hash of the URL>/` (`$KERAS_HOME` defaults to `~/.keras`) and checked:
`metadata.json` against `sha256=` when given, every other file against the hashes in `metadata.json`. Files
already in the cache with the right hash are not downloaded again; a downloaded file that fails its check is
deleted from the cache, so the next try downloads it afresh.

`http://` is refused: a voice's config decides which layers are built, so it must come over an authenticated
channel (or be pinned with `sha256`). The file names in `metadata.json` are checked (`voice_files`) before any is
used as a path.

**Offline**: with `sha256`, a cached `metadata.json` with that hash is used without asking the server. Without
it, `metadata.json` is fetched afresh (into a side file, so a failed fetch leaves the cached copy), and when that
fetch fails, a complete cached copy (every file present with its hash) is loaded instead, with a warning.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import urllib.parse
from pathlib import Path

from mlms_keras.zoo.registry import (
    METADATA_NAME,
    VoiceHashError,
    read_voice_metadata,
    sha256_of,
    voice_files,
)

__all__ = ["CACHE_SUBDIR", "URL_SCHEMES", "download_voice", "is_url", "voice_cache_folder"]

logger = logging.getLogger(__name__)

CACHE_SUBDIR = "mlms_zoo"
#: The URL schemes a voice may come from.
URL_SCHEMES = ("file", "https")
_REFUSED_SCHEMES = ("http", "ftp")
_FRESH_METADATA = f".{METADATA_NAME}.download"


def is_url(source: object) -> bool:
    """Whether `source` is a string with a URL scheme `load_voice` knows (`URL_SCHEMES`, or one it refuses)."""
    return isinstance(source, str) and urllib.parse.urlsplit(source).scheme in URL_SCHEMES + _REFUSED_SCHEMES


def _cache_root() -> Path:
    return Path(os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras"))


def voice_cache_folder(url: str) -> Path:
    """Where `load_voice(url)` caches a voice: `$KERAS_HOME/mlms_zoo/<folder name>-<sha256(url)[:12]>`."""
    url = url.rstrip("/")
    base_name = re.sub(r"[^A-Za-z0-9._-]+", "_", urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]) or "voice"
    return _cache_root() / CACHE_SUBDIR / f"{base_name}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def _download(
    url: str,
    file_name: str,
    cache_folder: Path,
    expected_sha256: str | None,
    force: bool = False,
    target_name: str | None = None,
) -> Path:
    import keras

    origin = f"{url.rstrip('/')}/{file_name}"
    cache_root = _cache_root()
    target_name = target_name or file_name
    target = cache_folder / target_name
    # get_file falls back to /tmp/.keras when the cache folder is not writable yet (e.g. missing): create it.
    cache_folder.mkdir(parents=True, exist_ok=True)
    try:
        path = keras.utils.get_file(
            fname=target_name,
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


def _fresh_metadata(url: str, cache_folder: Path) -> Path:
    """Fetches `url`'s metadata.json into a side file, checks its format, then puts it in the cache."""
    fresh = _download(url, METADATA_NAME, cache_folder, None, force=True, target_name=_FRESH_METADATA)
    try:
        read_voice_metadata(fresh, url)
    except (FileNotFoundError, ValueError):
        fresh.unlink(missing_ok=True)
        raise
    os.replace(fresh, cache_folder / METADATA_NAME)
    return cache_folder / METADATA_NAME


def download_voice(url: str, sha256: str | None = None) -> tuple[Path, dict]:
    """Downloads (or finds in the cache) every file of the voice at `url`, checking each one's sha256.

    Args:
        url: a `file://` or `https://` URL of a voice folder.
        sha256: the expected sha256 of its `metadata.json` (which holds the other files' hashes).

    Returns:
        `(cache folder, metadata)`.

    Raises:
        VoiceHashError: a file's hash differs (the file was removed from the cache).
        VoiceFilesError: the metadata leaves a model file out or names a file unsafely.
        OSError: a download failed and no complete copy is cached.
        ValueError: an `http://` URL, or the URL's `metadata.json` is not a voice's.
    """
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in URL_SCHEMES:
        raise ValueError(
            f"{url}: {scheme}:// is refused, since a voice's files decide which code runs; use an https:// URL, "
            "a file:// URL or a local folder"
        )
    cache_folder = voice_cache_folder(url)
    if sha256 is not None:  # a cached copy with this hash needs no network
        metadata_path = _download(url, METADATA_NAME, cache_folder, sha256)
    else:
        try:
            metadata_path = _fresh_metadata(url, cache_folder)
        except OSError as error:
            metadata, reason = _complete_cached_copy(url, cache_folder)
            if metadata is None:
                raise OSError(f"{error} No complete copy is cached either ({reason}).") from error
            logger.warning("%s; loading the copy cached in %s", error, cache_folder)
            return cache_folder, metadata
    metadata = read_voice_metadata(metadata_path, url)
    for file_name, expected in voice_files(metadata.get("files"), f"{url}: {METADATA_NAME}").items():
        _download(url, file_name, cache_folder, expected)
    return cache_folder, metadata


def _complete_cached_copy(url: str, cache_folder: Path) -> tuple[dict | None, str]:
    """`(metadata, "")` when the cache holds every file of the voice with its hash, else `(None, reason)`."""
    try:
        metadata = read_voice_metadata(cache_folder / METADATA_NAME, url)
        files = voice_files(metadata.get("files"), f"{url}: {METADATA_NAME}")
        for file_name, expected in files.items():
            if not (cache_folder / file_name).is_file():
                return None, f"{file_name} is missing"
            if sha256_of(cache_folder / file_name) != expected:
                return None, f"{file_name} has another sha256"
    except (OSError, ValueError) as error:
        return None, str(error)
    return metadata, ""
