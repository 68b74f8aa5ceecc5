"""The manifest of a prepared dataset (`dataset.json`) and the normalisation it defines.

`mlms prepare` writes `dataset.json` beside the TFRecord shards. It holds everything a trainer or a synthesizer
needs to use the shards and to undo the normalisation:

* `feature_layout`: the serialised `FeatureLayout` (also written as `feature_layout.json`), `input_dim`
  (frame-level linguistic dimension, `layout.frame_dimension`) and `output_dim` (49);
* `languages`: code -> id, and `speakers`: name -> id, language, gender, analysis F0 range and where that range
  came from. Ids follow the corpus order; for the teacher corpus (and for corpora without `corpus.json`, which are
  ordered by the package's language universe) training languages come first, so a model built for the first
  `U` languages / `S` speakers covers the training set and `add_language` / `add_speaker` hand out the ids the
  adaptation languages already have here;
* `splits`: per split the utterance ids, frame count and shard files; `utterances`: id -> split, language,
  speaker, frames, shard;
* `normalisation`: per-dimension mean and standard deviation of inputs and outputs, computed on the TRAIN split
  only (`raw_mean` / `raw_std`), and the `mean` / `std` the pipeline applies, `(x - mean) / std`.
  The two differ in three ways:

  1. Quinphone phoneme-identity inputs (`*_phoneme=*`, one-hot 0/1) are left unnormalised (mean 0, std 1):
     a language's zero padding of other languages' identities then stays exactly zero (paper section 2), a new
     language's identity dims (no training statistics) need none, and, because every real frame has exactly one
     `C_phoneme=...` set to 1, a normalised real frame is never an all-zero row, which the model's Masking layer
     would take for padding. Everything else (structure, stress, articulatory, position and duration features) is
     normalised to zero mean and unit variance, as the paper says.
  2. The V/UV output (dim 41) is left unnormalised: a 0/1 target already has unit scale, the 0.5 threshold of
     `vocoder.AcousticFeatures.from_vector` then applies to the model output directly, and its squared error is
     not weighted 1/var (about 4x) against the other 48 outputs.
  3. A dimension whose training std is below `MIN_STD` (constant in training, e.g. a feature no training
     utterance uses) is only centred (std 1), so that unseen values at test time are not blown up.

* `skipped`: utterances left out (reader, audio, label or alignment problems), each with its file and reason;
* `shard_fingerprints`: shard file -> the fingerprint of its content's sources (utterance ids, the size and
  modification time of every wav and label file, the extraction settings; `mlms_keras.data.prepare.shards`), so
  that `Manifest.fingerprint` changes when any source file does (datasets prepared before this field have none);
* `shard_bytes`: shard file -> its size in bytes when `mlms prepare` finished it. `Manifest.shard_paths` checks
  every size before a reader opens the shard, because TensorFlow reads a truncated GZIP shard as a shorter one
  without an error (datasets prepared before this field are not checked);
* `versions`, `command` and `created_utc`: what made it, and when.

`Manifest.fingerprint` identifies the dataset's content: a hash of everything above except `versions`, `command`,
`created_utc` and `shard_bytes` (sizes follow from the content), so a dataset prepared again from the same files
keeps it. Training runs, adaptations and sweeps record it, and a resume on a dataset with another fingerprint is
refused (`mlms_keras.training.resume`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from mlms_keras.frontend.layout import FeatureLayout
from mlms_keras.utils.jsonfile import read_versioned_json

__all__ = [
    "LAYOUT_NAME",
    "MANIFEST_FORMAT",
    "MANIFEST_FORMAT_VERSION",
    "MANIFEST_NAME",
    "MIN_STD",
    "PROVENANCE_FIELDS",
    "SHARD_FOLDER",
    "UNNORMALISED_OUTPUT_DIMS",
    "Manifest",
    "effective_normalisation",
    "is_identity_feature",
]

MANIFEST_NAME = "dataset.json"
LAYOUT_NAME = "feature_layout.json"
SHARD_FOLDER = "shards"
MANIFEST_FORMAT = "mlms-prepared-dataset"
MANIFEST_FORMAT_VERSION = 1
#: Training std below this: the dimension is treated as constant and only centred (see the module docstring).
MIN_STD = 1e-4
#: Output dimension left unnormalised: the binary V/UV flag (`mlms_keras.vocoder.VUV`).
UNNORMALISED_OUTPUT_DIMS = (41,)
#: Fields of `dataset.json` that say how and when it was made, not what it holds: outside `Manifest.fingerprint`.
PROVENANCE_FIELDS = ("versions", "command", "created_utc")
#: Fields outside `Manifest.fingerprint`: provenance, and the shard sizes (derived from the content; outside so that
#: datasets prepared before the field was added keep their fingerprint).
_NOT_FINGERPRINTED = (*PROVENANCE_FIELDS, "shard_bytes")


def is_identity_feature(name: str) -> bool:
    """True for quinphone phoneme-identity features (`LL_phoneme=a` ... `RR_phoneme=a`): one-hot, unnormalised."""
    return "_phoneme=" in name


def effective_normalisation(
    raw_mean, raw_std, unnormalised_dims, min_std: float = MIN_STD
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) the pipeline applies, from training statistics (see the module docstring).

    Args:
        raw_mean, raw_std: (dims,) training mean and standard deviation.
        unnormalised_dims: indices that get mean 0 and std 1.
        min_std: stds below this become 1 (the dimension is only centred).

    Returns:
        (mean, std): two (dims,) float64 arrays; every std >= min_std.
    """
    mean = np.asarray(raw_mean, np.float64).copy()
    std = np.asarray(raw_std, np.float64).copy()
    std[std < min_std] = 1.0
    index = np.asarray(list(unnormalised_dims), np.int64)
    mean[index] = 0.0
    std[index] = 1.0
    return mean, std


class Manifest:
    """A prepared dataset's `dataset.json`, with its tables and normalisation statistics as arrays.

    Args:
        folder: the prepared dataset folder.
        data: the parsed JSON.

    Load one with `Manifest.load(path)` (the folder or its `dataset.json`).

    Attributes:
        folder: Path of the dataset folder.
        data: the raw JSON dict.
        input_mean, input_std: (input_dim,) float32, the input normalisation `(x - mean) / std`.
        output_mean, output_std: (49,) float32, the output normalisation; de-normalise predictions with
            `y * output_std + output_mean` (`denormalise_outputs`), e.g. for `AcousticMetricsCallback`.

    Example:
        >>> info = Manifest.load("data/prepared")                  # doctest: +SKIP
        >>> config = MLMSConfig.preset("small", input_dim=info.input_dim,
        ...     num_languages=info.num_languages, num_speakers=info.num_speakers)  # doctest: +SKIP
    """

    def __init__(self, folder, data: dict) -> None:
        self.folder = Path(folder)
        self.data = data
        normalisation = data["normalisation"]
        self.input_mean = np.asarray(normalisation["inputs"]["mean"], np.float32)
        self.input_std = np.asarray(normalisation["inputs"]["std"], np.float32)
        self.output_mean = np.asarray(normalisation["outputs"]["mean"], np.float32)
        self.output_std = np.asarray(normalisation["outputs"]["std"], np.float32)
        self._layout = None

    @classmethod
    def load(cls, path) -> Manifest:
        """Read `dataset.json` from a prepared dataset folder (or the file itself); errors name the file."""
        path = Path(path)
        file = path if path.is_file() else path / MANIFEST_NAME
        if not file.is_file():
            raise FileNotFoundError(
                f"{file}: no prepared-dataset manifest. Run `mlms prepare CORPUS {path}` first (an interrupted "
                "run writes dataset.json only when every shard is done; re-run the same command to finish it)."
            )
        data = read_versioned_json(
            file, MANIFEST_FORMAT, MANIFEST_FORMAT_VERSION, "prepared-dataset manifest", "re-run `mlms prepare`"
        )
        return cls(file.parent, data)

    # Tables ---------------------------------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """The dataset's content fingerprint (hex, 16 digits): `dataset.json` without its provenance fields."""
        content = {key: value for key, value in self.data.items() if key not in _NOT_FINGERPRINTED}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()[:16]

    @property
    def input_dim(self) -> int:
        """Frame-level linguistic dimension D (the model's `input_dim`)."""
        return int(self.data["input_dim"])

    @property
    def output_dim(self) -> int:
        """Acoustic dimension (49)."""
        return int(self.data["output_dim"])

    @property
    def languages(self) -> dict:
        """Language code -> id (int)."""
        return {entry["code"]: int(entry["id"]) for entry in self.data["languages"]}

    @property
    def speakers(self) -> dict:
        """Speaker name -> dict(id, language, gender, f0_floor_hz, f0_ceil_hz, f0_range_source)."""
        return {entry["name"]: dict(entry) for entry in self.data["speakers"]}

    @property
    def num_languages(self) -> int:
        """U: rows of the language table (the model's `num_languages` for all of them)."""
        return len(self.data["languages"])

    @property
    def num_speakers(self) -> int:
        """S: rows of the speaker table (the model's `num_speakers` for all of them)."""
        return len(self.data["speakers"])

    def language_id(self, code: str) -> int:
        """The id of language `code`; ValueError listing the dataset's languages otherwise."""
        table = self.languages
        if code not in table:
            raise ValueError(f"language {code!r} is not in {self.folder}; its languages are {sorted(table)}.")
        return table[code]

    def speaker_id(self, name: str) -> int:
        """The id of speaker `name`; ValueError listing the dataset's speakers otherwise."""
        table = self.speakers
        if name not in table:
            raise ValueError(f"speaker {name!r} is not in {self.folder}; its speakers are {sorted(table)}.")
        return int(table[name]["id"])

    @property
    def layout(self) -> FeatureLayout:
        """The `FeatureLayout` the linguistic features were built with."""
        if self._layout is None:
            self._layout = FeatureLayout.from_config(self.data["feature_layout"])
        return self._layout

    # Splits ---------------------------------------------------------------------------------------------
    @property
    def split_names(self) -> tuple:
        """The splits present, e.g. ("train", "dev")."""
        return tuple(self.data["splits"])

    def _split(self, split: str) -> dict:
        if split not in self.data["splits"]:
            raise ValueError(f"split {split!r} is not in {self.folder}; it has {list(self.data['splits'])}.")
        return self.data["splits"][split]

    def utterance_ids(self, split: str) -> list:
        """Ids of the split's utterances (sorted)."""
        return list(self._split(split)["utterances"])

    def shard_paths(self, split: str) -> list:
        """Absolute paths of the split's shard files, in shard order, each checked against its recorded size.

        Raises:
            FileNotFoundError: a shard is missing.
            ValueError: a shard's size differs from `shard_bytes` (truncated or replaced), naming the file.
        """
        paths = [self.folder / SHARD_FOLDER / name for name in self._split(split)["shards"]]
        recorded = self.data.get("shard_bytes", {})
        for path in paths:
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path}: shard listed in {self.folder / MANIFEST_NAME} is missing; "
                    "run `mlms prepare` again into a new folder."
                )
            expected, size = recorded.get(path.name), path.stat().st_size
            if expected is not None and size != expected:
                raise ValueError(
                    f"{path}: {size} bytes, but `mlms prepare` wrote {expected}; the shard is truncated "
                    "or was replaced: run `mlms prepare` again into a new folder."
                )
        return [str(path) for path in paths]

    def num_frames(self, split: str) -> int:
        """Total frames of the split."""
        return int(self._split(split)["frames"])

    @property
    def utterances(self) -> dict:
        """Utterance id -> dict(split, language, speaker, frames, shard)."""
        return self.data["utterances"]

    @property
    def skipped(self) -> list:
        """Items left out: dicts with `id`, `file`, `stage` and `reason`."""
        return list(self.data["skipped"])

    # Normalisation ----------------------------------------------------------------------------------------
    def normalise_inputs(self, linguistic) -> np.ndarray:
        """(..., input_dim) raw linguistic features -> normalised float32."""
        return ((np.asarray(linguistic, np.float32) - self.input_mean) / self.input_std).astype(np.float32)

    def normalise_outputs(self, acoustic) -> np.ndarray:
        """(..., 49) raw acoustic features -> normalised float32."""
        return ((np.asarray(acoustic, np.float32) - self.output_mean) / self.output_std).astype(np.float32)

    def denormalise_outputs(self, normalised) -> np.ndarray:
        """(..., 49) model outputs -> vocoder units (`to_vector` layout), float32."""
        return (np.asarray(normalised, np.float32) * self.output_std + self.output_mean).astype(np.float32)

    def __repr__(self) -> str:
        counts = {split: len(self.utterance_ids(split)) for split in self.split_names}
        return (
            f"Manifest({str(self.folder)!r}, input_dim={self.input_dim}, languages={list(self.languages)}, "
            f"speakers={self.num_speakers}, utterances={counts})"
        )
