"""The teacher corpus's speakers, presets and utterance plan (what to render; `build` renders it).

Every speaker is a distinct espeak-ng voice variant with its own base pitch, pitch range and speaking rate
(variants change pitch and timbre, the rate changes timing); its F0 search range for WORLD analysis follows from
the variant file. `plan_utterances` gives every utterance of a preset build (the paper's Table 1 speakers) its id,
text, split and seed, deterministically for a corpus seed; `plan_language_utterances` does the same for a build of
any languages, with one new speaker per language (`language_speaker`: `<code>-<variant>`) and sentences from the
language's grammar (the paper's eight) or its word-frequency list (`mlms_keras.data.teacher.words`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import espeakng_loader

from mlms_keras.data.sentences import GRAMMAR_FOR_LANGUAGE, generate_sentences
from mlms_keras.data.teacher.words import word_sentences, wordfreq_code
from mlms_keras.frontend import espeak
from mlms_keras.languages import ADAPTATION, get_language

__all__ = [
    "DEFAULT_VARIANT",
    "POLYGLOT_GAIN_DB",
    "POLYGLOT_PREFIX",
    "POLYGLOT_SHARE",
    "PRESETS",
    "TABLE1_PRESETS",
    "TEACHER_SPEAKERS",
    "TINY_MAX_WORDS",
    "TeacherSpeaker",
    "UtteranceSpec",
    "default_dev_count",
    "get_speaker",
    "language_speaker",
    "plan_language_utterances",
    "plan_utterances",
    "sentence_source",
    "preset_counts",
    "speaker_f0_range_hz",
]

#: The Table 1 presets (paper reproduction; unchanged) and their polyglot versions (`polyglot_plan`).
TABLE1_PRESETS = ("tiny", "small", "paper-scale")
POLYGLOT_PREFIX = "polyglot-"
PRESETS = TABLE1_PRESETS + tuple(POLYGLOT_PREFIX + name for name in TABLE1_PRESETS)
#: Share of a training speaker's utterances (train and dev) spoken in the other training languages (polyglot).
POLYGLOT_SHARE = 0.3
#: Gain (dB) on espeak-ng's output in the polyglot presets: espeak-ng speaks near full scale (belinda, the Polish
#: speaker, peaks at 0.999; others at 0.6-0.9), WORLD copy synthesis of that peaks up to 1.35x and an MSE-trained
#: voice up to 3.4x (teacher-small), so its speech clipped. -12 dB puts the teacher's peaks at -12 dBFS or below; a
#: gain only moves c0 by ln(gain), so the spectral envelope (c1..c39), F0 and aperiodicity do not change.
POLYGLOT_GAIN_DB = -12.0
#: Longest sentence (words) of the tiny preset.
TINY_MAX_WORDS = 8
#: espeak-ng voice variant of the speakers of a build by languages (`plan_language_utterances`).
DEFAULT_VARIANT = "f2"
#: Speaking rate (words/min), pitch and pitch range (0..100) of those speakers.
_LANGUAGE_SPEAKER_VOICE = (165, 50, 55)


@dataclass(frozen=True)
class TeacherSpeaker:
    """One speaker of the teacher corpus.

    Attributes:
        speaker_id: e.g. "en-us-female".
        language: language code.
        gender: "female" or "male".
        voice: espeak-ng variant, rate (words/min), pitch and pitch range (0..100).
        table1_train: the speaker's training utterances in Table 1 of the paper (`None` for the speakers of a
            build by languages, which are not in Table 1).
        table1_dev: development utterances (Table 1 lists 100 for French and Italian; we use 100 for all).
    """

    speaker_id: str
    language: str
    gender: str
    voice: espeak.SpeakerVoice
    table1_train: int | None
    table1_dev: int | None = 100


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
    """Utterances per speaker for a preset: speaker id -> (train, dev). See `mlms_keras.data.teacher`.

    A polyglot preset has its Table 1 preset's counts (some of them in other languages, `plan_utterances`)."""
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    preset = preset.removeprefix(POLYGLOT_PREFIX)
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


def _variant_file(variant: str) -> Path:
    return Path(espeakng_loader.get_data_path()) / "voices" / "!v" / variant


def _variant_pitch_hz(variant: str) -> tuple[float, float]:
    """The 'pitch BASE TOP' line (Hz) of an espeak-ng voice variant file (espeak-ng's default is 82 118)."""
    path = _variant_file(variant)
    base, top = 82.0, 118.0
    if variant and path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "pitch":
                base, top = float(parts[1]), float(parts[2])
    return base, top


def _variant_gender(variant: str) -> str:
    """The 'gender' line of a variant file; espeak-ng's voices are male unless the variant says otherwise."""
    for line in _variant_file(variant).read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "gender" and parts[1] in ("female", "male"):
            return parts[1]
    return "male"


def language_speaker(language: str, variant: str = DEFAULT_VARIANT) -> TeacherSpeaker:
    """The speaker of `language` in a build by languages: id `<code>-<variant>` (e.g. `sv-f2`), that espeak-ng
    variant, 165 words/min, pitch 50, range 55; gender from the variant file.

    Raises:
        ValueError: an unknown language, or a variant that is not an espeak-ng variant file name.
    """
    get_language(language)
    names = sorted(path.name for path in _variant_file("").iterdir() if path.is_file())
    if variant not in names or not all(c.isalnum() or c == "_" for c in variant):
        usable = [name for name in names if all(c.isalnum() or c == "_" for c in name)]
        raise ValueError(
            f"--voice-variant {variant!r} is not an espeak-ng voice variant; use one of {', '.join(usable)} "
            "(female: f1..f5, Annie, belinda, steph, ...; male: m1..m8, ...)"
        )
    rate, pitch, pitch_range = _LANGUAGE_SPEAKER_VOICE
    voice = espeak.SpeakerVoice(variant, rate, pitch, pitch_range)
    return TeacherSpeaker(f"{language}-{variant}", language, _variant_gender(variant), voice, None, None)


def speaker_f0_range_hz(speaker: TeacherSpeaker) -> tuple[float, float]:
    """A safe F0 search range (floor, ceiling) in Hz for WORLD analysis of this speaker.

    espeak-ng scales the variant's 'pitch BASE TOP' by about 2 ** ((pitch - 50) / 50) for the pitch
    parameter (0..100) and widens the excursion by the range parameter. We take 0.6 x the scaled base as the
    floor and 1.6 x the scaled top, widened by range/50, as the ceiling: intonation (questions) rises above
    TOP. Checked against WORLD's F0 of synthesised speech in tests/data/test_teacher_corpus.py.
    """
    base, top = _variant_pitch_hz(speaker.voice.variant)
    scale = 2.0 ** ((speaker.voice.pitch - 50) / 50.0)
    excursion = (top - base) * max(1.0, speaker.voice.pitch_range / 50.0)
    floor = 0.6 * base * scale
    ceiling = 1.6 * (base + excursion) * scale
    return round(floor, 1), round(ceiling, 1)


@dataclass(frozen=True)
class UtteranceSpec:
    """What to render for one utterance (picklable for worker processes); `voice` is set for the speakers of a build
    by languages, which `get_speaker` does not know."""

    utterance_id: str
    text: str
    language: str
    speaker_id: str
    split: str
    seed: int
    voice: espeak.SpeakerVoice | None = None  # None: the Table 1 speaker's voice (`get_speaker`)
    gain_db: float = 0.0  # on espeak-ng's output (`POLYGLOT_GAIN_DB` in the polyglot presets)


def _speaker_seed(seed: int, speaker_id: str) -> int:
    return zlib.crc32(f"{seed}/{speaker_id}".encode())


def _foreign_counts(speaker: TeacherSpeaker, train: int, dev: int) -> dict[str, tuple[int, int]]:
    """Polyglot: (train, dev) utterances of a training speaker in each other training language (round-robin)."""
    others = [code for code in GRAMMAR_FOR_LANGUAGE if code != speaker.language]
    others = [code for code in others if get_language(code).role != ADAPTATION]
    start = TEACHER_SPEAKERS.index(speaker) % len(others)  # speakers start the round at different languages
    others = others[start:] + others[:start]
    counts = dict.fromkeys(others, (0, 0))
    for split, total in (("train", int(round(POLYGLOT_SHARE * train))), ("dev", int(round(POLYGLOT_SHARE * dev)))):
        for index in range(total):
            code = others[index % len(others)]
            train_count, dev_count = counts[code]
            counts[code] = (train_count + 1, dev_count) if split == "train" else (train_count, dev_count + 1)
    return {code: pair for code, pair in counts.items() if pair != (0, 0)}


def plan_utterances(preset: str, seed: int, speakers: list[str] | None = None) -> list[UtteranceSpec]:
    """The utterances of a build, in order: per speaker, its train then dev utterances.

    A polyglot preset (`polyglot-small`, ...) has the same utterances per speaker as its Table 1 preset, but each
    speaker of a training language speaks `POLYGLOT_SHARE` of them in the other training languages (round-robin,
    each language's own grammar, a sentence stream per (seed, speaker, language)), listed before its own language's
    and numbered on from them; the adaptation languages' speakers (little data, as in the paper) speak only their
    own. espeak-ng voice variants speak any language, so every speaker's output layer then sees every training
    language's hidden states, which the Table 1 data never shows it (one language per speaker). Its audio is
    `POLYGLOT_GAIN_DB` quieter.

    Args:
        preset: one of `PRESETS`.
        seed: the corpus seed; each speaker gets its own sentence stream from (seed, speaker id).
        speakers: optional subset of speaker ids (default: all ten).
    """
    if preset.startswith(POLYGLOT_PREFIX) and preset in PRESETS:
        return _polyglot_plan(preset, seed, speakers)
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


def _polyglot_plan(preset: str, seed: int, speakers: list[str] | None) -> list[UtteranceSpec]:
    table1 = plan_utterances(preset.removeprefix(POLYGLOT_PREFIX), seed, speakers)
    specs = []
    for speaker in TEACHER_SPEAKERS:
        own = [spec for spec in table1 if spec.speaker_id == speaker.speaker_id]
        if not own:
            continue
        adaptation = get_language(speaker.language).role == ADAPTATION
        foreign = [] if adaptation else _foreign_specs(speaker, own, seed, preset == POLYGLOT_PREFIX + "tiny")
        # The foreign utterances replace the last of the speaker's own, per split; ids are numbered on.
        for split in ("train", "dev"):
            theirs = [spec for spec in foreign if spec.split == split]
            mine = [spec for spec in own if spec.split == split]
            kept = mine[: len(mine) - len(theirs)]
            for number, spec in enumerate(theirs + kept, start=1):
                utterance_id = f"{speaker.speaker_id}-{split}-{number:05d}"
                specs.append(
                    UtteranceSpec(
                        utterance_id,
                        spec.text,
                        spec.language,
                        spec.speaker_id,
                        split,
                        zlib.crc32(f"{seed}/{utterance_id}".encode()),
                        gain_db=POLYGLOT_GAIN_DB,
                    )
                )
    return specs


def _foreign_specs(speaker: TeacherSpeaker, own: list[UtteranceSpec], seed: int, tiny: bool) -> list[UtteranceSpec]:
    """The speaker's utterances in other languages (ids and seeds are set by `_polyglot_plan`)."""
    train = sum(spec.split == "train" for spec in own)
    specs = []
    for code, (train_count, dev_count) in _foreign_counts(speaker, train, len(own) - train).items():
        count = train_count + dev_count
        stream = _speaker_seed(seed, f"{speaker.speaker_id}/{code}")
        texts = generate_sentences(code, 8 * count if tiny else count, stream)
        if tiny:  # as the tiny preset: short sentences
            texts = ([text for text in texts if len(text.split()) <= TINY_MAX_WORDS] + texts)[:count]
        for index, text in enumerate(texts):
            split = "train" if index < train_count else "dev"
            specs.append(UtteranceSpec("", text, code, speaker.speaker_id, split, 0))
    return specs


def sentence_source(language: str) -> str:
    """Where a build by languages takes `language`'s sentences: `"grammar"` (the paper's eight, hand-written
    grammars) or `"wordfreq:<code>"` (its word-frequency list). ValueError for a language with neither."""
    if language in GRAMMAR_FOR_LANGUAGE:
        return "grammar"
    return f"wordfreq:{wordfreq_code(language)}"


def default_dev_count(utterances: int) -> int:
    """Dev utterances of a speaker with `utterances` in all: a tenth, at least 1 (none for a single utterance)."""
    return 0 if utterances < 2 else max(1, round(utterances / 10))


def plan_language_utterances(
    languages: list[str], utterances: int, seed: int, variant: str = DEFAULT_VARIANT, dev: int | None = None
) -> tuple[list[TeacherSpeaker], list[UtteranceSpec]]:
    """The speakers and utterances of a build by languages: one `language_speaker` per language, each with
    `utterances` utterances (`dev` of them, default `default_dev_count`, in the dev split), in the order given.

    Sentences come from the language's grammar or word-frequency list (`sentence_source`), each speaker's stream
    seeded by (seed, speaker id) as in `plan_utterances`; ids are `<speaker>-<split>-<number>` as there.

    Raises:
        ValueError: no languages, a language twice, an unknown language or one without sentences (the message
            lists those with a word-frequency list), a bad variant, or counts out of range.
    """
    if not languages:
        raise ValueError("--languages is empty: give language codes such as sv,cs (see `mlms languages`)")
    if len(set(languages)) != len(languages):
        raise ValueError(f"--languages {','.join(languages)} names a language twice; give each once")
    if utterances < 1:
        raise ValueError(f"--utterances must be at least 1 per language, got {utterances}")
    dev = default_dev_count(utterances) if dev is None else dev
    if not 0 <= dev < utterances:
        raise ValueError(f"--dev must be between 0 and {utterances - 1} (utterances - 1), got {dev}")
    speakers = [language_speaker(language, variant) for language in languages]
    sources = {language: sentence_source(language) for language in languages}  # fail before any slow work
    specs = []
    for speaker in speakers:
        speaker_seed = _speaker_seed(seed, speaker.speaker_id)
        if sources[speaker.language] == "grammar":
            texts = generate_sentences(speaker.language, utterances, speaker_seed)
        else:
            texts = word_sentences(speaker.language, utterances, speaker_seed)
        train = utterances - dev
        for index, text in enumerate(texts):
            split = "train" if index < train else "dev"
            number = index + 1 if split == "train" else index - train + 1
            utterance_id = f"{speaker.speaker_id}-{split}-{number:05d}"
            seed_of = zlib.crc32(f"{seed}/{utterance_id}".encode())
            specs.append(
                UtteranceSpec(utterance_id, text, speaker.language, speaker.speaker_id, split, seed_of, speaker.voice)
            )
    return speakers, specs
