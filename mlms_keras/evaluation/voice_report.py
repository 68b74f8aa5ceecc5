"""The voice report (`mlms eval-voice`): a zoo voice against its espeak-ng teacher, on held-out sentences.

A teacher-corpus voice was trained to imitate espeak-ng voice variants, so the fair reference for any (speaker,
language) pair is that speaker's teacher voice (its variant, rate, pitch and range,
`mlms_keras.data.teacher.speakers`) speaking the same text. For every language of the voice, every speaker speaks
`sentences_per_language` held-out sentences (`mlms_keras.evaluation.heldout`: text no corpus grammar produces):

1. the teacher renders the sentence (`mlms_keras.frontend.espeak.synthesize`, at the level `TEACHER_GAIN`);
2. the voice synthesises it with the postfilter off (`postfilter_beta` 1.0), so its numbers compare with WORLD copy
   synthesis; its clipped samples (at full scale after `mlms_keras.vocoder.synthesize`'s clip) are counted;
3. both waves are analysed by WORLD with the teacher speaker's F0 search range (`speaker_f0_range_hz`);
4. the speech of each is the span from the first to the last 5 ms frame within `SPEECH_THRESHOLD_DB` of the wave's
   loudest frame (`speech_span`): leading and trailing silence are left out, as Merlin leaves out silence;
5. the two speech spans are aligned by DTW on c1..c39 (`mlms_keras.evaluation.dtw`) and the aligned frame pairs are
   scored with `mlms_keras.evaluation.metrics.evaluate_acoustic` (MCD, F0 RMSE, V/UV error).

**The floor**, measured in the same run on the same teacher waves: WORLD analysis, synthesis and analysis again
(copy synthesis) scored against the teacher exactly like the voice. No voice can beat it through WORLD.

Per row, frames are pooled over utterances (Merlin's convention, see `metrics`). Besides the metrics a row has
`voiced_ratio` (the voice's share of voiced speech frames over the teacher's: near 1 for real speech, far below for
a whisper), `length_ratio` (speech-span frames, voice over teacher: below 1 is faster), `total_length_ratio` (whole
waves, edge silences included), `clipped_samples`, `peak_dbfs` (the loudest sample of the rows' waves) and
`failed`: utterances the voice could not synthesise at all (a wave far beyond full scale,
`mlms_keras.vocoder.limits`), listed in `utterances` with the error.

Rows (`rows` of the report): `floor`; `native_training`, `native_adapted` (the voice's `adapted_languages`) and
`cross_language` (a speaker in another of the voice's languages); per language `native` and `cross_language`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mlms_keras import vocoder
from mlms_keras.data.teacher.speakers import (
    POLYGLOT_GAIN_DB,
    TeacherSpeaker,
    get_speaker,
    language_speaker,
    speaker_f0_range_hz,
)
from mlms_keras.evaluation import metrics
from mlms_keras.evaluation.dtw import dtw_path, mcep_distance_matrix
from mlms_keras.evaluation.heldout import heldout_sentences
from mlms_keras.frontend import espeak
from mlms_keras.utils.fileio import atomic_write_json, atomic_write_text
from mlms_keras.utils.provenance import provenance

__all__ = [
    "REPORT_FORMAT",
    "REPORT_FORMAT_VERSION",
    "SIDES",
    "SPEECH_THRESHOLD_DB",
    "TEACHER_GAIN",
    "PairScore",
    "VoiceReportOptions",
    "evaluate_voice",
    "evaluation_plan",
    "report_markdown",
    "score_pair",
    "speech_span",
    "teacher_speaker_of",
    "write_report",
]

REPORT_FORMAT = "mlms-voice-report"
REPORT_FORMAT_VERSION = 1
#: A 5 ms frame is speech when its energy is within this many dB of the wave's loudest frame.
SPEECH_THRESHOLD_DB = 40.0
#: Gain on the teacher's speech: the polyglot corpus's level (`POLYGLOT_GAIN_DB`), so that copy synthesis (the
#: floor) does not clip. The metrics do not depend on it: MCD leaves out c0, F0 and voicing ignore the level, and the
#: speech spans are relative to each wave's loudest frame.
TEACHER_GAIN = 10.0 ** (POLYGLOT_GAIN_DB / 20.0)
#: The two sides of a language's rows: its native speakers, and the voice's other speakers.
SIDES = ("native", "cross_language")


@dataclasses.dataclass(frozen=True)
class VoiceReportOptions:
    """What `evaluate_voice` measures.

    Attributes:
        sentences: language -> sentences to speak; None: `heldout_sentences(language, sentences_per_language)`
            for every language of the voice. Languages of the voice missing here are left out.
        sentences_per_language: built-in sentences per language (when `sentences` is None).
        f0_method: WORLD F0 estimator for both sides, "dio" (fast) or "harvest".
        cross_language: also let every speaker speak the voice's other languages.
        speakers: speaker names to evaluate (None: all).
        postfilter_beta: 1.0 (off) so that the voice compares with copy synthesis.
    """

    sentences: dict[str, list[str]] | None = None
    sentences_per_language: int = 2
    f0_method: str = "dio"
    cross_language: bool = True
    speakers: tuple[str, ...] | None = None
    postfilter_beta: float = 1.0


@dataclasses.dataclass
class PairScore:
    """A wave scored against its teacher: the DTW-aligned frame pairs and the counts a row pools.

    Attributes:
        reference, generated: (pairs, 49) aligned teacher and generated frames of the speech spans.
        reference_frames, generated_frames: speech-span lengths in frames.
        reference_voiced, generated_voiced: voiced frames in the speech spans.
        reference_total, generated_total: whole-wave lengths in frames.
        clipped_samples: samples at full scale in the generated wave.
        peak: the generated wave's largest absolute sample (full scale 1).
    """

    reference: np.ndarray
    generated: np.ndarray
    reference_frames: int
    generated_frames: int
    reference_voiced: int
    generated_voiced: int
    reference_total: int
    generated_total: int
    clipped_samples: int
    peak: float


def teacher_speaker_of(voice, name: str) -> TeacherSpeaker:
    """The espeak-ng teacher speaker behind the voice's speaker `name`: a Table 1 speaker, or the speaker
    `<language>-<variant>` of a build by languages.

    Raises:
        ValueError: the speaker is neither (a voice trained on recordings has no teacher to compare with).
    """
    try:
        return get_speaker(name)
    except ValueError:
        pass
    language = str(voice.speakers[name].get("language", ""))
    if language and name.startswith(f"{language}-"):
        try:
            return language_speaker(language, name[len(language) + 1 :])
        except ValueError:
            pass
    raise ValueError(
        f"speaker {name!r} of voice {voice.name!r} is not an espeak-ng teacher speaker (a Table 1 speaker or "
        "`<language>-<variant>`); eval-voice compares a voice with its teacher, so pass --speakers with teacher "
        "speakers only"
    )


def speech_span(wave, sample_rate: int, num_frames: int, threshold_db: float = SPEECH_THRESHOLD_DB) -> slice:
    """The frames (a slice of the `num_frames` WORLD frames) from the first to the last frame whose energy (10 ms
    window centred on the frame) is within `threshold_db` of the loudest frame's."""
    wave = np.asarray(wave, np.float64)
    hop = vocoder.FRAME_PERIOD_MS / 1000.0 * sample_rate
    half = int(round(hop))
    centres = np.round(np.arange(num_frames) * hop).astype(np.int64)
    squares = np.concatenate([[0.0], np.cumsum(wave**2)])
    starts = np.clip(centres - half, 0, wave.size)
    ends = np.clip(centres + half, 0, wave.size)
    energy = (squares[ends] - squares[starts]) / np.maximum(ends - starts, 1)
    decibels = 10.0 * np.log10(np.maximum(energy, 1e-20))
    loud = np.flatnonzero(decibels >= decibels.max() - threshold_db)
    return slice(int(loud[0]), int(loud[-1]) + 1)


def score_pair(reference_wave, generated_wave, sample_rate: int, analysis: dict, reference=None) -> PairScore:
    """Scores `generated_wave` against `reference_wave` (both (samples,) float in [-1, 1]) as the module says.

    Args:
        analysis: keyword arguments of `mlms_keras.vocoder.analyze` (`f0_method`, `f0_floor`, `f0_ceil`).
        reference: the `AcousticFeatures` of `reference_wave`, when already computed.
    """
    reference = reference or vocoder.analyze(reference_wave, sample_rate, name="teacher", **analysis)
    generated = vocoder.analyze(generated_wave, sample_rate, max_clipped_fraction=1.0, name="generated", **analysis)
    reference_span = speech_span(reference_wave, sample_rate, reference.num_frames)
    generated_span = speech_span(generated_wave, sample_rate, generated.num_frames)
    reference_frames = reference.to_vector()[reference_span]
    generated_frames = generated.to_vector()[generated_span]
    rows, columns = dtw_path(mcep_distance_matrix(reference_frames[:, vocoder.MCEP], generated_frames[:, vocoder.MCEP]))
    generated_wave = np.asarray(generated_wave)
    return PairScore(
        reference=reference_frames[rows],
        generated=generated_frames[columns],
        reference_frames=len(reference_frames),
        generated_frames=len(generated_frames),
        reference_voiced=int((reference_frames[:, vocoder.VUV] > 0.5).sum()),
        generated_voiced=int((generated_frames[:, vocoder.VUV] > 0.5).sum()),
        reference_total=reference.num_frames,
        generated_total=generated.num_frames,
        clipped_samples=int(np.sum(np.abs(generated_wave) >= 1.0)),
        peak=float(np.max(np.abs(generated_wave))) if generated_wave.size else 0.0,
    )


def _row(scores: list[PairScore], failed: int = 0) -> dict:
    """One report row: metrics over the pooled aligned frames, the pooled counts' ratios, and `failed`: utterances
    the voice could not synthesise at all (left out of the rest)."""
    if not scores:
        return {"utterances": 0, "failed": failed}
    pooled = metrics.evaluate_acoustic(
        np.concatenate([score.reference for score in scores]), np.concatenate([score.generated for score in scores])
    )

    def total(field):
        return sum(getattr(score, field) for score in scores)

    reference_share = total("reference_voiced") / max(total("reference_frames"), 1)
    generated_share = total("generated_voiced") / max(total("generated_frames"), 1)
    peak = max(score.peak for score in scores)
    row = {
        "utterances": len(scores),
        "failed": failed,
        "mcd_db": pooled["mcd_db"],
        "f0_rmse_hz": pooled["f0_rmse_hz"],
        "vuv_error_percent": pooled["vuv_error_percent"],
        "voiced_ratio": generated_share / reference_share if reference_share > 0 else float("nan"),
        "length_ratio": total("generated_frames") / total("reference_frames"),
        "total_length_ratio": total("generated_total") / total("reference_total"),
        "clipped_samples": total("clipped_samples"),
        "peak_dbfs": float(20.0 * np.log10(peak)) if peak > 0 else None,
    }
    # NaN (no frame voiced in both, say) is not JSON: None, shown as "-".
    return {key: None if isinstance(value, float) and not math.isfinite(value) else value for key, value in row.items()}


def evaluation_plan(voice, options: VoiceReportOptions = VoiceReportOptions()) -> list[tuple[str, str, str, str]]:
    """`(speaker, language, sentence, kind)` of every utterance `evaluate_voice` scores, in its order (languages,
    then speakers, in the voice's id order); `kind` is "native_training", "native_adapted" or "cross_language".

    Raises:
        ValueError: an unknown speaker, sentences of a language the voice does not speak, a language without
            built-in sentences (when `options.sentences` is None), or nothing to evaluate.
    """
    languages = sorted(voice.languages, key=voice.languages.get)
    speakers = sorted(voice.speakers, key=lambda name: voice.speakers[name]["id"])
    adapted = set(voice.metadata.get("adapted_languages") or {})
    if options.speakers is not None:
        unknown = sorted(set(options.speakers) - set(speakers))
        if unknown:
            raise ValueError(f"--speakers {unknown} are not speakers of voice {voice.name!r} ({', '.join(speakers)})")
        speakers = [name for name in speakers if name in options.speakers]
    if options.sentences is None:
        sentences = {code: heldout_sentences(code, options.sentences_per_language) for code in languages}
    else:
        unknown = sorted(set(options.sentences) - set(languages))
        if unknown:
            raise ValueError(f"sentences for {unknown}, which voice {voice.name!r} does not speak ({languages})")
        sentences = options.sentences
    # A speaker's own language is its teacher's (a dataset of a polyglot corpus may record another for it).
    own = {name: teacher_speaker_of(voice, name).language for name in speakers}
    plan = []
    for language in languages:
        for name in speakers:
            native = own[name] == language
            kind = ("native_adapted" if language in adapted else "native_training") if native else "cross_language"
            if native or options.cross_language:
                plan.extend((name, language, text, kind) for text in sentences.get(language, ()))
    if not plan:
        raise ValueError(f"nothing to evaluate for voice {voice.name!r}: no sentence of its languages {languages}")
    return plan


def evaluate_voice(voice, options: VoiceReportOptions = VoiceReportOptions(), on_pair: Callable | None = None) -> dict:
    """The voice report of a loaded zoo voice (`mlms_keras.zoo.load_voice`).

    Args:
        voice: a `mlms_keras.zoo.Voice` whose speakers are teacher speakers (`teacher_speaker_of`).
        options: `VoiceReportOptions`.
        on_pair: called as `on_pair(utterance, teacher_wave, voice_wave, sample_rate, analysis)` after each
            utterance (the plots use it); `utterance` is its entry of the report's `utterances`, `analysis` the
            `mlms_keras.vocoder.analyze` settings used.

    Returns:
        A JSON-ready dict: `format`, `format_version`, `voice`, `settings`, `rows` (module docstring),
        `per_language` (code -> {`native`, `cross_language`}), `utterances` (speaker, language, text, kind and
        the row of each, or `failed` with the error), `seconds`, `provenance`.
    """
    from mlms_keras.synthesis import Synthesizer

    started = time.time()
    synthesizer = Synthesizer(voice, postfilter_beta=options.postfilter_beta)
    teachers = {name: teacher_speaker_of(voice, name) for name in voice.speakers}
    floor, groups, failed, utterances = [], {}, {}, []
    for index, (name, language, text, kind) in enumerate(evaluation_plan(voice, options)):
        teacher = teachers[name]
        low, high = speaker_f0_range_hz(teacher)
        analysis = {"f0_method": options.f0_method, "f0_floor": low, "f0_ceil": high}
        teacher_wave = espeak.synthesize(text, language, teacher.voice).waveform.astype(np.float64) * TEACHER_GAIN
        teacher_features = vocoder.analyze(teacher_wave, espeak.SAMPLE_RATE_HZ, name="teacher", **analysis)
        copy_wave = vocoder.synthesize(teacher_features, postfilter_beta=1.0, name="copy synthesis")
        floor.append(score_pair(teacher_wave, copy_wave, espeak.SAMPLE_RATE_HZ, analysis, teacher_features))
        utterance = {"index": index, "speaker": name, "language": language, "text": text, "kind": kind}
        side = "cross_language" if kind == "cross_language" else "native"
        try:
            vectors = synthesizer.acoustic_features(text, language, name)
            voice_wave = vocoder.synthesize(vectors, voice.sample_rate, options.postfilter_beta, name=name)
        except ValueError as error:  # e.g. a wave far beyond full scale (`mlms_keras.vocoder.limits`): a failure
            failed[kind] = failed.get(kind, 0) + 1
            failed[(language, side)] = failed.get((language, side), 0) + 1
            utterances.append({**utterance, "failed": str(error)})
            continue
        score = score_pair(teacher_wave, voice_wave, voice.sample_rate, analysis, teacher_features)
        groups.setdefault(kind, []).append(score)
        groups.setdefault((language, side), []).append(score)
        utterances.append({**utterance, **_row([score]), "failed": None})
        if on_pair is not None:
            on_pair(utterances[-1], teacher_wave, voice_wave, voice.sample_rate, analysis)
    languages = sorted(voice.languages, key=voice.languages.get)
    return {
        "format": REPORT_FORMAT,
        "format_version": REPORT_FORMAT_VERSION,
        "voice": voice.name,
        "settings": {**dataclasses.asdict(options), "speech_threshold_db": SPEECH_THRESHOLD_DB},
        "adapted_languages": sorted(voice.metadata.get("adapted_languages") or {}),
        "rows": {
            "floor": _row(floor),
            **{
                kind: _row(groups.get(kind, []), failed.get(kind, 0))
                for kind in ("native_training", "native_adapted", "cross_language")
            },
        },
        "per_language": {
            code: {side: _row(groups.get((code, side), []), failed.get((code, side), 0)) for side in SIDES}
            for code in languages
        },
        "utterances": utterances,
        "seconds": time.time() - started,
        "provenance": provenance(),
    }


_COLUMNS = (
    ("utterances", "utterances", "{:d}"),
    ("mcd_db", "MCD (dB)", "{:.2f}"),
    ("f0_rmse_hz", "F0 RMSE (Hz)", "{:.1f}"),
    ("vuv_error_percent", "V/UV error (%)", "{:.1f}"),
    ("voiced_ratio", "voiced frames, voice / teacher", "{:.2f}"),
    ("length_ratio", "speech length, voice / teacher", "{:.2f}"),
    ("clipped_samples", "clipped samples", "{:d}"),
    ("failed", "failed", "{:d}"),
    ("peak_dbfs", "peak (dBFS)", "{:.1f}"),
)
_ROW_TITLES = {
    "floor": "WORLD copy synthesis of the teacher (the floor)",
    "native_training": "native speaker, training languages",
    "native_adapted": "native speaker, adapted languages",
    "cross_language": "a speaker in another of the voice's languages",
}


def _cells(row: dict) -> str:
    cells = []
    for key, _, template in _COLUMNS:
        value = row.get(key)
        missing = value is None or (isinstance(value, float) and not math.isfinite(value))
        cells.append("-" if missing else template.format(value))
    return " | ".join(cells)


def report_markdown(report: dict) -> str:
    """The report as Markdown: the summary table (floor, native, adapted, cross-language) and one per language."""
    header = "| | " + " | ".join(title for _, title, _ in _COLUMNS) + " |\n|---" + "|---" * len(_COLUMNS) + "|\n"
    settings = report["settings"]
    lines = [
        f"# Voice report: {report['voice']}\n",
        f"Each (speaker, language) against the espeak-ng teacher speaking the same held-out text with that speaker's "
        f"voice variant; DTW on c1..c39, speech spans only, postfilter beta {settings['postfilter_beta']:g}, "
        f"F0 by {settings['f0_method']}. Adapted languages: {', '.join(report['adapted_languages']) or 'none'}. "
        f"{len(report['utterances'])} utterances, {report['seconds']:.0f} s.\n",
        header.rstrip("\n"),
    ]
    lines += [f"| {title} | {_cells(report['rows'][key])} |" for key, title in _ROW_TITLES.items()]
    lines += ["", "Per language:", "", header.replace("| |", "| language, speakers |", 1).rstrip("\n")]
    for code, sides in report["per_language"].items():
        for side, title in (("native", "native"), ("cross_language", "other speakers")):
            if sides[side].get("utterances"):
                lines.append(f"| {code}, {title} | {_cells(sides[side])} |")
    return "\n".join(lines) + "\n"


def write_report(report: dict, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Writes `report.json` and `report.md` into `out_dir` (created), atomically; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "report.json", report)
    atomic_write_text(out_dir / "report.md", report_markdown(report))
    return out_dir / "report.json", out_dir / "report.md"
