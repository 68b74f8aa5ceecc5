"""`align_corpus`: every utterance of a corpus -> HTS labels + TextGrids, on all cores, resumable, with a report.

**Files** (in `out_dir`, default `<corpus>/labels`, where `mlms prepare` finds them): `<id>.lab` (HTS, written
last: it marks the utterance done), `<id>.TextGrid` (`phones` and `words` tiers), `alignment_report.json`, and
`.align/`: `scores/<id>.json` (each utterance's score, for the report of a resumed run) and `model/` (the
corpus-adapted model). Every file is written atomically; a killed run resumes where it stopped and gives the same
labels (`tests/align/test_corpus.py` kills one with SIGKILL).

**Corpus-level pass** (`corpus_pass="auto"`: on when the corpus has at least `corpus_pass_min_utterances`): the
shipped model aligns the corpus, the acoustic model is fine-tuned on those alignments (utterances with good
scores only), and the corpus is aligned again with the adapted model, which is saved in `.align/model/` before
any label is written (so a resumed run uses the same model).

**Bad items** are skipped and reported with the reason, never fatal: empty or silent audio, unreadable audio, a
text the frontend refuses, audio far too short for its phones. **Outliers**: an utterance whose score is more than
`outlier_z` robust standard deviations (median absolute deviation) below the corpus median is flagged as a likely
transcript error.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mlms_keras.align.aligner import align_prepared, prepare_input, write_alignment
from mlms_keras.align.model import CONFIG_NAME, AlignerModel
from mlms_keras.align.shipped import SHIPPED_NAME, load_aligner
from mlms_keras.align.training import FitOptions, fit_model, targets_from_units
from mlms_keras.data.readers import CorpusItem, read_corpus
from mlms_keras.utils.fileio import atomic_write_json
from mlms_keras.utils.jsonfile import read_versioned_json
from mlms_keras.utils.provenance import versions
from mlms_keras.utils.workers import SurvivingWorkers
from mlms_keras.vocoder import audio

__all__ = ["REPORT_FORMAT", "REPORT_NAME", "AlignOptions", "AlignReport", "align_corpus", "align_items"]

REPORT_NAME = "alignment_report.json"
REPORT_FORMAT = "mlms-alignment-report"
REPORT_FORMAT_VERSION = 1
SCORE_FORMAT = "mlms-alignment-score"
WORK_FOLDER = ".align"


@dataclasses.dataclass(frozen=True)
class AlignOptions:
    """Settings of `align_corpus`.

    Attributes:
        language: language code for corpus layouts that do not say it (LJSpeech, CSS10).
        speaker: speaker id for single-speaker layouts.
        workers: processes (`None`: every core; 1 aligns in this process).
        model: `None` (the shipped aligner) or a model folder (`AlignerModel.save`).
        corpus_pass: `"auto"`, `"always"` or `"never"` (see the module docstring).
        corpus_pass_min_utterances: corpus size from which `"auto"` runs the corpus-level pass.
        corpus_rounds: align-and-fine-tune rounds of the corpus-level pass.
        fine_tune: `FitOptions` of each round.
        textgrid: also write TextGrids.
        outlier_z: robust z-score below which an utterance is flagged.
        progress: show a progress bar.
    """

    language: str | None = None
    speaker: str | None = None
    workers: int | None = None
    model: str | os.PathLike | None = None
    corpus_pass: str = "auto"
    corpus_pass_min_utterances: int = 40
    corpus_rounds: int = 1
    fine_tune: FitOptions = FitOptions(epochs=4, learning_rate=5e-4)
    textgrid: bool = True
    outlier_z: float = 3.5
    progress: bool = True


@dataclasses.dataclass
class AlignReport:
    """What `align_corpus` did.

    Attributes:
        out_dir: the label folder.
        aligned: utterances aligned in this run.
        reused: utterances already aligned by an earlier run.
        skipped: `{"id", "file", "stage", "reason"}` per item left out.
        outliers: ids flagged as likely transcript errors.
        corpus_pass: what the corpus-level pass did (`{"ran": bool, ...}`).
        audio_seconds: audio aligned in this run.
        seconds: wall time.
        labels: utterance id -> its `.lab` path, for every aligned utterance.
    """

    out_dir: str
    aligned: int
    reused: int
    skipped: list
    outliers: list
    corpus_pass: dict
    audio_seconds: float
    seconds: float
    labels: dict


_WORKER_MODEL: AlignerModel | None = None


def _init_worker(model: AlignerModel) -> None:
    global _WORKER_MODEL
    _WORKER_MODEL = model


def _align_task(arguments):
    """One utterance in a worker: `(id, result dict or None, skip reason or None)`."""
    item, out_dir, write, collect = arguments
    try:
        wave, rate = audio.load(item.wav_path)
        phones, features = prepare_input(wave, rate, item.text, item.language, name=str(item.wav_path))
        duration_s = wave.size / rate
        alignment = align_prepared(phones, features, duration_s, _WORKER_MODEL)
    except (ValueError, OSError) as error:
        return item.utterance_id, None, f"{type(error).__name__}: {error}"
    result = {"score": alignment.score, "duration_s": duration_s, "phones": len(phones), "wav": str(item.wav_path)}
    if write:
        work = Path(out_dir) / WORK_FOLDER / "scores"
        atomic_write_json(work / f"{item.utterance_id}.json", {"format": SCORE_FORMAT, "format_version": 1, **result})
        textgrid = Path(out_dir) / f"{item.utterance_id}.TextGrid" if write == "both" else None
        write_alignment(alignment, Path(out_dir) / f"{item.utterance_id}.lab", textgrid)
    if collect:
        result["example"] = (features, targets_from_units(alignment.path.units, features.shape[0], phones))
    return item.utterance_id, result, None


#: Why an utterance whose worker died twice is left out.
WORKER_DIED = (
    "the worker process aligning it died twice (killed, e.g. by the out-of-memory killer, or crashed); "
    "check the file, or align with fewer --workers or more memory"
)


def _worker_died(task) -> tuple:
    return task[0].utterance_id, None, WORKER_DIED


def _run(items, model, out_dir, write, collect, workers, progress, description):
    tasks = [(item, str(out_dir), write, collect) for item in items]
    bar = tqdm(total=len(tasks), desc=description, unit="utt", disable=not progress)
    results = []
    try:
        if workers <= 1 or len(tasks) <= 1:
            _init_worker(model)
            for task in tasks:
                results.append(_align_task(task))
                bar.update()
        else:
            with SurvivingWorkers(
                _align_task,
                workers,
                on_death=_worker_died,
                initializer=_init_worker,
                initargs=(model,),
                description="utterances",
            ) as pool:
                for result in pool.map(tasks):
                    results.append(result)
                    bar.update()
    finally:
        bar.close()
    return results


def _robust_z(scores: np.ndarray) -> np.ndarray:
    median = np.median(scores)
    spread = 1.4826 * np.median(np.abs(scores - median))
    return (scores - median) / max(spread, 1e-3)


def _corpus_pass(items, model, out_dir, options, workers) -> tuple[AlignerModel, dict]:
    """Fine-tune `model` on its own alignments of `items` (or load the result of an earlier run)."""
    folder = out_dir / WORK_FOLDER / "model"
    if (folder / CONFIG_NAME).is_file():
        return AlignerModel.load(folder), {"ran": True, "resumed": True, "model": str(folder)}
    started = time.perf_counter()
    record = {"ran": True, "resumed": False, "rounds": []}
    for round_number in range(options.corpus_rounds):
        results = _run(items, model, out_dir, None, True, workers, options.progress, f"align pass {round_number + 1}")
        good = [result for _, result, reason in results if reason is None]
        if len(good) < 2:
            return model, {"ran": False, "reason": "too few utterances could be aligned for the corpus-level pass"}
        z = _robust_z(np.array([result["score"] for result in good]))
        examples = [result["example"] for result, value in zip(good, z) if value > -2.0]
        model, losses = fit_model(examples, model=model, options=options.fine_tune)
        record["rounds"].append({"utterances": len(examples), "losses": losses})
    model.metadata["corpus_pass"] = {"corpus_utterances": len(items), "rounds": record["rounds"]}
    model.save(folder)
    record.update(model=str(folder), seconds=round(time.perf_counter() - started, 1))
    return model, record


def align_items(
    items: list[CorpusItem], out_dir, options: AlignOptions | None = None, read_skipped: list | None = None
) -> AlignReport:
    """`align_corpus` for corpus items already read (the `mlms prepare --align auto` hook); `read_skipped` are the
    reader's skipped entries, listed in the report too."""
    options = options or AlignOptions()
    if options.corpus_pass not in ("auto", "always", "never"):
        raise ValueError(f"corpus_pass must be 'auto', 'always' or 'never', got {options.corpus_pass!r}")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    workers = options.workers or os.cpu_count() or 1
    model = load_aligner(options.model)
    pending = [item for item in items if not (out_dir / f"{item.utterance_id}.lab").is_file()]
    run_pass = options.corpus_pass == "always" or (
        options.corpus_pass == "auto" and len(items) >= options.corpus_pass_min_utterances
    )
    pass_record = {"ran": False, "reason": "off" if options.corpus_pass == "never" else "corpus too small"}
    if run_pass and pending:
        model, pass_record = _corpus_pass(items, model, out_dir, options, workers)
    elif run_pass:
        pass_record = {"ran": True, "resumed": True, "model": str(out_dir / WORK_FOLDER / "model")}
    write = "both" if options.textgrid else "lab"
    results = _run(pending, model, out_dir, write, False, workers, options.progress, "align")
    wav_of = {item.utterance_id: str(item.wav_path) for item in items}
    skipped = [
        {"id": uid, "file": wav_of[uid], "stage": "align", "reason": reason}
        for uid, _, reason in results
        if reason is not None
    ]
    skipped += list(read_skipped or [])
    audio_seconds = sum(result["duration_s"] for _, result, reason in results if reason is None)
    report = _write_report(items, out_dir, options, model, pass_record, skipped)
    done_before = len(items) - len(pending)
    return AlignReport(
        str(out_dir),
        len(pending) - sum(1 for _, _, reason in results if reason is not None),
        done_before,
        skipped,
        [uid for uid, entry in report["utterances"].items() if entry["outlier"]],
        pass_record,
        audio_seconds,
        time.perf_counter() - started,
        {uid: str(out_dir / f"{uid}.lab") for uid in report["utterances"]},
    )


def _write_report(items, out_dir: Path, options, model, pass_record, skipped) -> dict:
    entries = {}
    for item in items:
        path = out_dir / WORK_FOLDER / "scores" / f"{item.utterance_id}.json"
        if (out_dir / f"{item.utterance_id}.lab").is_file() and path.is_file():
            entries[item.utterance_id] = read_versioned_json(path, SCORE_FORMAT, 1, "alignment score", "re-align it")
    ids = sorted(entries)
    z = _robust_z(np.array([entries[uid]["score"] for uid in ids])) if ids else np.zeros(0)
    utterances = {}
    for uid, value in zip(ids, z):
        entry = {key: value for key, value in entries[uid].items() if key not in ("format", "format_version")}
        entry.update(z=round(float(value), 3), outlier=bool(value < -options.outlier_z))
        utterances[uid] = entry
    model_source = SHIPPED_NAME if options.model is None else str(options.model)
    report = {
        "format": REPORT_FORMAT,
        "format_version": REPORT_FORMAT_VERSION,
        "model": {"source": model_source, "emission": model.metadata.get("emission")},
        "corpus_pass": pass_record,
        "outlier_rule": f"robust z-score of the score below -{options.outlier_z} (median and MAD over the corpus)",
        "summary": {
            "utterances": len(utterances),
            "skipped": len(skipped),
            "outliers": sum(entry["outlier"] for entry in utterances.values()),
            "audio_seconds": round(sum(entry["duration_s"] for entry in utterances.values()), 2),
        },
        "utterances": utterances,
        "skipped": skipped,
        "versions": versions(),
    }
    atomic_write_json(out_dir / REPORT_NAME, report)
    return report


def align_corpus(corpus, out_dir=None, options: AlignOptions | None = None) -> AlignReport:
    """Align every utterance of a corpus (any layout `mlms_keras.data.readers.read_corpus` reads).

    Args:
        corpus: the corpus folder.
        out_dir: where the labels go (default `<corpus>/labels`, where `mlms prepare` looks).
        options: `AlignOptions`.

    Returns:
        `AlignReport`; `alignment_report.json` in `out_dir` has every utterance's score and the outliers.

    Raises:
        ValueError: an unrecognised layout, a missing language for layouts without one, bad options.
    """
    options = options or AlignOptions()
    items = read_corpus(corpus, language=options.language, speaker=options.speaker)
    read_skipped = [
        {"id": None, "file": f"{entry.path}" + (f":{entry.line_number}" if entry.line_number else ""), "stage": "read",
         "reason": entry.reason}
        for entry in items.skipped
    ]  # fmt: skip
    if not items and not items.skipped:
        raise ValueError(f"{corpus}: the corpus lists no utterances.")
    root = Path(corpus)
    out_dir = Path(out_dir) if out_dir is not None else (root.parent if root.is_file() else root) / "labels"
    return align_items(items, out_dir, options, read_skipped)
