"""`mlms prepare`: WORLD analysis + frame-level linguistic features of a corpus into TFRecord shards.

For every utterance with an alignment (HTS ``.lab`` or ``.TextGrid``) it runs WORLD analysis
(`mlms_keras.vocoder.analyze`) and builds frame-level linguistic features (`features_for_label_file` +
`expand_to_frames`), aligned frame-exactly, and writes both into GZIP-compressed TFRecord shards with a manifest,
``dataset.json`` (see `mlms_keras.data.manifest`). `mlms_keras.data.load_dataset` reads them.

**Frame alignment rule** (`fit_durations_to_frames`). WORLD gives ``num_frames_for(samples, rate)`` =
``floor(duration / 5 ms) + 1`` frames; the alignment gives phoneme durations from ``segments_to_frames``
(boundaries rounded to the nearest 5 ms frame), covering frames ``[start_frame, start_frame + sum(durations))``.
The acoustic side is never changed; the linguistic side is fitted to it: frames before the first segment join the
first phoneme (``durations[0] += start_frame``), then a shortfall is added to the last phoneme and an excess is
taken from the last phonemes (backwards, a phoneme may drop to 0 frames). The frame features (coarse-coded
position, duration) are computed after the fit, so they describe the frames actually present. The number of frames
moved, ``start_frame + |difference|``, must be at most ``max_frame_mismatch`` (default 5 frames = 25 ms); beyond
that the label file does not describe this wav and the utterance is skipped with `FrameCountMismatchError`. For
the teacher corpus the labels end at the wav's last sample, so the last phoneme (silence) gains 0 or 1 frame.

**Shards.** Per split, utterances are sorted by id and utterance ``k`` goes to shard ``k % num_shards``,
``num_shards = ceil(n / utterances_per_shard)``: deterministic, and every shard mixes speakers and lengths.
Worker processes (spawned, one per core by default) extract utterances in plan order; the main process
serialises them and writes each shard ``shards/<split>-<index>-of-<count>.tfrecord.gz`` through a temporary
file and ``os.replace`` (so TensorFlow is imported once, not in every worker; at most ``4 x workers``
utterances are in flight, so memory stays bounded; the single writer, which GZIP-compresses a few MB per
utterance, caps the rate at some tens of utterances per second on many cores), then a sidecar
``<shard>.json`` (its utterances, skipped items and training moments) marks it done. Its ``fingerprint`` covers
the utterance ids and every option that changes the features, so a re-run with the same options skips finished
shards (resume) and a run with other options rewrites them. ``dataset.json`` is written last, only when every
shard is done.

**Record** (one ``tf.train.Example`` per utterance): ``utterance_id`` (bytes), ``language`` / ``speaker`` (int64
ids of the manifest's tables), ``language_code`` / ``speaker_name`` (bytes), ``num_frames`` (int64),
``linguistic`` (raw little-endian float32 bytes, ``num_frames x input_dim``), ``acoustic`` (float32 bytes,
``num_frames x 49``), ``num_phonemes`` (int64), ``phoneme_linguistic`` (float32 bytes, ``num_phonemes x D_phone``,
sil/pau rows included) and ``durations`` (int64 list, frames per phoneme after the fit; for duration models).
All features are stored unnormalised.

**F0 range** per speaker: ``corpus.json``'s ``f0_floor_hz`` / ``f0_ceil_hz`` when present (teacher corpus), else
`vocoder.F0_RANGE_HZ` for the speaker's gender when the corpus gives one, else estimated from up to
``F0_ESTIMATE_FILES`` of the speaker's files (a wide-range dio pass, `vocoder.estimate_f0_range`).

**Splits.** ``corpus.json``'s ``splits`` when present; otherwise per speaker the ``dev_per_speaker`` utterances
(default: 5 %, at least 1 and at most 100, none for a speaker with one utterance) whose crc32 of the id is
smallest.

Bad items are logged with their file name, skipped and listed in the final report and in ``dataset.json``:
lines the corpus reader rejects (missing or unreadable wav), utterances without alignment, corrupt or truncated
audio, unparsable label files, alignments that disagree with the text, and frame-count mismatches.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import hashlib
import itertools
import json
import logging
import math
import multiprocessing
import os
import platform
import shlex
import sys
import zlib
from pathlib import Path

import numpy as np

from mlms_keras.data.manifest import (
    LAYOUT_NAME,
    MANIFEST_FORMAT,
    MANIFEST_FORMAT_VERSION,
    MANIFEST_NAME,
    MIN_STD,
    SHARD_FOLDER,
    UNNORMALISED_OUTPUT_DIMS,
    effective_normalisation,
    is_identity_feature,
)
from mlms_keras.data.records import serialize_example
from mlms_keras.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)

DEFAULT_UTTERANCES_PER_SHARD = 200
DEFAULT_MAX_FRAME_MISMATCH = 5
F0_ESTIMATE_FILES = 10
SHARD_SUFFIX = ".tfrecord.gz"
F0_METHODS = ("harvest", "dio")


class FrameCountMismatchError(ValueError):
    """The alignment and the wav's WORLD analysis differ by more frames than allowed."""


def fit_durations_to_frames(
    durations_frames, start_frame, num_frames, max_frame_mismatch=DEFAULT_MAX_FRAME_MISMATCH, name="utterance"
):
    """Fit phoneme durations (frames) to ``num_frames`` acoustic frames by the rule in the module docstring.

    Args:
        durations_frames: (phonemes,) non-negative ints, the alignment's frames per phoneme.
        start_frame: frame where the alignment's first segment starts (>= 0).
        num_frames: WORLD's frame count for the wav (`vocoder.num_frames_for`).
        max_frame_mismatch: most frames the rule may move.
        name: named in errors.

    Returns:
        (phonemes,) int64 durations summing to ``num_frames``.

    Raises:
        FrameCountMismatchError: more than ``max_frame_mismatch`` frames would move.
    """
    durations = np.asarray(durations_frames, np.int64).copy()
    if durations.ndim != 1 or durations.size == 0:
        raise ValueError(f"{name}: durations_frames must be a non-empty (phonemes,) array, got {durations.shape}.")
    aligned_frames = int(start_frame) + int(durations.sum())
    difference = int(num_frames) - aligned_frames
    moved = int(start_frame) + abs(difference)
    if moved > max_frame_mismatch:
        raise FrameCountMismatchError(
            f"{name}: the alignment covers {aligned_frames} frames (starting at frame {start_frame}) but WORLD "
            f"analysis of the wav gives {num_frames}; fitting would move {moved} frames, more than "
            f"max_frame_mismatch={max_frame_mismatch}. The label file does not describe this wav (wrong file, "
            "trimmed audio or another sample rate): re-align it, or raise --max-frame-mismatch."
        )
    durations[0] += int(start_frame)
    if difference > 0:
        durations[-1] += difference
    index = durations.size - 1
    while difference < 0:
        taken = min(int(durations[index]), -difference)
        durations[index] -= taken
        difference += taken
        index -= 1
    return durations


@dataclasses.dataclass
class PreparedUtterance:
    """Features of one utterance, aligned frame-exactly.

    Attributes:
        linguistic: (frames, input_dim) float32 frame-level linguistic features (unnormalised).
        acoustic: (frames, 49) float32 WORLD features (`AcousticFeatures.to_vector` layout).
        phoneme_linguistic: (phonemes, D_phone) float32 phoneme-level features (sil/pau rows included).
        durations: (phonemes,) int64 frames per phoneme, summing to frames.
        sample_rate: Hz of the analysed audio.
    """

    linguistic: np.ndarray
    acoustic: np.ndarray
    phoneme_linguistic: np.ndarray
    durations: np.ndarray
    sample_rate: int


def extract_utterance(
    item, layout, f0_range_hz, f0_method="harvest", max_frame_mismatch=DEFAULT_MAX_FRAME_MISMATCH
) -> PreparedUtterance:
    """WORLD analysis and frame-level linguistic features of one `CorpusItem`, aligned frame-exactly.

    Args:
        item: a `mlms_keras.data.readers.CorpusItem` with an ``alignment_path``.
        layout: the `FeatureLayout`.
        f0_range_hz: (floor, ceiling) in Hz for the speaker.
        f0_method: "harvest" or "dio".
        max_frame_mismatch: see `fit_durations_to_frames`.

    Raises:
        ValueError (and subclasses) naming the file: no alignment, corrupt audio, unparsable labels, text and
        alignment disagree, too large a frame mismatch, a frame without phoneme identity.
    """
    from mlms_keras import vocoder
    from mlms_keras.frontend import linguistic
    from mlms_keras.vocoder import audio

    if item.alignment_path is None:
        raise ValueError(
            f"{item.wav_path}: no alignment (.lab or .TextGrid) beside the wav or in labels/; align the "
            "corpus first (e.g. with the Montreal Forced Aligner)."
        )
    aligned = linguistic.features_for_label_file(
        item.text, item.language, item.alignment_path, layout, utterance_id=item.utterance_id
    )
    wave, sample_rate = audio.load(item.wav_path)
    features = vocoder.analyze(
        wave, sample_rate, f0_method=f0_method, f0_floor=f0_range_hz[0], f0_ceil=f0_range_hz[1], name=str(item.wav_path)
    )
    durations = fit_durations_to_frames(
        aligned.durations_frames,
        aligned.start_frame,
        features.num_frames,
        max_frame_mismatch,
        name=f"{item.utterance_id} ({item.alignment_path})",
    )
    frames = linguistic.expand_to_frames(aligned.phoneme_features, durations)
    acoustic = features.to_vector()
    if frames.shape[0] != acoustic.shape[0]:  # the rule guarantees this; a failure is a bug, not bad data
        raise RuntimeError(f"{item.utterance_id}: {frames.shape[0]} linguistic vs {acoustic.shape[0]} acoustic frames")
    identity = _centre_identity_mask(layout, item.language)
    if not np.all(frames[:, : layout.dimension][:, identity].any(axis=1)):
        raise ValueError(
            f"{item.alignment_path}: a frame has no phoneme identity; the layout does not cover the "
            f"phonemes of {item.language!r}."
        )
    return PreparedUtterance(frames, acoustic, aligned.phoneme_features.astype(np.float32), durations, int(sample_rate))


def _centre_identity_mask(layout, language):
    names = layout.feature_names
    return np.array([name.startswith("C_phoneme=") for name in names]) & layout.language_mask(language)


# Moments (Chan, Golub & LeVeque's pairwise update): exact to float64 rounding, combinable in any grouping.
def _moments_of(frames):
    frames = np.asarray(frames, np.float64)
    mean = frames.mean(axis=0)
    return {"count": int(frames.shape[0]), "mean": mean, "m2": ((frames - mean) ** 2).sum(axis=0)}


def _combine_moments(first, second):
    if first is None or first["count"] == 0:
        return second
    if second is None or second["count"] == 0:
        return first
    count = first["count"] + second["count"]
    delta = second["mean"] - first["mean"]
    return {
        "count": count,
        "mean": first["mean"] + delta * (second["count"] / count),
        "m2": first["m2"] + second["m2"] + delta**2 * (first["count"] * second["count"] / count),
    }


def _moments_to_json(moments):
    if moments is None:
        return None
    return {"count": moments["count"], "mean": moments["mean"].tolist(), "m2": moments["m2"].tolist()}


def _moments_from_json(data):
    if data is None:
        return None
    return {"count": int(data["count"]), "mean": np.asarray(data["mean"]), "m2": np.asarray(data["m2"])}


# Records -------------------------------------------------------------------------------------------------------
# Planning ------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class ShardTask:
    """One shard to write (picklable): its file name, split, utterances and the options that shape its content."""

    name: str
    split: str
    items: list
    f0_ranges: dict
    language_ids: dict
    speaker_ids: dict
    options: dict
    fingerprint: str


def _stable_key(utterance_id):
    return zlib.crc32(utterance_id.encode("utf-8"))


def default_dev_count(num_utterances):
    """Dev utterances for a speaker without corpus splits: 5 %, at least 1, at most 100 (0 for a lone one)."""
    if num_utterances < 2:
        return 0
    return int(min(100, max(1, round(0.05 * num_utterances))))


def _split_items(items, corpus_index, dev_per_speaker):
    if corpus_index and corpus_index.get("splits"):
        split_of = {uid: split for split, ids in corpus_index["splits"].items() for uid in ids}
        return {item.utterance_id: split_of.get(item.utterance_id, "train") for item in items}
    by_speaker = {}
    for item in items:
        by_speaker.setdefault(item.speaker, []).append(item.utterance_id)
    split_of = {}
    for ids in by_speaker.values():
        count = default_dev_count(len(ids)) if dev_per_speaker is None else min(dev_per_speaker, len(ids) - 1)
        dev = set(sorted(ids, key=lambda uid: (_stable_key(uid), uid))[: max(count, 0)])
        split_of.update({uid: ("dev" if uid in dev else "train") for uid in ids})
    return split_of


def _tables(items, corpus_index):
    from mlms_keras.languages import LANGUAGE_CODES, get_language

    present_languages = {item.language for item in items}
    present_speakers = {item.speaker for item in items}
    if corpus_index:
        language_order = [entry["code"] for entry in corpus_index.get("languages", [])]
        speaker_order = [entry["id"] for entry in corpus_index.get("speakers", [])]
    else:
        language_order, speaker_order = [], []
    language_order += [code for code in LANGUAGE_CODES if code not in language_order]
    language_order += sorted(present_languages - set(language_order))
    languages = [code for code in language_order if code in present_languages]
    speaker_language = {item.speaker: item.language for item in items}
    speaker_order = [name for name in speaker_order if name in present_speakers]
    speaker_order += sorted(
        present_speakers - set(speaker_order), key=lambda name: (languages.index(speaker_language[name]), name)
    )
    roles = {}
    for code in languages:
        try:
            roles[code] = get_language(code).role
        except ValueError:
            roles[code] = None
    return languages, speaker_order, roles


def _f0_ranges(items, corpus_index, f0_method, workers, progress):
    """Speaker -> ((floor, ceiling) Hz, source)."""
    from mlms_keras import vocoder

    corpus_speakers = {entry["id"]: entry for entry in (corpus_index or {}).get("speakers", [])}
    genders = {}
    for item in items:
        if item.gender in ("female", "male"):
            genders.setdefault(item.speaker, item.gender)
    for name, entry in corpus_speakers.items():
        if entry.get("gender") in ("female", "male"):
            genders.setdefault(name, entry["gender"])
    ranges, to_estimate = {}, {}
    for item in items:
        speaker = item.speaker
        if speaker in ranges or speaker in to_estimate:
            if speaker in to_estimate and len(to_estimate[speaker]) < F0_ESTIMATE_FILES:
                to_estimate[speaker].append(item.wav_path)
            continue
        entry = corpus_speakers.get(speaker, {})
        if entry.get("f0_floor_hz") and entry.get("f0_ceil_hz"):
            ranges[speaker] = ((float(entry["f0_floor_hz"]), float(entry["f0_ceil_hz"])), "corpus.json")
        elif speaker in genders:
            ranges[speaker] = (tuple(vocoder.F0_RANGE_HZ[genders[speaker]]), f"gender default ({genders[speaker]})")
        else:
            to_estimate[speaker] = [item.wav_path]
    if to_estimate:
        wide = vocoder.F0_RANGE_HZ["unknown"]
        paths = [path for files in to_estimate.values() for path in files]
        results, _ = vocoder.analyze_files(
            paths, workers=workers, progress=progress, f0_method="dio", f0_floor=wide[0], f0_ceil=wide[1]
        )
        for speaker, files in to_estimate.items():
            voiced = [
                np.exp(results[os.fspath(p)].lf0[results[os.fspath(p)].vuv > 0.5])
                for p in files
                if os.fspath(p) in results
            ]
            try:
                ranges[speaker] = (
                    vocoder.estimate_f0_range(np.concatenate(voiced) if voiced else []),
                    f"estimated from {len(voiced)} files",
                )
            except ValueError as error:
                logger.warning("speaker %s: cannot estimate an F0 range (%s); using %s", speaker, error, wide)
                ranges[speaker] = (tuple(wide), "wide default (estimate failed)")
    return ranges


def _fingerprint(payload):
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def _plan_shards(items, split_of, utterances_per_shard, f0_ranges, language_ids, speaker_ids, options):
    tasks = []
    for split in ("train", "dev"):
        split_items = sorted(
            (item for item in items if split_of[item.utterance_id] == split), key=lambda item: item.utterance_id
        )
        if not split_items:
            continue
        count = math.ceil(len(split_items) / utterances_per_shard)
        for index in range(count):
            shard_items = split_items[index::count]
            name = f"{split}-{index:05d}-of-{count:05d}{SHARD_SUFFIX}"
            speakers = sorted({item.speaker for item in shard_items})
            ranges = {speaker: list(f0_ranges[speaker][0]) for speaker in speakers}
            payload = {
                "items": [
                    [
                        item.utterance_id,
                        str(item.wav_path),
                        str(item.alignment_path),
                        item.text,
                        item.language,
                        item.speaker,
                    ]
                    for item in shard_items
                ],
                "f0_ranges": ranges,
                "language_ids": language_ids,
                "speaker_ids": speaker_ids,
                "options": options,
            }
            tasks.append(
                ShardTask(name, split, shard_items, ranges, language_ids, speaker_ids, options, _fingerprint(payload))
            )
    return tasks


def _sidecar_path(shard_dir, name):
    return Path(shard_dir) / f"{name}.json"


def _is_finished(shard_dir, task):
    sidecar = _sidecar_path(shard_dir, task.name)
    if not sidecar.is_file() or not (Path(shard_dir) / task.name).is_file():
        return False
    try:
        return json.loads(sidecar.read_text(encoding="utf-8")).get("fingerprint") == task.fingerprint
    except ValueError:
        return False


# Workers -------------------------------------------------------------------------------------------------------
# Workers only extract features (numpy, WORLD, espeak-ng); this process serialises and writes the shards, so
# TensorFlow is imported once, not once per worker (about 400 MB and several seconds each).
_WORKER = {}


def _worker_init(layout_config):
    from mlms_keras.frontend.linguistic import FeatureLayout

    _WORKER["layout"] = FeatureLayout.from_config(layout_config)


def _extract_task(arguments):
    """Worker: one utterance -> ("ok", item, PreparedUtterance, moments or None) or ("skip", item, entry)."""
    item, split, f0_range, options = arguments
    try:
        prepared = extract_utterance(
            item, _WORKER["layout"], f0_range, options["f0_method"], options["max_frame_mismatch"]
        )
    except Exception as error:  # one bad utterance must not stop the run
        reason = f"{type(error).__name__}: {error}"
        logger.warning("skipping %s (%s): %s", item.utterance_id, item.wav_path, reason)
        return (
            "skip",
            item,
            {
                "id": item.utterance_id,
                "file": str(item.wav_path),
                "alignment": str(item.alignment_path) if item.alignment_path else None,
                "stage": "extract",
                "reason": reason,
            },
        )
    moments = None
    if split == "train":
        moments = {"linguistic": _moments_of(prepared.linguistic), "acoustic": _moments_of(prepared.acoustic)}
    return "ok", item, prepared, moments


class _ShardWriter:
    """Writes one shard's records in plan order into a temporary file; `finish` renames it and writes the sidecar."""

    def __init__(self, task, shard_dir):
        import tensorflow as tf

        self.task = task
        self.shard_dir = Path(shard_dir)
        self.temporary = self.shard_dir / f".{task.name}.tmp"
        self.writer = tf.io.TFRecordWriter(str(self.temporary), tf.io.TFRecordOptions(compression_type="GZIP"))
        self.utterances, self.skipped = [], []
        self.moments = {"linguistic": None, "acoustic": None}
        self.remaining = len(task.items)

    def add(self, outcome):
        kind, item = outcome[0], outcome[1]
        if kind == "skip":
            self.skipped.append(outcome[2])
        else:
            prepared, moments = outcome[2], outcome[3]
            task = self.task
            self.writer.write(
                serialize_example(
                    item.utterance_id,
                    task.language_ids[item.language],
                    task.speaker_ids[item.speaker],
                    item.language,
                    item.speaker,
                    prepared,
                )
            )
            self.utterances.append(
                {
                    "id": item.utterance_id,
                    "language": item.language,
                    "speaker": item.speaker,
                    "frames": int(prepared.linguistic.shape[0]),
                    "sample_rate_hz": prepared.sample_rate,
                }
            )
            if moments is not None:
                for key in self.moments:
                    self.moments[key] = _combine_moments(self.moments[key], moments[key])
        self.remaining -= 1

    def finish(self):
        self.writer.close()
        os.replace(self.temporary, self.shard_dir / self.task.name)
        sidecar = {
            "fingerprint": self.task.fingerprint,
            "split": self.task.split,
            "utterances": self.utterances,
            "skipped": self.skipped,
            "moments": {key: _moments_to_json(value) for key, value in self.moments.items()},
        }
        atomic_write_text(_sidecar_path(self.shard_dir, self.task.name), json.dumps(sidecar))


def _ordered_map(pool, function, arguments, window):
    """``pool.imap`` with at most ``window`` tasks in flight: results come in input order (shards fill one after
    another), and finished utterances (a few MB each) cannot pile up in memory if the writer falls behind."""
    in_flight = collections.deque()
    remaining = iter(arguments)
    for argument in itertools.islice(remaining, window):
        in_flight.append(pool.apply_async(function, (argument,)))
    while in_flight:
        result = in_flight.popleft().get()
        for argument in itertools.islice(remaining, 1):
            in_flight.append(pool.apply_async(function, (argument,)))
        yield result


def _extract_shards(pending, shard_dir, layout, workers, bar):
    """Extract the pending shards' utterances (in a pool when workers > 1) and write each shard when complete."""
    arguments = [
        (item, task.split, tuple(task.f0_ranges[item.speaker]), task.options) for task in pending for item in task.items
    ]
    pool = None
    if workers > 1 and len(arguments) > 1:
        # Spawned, not forked: this process may hold TensorFlow threads and a used libespeak-ng.
        pool = multiprocessing.get_context("spawn").Pool(
            min(workers, len(arguments)), initializer=_worker_init, initargs=(layout.get_config(),)
        )
        outcomes = _ordered_map(pool, _extract_task, arguments, window=4 * workers)
    else:
        _worker_init(layout.get_config())
        outcomes = map(_extract_task, arguments)
    try:
        for task in pending:
            writer = _ShardWriter(task, shard_dir)
            while writer.remaining:
                writer.add(next(outcomes))
                bar.update(1)
            writer.finish()
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


# Driver --------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class PrepareReport:
    """What a `prepare_dataset` run did.

    Attributes:
        out_dir: the dataset folder.
        complete: every shard is done and ``dataset.json`` was written.
        shards_written: shards extracted in this run; shards_reused: finished shards kept from an earlier run.
        utterances: utterances in the dataset (all splits).
        skipped: dicts ``{"id", "file", "stage", "reason"}`` for every item left out.
        seconds: wall time of the extraction.
    """

    out_dir: str
    complete: bool
    shards_written: int
    shards_reused: int
    utterances: int
    skipped: list
    seconds: float


def _versions():
    import importlib.metadata

    import mlms_keras
    from mlms_keras.frontend import espeak

    versions = {
        "mlms_keras": mlms_keras.__version__,
        "python": platform.python_version(),
        "espeak_ng": espeak.espeak_version(),
    }
    for package in ("tensorflow", "keras", "numpy", "pyworld", "pysptk", "soundfile"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _load_corpus_index(corpus_path):
    root = Path(corpus_path)
    root = root.parent if root.is_file() else root
    index_file = root / "corpus.json"
    if not index_file.is_file():
        return None
    try:
        return json.loads(index_file.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"{index_file}: not valid JSON ({error}); rebuild the corpus index.") from error


def _resolve_layout(layout, languages):
    from mlms_keras.frontend.linguistic import FeatureLayout, default_layout

    if layout is None:
        layout = default_layout()
        for code in languages:
            layout = layout.add_language(code)
        return layout
    if not isinstance(layout, FeatureLayout):
        layout = FeatureLayout.load(layout)
    missing = [code for code in languages if code not in layout.languages]
    if missing:
        raise ValueError(
            f"the feature layout covers {list(layout.languages)} but the corpus has {missing}; pass a "
            "layout that includes them (FeatureLayout.add_language) or leave --layout out."
        )
    return layout


def prepare_dataset(
    corpus,
    out_dir,
    workers=None,
    f0_method="harvest",
    utterances_per_shard=DEFAULT_UTTERANCES_PER_SHARD,
    dev_per_speaker=None,
    layout=None,
    max_frame_mismatch=DEFAULT_MAX_FRAME_MISMATCH,
    language=None,
    speaker=None,
    max_shards=None,
    progress=True,
    command=None,
) -> PrepareReport:
    """Extract a corpus into TFRecord shards and ``dataset.json`` (resuming an interrupted run).

    Args:
        corpus: corpus folder (any layout `read_corpus` reads; alignments are required).
        out_dir: output folder (created); re-running with the same arguments resumes.
        workers: processes; None uses every core. 1 extracts in this process.
        f0_method: "harvest" (robust) or "dio" (about 20x faster).
        utterances_per_shard: shard size; a split of n utterances gets ``ceil(n / utterances_per_shard)`` shards.
        dev_per_speaker: dev utterances per speaker when the corpus has no ``corpus.json`` splits (None: 5 %).
        layout: a `FeatureLayout` or a ``feature_layout.json`` path; None: the package's universe plus the
            corpus's languages.
        max_frame_mismatch: see `fit_durations_to_frames`.
        language, speaker: for corpus layouts that do not say them (LJSpeech, CSS10).
        max_shards: extract at most this many unfinished shards, then stop without writing ``dataset.json``
            (time-sliced runs; the next run resumes). None: all.
        progress: show a tqdm bar (utterances).
        command: the command line recorded in the manifest (default: a Python call).

    Returns:
        `PrepareReport`.
    """
    import time

    from tqdm import tqdm

    from mlms_keras.data.readers import read_corpus

    if f0_method not in F0_METHODS:
        raise ValueError(f"f0_method must be one of {F0_METHODS}, got {f0_method!r}.")
    if utterances_per_shard < 1:
        raise ValueError(f"utterances_per_shard must be >= 1, got {utterances_per_shard}.")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}.")
    workers = workers or os.cpu_count() or 1
    started = time.perf_counter()
    out_dir = Path(out_dir)
    shard_dir = out_dir / SHARD_FOLDER
    shard_dir.mkdir(parents=True, exist_ok=True)
    for stale in list(shard_dir.glob(".*.tmp")) + list(out_dir.glob(".*.tmp")):  # left by an interrupted run
        stale.unlink()
    command = command or (
        f"prepare_dataset({str(corpus)!r}, {str(out_dir)!r}, f0_method={f0_method!r}, "
        f"utterances_per_shard={utterances_per_shard}, dev_per_speaker={dev_per_speaker}, "
        f"max_frame_mismatch={max_frame_mismatch})"
    )

    items = read_corpus(corpus, language=language, speaker=speaker)
    skipped = [
        {
            "id": None,
            "file": str(entry.path) + (f":{entry.line_number}" if entry.line_number else ""),
            "stage": "read",
            "reason": entry.reason,
        }
        for entry in items.skipped
    ]
    corpus_index = _load_corpus_index(corpus)
    usable = []
    for item in items:
        if item.alignment_path is None:
            reason = "no alignment (.lab or .TextGrid) beside the wav or in labels/; align the corpus first"
            logger.warning("skipping %s (%s): %s", item.utterance_id, item.wav_path, reason)
            skipped.append({"id": item.utterance_id, "file": str(item.wav_path), "stage": "read", "reason": reason})
        else:
            usable.append(item)
    if not usable:
        raise ValueError(f"{corpus}: no usable utterances (read {len(items)}, skipped {len(skipped)}); see the log.")

    languages, speakers, roles = _tables(usable, corpus_index)
    layout = _resolve_layout(layout, languages)
    language_ids = {code: index for index, code in enumerate(languages)}
    speaker_ids = {name: index for index, name in enumerate(speakers)}
    split_of = _split_items(usable, corpus_index, dev_per_speaker)
    f0_ranges = _f0_ranges(usable, corpus_index, f0_method, workers, progress)
    options = {
        "f0_method": f0_method,
        "max_frame_mismatch": int(max_frame_mismatch),
        "layout_fingerprint": layout.fingerprint,
        "record_format": 1,
    }
    tasks = _plan_shards(usable, split_of, utterances_per_shard, f0_ranges, language_ids, speaker_ids, options)
    planned = {task.name for task in tasks}
    for old in shard_dir.glob(f"*{SHARD_SUFFIX}*"):  # shards of another plan (other shard size or corpus)
        if old.name.removesuffix(".json") not in planned:
            old.unlink()
    pending = [task for task in tasks if not _is_finished(shard_dir, task)]
    reused = len(tasks) - len(pending)
    if max_shards is not None:
        pending = pending[:max_shards]
    logger.info("%d shards: %d done earlier, %d to extract", len(tasks), reused, len(pending))

    bar = tqdm(total=sum(len(task.items) for task in pending), desc="prepare", unit="utt", disable=not progress)
    try:
        _extract_shards(pending, shard_dir, layout, workers, bar)
    finally:
        bar.close()

    complete = all(_is_finished(shard_dir, task) for task in tasks)
    utterance_count = 0
    if complete:
        manifest = _build_manifest(
            out_dir,
            tasks,
            layout,
            languages,
            speakers,
            roles,
            f0_ranges,
            corpus,
            corpus_index,
            skipped,
            options,
            utterances_per_shard,
            dev_per_speaker,
            command,
            {item.speaker: item.gender for item in usable if item.gender},
        )
        layout.save(out_dir / LAYOUT_NAME)
        atomic_write_text(out_dir / MANIFEST_NAME, json.dumps(manifest, indent=1, ensure_ascii=False))
        skipped = manifest["skipped"]
        utterance_count = len(manifest["utterances"])
    return PrepareReport(
        str(out_dir), complete, len(pending), reused, utterance_count, skipped, time.perf_counter() - started
    )


def _build_manifest(
    out_dir,
    tasks,
    layout,
    languages,
    speakers,
    roles,
    f0_ranges,
    corpus,
    corpus_index,
    skipped,
    options,
    utterances_per_shard,
    dev_per_speaker,
    command,
    genders,
):
    from mlms_keras import vocoder

    shard_dir = out_dir / SHARD_FOLDER
    utterances, splits = {}, {}
    moments = {"linguistic": None, "acoustic": None}
    skipped = list(skipped)
    speaker_language = {}
    sample_rates = set()
    for task in tasks:  # shard order: the combined statistics do not depend on workers or resumes
        sidecar = json.loads(_sidecar_path(shard_dir, task.name).read_text(encoding="utf-8"))
        split = splits.setdefault(task.split, {"utterances": [], "frames": 0, "shards": []})
        split["shards"].append(task.name)
        for entry in sidecar["utterances"]:
            utterances[entry["id"]] = {
                "split": task.split,
                "language": entry["language"],
                "speaker": entry["speaker"],
                "frames": entry["frames"],
                "shard": task.name,
            }
            split["utterances"].append(entry["id"])
            split["frames"] += entry["frames"]
            speaker_language[entry["speaker"]] = entry["language"]
            sample_rates.add(entry["sample_rate_hz"])
        skipped.extend(sidecar["skipped"])
        for key in moments:
            moments[key] = _combine_moments(moments[key], _moments_from_json(sidecar["moments"][key]))
    for split in splits.values():
        split["utterances"].sort()
    if moments["linguistic"] is None:
        raise ValueError(
            f"{corpus}: no training utterance could be prepared (see the skipped list in the log); "
            "statistics need the train split."
        )
    identity_dims = [index for index, name in enumerate(layout.frame_feature_names) if is_identity_feature(name)]
    normalisation = {"computed_on": "train", "min_std": MIN_STD}
    for key, unnormalised, reason in (
        ("inputs", identity_dims, "quinphone phoneme-identity one-hots (see mlms_keras.data.manifest)"),
        ("outputs", list(UNNORMALISED_OUTPUT_DIMS), "binary V/UV flag (see mlms_keras.data.manifest)"),
    ):
        stats = moments["linguistic" if key == "inputs" else "acoustic"]
        raw_std = np.sqrt(stats["m2"] / stats["count"])
        mean, std = effective_normalisation(stats["mean"], raw_std, unnormalised)
        normalisation[key] = {
            "frames": stats["count"],
            "mean": mean.tolist(),
            "std": std.tolist(),
            "raw_mean": stats["mean"].tolist(),
            "raw_std": raw_std.tolist(),
            "unnormalised": unnormalised,
            "unnormalised_reason": reason,
            "centred_only": [int(i) for i in np.flatnonzero(raw_std < MIN_STD) if i not in set(unnormalised)],
        }
    language_table = [{"code": code, "id": index, "role": roles.get(code)} for index, code in enumerate(languages)]
    speaker_table = []
    for index, name in enumerate(speakers):
        (floor, ceiling), source = f0_ranges[name]
        gender = genders.get(name)
        for entry in (corpus_index or {}).get("speakers", []):
            if entry["id"] == name and entry.get("gender"):
                gender = entry["gender"]
        speaker_table.append(
            {
                "name": name,
                "id": index,
                "language": speaker_language.get(name),
                "gender": gender,
                "f0_floor_hz": floor,
                "f0_ceil_hz": ceiling,
                "f0_range_source": source,
            }
        )
    return {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_FORMAT_VERSION,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "corpus": {
            "path": str(Path(corpus).absolute()),
            "format": (corpus_index or {}).get("format"),
            "preset": (corpus_index or {}).get("preset"),
        },
        "options": {**options, "utterances_per_shard": utterances_per_shard, "dev_per_speaker": dev_per_speaker},
        "feature_layout": layout.get_config(),
        "input_dim": layout.frame_dimension,
        "output_dim": vocoder.FEATURE_DIM,
        "acoustic_layout": {
            "mcep": [0, vocoder.NUM_MCEP],
            "lf0": vocoder.LF0,
            "vuv": vocoder.VUV,
            "bap": [vocoder.NUM_MCEP + 2, vocoder.FEATURE_DIM],
            "frame_period_ms": vocoder.FRAME_PERIOD_MS,
        },
        "sample_rates_hz": sorted(sample_rates),
        "shard_compression": "GZIP",
        "languages": language_table,
        "speakers": speaker_table,
        "splits": splits,
        "utterances": dict(sorted(utterances.items())),
        "normalisation": normalisation,
        "skipped": skipped,
        "versions": _versions(),
    }


# CLI -----------------------------------------------------------------------------------------------------------
def _command_line(args) -> str:
    """The `mlms prepare` command with every option spelled out (recorded in the manifest)."""
    words = [
        "mlms",
        "prepare",
        args.corpus,
        args.out,
        "--f0-method",
        args.f0_method,
        "--utterances-per-shard",
        str(args.utterances_per_shard),
        "--max-frame-mismatch",
        str(args.max_frame_mismatch),
    ]
    for flag, value in (
        ("--workers", args.workers),
        ("--dev-per-speaker", args.dev_per_speaker),
        ("--layout", args.layout),
        ("--language", args.language),
        ("--speaker", args.speaker),
    ):
        if value is not None:
            words += [flag, str(value)]
    return shlex.join(words)


def _run_prepare(args) -> int:
    command = _command_line(args)
    try:
        report = prepare_dataset(
            args.corpus,
            args.out,
            workers=args.workers,
            f0_method=args.f0_method,
            utterances_per_shard=args.utterances_per_shard,
            dev_per_speaker=args.dev_per_speaker,
            layout=args.layout,
            max_frame_mismatch=args.max_frame_mismatch,
            language=args.language,
            speaker=args.speaker,
            max_shards=args.max_shards,
            progress=not args.quiet,
            command=command,
        )
    except (ValueError, FileNotFoundError) as error:
        print(f"mlms prepare: {error}", file=sys.stderr)
        return 2
    print(
        f"{report.out_dir}: {report.shards_written} shards written, {report.shards_reused} reused, "
        f"{report.utterances} utterances, {len(report.skipped)} skipped, {report.seconds:.1f} s"
    )
    for entry in report.skipped:
        print(f"  skipped {entry.get('id') or ''} {entry['file']}: {entry['reason']}", file=sys.stderr)
    if not report.complete:
        print("incomplete (--max-shards): re-run the same command to finish", file=sys.stderr)
        return 3
    return 1 if report.skipped else 0


def add_cli_parser(subparsers) -> None:
    """Register `mlms prepare`."""
    parser = subparsers.add_parser(
        "prepare",
        help="extract WORLD + linguistic features of a corpus into TFRecord shards",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Extract features of an aligned corpus into GZIP TFRecord shards plus dataset.json (feature layout,\n"
            "language/speaker tables, splits, train-split normalisation statistics). Re-running the same command\n"
            "resumes an interrupted run, skipping finished shards. Bad utterances are skipped and listed.\n\n"
            "example:\n  mlms corpus build data/teacher --preset small --workers 2\n"
            "  mlms prepare data/teacher data/prepared --workers 2 --f0-method harvest"
        ),
    )
    parser.add_argument("corpus", help="corpus folder (teacher corpus, LJSpeech, M-AILABS or CSS10 layout)")
    parser.add_argument("out", help="output folder for shards/ and dataset.json")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    parser.add_argument(
        "--f0-method",
        choices=F0_METHODS,
        default="harvest",
        help="WORLD F0 estimator (default harvest; dio is ~20x faster)",
    )
    parser.add_argument("--utterances-per-shard", type=int, default=DEFAULT_UTTERANCES_PER_SHARD)
    parser.add_argument(
        "--dev-per-speaker",
        type=int,
        default=None,
        help="dev utterances per speaker when the corpus has no corpus.json splits (default 5%%)",
    )
    parser.add_argument("--layout", default=None, help="feature_layout.json to build with (default: package universe)")
    parser.add_argument(
        "--max-frame-mismatch",
        type=int,
        default=DEFAULT_MAX_FRAME_MISMATCH,
        help="most frames the alignment may be stretched or trimmed to fit the wav (default 5)",
    )
    parser.add_argument("--language", default=None, help="language code for layouts without one (LJSpeech, CSS10)")
    parser.add_argument("--speaker", default=None, help="speaker id for single-speaker layouts")
    parser.add_argument("--max-shards", type=int, default=None, help="stop after this many shards (resume later)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run_prepare)
