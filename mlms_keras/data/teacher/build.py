"""Rendering and building the teacher corpus: espeak-ng speech, HTS labels, `metadata.csv` and `corpus.json`.

Every utterance is rendered in a fork of a worker whose libespeak-ng has never synthesised (libespeak-ng carries
sample-level state from one utterance to the next), so a build is deterministic for a seed whatever the number of
workers and however often it was interrupted. Files are written atomically, the label file after the wav, and an
utterance whose label file exists is not rebuilt (resume). `build.json`, written when a build starts, records its
settings (seed, preset and speakers or the build by languages, the espeak-ng version); resuming into the same folder
with other settings is refused, naming each difference, so old audio never stays under new text.

A build is either a preset (the paper's Table 1 speakers) or a build by languages (`languages=[...]`: one new speaker
per language, sentences from a grammar or a word-frequency list; `mlms_keras.data.teacher.speakers`). Both write the
same files. In tone languages the frontend's tone phonemes (`mlms_keras.frontend.espeak.rules`) are not phoneme
events; the label file gets them as zero-length segments at the end of their vowel, so that its phones still equal
the frontend's phonemes.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile
from tqdm import tqdm

from mlms_keras.data.teacher.speakers import (
    DEFAULT_VARIANT,
    TEACHER_SPEAKERS,
    TeacherSpeaker,
    UtteranceSpec,
    get_speaker,
    plan_language_utterances,
    plan_utterances,
    sentence_source,
    speaker_f0_range_hz,
)
from mlms_keras.frontend import espeak
from mlms_keras.frontend.labels import Segment, write_hts_labels
from mlms_keras.languages import LANGUAGE_CODES, Language, all_languages, get_language, register_language
from mlms_keras.training.resume import check_settings, claim_settings_file
from mlms_keras.utils.fileio import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    remove_leftover_temporaries,
)
from mlms_keras.utils.provenance import versions
from mlms_keras.utils.workers import SurvivingWorkers

__all__ = [
    "BUILD_SETTINGS_NAME",
    "CORPUS_FORMAT",
    "CORPUS_FORMAT_VERSION",
    "DITHER_STD",
    "SILENCE_RANGE_S",
    "BuildReport",
    "build_teacher_corpus",
    "event_segments",
    "render_utterance",
]

logger = logging.getLogger(__name__)

#: The build's settings, written when it starts; a resume must match them (`mlms_keras.training.resume`).
BUILD_SETTINGS_NAME = "build.json"
_REBUILD_REMEDY = "run the command that built it to resume it, or build into a new folder"
CORPUS_FORMAT = "mlms-teacher-corpus"
CORPUS_FORMAT_VERSION = 1
#: Leading and trailing silence, drawn per utterance (seconds).
SILENCE_RANGE_S = (0.15, 0.35)
#: Gaussian dither added to every sample, so that no frame is digital zero (WORLD takes logarithms).
DITHER_STD = 10 ** (-80 / 20)  # -80 dBFS


def _wav_bytes(waveform: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, sample_rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def event_segments(
    events, language: str, speech_samples: int, lead_samples: int, total_samples: int, sample_rate: int
) -> list[Segment]:
    """Phone segments (start s, end s, label) from phoneme events, with sil at the ends and pau inside.

    Consecutive pauses merge; zero-length pauses are dropped; zero-length phonemes are kept (see `labels/` in
    `mlms_keras.data.teacher`).

    Args:
        events: espeak-ng phoneme events (start samples relative to the speech).
        language: their language code (for the phoneme symbols).
        speech_samples: length of espeak-ng's output.
        lead_samples: leading silence added before the speech.
        total_samples: length of the final waveform (lead + speech + trailing silence).
        sample_rate: Hz.
    """
    boundaries = []  # (start sample in final waveform, label)
    for event in events:
        symbol = espeak.split_event_symbol(event.symbol, language)
        label = "pau" if symbol is None else symbol
        boundaries.append((lead_samples + min(event.start_sample, speech_samples), label))
    pieces = [(0, "sil")] + boundaries
    segments = []
    for index, (start, label) in enumerate(pieces):
        end = pieces[index + 1][0] if index + 1 < len(pieces) else total_samples
        if end <= start and label in ("pau", "sil"):
            continue
        if segments and label == "pau" and segments[-1][2] in ("pau", "sil"):
            segments[-1] = (segments[-1][0], end, segments[-1][2])
            continue
        segments.append((start, end, label))
    if segments and segments[-1][2] == "pau":
        segments[-1] = (segments[-1][0], segments[-1][1], "sil")
    return [Segment(start / sample_rate, end / sample_rate, label) for start, end, label in segments]


def render_utterance(spec: UtteranceSpec, out_dir) -> None:
    """Synthesise one utterance and write its wav and label file (atomically; label last).

    Raises:
        espeak.FrontendInputError, espeak.EspeakError: the text cannot be spoken.
        ValueError: espeak-ng's phoneme events disagree with the frontend's analysis of the text.
    """
    out_dir = Path(out_dir)
    voice = spec.voice if spec.voice is not None else get_speaker(spec.speaker_id).voice
    synthesis = espeak.synthesize(spec.text, spec.language, voice, random_seed=spec.seed)
    phonemes = espeak.analyze(spec.text, spec.language).phonemes
    analysed = [phoneme.symbol for phoneme in phonemes if phoneme.kind != espeak.TONE_KIND]
    spoken = [espeak.split_event_symbol(event.symbol, spec.language) for event in synthesis.events]
    spoken = [symbol for symbol in spoken if symbol is not None]
    if analysed != spoken:
        raise ValueError(
            f"{spec.utterance_id}: espeak-ng spoke phonemes {spoken[:12]}... but the frontend analyses "
            f"{analysed[:12]}... for {spec.text!r}"
        )
    rng = np.random.default_rng(spec.seed)
    sample_rate = synthesis.sample_rate
    lead = int(rng.uniform(*SILENCE_RANGE_S) * sample_rate)
    trail = int(rng.uniform(*SILENCE_RANGE_S) * sample_rate)
    speech = synthesis.waveform
    if spec.gain_db:  # the polyglot presets' level (`POLYGLOT_GAIN_DB`); 0 leaves Table 1 audio bit-identical
        speech = (speech * 10.0 ** (spec.gain_db / 20.0)).astype(np.float32)
    waveform = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(trail, np.float32)])
    waveform = np.clip(waveform + rng.normal(0.0, DITHER_STD, waveform.shape).astype(np.float32), -1.0, 1.0)
    segments = event_segments(synthesis.events, spec.language, len(speech), lead, len(waveform), sample_rate)
    segments = _with_tones(segments, phonemes)
    atomic_write_bytes(out_dir / "wavs" / f"{spec.utterance_id}.wav", _wav_bytes(waveform, sample_rate))
    write_hts_labels(out_dir / "labels" / f"{spec.utterance_id}.lab", segments)


def _with_tones(segments: list[Segment], phonemes) -> list[Segment]:
    """The label segments with a zero-length segment for each tone phoneme, at the end of the phone before it."""
    tones_after: dict[int, list[str]] = {}
    spoken = -1
    for phoneme in phonemes:
        if phoneme.kind == espeak.TONE_KIND:
            tones_after.setdefault(spoken, []).append(phoneme.symbol)
        else:
            spoken += 1
    if not tones_after:
        return segments
    result, spoken = [], -1
    for segment in segments:
        result.append(segment)
        if segment.label not in ("sil", "pau"):
            spoken += 1
            result.extend(Segment(segment.end_s, segment.end_s, tone) for tone in tones_after.get(spoken, ()))
    return result


def _is_done(spec: UtteranceSpec, out_dir: Path) -> bool:
    return (out_dir / "labels" / f"{spec.utterance_id}.lab").is_file() and (
        out_dir / "wavs" / f"{spec.utterance_id}.wav"
    ).is_file()


def _worker_init(languages: tuple[Language, ...] = ()):
    # Each worker keeps a libespeak-ng that never synthesises itself: every utterance is rendered in a fork
    # of this pristine state, so its bytes do not depend on which utterances came before (see
    # `espeak.synthesize`), on the number of workers, or on resuming. The modules a render needs are imported
    # with this one, once, rather than in every forked child. Languages registered in the parent process are
    # registered here too (a spawned worker starts with the shipped universe only).
    espeak.initialise()
    known = {language.code for language in all_languages()}
    for language in languages:
        if language.code not in known:
            register_language(language)
    for code in LANGUAGE_CODES + tuple(language.code for language in languages):
        espeak.phoneme_inventory(code)


#: A render failing with one of these cannot be skipped: every later one would fail the same way (a full or
#: read-only disk). The build stops with the error instead of skipping utterance after utterance.
_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EACCES, errno.EPERM})


def _is_output_error(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in _OUTPUT_ERRNOS


def _worker_died(arguments) -> tuple:
    return arguments[0].utterance_id, "the worker process rendering it died twice (killed or crashed)"


def _render_task(arguments):
    """Render one utterance in a forked child: `(utterance id, None)`, or `(id, error)` where `error` is a
    message (a bad utterance, skipped) or an `OSError` of `_OUTPUT_ERRNOS` (the output folder, fatal)."""
    spec, out_dir = arguments
    if not hasattr(os, "fork"):  # no fork (Windows): render here; audio may differ by a few samples
        try:
            render_utterance(spec, out_dir)
            return spec.utterance_id, None
        except Exception as error:  # a bad utterance is reported and skipped, the build goes on
            return spec.utterance_id, error if _is_output_error(error) else f"{type(error).__name__}: {error}"
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        status = 0
        try:
            render_utterance(spec, out_dir)
        except BaseException as error:
            report = {"message": f"{type(error).__name__}: {error}"[:4000]}
            if _is_output_error(error):
                report.update(errno=error.errno, filename=os.fspath(error.filename or out_dir))
            os.write(write_end, json.dumps(report).encode("utf-8", "replace"))
            status = 1
        finally:
            os.close(write_end)
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        text = pipe.read().decode("utf-8", "replace")
    _, wait_status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(wait_status):
        return spec.utterance_id, f"renderer crashed with signal {os.WTERMSIG(wait_status)}"
    if os.WEXITSTATUS(wait_status) != 0:
        try:
            report = json.loads(text)
        except ValueError:
            return spec.utterance_id, text or f"renderer exited with status {os.WEXITSTATUS(wait_status)}"
        if "errno" in report:
            return spec.utterance_id, OSError(report["errno"], os.strerror(report["errno"]), report["filename"])
        return spec.utterance_id, report["message"]
    return spec.utterance_id, None


@dataclass
class BuildReport:
    """What a build did: utterances built now, reused from an earlier run, and skipped (id -> reason)."""

    out_dir: str
    built: int
    reused: int
    skipped: dict


def build_teacher_corpus(
    out_dir,
    preset: str = "tiny",
    seed: int = 0,
    workers: int = 1,
    speakers: list[str] | None = None,
    progress: bool = True,
    languages: list[str] | None = None,
    utterances: int = 100,
    voice_variant: str = DEFAULT_VARIANT,
) -> BuildReport:
    """Build (or resume building) the teacher corpus in `out_dir`: a preset, or a build by languages.

    Args:
        out_dir: output folder (created).
        preset: "tiny", "small" or "paper-scale" (counts in `mlms_keras.data.teacher`); ignored with `languages`.
        seed: corpus seed (texts, silences, dither).
        workers: worker processes (each has its own libespeak-ng); 1 renders in this process.
        speakers: optional subset of the preset's speaker ids.
        progress: show a tqdm progress bar.
        languages: build by languages instead of a preset: these language codes (any language with a grammar or
            a word-frequency list), one new speaker `<code>-<voice_variant>` each
            (`mlms_keras.data.teacher.speakers.plan_language_utterances`).
        utterances: utterances per language of a build by languages (a tenth of them, at least 1, in the dev
            split).
        voice_variant: the espeak-ng voice variant of those speakers (`f1`..`f5`, `m1`..`m8`, ...).

    Returns:
        `BuildReport`. `corpus.json` and `metadata.csv` list only the utterances that exist; a skipped
        utterance is logged and listed in `corpus.json`'s `skipped`.

    Raises:
        ValueError: an unknown preset, speaker, language or variant, a language without sentences (the message
            lists the languages with a word-frequency list), `speakers` together with `languages`, or `workers` < 1.

    Example:
    >>> report = build_teacher_corpus("data/teacher", preset="small", workers=2)  # doctest: +SKIP
    >>> report.built, report.reused, report.skipped                             # doctest: +SKIP
    (3533, 0, {})
    >>> build_teacher_corpus("data/sv-cs", languages=["sv", "cs"], utterances=200)  # doctest: +SKIP
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if languages is not None:
        if speakers is not None:
            raise ValueError("speakers and languages do not go together: --speakers picks Table 1 speakers of a preset")
        build_speakers, specs = plan_language_utterances(list(languages), utterances, seed, voice_variant)
        description = ", ".join(languages)
        build = {"languages": list(languages), "utterances_per_language": utterances, "voice_variant": voice_variant}
        build_settings = {"seed": seed, "build": build}
    else:
        specs = plan_utterances(preset, seed, speakers)
        build_speakers, description, build = None, preset, None
        build_settings = {"seed": seed, "preset": preset, "speakers": None if speakers is None else list(speakers)}
    build_settings["espeak_ng"] = espeak.espeak_version()  # another espeak-ng speaks the same text differently
    out_dir = Path(out_dir)
    (out_dir / "wavs").mkdir(parents=True, exist_ok=True)
    (out_dir / "labels").mkdir(parents=True, exist_ok=True)
    _claim_build_folder(out_dir, build_settings)
    remove_leftover_temporaries(out_dir / "wavs", out_dir / "labels", out_dir)  # left by an interrupted run
    todo = [spec for spec in specs if not _is_done(spec, out_dir)]
    reused = len(specs) - len(todo)
    skipped = {}
    bar = tqdm(
        total=len(specs), initial=reused, desc=f"teacher corpus ({description})", unit="utt", disable=not progress
    )
    tasks = [(spec, str(out_dir)) for spec in todo]
    pool = None
    if tasks:
        # Spawned (not forked) workers: the caller's process may hold threads (TensorFlow) or a used espeak-ng.
        build_languages = tuple(get_language(code) for code in dict.fromkeys(spec.language for spec in specs))
        pool = SurvivingWorkers(
            _render_task,
            min(workers, len(tasks)),
            on_death=_worker_died,
            initializer=_worker_init,
            initargs=(build_languages,),
            description="utterances",
        )
        results = pool.map(tasks)
    else:
        results = iter(())
    try:
        for utterance_id, error in results:
            if isinstance(error, OSError):  # the output folder, not the utterance: stop (a re-run resumes)
                raise error
            if error is not None:
                skipped[utterance_id] = error
                logger.warning("skipped %s: %s", utterance_id, error)
            bar.update(1)
    finally:
        bar.close()
        if pool is not None:
            pool.close()
    _write_index(out_dir, specs, preset if build is None else None, seed, skipped, build_speakers, build)
    return BuildReport(str(out_dir), len(todo) - len(skipped), reused, skipped)


def _claim_build_folder(out_dir: Path, settings: dict) -> None:
    """Refuses to resume a build in `out_dir` made with other settings (each difference named); records these.

    A corpus built before `build.json` existed is checked on what its `corpus.json` says (seed, preset or
    `build`); an interrupted one of those (no `corpus.json` yet) resumes with a warning.
    """
    path = out_dir / BUILD_SETTINGS_NAME
    if not path.is_file():
        index = out_dir / "corpus.json"
        if index.is_file():
            recorded = json.loads(index.read_text(encoding="utf-8"))
            legacy = {key: recorded[key] for key in ("seed", "preset", "build") if recorded.get(key) is not None}
            check_settings(index, legacy, settings, what="a teacher corpus", remedy=_REBUILD_REMEDY)
        elif any((out_dir / "wavs").iterdir()):
            check_settings(out_dir, None, settings, what="an unfinished teacher corpus", remedy=_REBUILD_REMEDY)
    claim_settings_file(path, settings, what="a teacher corpus", remedy=_REBUILD_REMEDY)


def _write_index(
    out_dir: Path,
    specs,
    preset: str | None,
    seed: int,
    skipped: dict,
    build_speakers: list[TeacherSpeaker] | None = None,
    build: dict | None = None,
) -> None:
    present = [spec for spec in specs if spec.utterance_id not in skipped and _is_done(spec, out_dir)]
    lines = []
    for spec in present:
        if "|" in spec.text or "\n" in spec.text:
            raise ValueError(f"{spec.utterance_id}: text contains '|' or a newline, which metadata.csv cannot hold")
        lines.append(f"{spec.utterance_id}|{spec.text}|{spec.language}|{spec.speaker_id}\n")
    atomic_write_text(out_dir / "metadata.csv", "".join(lines))
    candidates = TEACHER_SPEAKERS if build_speakers is None else build_speakers
    speakers_used = [s for s in candidates if any(spec.speaker_id == s.speaker_id for spec in specs)]
    languages_used = []
    for speaker in speakers_used:
        if speaker.language not in languages_used:
            languages_used.append(speaker.language)
    counts = {
        s.speaker_id: {
            split: sum(1 for p in present if p.speaker_id == s.speaker_id and p.split == split)
            for split in ("train", "dev")
        }
        for s in speakers_used
    }
    speaker_entries = []
    for speaker in speakers_used:
        floor, ceiling = speaker_f0_range_hz(speaker)
        speaker_entries.append(
            {
                "id": speaker.speaker_id,
                "language": speaker.language,
                "gender": speaker.gender,
                "role": get_language(speaker.language).role,
                "espeak_voice": asdict(speaker.voice),
                "f0_floor_hz": floor,
                "f0_ceil_hz": ceiling,
                "table1_train": speaker.table1_train,
            }
        )
    index = {
        "format": CORPUS_FORMAT,
        "format_version": CORPUS_FORMAT_VERSION,
        "preset": preset,
        "seed": seed,
        "sample_rate_hz": espeak.SAMPLE_RATE_HZ,
        "labels": "HTS mono labels (100 ns units), espeak-ng phoneme mnemonics, 'sil' at the ends, 'pau' inside",
        "languages": [
            {
                "code": code,
                "display_name": get_language(code).display_name,
                "role": get_language(code).role,
                "espeak_voice": get_language(code).espeak_voice,
                **({} if build is None else {"sentences": sentence_source(code)}),
            }
            for code in languages_used
        ],
        "speakers": speaker_entries,
        "counts": counts,
        "total_utterances": len(present),
        "splits": {split: [p.utterance_id for p in present if p.split == split] for split in ("train", "dev")},
        "skipped": [{"id": key, "reason": value} for key, value in sorted(skipped.items())],
        "versions": versions(),
    }
    if build is not None:
        index["build"] = build
    if specs and specs[0].gain_db:
        index["gain_db"] = specs[0].gain_db  # the level of the teacher's speech (polyglot presets)
    atomic_write_json(out_dir / "corpus.json", index)
