"""The zoo of pretrained voices: the voice folder format, the registry, name resolution, hash checks and caching.

**A voice** is a folder in the style of keras-hub presets:

- `config.json`: the acoustic model, `keras.saving.serialize_keras_object` (`registered_name` set);
- `model.weights.h5`: its weights;
- `duration_config.json`: the duration model (`mlms_keras.models.duration`), serialized the same way;
- `duration.weights.h5`: its weights;
- `metadata.json`: format and versions, sample rate, languages and speakers with the models' ids, parameter
  counts, the feature layout, the normalisation statistics (acoustic inputs/outputs and duration model), held-out
  metrics, the commands that rebuild the voice, training time, provenance, and `files`: the sha256 of every other
  file.

**The registry** (`zoo/registry.json`, shipped as package data with the voices) lists each built-in voice with
its folder and the sha256 of each of its files, `metadata.json` included.

**Resolution** (`load_voice(source)`):

1. a built-in name (`list_voices()`): the shipped folder, every file checked against the registry's hashes;
2. a local folder: loaded in place, every file checked against its `metadata.json` hashes;
3. a `file://` or `https://` URL of a voice folder (`http://` is refused): each file is downloaded once with
   `keras.utils.get_file` into `$KERAS_HOME/mlms_zoo/<folder name>-<hash of the URL>/` (`$KERAS_HOME`
   defaults to `~/.keras`) and checked: `metadata.json` against `sha256=` when given, every other file
   against the hashes in `metadata.json`. Files already in the cache with the right hash are not downloaded
   again, and a complete cached copy loads offline.

A mismatch is never a silent load: `VoiceHashError` names the file and gives the expected and the actual hash
(a downloaded file that fails is deleted from the cache, so the next try downloads it afresh). Every model file
must be listed with its hash, file names must be plain names (no folders, no `..`), and a voice folder holding a
file its metadata does not list is refused (`VoiceFilesError`). `sha256=` (`--sha256`) pins `metadata.json`, and
through it every file, for any source.

The modules: `registry` (the format's names, the registry, hashes, errors), `cache` (URLs and the download
cache), `voice` (`save_voice`, `resolve_voice`, `load_voice`), `pack` (a voice from run folders, with held-out
metrics). `docs/architecture.md` has the file formats.

Example:
    >>> from mlms_keras.zoo import list_voices, load_voice
    >>> [voice["name"] for voice in list_voices()]                 # doctest: +SKIP
    ['teacher-small']
    >>> voice = load_voice("teacher-small")                        # doctest: +SKIP
    >>> voice.languages, list(voice.speakers)[:2]                   # doctest: +SKIP
"""

from mlms_keras.zoo.cache import CACHE_SUBDIR, URL_SCHEMES, voice_cache_folder
from mlms_keras.zoo.pack import held_out_acoustic_metrics, pack_voice
from mlms_keras.zoo.registry import (
    ACOUSTIC_CONFIG_NAME,
    ACOUSTIC_WEIGHTS_NAME,
    DURATION_CONFIG_NAME,
    DURATION_WEIGHTS_NAME,
    METADATA_NAME,
    MODEL_FILES,
    REGISTRY_FORMAT,
    REGISTRY_FORMAT_VERSION,
    REGISTRY_NAME,
    VOICE_FORMAT,
    VOICE_FORMAT_VERSION,
    UnknownVoiceError,
    VoiceFilesError,
    VoiceHashError,
    list_voices,
    load_registry,
    sha256_of,
    write_registry,
    zoo_folder,
)
from mlms_keras.zoo.voice import Voice, load_voice, resolve_voice, save_voice

__all__ = [
    "ACOUSTIC_CONFIG_NAME",
    "ACOUSTIC_WEIGHTS_NAME",
    "CACHE_SUBDIR",
    "DURATION_CONFIG_NAME",
    "DURATION_WEIGHTS_NAME",
    "METADATA_NAME",
    "MODEL_FILES",
    "REGISTRY_FORMAT",
    "REGISTRY_FORMAT_VERSION",
    "REGISTRY_NAME",
    "URL_SCHEMES",
    "VOICE_FORMAT",
    "VOICE_FORMAT_VERSION",
    "UnknownVoiceError",
    "Voice",
    "VoiceFilesError",
    "VoiceHashError",
    "held_out_acoustic_metrics",
    "list_voices",
    "load_registry",
    "load_voice",
    "pack_voice",
    "resolve_voice",
    "save_voice",
    "sha256_of",
    "voice_cache_folder",
    "write_registry",
    "zoo_folder",
]
