"""`prepare_dataset`: a corpus -> TFRecord shards + `dataset.json`, resumable, with bad items skipped and listed.

The steps: read the corpus (`mlms_keras.data.readers.read_corpus`), align the utterances that have no labels
(`align="auto"`, `mlms_keras.data.prepare.alignment.align_missing`), decide the tables,
splits and F0 ranges (`mlms_keras.data.prepare.tables`), plan the shards and extract and write the unfinished ones
(`mlms_keras.data.prepare.shards`), then, once every shard is done, combine the sidecars into `dataset.json`
(`mlms_keras.data.manifest` documents its fields) and write `feature_layout.json`.

Bad items are logged with their file name, skipped and listed in the final report and in `dataset.json`: lines
the corpus reader rejects (missing or unreadable wav), utterances without alignment, corrupt or truncated audio,
unparsable label files, alignments that disagree with the text, and frame-count mismatches.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mlms_keras import vocoder
from mlms_keras.data import teacher
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
from mlms_keras.data.prepare import tables
from mlms_keras.data.prepare.alignment import ALIGN_MODES, DEFAULT_MAX_FRAME_MISMATCH, align_missing
from mlms_keras.data.prepare.extraction import DEFAULT_MAX_SECONDS, combine_moments, moments_from_json
from mlms_keras.data.prepare.shards import (
    DEFAULT_UTTERANCES_PER_SHARD,
    SHARD_SUFFIX,
    ShardTask,
    extract_shards,
    is_finished,
    plan_shards,
    read_sidecar,
)
from mlms_keras.data.readers import read_corpus
from mlms_keras.frontend.layout import FeatureLayout, default_layout
from mlms_keras.utils.fileio import atomic_write_json, remove_leftover_temporaries
from mlms_keras.utils.jsonfile import read_versioned_json
from mlms_keras.utils.provenance import versions

__all__ = ["F0_METHODS", "PrepareOptions", "PrepareReport", "prepare_dataset"]

logger = logging.getLogger(__name__)

#: WORLD F0 estimators `prepare_dataset` accepts.
F0_METHODS = ("harvest", "dio")
#: Format of the shards' records; recorded in every shard's fingerprint.
RECORD_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class PrepareOptions:
    """The less common settings of `prepare_dataset` (`mlms prepare` builds one from its options).

    Attributes:
        dev_per_speaker: dev utterances per speaker when the corpus has no `corpus.json` splits (`None`: 5 %).
        layout: a `FeatureLayout` or a `feature_layout.json` path; `None`: the package's universe plus the
            corpus's languages.
        layout_from: instead of `layout`, a base `FeatureLayout` (or its JSON path) that the corpus's languages
            missing from it are appended to, in the corpus's language order: the layout of a voice being adapted
            (`mlms prepare --layout-from VOICE`), so that the dataset's features are the grown voice's features.
        max_frame_mismatch: see `fit_durations_to_frames`.
        language: language code for corpus layouts that do not say it (LJSpeech, CSS10).
        speaker: speaker id for single-speaker layouts.
        max_shards: extract at most this many unfinished shards, then stop without writing `dataset.json`
            (time-sliced runs; the next run resumes). `None`: all.
        command: the command line recorded in the manifest (default: a Python call).
        max_seconds: longest utterance kept, in seconds (`--max-seconds`; `None`: any); longer ones, and silent
            ones, are skipped with the reason (`extraction.check_usable_audio`).
        resample: a corpus with several sample rates is resampled down to the lowest (soxr, `--resample`);
            without it such a corpus is refused with the list of rates.
        align: `"auto"` aligns utterances without labels with the built-in aligner (labels in `alignments/`),
            `"never"` skips them.
    """

    dev_per_speaker: int | None = None
    layout: FeatureLayout | str | os.PathLike | None = None
    layout_from: FeatureLayout | str | os.PathLike | None = None
    max_frame_mismatch: int = DEFAULT_MAX_FRAME_MISMATCH
    language: str | None = None
    speaker: str | None = None
    max_shards: int | None = None
    command: str | None = None
    max_seconds: float | None = DEFAULT_MAX_SECONDS
    resample: bool = False
    align: str = "auto"


@dataclasses.dataclass
class PrepareReport:
    """What a `prepare_dataset` run did.

    Attributes:
        out_dir: the dataset folder.
        complete: every shard is done and `dataset.json` was written.
        shards_written: shards extracted in this run.
        shards_reused: finished shards kept from an earlier run.
        utterances: utterances in the dataset (all splits).
        skipped: dicts `{"id", "file", "stage", "reason"}` for every item left out.
        seconds: wall time of the extraction.
    """

    out_dir: str
    complete: bool
    shards_written: int
    shards_reused: int
    utterances: int
    skipped: list
    seconds: float


@dataclasses.dataclass(frozen=True)
class _CorpusTables:
    """The per-corpus decisions the manifest records (`mlms_keras.data.prepare.tables`)."""

    languages: list
    speakers: list
    roles: dict
    f0_ranges: dict
    reader_genders: dict


def prepare_dataset(
    corpus,
    out_dir,
    *,
    workers: int | None = None,
    f0_method: str = "harvest",
    utterances_per_shard: int = DEFAULT_UTTERANCES_PER_SHARD,
    progress: bool = True,
    options: PrepareOptions | None = None,
) -> PrepareReport:
    """Extract a corpus into TFRecord shards and `dataset.json` (resuming an interrupted run).

    Args:
        corpus: corpus folder (any layout `read_corpus` reads; utterances without alignment are aligned first
            unless `options.align` is `"never"`).
        out_dir: output folder (created); re-running with the same arguments resumes.
        workers: processes; `None` uses every core. 1 extracts in this process.
        f0_method: `"harvest"` (robust) or `"dio"` (about 20x faster).
        utterances_per_shard: shard size; a split of n utterances gets `ceil(n / utterances_per_shard)` shards.
        progress: show a tqdm bar (utterances).
        options: the other settings (`PrepareOptions`: dev split size, feature layout, frame-mismatch limit,
            language and speaker of single-speaker layouts, `max_shards`, the recorded command).

    Returns:
        `PrepareReport`.

    Raises:
        ValueError: a bad setting, a corpus without usable utterances, or a layout that misses its languages.
        FileNotFoundError: no corpus there.

    Example:
    >>> report = prepare_dataset("data/teacher", "data/prepared", workers=2, f0_method="dio")  # doctest: +SKIP
    >>> report.complete, report.utterances                                                      # doctest: +SKIP
    (True, 3533)
    """
    options = options or PrepareOptions()
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
    remove_leftover_temporaries(shard_dir, out_dir)  # left by an interrupted run
    command = options.command or (
        f"prepare_dataset({str(corpus)!r}, {str(out_dir)!r}, f0_method={f0_method!r}, "
        f"utterances_per_shard={utterances_per_shard}, dev_per_speaker={options.dev_per_speaker}, "
        f"max_frame_mismatch={options.max_frame_mismatch})"
    )

    items = read_corpus(corpus, language=options.language, speaker=options.speaker)
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
    if options.align not in ALIGN_MODES:
        raise ValueError(f"align must be one of {ALIGN_MODES}, got {options.align!r}.")
    unaligned = [item for item in items if item.alignment_path is None] if options.align == "auto" else []
    if unaligned:  # labels from the built-in aligner; items it cannot align stay without and are skipped below
        skipped.extend(align_missing(unaligned, out_dir, workers, progress))
        unaligned = {item.utterance_id for item in unaligned if item.alignment_path is None}
    for item in items:
        if item.utterance_id in unaligned:
            continue
        if item.alignment_path is None:
            reason = "no alignment (.lab or .TextGrid) beside the wav or in labels/; align the corpus first"
            logger.warning("skipping %s (%s): %s", item.utterance_id, item.wav_path, reason)
            skipped.append({"id": item.utterance_id, "file": str(item.wav_path), "stage": "read", "reason": reason})
        else:
            usable.append(item)
    if not usable:
        raise ValueError(f"{corpus}: no usable utterances (read {len(items)}, skipped {len(skipped)}); see the log.")

    languages, speakers, roles = tables.language_speaker_tables(usable, corpus_index)
    layout = _resolve_layout(options.layout, languages, options.layout_from)
    language_ids = {code: index for index, code in enumerate(languages)}
    speaker_ids = {name: index for index, name in enumerate(speakers)}
    split_of = tables.split_items(usable, corpus_index, options.dev_per_speaker)
    resample_to = tables.resampling_rate(usable, options.resample, corpus)  # refuses mixed rates without it
    f0_ranges = tables.f0_ranges(usable, corpus_index, workers, progress)
    settings = {
        "f0_method": f0_method,
        "max_frame_mismatch": int(options.max_frame_mismatch),
        "layout_fingerprint": layout.fingerprint,
        "record_format": RECORD_FORMAT,
        "max_seconds": options.max_seconds,
        "sample_rate_hz": resample_to,
    }
    tasks = plan_shards(usable, split_of, utterances_per_shard, f0_ranges, language_ids, speaker_ids, settings)
    planned = {task.name for task in tasks}
    for old in shard_dir.glob(f"*{SHARD_SUFFIX}*"):  # shards of another plan (other shard size or corpus)
        if old.name.removesuffix(".json") not in planned:
            old.unlink()
    pending = [task for task in tasks if not is_finished(shard_dir, task)]
    reused = len(tasks) - len(pending)
    if options.max_shards is not None:
        pending = pending[: options.max_shards]
    logger.info("%d shards: %d done earlier, %d to extract", len(tasks), reused, len(pending))

    bar = tqdm(total=sum(len(task.items) for task in pending), desc="prepare", unit="utt", disable=not progress)
    try:
        extract_shards(pending, shard_dir, layout, workers, bar)
    finally:
        bar.close()

    complete = all(is_finished(shard_dir, task) for task in tasks)
    utterance_count = 0
    if complete:
        corpus_tables = _CorpusTables(
            languages, speakers, roles, f0_ranges, {item.speaker: item.gender for item in usable if item.gender}
        )
        recorded_options = {
            **settings,
            "utterances_per_shard": utterances_per_shard,
            "dev_per_speaker": options.dev_per_speaker,
            "align": options.align,
        }
        if options.layout_from is not None:  # the base layout the corpus's languages were appended to
            recorded_options["layout_from"] = _resolve_layout(options.layout_from, []).fingerprint
        manifest = _build_manifest(
            out_dir, tasks, layout, corpus, corpus_index, corpus_tables, skipped, recorded_options, command
        )
        layout.save(out_dir / LAYOUT_NAME)
        atomic_write_json(out_dir / MANIFEST_NAME, manifest)
        skipped = manifest["skipped"]
        utterance_count = len(manifest["utterances"])
    return PrepareReport(
        str(out_dir), complete, len(pending), reused, utterance_count, skipped, time.perf_counter() - started
    )


def _load_corpus_index(corpus_path) -> dict | None:
    """The corpus's `corpus.json` (a teacher corpus index), or `None` when there is none."""
    root = Path(corpus_path)
    root = root.parent if root.is_file() else root
    index_file = root / "corpus.json"
    if not index_file.is_file():
        return None
    return read_versioned_json(
        index_file,
        teacher.CORPUS_FORMAT,
        teacher.CORPUS_FORMAT_VERSION,
        "teacher-corpus index",
        "rebuild the corpus with `mlms corpus build`, or remove corpus.json to prepare without it",
    )


def _resolve_layout(layout, languages: list, layout_from=None) -> FeatureLayout:
    if layout is not None and layout_from is not None:
        raise ValueError("give either a layout (--layout) or a base layout to grow (--layout-from), not both")
    if layout is None:
        layout = default_layout() if layout_from is None else layout_from
        if not isinstance(layout, FeatureLayout):
            layout = FeatureLayout.load(layout)
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


# The manifest ----------------------------------------------------------------------------------------------------
def _build_manifest(
    out_dir: Path,
    tasks: list[ShardTask],
    layout: FeatureLayout,
    corpus,
    corpus_index: dict | None,
    corpus_tables: _CorpusTables,
    skipped: list,
    recorded_options: dict,
    command: str,
) -> dict:
    """`dataset.json` from the finished shards' sidecars (see `mlms_keras.data.manifest` for its fields)."""
    shard_dir = out_dir / SHARD_FOLDER
    utterances, splits = {}, {}
    moments = {"linguistic": None, "acoustic": None}
    skipped = list(skipped)
    speaker_language = {}
    sample_rates = set()
    for task in tasks:  # shard order: the combined statistics do not depend on workers or resumes
        sidecar = read_sidecar(shard_dir, task.name)
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
            languages_spoken = speaker_language.setdefault(entry["speaker"], {})
            languages_spoken[entry["language"]] = languages_spoken.get(entry["language"], 0) + 1
            sample_rates.add(entry["sample_rate_hz"])
        skipped.extend(sidecar["skipped"])
        for key in moments:
            moments[key] = combine_moments(moments[key], moments_from_json(sidecar["moments"][key]))
    for split in splits.values():
        split["utterances"].sort()
    if moments["linguistic"] is None:
        raise ValueError(
            f"{corpus}: no training utterance could be prepared (see the skipped list in the log); "
            "statistics need the train split."
        )
    language_table = [
        {"code": code, "id": index, "role": corpus_tables.roles.get(code)}
        for index, code in enumerate(corpus_tables.languages)
    ]
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
        "options": recorded_options,
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
        "speakers": _speaker_table(corpus_tables, corpus_index, speaker_language),
        "splits": splits,
        "utterances": dict(sorted(utterances.items())),
        "normalisation": _normalisation(moments, layout),
        "skipped": skipped,
        "shard_fingerprints": {task.name: task.fingerprint for task in tasks},
        "shard_bytes": {task.name: (shard_dir / task.name).stat().st_size for task in tasks},
        "versions": versions(),
    }


def _normalisation(moments: dict, layout: FeatureLayout) -> dict:
    """The manifest's `normalisation`: train-split statistics and the effective `(mean, std)` the pipeline uses."""
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
    return normalisation


def _speaker_table(corpus_tables: _CorpusTables, corpus_index: dict | None, speaker_language: dict) -> list:
    """The manifest's `speakers`: id order, language, gender (`corpus.json`'s over the reader's) and F0 range.

    A speaker's language is its native one: `corpus.json`'s, else the language of most of its utterances
    (`speaker_language`: name -> {language: utterance count}), since a polyglot speaker also speaks others.
    """
    table = []
    for index, name in enumerate(corpus_tables.speakers):
        (floor, ceiling), source = corpus_tables.f0_ranges[name]
        gender = corpus_tables.reader_genders.get(name)
        counts = speaker_language.get(name, {})
        language = max(counts, key=lambda code: (counts[code], code)) if counts else None
        for entry in (corpus_index or {}).get("speakers", []):
            if entry["id"] == name:
                gender = entry.get("gender") or gender
                language = entry.get("language") or language
        table.append(
            {
                "name": name,
                "id": index,
                "language": language,
                "gender": gender,
                "f0_floor_hz": floor,
                "f0_ceil_hz": ceiling,
                "f0_range_source": source,
            }
        )
    return table
