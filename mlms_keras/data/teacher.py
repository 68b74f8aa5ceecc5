"""The teacher corpus: the package's default multilingual multi-speaker data, spoken by espeak-ng.

`mlms corpus build OUT --preset tiny|small|paper-scale` mirrors Table 1 of Li & Zen (2016): US and UK English
(a female and a male speaker each), French, Italian, German and Spanish (a female speaker each) for training,
and Polish and Brazilian Portuguese (a female speaker each) as limited-data adaptation languages. Every speaker
is a distinct espeak-ng voice variant (f1-f5 and, as espeak-ng has only five "f" variants, steph, belinda and
Annie for the last three women; m3 and m1 for the men) with its own base pitch, pitch range and speaking
rate (variants change pitch and timbre, the rate changes timing).

Presets (train / dev utterances per speaker):

============  ==========================================================  =====  =========
preset        train                                                       dev    total
============  ==========================================================  =====  =========
tiny          4 per training speaker, 2 per adaptation speaker; sentences  1      46
              of at most 8 words (for tests; builds in a few seconds)
small         Table 1 / 50, rounded: 710, 153, 428, 72, 598, 598, 491,    5      3 533
              397, 18, 18
paper-scale   Table 1: 35 493, 7 652, 21 403, 3 587, 29 924, 29 897,      100    175 163
              24 535, 19 872, 900, 900
============  ==========================================================  =====  =========

(speaker order: en-us female, en-us male, en-gb female, en-gb male, fr, it, de, es, pl, pt-br). Measured on 2
shared cores with 2 workers: tiny about 1 s, small 46 s and 510 MB; paper-scale extrapolates to about 40 min and
25 GB. Scaling keeps
the adaptation languages' limited amount relative to the training languages (900 vs 35 493 in the paper).

Output folder:

* `wavs/<id>.wav`: 16-bit PCM, 22 050 Hz, mono; espeak-ng's speech between a leading and a trailing silence
  (150-350 ms each, drawn per utterance) with a -80 dBFS Gaussian dither so that no frame is digital zero
  (WORLD analysis takes logarithms).
* `labels/<id>.lab`: HTS mono labels (100 ns units): one segment per phoneme from espeak-ng's phoneme events
  (symbols are espeak-ng mnemonics without stress, as `mlms_keras.frontend.espeak.Phoneme.symbol`), "sil" at
  both ends and "pau" for pauses inside the utterance. espeak-ng reports some phonemes at the same sample as
  the next one because it renders them inside a neighbour's transition (the /l/ of "smiles" or "school", the
  /w/ of French "trois"); they keep a zero-length segment, so the label phones always equal the frontend's
  phonemes, and get 0 frames.
* `metadata.csv`: `id|text|language|speaker`, one line per utterance, no header (LJSpeech / M-AILABS style).
* `corpus.json`: languages, speakers (gender, voice, F0 range in Hz for WORLD analysis), counts, splits
  (train/dev ids), seed, preset, skipped utterances and versions.

The build is deterministic for a seed: the same bytes on the same espeak-ng version, whatever the number of
workers and however often it was interrupted, because every utterance is rendered in a fork of a worker whose
libespeak-ng has never synthesised (libespeak-ng carries sample-level state from one utterance to the next).
It shows a progress bar, writes every file atomically, and resumes: an utterance whose label file exists (labels are written after the wav) is
not rebuilt. A failing utterance is logged, skipped and listed in `corpus.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import sys
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mlms_keras.frontend import espeak
from mlms_keras.languages import ADAPTATION, LANGUAGE_CODES, get_language
from mlms_keras.utils.fileio import atomic_write_bytes

logger = logging.getLogger(__name__)

CORPUS_FORMAT = "mlms-teacher-corpus"
CORPUS_FORMAT_VERSION = 1
PRESETS = ("tiny", "small", "paper-scale")
SILENCE_RANGE_S = (0.15, 0.35)
DITHER_STD = 10 ** (-80 / 20)  # -80 dBFS
TINY_MAX_WORDS = 8


@dataclass(frozen=True)
class TeacherSpeaker:
    """One speaker of the teacher corpus.

    Attributes:
        speaker_id: e.g. "en-us-female".
        language: language code.
        gender: "female" or "male".
        voice: espeak-ng variant, rate (words/min), pitch and pitch range (0..100).
        table1_train: the speaker's training utterances in Table 1 of the paper.
        table1_dev: development utterances (Table 1 lists 100 for French and Italian; we use 100 for all).
    """

    speaker_id: str
    language: str
    gender: str
    voice: espeak.SpeakerVoice
    table1_train: int
    table1_dev: int = 100


TEACHER_SPEAKERS: tuple[TeacherSpeaker, ...] = (
    TeacherSpeaker("en-us-female", "en-us", "female", espeak.SpeakerVoice("f2", 165, 52, 60), 35493),
    TeacherSpeaker("en-us-male", "en-us", "male", espeak.SpeakerVoice("m3", 175, 48, 55), 7652),
    TeacherSpeaker("en-gb-female", "en-gb", "female", espeak.SpeakerVoice("f4", 158, 55, 55), 21403),
    TeacherSpeaker("en-gb-male", "en-gb", "male", espeak.SpeakerVoice("m1", 170, 45, 50), 3587),
    TeacherSpeaker("fr-female", "fr", "female", espeak.SpeakerVoice("f3", 172, 50, 55), 29924),
    TeacherSpeaker("it-female", "it", "female", espeak.SpeakerVoice("f5", 178, 47, 60), 29897),
    TeacherSpeaker("de-female", "de", "female", espeak.SpeakerVoice("f1", 155, 53, 50), 24535),
    TeacherSpeaker("es-female", "es", "female", espeak.SpeakerVoice("steph", 182, 46, 58), 19872),
    TeacherSpeaker("pl-female", "pl", "female", espeak.SpeakerVoice("belinda", 163, 40, 50), 900),
    TeacherSpeaker("pt-br-female", "pt-br", "female", espeak.SpeakerVoice("Annie", 160, 45, 60), 900),
)


def get_speaker(speaker_id: str) -> TeacherSpeaker:
    """The teacher speaker with this id (ValueError listing the ids otherwise)."""
    for speaker in TEACHER_SPEAKERS:
        if speaker.speaker_id == speaker_id:
            return speaker
    raise ValueError(
        f"Unknown teacher speaker {speaker_id!r}; known: {', '.join(s.speaker_id for s in TEACHER_SPEAKERS)}"
    )


def preset_counts(preset: str) -> dict[str, tuple[int, int]]:
    """Utterances per speaker for a preset: speaker id -> (train, dev). See the module docstring."""
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    counts = {}
    for speaker in TEACHER_SPEAKERS:
        adaptation = get_language(speaker.language).role == ADAPTATION
        if preset == "tiny":
            counts[speaker.speaker_id] = (2 if adaptation else 4, 1)
        elif preset == "small":
            counts[speaker.speaker_id] = (int(round(speaker.table1_train / 50)), 5)
        else:
            counts[speaker.speaker_id] = (speaker.table1_train, speaker.table1_dev)
    return counts


def _variant_pitch_hz(variant: str) -> tuple[float, float]:
    """The 'pitch BASE TOP' line (Hz) of an espeak-ng voice variant file (espeak-ng's default is 82 118)."""
    import espeakng_loader

    path = Path(espeakng_loader.get_data_path()) / "voices" / "!v" / variant
    base, top = 82.0, 118.0
    if variant and path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "pitch":
                base, top = float(parts[1]), float(parts[2])
    return base, top


def speaker_f0_range_hz(speaker: TeacherSpeaker) -> tuple[float, float]:
    """A safe F0 search range (floor, ceiling) in Hz for WORLD analysis of this speaker.

    espeak-ng scales the variant's 'pitch BASE TOP' by about 2 ** ((pitch - 50) / 50) for the pitch
    parameter (0..100) and widens the excursion by the range parameter. We take 0.6 x the scaled base as the
    floor and 1.6 x the scaled top, widened by range/50, as the ceiling: intonation (questions) rises above
    TOP. Checked against WORLD's F0 of synthesised speech in tests/test_teacher_corpus.py.
    """
    base, top = _variant_pitch_hz(speaker.voice.variant)
    scale = 2.0 ** ((speaker.voice.pitch - 50) / 50.0)
    excursion = (top - base) * max(1.0, speaker.voice.pitch_range / 50.0)
    floor = 0.6 * base * scale
    ceiling = 1.6 * (base + excursion) * scale
    return round(floor, 1), round(ceiling, 1)


@dataclass(frozen=True)
class UtteranceSpec:
    """What to render for one utterance (picklable for worker processes)."""

    utterance_id: str
    text: str
    language: str
    speaker_id: str
    split: str
    seed: int


def _speaker_seed(seed: int, speaker_id: str) -> int:
    return zlib.crc32(f"{seed}/{speaker_id}".encode())


def plan_utterances(preset: str, seed: int, speakers=None) -> list[UtteranceSpec]:
    """The utterances of a build, in order: per speaker, its train then dev utterances.

    Args:
        preset: "tiny", "small" or "paper-scale".
        seed: the corpus seed; each speaker gets its own sentence stream from (seed, speaker id).
        speakers: optional subset of speaker ids (default: all ten).
    """
    from mlms_keras.data.sentences import generate_sentences

    counts = preset_counts(preset)
    chosen = [s for s in TEACHER_SPEAKERS if speakers is None or s.speaker_id in speakers]
    if speakers is not None:
        unknown = set(speakers) - {s.speaker_id for s in TEACHER_SPEAKERS}
        if unknown:
            raise ValueError(f"Unknown speakers {sorted(unknown)}; known: {[s.speaker_id for s in TEACHER_SPEAKERS]}")
    specs = []
    for speaker in chosen:
        train, dev = counts[speaker.speaker_id]
        speaker_seed = _speaker_seed(seed, speaker.speaker_id)
        if preset == "tiny":
            pool = generate_sentences(speaker.language, 8 * (train + dev), speaker_seed)
            texts = [t for t in pool if len(t.split()) <= TINY_MAX_WORDS][: train + dev]
            if len(texts) < train + dev:
                texts = pool[: train + dev]
        else:
            texts = generate_sentences(speaker.language, train + dev, speaker_seed)
        for index, text in enumerate(texts):
            split = "train" if index < train else "dev"
            number = index + 1 if split == "train" else index - train + 1
            utterance_id = f"{speaker.speaker_id}-{split}-{number:05d}"
            specs.append(
                UtteranceSpec(
                    utterance_id,
                    text,
                    speaker.language,
                    speaker.speaker_id,
                    split,
                    zlib.crc32(f"{seed}/{utterance_id}".encode()),
                )
            )
    return specs


def _wav_bytes(waveform: np.ndarray, sample_rate: int) -> bytes:
    import io

    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, sample_rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def event_segments(events, language: str, speech_samples: int, lead_samples: int, total_samples: int, sample_rate: int):
    """Phone segments (start s, end s, label) from phoneme events, with sil at the ends and pau inside.

    Consecutive pauses merge; zero-length pauses are dropped; zero-length phonemes are kept (see the module
    docstring).

    Args:
        events: espeak-ng phoneme events (start samples relative to the speech).
        language: their language code (for the phoneme symbols).
        speech_samples: length of espeak-ng's output.
        lead_samples: leading silence added before the speech.
        total_samples: length of the final waveform (lead + speech + trailing silence).
        sample_rate: Hz.
    """
    from mlms_keras.frontend.labels import Segment

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
    from mlms_keras.frontend.labels import write_hts_labels

    out_dir = Path(out_dir)
    speaker = get_speaker(spec.speaker_id)
    synthesis = espeak.synthesize(spec.text, spec.language, speaker.voice, random_seed=spec.seed)
    analysed = [phoneme.symbol for phoneme in espeak.analyze(spec.text, spec.language).phonemes]
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
    waveform = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(trail, np.float32)])
    waveform = np.clip(waveform + rng.normal(0.0, DITHER_STD, waveform.shape).astype(np.float32), -1.0, 1.0)
    segments = event_segments(synthesis.events, spec.language, len(speech), lead, len(waveform), sample_rate)
    atomic_write_bytes(out_dir / "wavs" / f"{spec.utterance_id}.wav", _wav_bytes(waveform, sample_rate))
    write_hts_labels(out_dir / "labels" / f"{spec.utterance_id}.lab", segments)


def _is_done(spec: UtteranceSpec, out_dir: Path) -> bool:
    return (out_dir / "labels" / f"{spec.utterance_id}.lab").is_file() and (
        out_dir / "wavs" / f"{spec.utterance_id}.wav"
    ).is_file()


def _worker_init():
    # Each worker keeps a libespeak-ng that never synthesises itself: every utterance is rendered in a fork
    # of this pristine state, so its bytes do not depend on which utterances came before (see
    # `espeak.synthesize`), on the number of workers, or on resuming.
    import numpy.random  # noqa: F401  (imported once here rather than in every forked child)
    import soundfile  # noqa: F401

    import mlms_keras.frontend.labels  # noqa: F401
    from mlms_keras.data import sentences  # noqa: F401

    espeak.initialise()
    for code in LANGUAGE_CODES:
        espeak.phoneme_inventory(code)


def _render_task(arguments):
    spec, out_dir = arguments
    if not hasattr(os, "fork"):  # no fork (Windows): render here; audio may differ by a few samples
        try:
            render_utterance(spec, out_dir)
            return spec.utterance_id, None
        except Exception as error:  # a bad utterance is reported and skipped, the build goes on
            return spec.utterance_id, f"{type(error).__name__}: {error}"
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        status = 0
        try:
            render_utterance(spec, out_dir)
        except BaseException as error:
            os.write(write_end, f"{type(error).__name__}: {error}".encode("utf-8", "replace")[:4000])
            status = 1
        finally:
            os.close(write_end)
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode("utf-8", "replace")
    _, wait_status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(wait_status):
        return spec.utterance_id, f"renderer crashed with signal {os.WTERMSIG(wait_status)}"
    if os.WEXITSTATUS(wait_status) != 0:
        return spec.utterance_id, message or f"renderer exited with status {os.WEXITSTATUS(wait_status)}"
    return spec.utterance_id, None


@dataclass
class BuildReport:
    """What a build did: utterances built now, reused from an earlier run, and skipped (id -> reason)."""

    out_dir: str
    built: int
    reused: int
    skipped: dict


def build_teacher_corpus(
    out_dir, preset: str = "tiny", seed: int = 0, workers: int = 1, speakers=None, progress: bool = True
) -> BuildReport:
    """Build (or resume building) the teacher corpus in `out_dir`.

    Args:
        out_dir: output folder (created).
        preset: "tiny", "small" or "paper-scale" (counts in the module docstring).
        seed: corpus seed (texts, silences, dither).
        workers: worker processes (each has its own libespeak-ng); 1 renders in this process.
        speakers: optional subset of speaker ids.
        progress: show a tqdm progress bar.

    Returns:
        `BuildReport`. `corpus.json` and `metadata.csv` list only the utterances that exist.
    """
    from tqdm import tqdm

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    out_dir = Path(out_dir)
    (out_dir / "wavs").mkdir(parents=True, exist_ok=True)
    (out_dir / "labels").mkdir(parents=True, exist_ok=True)
    for folder in (out_dir / "wavs", out_dir / "labels", out_dir):
        for stale in folder.glob(".*.tmp"):  # left by an interrupted run
            stale.unlink()
    specs = plan_utterances(preset, seed, speakers)
    todo = [spec for spec in specs if not _is_done(spec, out_dir)]
    reused = len(specs) - len(todo)
    skipped = {}
    bar = tqdm(total=len(specs), initial=reused, desc=f"teacher corpus ({preset})", unit="utt", disable=not progress)
    tasks = [(spec, str(out_dir)) for spec in todo]
    pool = None
    if tasks:
        # Spawned (not forked) workers: the caller's process may hold threads (TensorFlow) or a used espeak-ng.
        pool = multiprocessing.get_context("spawn").Pool(min(workers, len(tasks)), initializer=_worker_init)
        results = pool.imap_unordered(_render_task, tasks, chunksize=4)
    else:
        results = iter(())
    try:
        for utterance_id, error in results:
            if error is not None:
                skipped[utterance_id] = error
                logger.warning("skipped %s: %s", utterance_id, error)
            bar.update(1)
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    _write_index(out_dir, specs, preset, seed, skipped)
    if skipped:
        print(f"Skipped {len(skipped)} utterance(s); see 'skipped' in {out_dir / 'corpus.json'}", file=sys.stderr)
    return BuildReport(str(out_dir), len(todo) - len(skipped), reused, skipped)


def _versions() -> dict:
    import mlms_keras

    return {
        "mlms_keras": mlms_keras.__version__,
        "espeak_ng": espeak.espeak_version(),
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _write_index(out_dir: Path, specs, preset: str, seed: int, skipped: dict) -> None:
    present = [spec for spec in specs if spec.utterance_id not in skipped and _is_done(spec, out_dir)]
    lines = []
    for spec in present:
        if "|" in spec.text or "\n" in spec.text:
            raise ValueError(f"{spec.utterance_id}: text contains '|' or a newline, which metadata.csv cannot hold")
        lines.append(f"{spec.utterance_id}|{spec.text}|{spec.language}|{spec.speaker_id}\n")
    atomic_write_bytes(out_dir / "metadata.csv", "".join(lines).encode("utf-8"))
    speakers_used = [s for s in TEACHER_SPEAKERS if any(spec.speaker_id == s.speaker_id for spec in specs)]
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
            }
            for code in languages_used
        ],
        "speakers": speaker_entries,
        "counts": counts,
        "total_utterances": len(present),
        "splits": {split: [p.utterance_id for p in present if p.split == split] for split in ("train", "dev")},
        "skipped": [{"id": key, "reason": value} for key, value in sorted(skipped.items())],
        "versions": _versions(),
    }
    atomic_write_bytes(out_dir / "corpus.json", json.dumps(index, indent=1, ensure_ascii=False).encode("utf-8"))


def _run_build(args) -> int:
    try:
        report = build_teacher_corpus(
            args.out,
            preset=args.preset,
            seed=args.seed,
            workers=args.workers,
            speakers=args.speakers.split(",") if args.speakers else None,
            progress=not args.quiet,
        )
    except ValueError as error:
        print(f"mlms corpus build: {error}", file=sys.stderr)
        return 2
    print(f"{report.out_dir}: {report.built} built, {report.reused} reused, {len(report.skipped)} skipped")
    return 0 if not report.skipped else 1


def add_cli_parser(subparsers) -> None:
    """Register `mlms corpus build`."""
    corpus = subparsers.add_parser(
        "corpus",
        help="build the teacher corpus (espeak-ng voices, Table 1 of the paper)",
        description="Corpus tools.",
    )
    verbs = corpus.add_subparsers(dest="corpus_command", metavar="VERB")
    verbs.required = True
    build = verbs.add_parser(
        "build",
        help="build the multilingual teacher corpus",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Build the teacher corpus: wavs/, labels/ (HTS), metadata.csv (id|text|language|speaker) and\n"
            "corpus.json. Re-running the same command resumes an interrupted build.\n\n"
            "presets: tiny (46 utterances, seconds), small (3 533, Table 1 / 50), paper-scale (175 163, Table 1)\n\n"
            "example:\n  mlms corpus build data/teacher --preset small --seed 0 --workers 2"
        ),
    )
    build.add_argument("out", help="output folder")
    build.add_argument("--preset", choices=PRESETS, default="tiny")
    build.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    build.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    build.add_argument("--speakers", default=None, help="comma-separated subset of speaker ids (default: all)")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.set_defaults(handler=_run_build)
