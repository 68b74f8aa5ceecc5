"""Shard planning and writing: which utterances go to which shard, extraction in workers, one writer, sidecars.

**Plan.** Per split, utterances are sorted by id and utterance `k` goes to shard `k % num_shards`,
`num_shards = ceil(n / utterances_per_shard)`: deterministic, and every shard mixes speakers and lengths.

**Extraction and writing.** Worker processes (spawned, one per core by default) extract utterances in plan order (a
worker that dies, e.g. to the out-of-memory killer, is noticed: its utterances are retried once, then reported;
`mlms_keras.utils.workers`); the main process serialises them and writes each shard
`shards/<split>-<index>-of-<count>.tfrecord.gz` through a temporary file and `os.replace`. So TensorFlow is imported
once, not in every worker; at most `4 x workers` utterances are in flight, so memory stays bounded; the single
writer, which GZIP-compresses a few MB per utterance, caps the rate at some tens of utterances per second on many
cores.

**Resume.** After a shard, a sidecar `<shard>.json` (its utterances, skipped items and training moments) marks it
done. Its `fingerprint` covers the utterance ids, texts and paths, the size and modification time (ns) of every wav
and label file, and every setting that changes the features, so a re-run with the same settings on the same files
skips finished shards, and a run with other settings or edited (or replaced) files rewrites them. Sizes and times
rather than content hashes: a resume stats the corpus instead of reading it all again, and an edit that keeps both
the size and the nanosecond time of a file is not one a user makes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
from pathlib import Path

from mlms_keras.data.prepare.extraction import (
    PreparedUtterance,
    combine_moments,
    extract_utterance,
    frame_moments,
    moments_to_json,
)
from mlms_keras.data.records import serialize_example
from mlms_keras.frontend.layout import FeatureLayout
from mlms_keras.utils.fileio import atomic_write_json
from mlms_keras.utils.workers import SurvivingWorkers

__all__ = [
    "DEFAULT_UTTERANCES_PER_SHARD",
    "SHARD_SUFFIX",
    "WORKER_DIED",
    "ShardTask",
    "ShardWriter",
    "extract_shards",
    "is_finished",
    "plan_shards",
    "read_sidecar",
    "sidecar_path",
]

logger = logging.getLogger(__name__)

DEFAULT_UTTERANCES_PER_SHARD = 200
SHARD_SUFFIX = ".tfrecord.gz"


@dataclasses.dataclass
class ShardTask:
    """One shard to write (picklable): its file name, split, utterances and the settings that shape its content.

    Attributes:
        name: the shard's file name, `<split>-<index>-of-<count>.tfrecord.gz`.
        split: `"train"` or `"dev"`.
        items: its `CorpusItem`s, in plan order.
        f0_ranges: speaker -> `[floor, ceiling]` Hz.
        language_ids, speaker_ids: the manifest's tables (code or name -> id).
        settings: the extraction settings (`f0_method`, `max_frame_mismatch`, `layout_fingerprint`,
            `record_format`).
        fingerprint: hash of all of the above; a finished shard with another fingerprint is rewritten.
    """

    name: str
    split: str
    items: list
    f0_ranges: dict
    language_ids: dict
    speaker_ids: dict
    settings: dict
    fingerprint: str


def _fingerprint(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def _file_state(path) -> list | None:
    """`[size in bytes, modification time in ns]` of a source file (`None`: no file), for the shard fingerprint."""
    if path is None:
        return None
    try:
        status = os.stat(path)
    except OSError:
        return None  # unreadable: extraction reports it
    return [status.st_size, status.st_mtime_ns]


def plan_shards(
    items: list,
    split_of: dict,
    utterances_per_shard: int,
    f0_ranges: dict,
    language_ids: dict,
    speaker_ids: dict,
    settings: dict,
) -> list[ShardTask]:
    """The shards of a dataset by the plan in the module docstring: train shards, then dev shards.

    Args:
        items: the usable `CorpusItem`s.
        split_of: utterance id -> split.
        utterances_per_shard: shard size.
        f0_ranges: speaker -> `((floor, ceiling), source)`.
        language_ids, speaker_ids: the manifest's tables.
        settings: the extraction settings recorded in each task (and its fingerprint).
    """
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
                        _file_state(item.wav_path),
                        _file_state(item.alignment_path),
                    ]
                    for item in shard_items
                ],
                "f0_ranges": ranges,
                "language_ids": language_ids,
                "speaker_ids": speaker_ids,
                "options": settings,
            }
            tasks.append(
                ShardTask(name, split, shard_items, ranges, language_ids, speaker_ids, settings, _fingerprint(payload))
            )
    return tasks


def sidecar_path(shard_dir, name: str) -> Path:
    """The sidecar of shard `name`: `<shard>.json` beside it."""
    return Path(shard_dir) / f"{name}.json"


def read_sidecar(shard_dir, name: str) -> dict:
    """A finished shard's sidecar: `fingerprint`, `split`, `utterances`, `skipped` and `moments`."""
    return json.loads(sidecar_path(shard_dir, name).read_text(encoding="utf-8"))


def is_finished(shard_dir, task: ShardTask) -> bool:
    """The shard file and its sidecar exist and the sidecar has the task's fingerprint."""
    if not sidecar_path(shard_dir, task.name).is_file() or not (Path(shard_dir) / task.name).is_file():
        return False
    try:
        return read_sidecar(shard_dir, task.name).get("fingerprint") == task.fingerprint
    except ValueError:
        return False


# Workers ---------------------------------------------------------------------------------------------------------
# Workers only extract features (numpy, WORLD, espeak-ng); this process serialises and writes the shards, so
# TensorFlow is imported once, not once per worker (about 400 MB and several seconds each).
_WORKER = {}


def _worker_init(layout_config: dict) -> None:
    _WORKER["layout"] = FeatureLayout.from_config(layout_config)


def _skipped(item, reason: str) -> tuple:
    """The outcome of an utterance left out: `("skip", item, entry)`, logged with its file and reason."""
    logger.warning("skipping %s (%s): %s", item.utterance_id, item.wav_path, reason)
    entry = {
        "id": item.utterance_id,
        "file": str(item.wav_path),
        "alignment": str(item.alignment_path) if item.alignment_path else None,
        "stage": "extract",
        "reason": reason,
    }
    return "skip", item, entry


def _extract_task(arguments):
    """Worker: one utterance -> `("ok", item, PreparedUtterance, moments or None)` or `("skip", item, entry)`."""
    item, split, f0_range, settings = arguments
    try:
        prepared = extract_utterance(
            item,
            _WORKER["layout"],
            f0_range,
            settings["f0_method"],
            settings["max_frame_mismatch"],
            max_seconds=settings.get("max_seconds"),
            sample_rate_hz=settings.get("sample_rate_hz"),
        )
    except Exception as error:  # one bad utterance must not stop the run
        return _skipped(item, f"{type(error).__name__}: {error}")
    moments = None
    if split == "train":
        moments = {"linguistic": frame_moments(prepared.linguistic), "acoustic": frame_moments(prepared.acoustic)}
    return "ok", item, prepared, moments


class ShardWriter:
    """Writes one shard's records in plan order into a temporary file; `finish` renames it and writes the sidecar.

    Args:
        task: the shard.
        shard_dir: the `shards/` folder.
    """

    def __init__(self, task: ShardTask, shard_dir):
        import tensorflow as tf

        self.task = task
        self.shard_dir = Path(shard_dir)
        self.temporary = self.shard_dir / f".{task.name}.tmp"
        self.writer = tf.io.TFRecordWriter(str(self.temporary), tf.io.TFRecordOptions(compression_type="GZIP"))
        self.utterances, self.skipped = [], []
        self.moments = {"linguistic": None, "acoustic": None}
        self.remaining = len(task.items)

    def add(self, outcome: tuple) -> None:
        """Adds one worker outcome (`_extract_task`'s result) of the next utterance in plan order."""
        kind, item = outcome[0], outcome[1]
        if kind == "skip":
            self.skipped.append(outcome[2])
        else:
            prepared: PreparedUtterance = outcome[2]
            moments = outcome[3]
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
                    self.moments[key] = combine_moments(self.moments[key], moments[key])
        self.remaining -= 1

    def finish(self) -> None:
        """Closes the shard, moves it into place, then writes its sidecar (which marks it done)."""
        self.writer.close()
        os.replace(self.temporary, self.shard_dir / self.task.name)
        sidecar = {
            "fingerprint": self.task.fingerprint,
            "split": self.task.split,
            "utterances": self.utterances,
            "skipped": self.skipped,
            "moments": {key: moments_to_json(value) for key, value in self.moments.items()},
        }
        atomic_write_json(sidecar_path(self.shard_dir, self.task.name), sidecar, indent=None)


#: Why an utterance whose worker died twice is left out (the reason recorded in the skipped list).
WORKER_DIED = (
    "the worker process extracting it died twice (killed, e.g. by the out-of-memory killer, or crashed); "
    "check the file, or prepare with fewer --workers or more memory"
)


def _worker_died(argument) -> tuple:
    return _skipped(argument[0], WORKER_DIED)


def extract_shards(pending: list[ShardTask], shard_dir, layout: FeatureLayout, workers: int, bar) -> None:
    """Extract the pending shards' utterances (in a pool when workers > 1) and write each shard when complete.

    Args:
        pending: the shards to write, in order.
        shard_dir: the `shards/` folder.
        layout: the `FeatureLayout`.
        workers: processes; 1 extracts in this process.
        bar: a tqdm bar, advanced once per utterance.
    """
    arguments = [
        (item, task.split, tuple(task.f0_ranges[item.speaker]), task.settings)
        for task in pending
        for item in task.items
    ]
    pool = None
    if workers > 1 and len(arguments) > 1:
        pool = SurvivingWorkers(
            _extract_task,
            min(workers, len(arguments)),
            on_death=_worker_died,
            initializer=_worker_init,
            initargs=(layout.get_config(),),
            window=4 * workers,
            description="utterances",
        )
        outcomes = pool.map(arguments)
    else:
        _worker_init(layout.get_config())
        outcomes = map(_extract_task, arguments)
    try:
        for task in pending:
            writer = ShardWriter(task, shard_dir)
            while writer.remaining:
                writer.add(next(outcomes))
                bar.update(1)
            writer.finish()
    finally:
        if pool is not None:
            pool.close()
