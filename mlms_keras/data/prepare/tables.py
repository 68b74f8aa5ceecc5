"""The decisions `prepare_dataset` makes once per corpus: the language and speaker tables, splits and F0 ranges.

**Tables.** Language ids follow `corpus.json`'s order, then the package's language universe (training languages
first), then any other code in alphabetical order; speaker ids follow `corpus.json`, then the order of their
languages. So a model built for the first `U` languages / `S` speakers covers the training set.

**Splits.** `corpus.json`'s `splits` when present; otherwise per speaker the `dev_per_speaker` utterances
(default: 5 %, at least 1 and at most 100, none for a speaker with one utterance) whose crc32 of the id is
smallest.

**Sample rate.** A dataset has one sample rate (the model's frames are 5 ms of one rate). A corpus with several is
refused with the list of rates, or with `resample=True` (`mlms prepare --resample`) resampled down to the lowest
(`resampling_rate`; never up: an upsampled file has an empty top band that dominates the cepstral distance).

**F0 range** per speaker: `corpus.json`'s `f0_floor_hz` / `f0_ceil_hz` when present (teacher corpus), else
`vocoder.F0_RANGE_HZ` for the speaker's gender when the corpus gives one, else estimated from up to
`F0_ESTIMATE_FILES` of the speaker's files (a wide-range dio pass, `vocoder.estimate_f0_range`).
"""

from __future__ import annotations

import logging
import os
import zlib

import numpy as np
import soundfile

from mlms_keras import vocoder
from mlms_keras.languages import LANGUAGE_CODES, get_language

__all__ = [
    "F0_ESTIMATE_FILES",
    "default_dev_count",
    "f0_ranges",
    "split_items",
    "language_speaker_tables",
    "resampling_rate",
    "speaker_genders",
]

logger = logging.getLogger(__name__)

#: Files per speaker used to estimate an F0 range when the corpus gives none.
F0_ESTIMATE_FILES = 10


def default_dev_count(num_utterances: int) -> int:
    """Dev utterances for a speaker without corpus splits: 5 %, at least 1, at most 100 (0 for a lone one)."""
    if num_utterances < 2:
        return 0
    return int(min(100, max(1, round(0.05 * num_utterances))))


def _stable_key(utterance_id: str) -> int:
    return zlib.crc32(utterance_id.encode("utf-8"))


def split_items(items: list, corpus_index: dict | None, dev_per_speaker: int | None) -> dict[str, str]:
    """Utterance id -> `"train"` or `"dev"`, by the rule in the module docstring."""
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


def language_speaker_tables(items: list, corpus_index: dict | None) -> tuple[list[str], list[str], dict]:
    """`(languages, speakers, roles)`: the language codes and speaker names in id order, and code -> role."""
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


def speaker_genders(items: list, corpus_index: dict | None) -> dict[str, str]:
    """Speaker -> `"female"` or `"male"` where the corpus reader or `corpus.json` says it (the reader first)."""
    genders = {}
    for item in items:
        if item.gender in ("female", "male"):
            genders.setdefault(item.speaker, item.gender)
    corpus_speakers = {entry["id"]: entry for entry in (corpus_index or {}).get("speakers", [])}
    for name, entry in corpus_speakers.items():
        if entry.get("gender") in ("female", "male"):
            genders.setdefault(name, entry["gender"])
    return genders


def f0_ranges(items: list, corpus_index: dict | None, workers: int, progress: bool) -> dict:
    """Speaker -> `((floor, ceiling) Hz, source)`, by the rule in the module docstring.

    Args:
        items: the usable `CorpusItem`s.
        corpus_index: the parsed `corpus.json`, or `None`.
        workers: processes for the estimation pass.
        progress: show its progress bar.
    """
    corpus_speakers = {entry["id"]: entry for entry in (corpus_index or {}).get("speakers", [])}
    genders = speaker_genders(items, corpus_index)
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


def resampling_rate(items: list, resample: bool, corpus) -> int | None:
    """The rate every utterance is resampled to: `None` when the corpus has one rate, else the lowest (`resample`).

    Args:
        items: the usable `CorpusItem`s (headers are read; an unreadable file is left for extraction to report).
        resample: resample a corpus with several rates down to the lowest instead of refusing it.
        corpus: the corpus path, for the message.

    Raises:
        ValueError: several rates and not `resample`: the message lists each rate with its file count and a file.
    """
    files_by_rate: dict[int, list] = {}
    for item in items:
        try:
            rate = soundfile.info(str(item.wav_path)).samplerate
        except (RuntimeError, OSError):  # soundfile.LibsndfileError is a RuntimeError
            continue
        files_by_rate.setdefault(int(rate), []).append(item.wav_path)
    if len(files_by_rate) <= 1:
        return None
    lowest = min(files_by_rate)
    if resample:
        logger.info("resampling every file to %d Hz (rates in the corpus: %s)", lowest, sorted(files_by_rate))
        return lowest
    listing = "; ".join(
        f"{rate} Hz: {len(files)} file{'s' * (len(files) != 1)}, e.g. {files[0]}"
        for rate, files in sorted(files_by_rate.items())
    )
    raise ValueError(
        f"{corpus}: the corpus mixes sample rates ({listing}); a dataset has one rate. Pass --resample to resample "
        f"every file down to the lowest, {lowest} Hz, or resample the corpus to one rate yourself"
    )
