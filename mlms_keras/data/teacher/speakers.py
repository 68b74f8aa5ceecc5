"""The teacher corpus's speakers, presets and utterance plan (what to render; `build` renders it).

Every speaker is a distinct espeak-ng voice variant with its own base pitch, pitch range and speaking rate
(variants change pitch and timbre, the rate changes timing); its F0 search range for WORLD analysis follows from
the variant file. `plan_utterances` gives every utterance of a build its id, text, split and seed, deterministically
for a corpus seed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import espeakng_loader

from mlms_keras.data.sentences import generate_sentences
from mlms_keras.frontend import espeak
from mlms_keras.languages import ADAPTATION, get_language

__all__ = [
    "PRESETS",
    "TEACHER_SPEAKERS",
    "TINY_MAX_WORDS",
    "TeacherSpeaker",
    "UtteranceSpec",
    "get_speaker",
    "plan_utterances",
    "preset_counts",
    "speaker_f0_range_hz",
]

PRESETS = ("tiny", "small", "paper-scale")
#: Longest sentence (words) of the tiny preset.
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
    """Utterances per speaker for a preset: speaker id -> (train, dev). See `mlms_keras.data.teacher`."""
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


def plan_utterances(preset: str, seed: int, speakers: list[str] | None = None) -> list[UtteranceSpec]:
    """The utterances of a build, in order: per speaker, its train then dev utterances.

    Args:
        preset: "tiny", "small" or "paper-scale".
        seed: the corpus seed; each speaker gets its own sentence stream from (seed, speaker id).
        speakers: optional subset of speaker ids (default: all ten).
    """
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
