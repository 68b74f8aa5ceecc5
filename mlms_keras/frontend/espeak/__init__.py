"""espeak-ng as the text frontend and the teacher: libespeak-ng from the `espeakng-loader` wheel through ctypes.

Two jobs:

- `analyze(text, language) -> Utterance`: phonemes (espeak-ng mnemonics and IPA), lexical stress, and syllable,
  word and phrase structure (`mlms_keras.frontend.espeak.analysis`).
- `synthesize(text, language, voice=SpeakerVoice(...)) -> Synthesis`: the 22 050 Hz waveform and the start sample
  of every phoneme, from espeak-ng's phoneme events (`mlms_keras.frontend.espeak.synthesis`).

The modules:

- `library`: the ctypes binding: loading and initialising libespeak-ng, `ESPEAK_LOCK`, verified voice selection,
  the raw phonemisation and synthesis calls, `SpeakerVoice`;
- `inventory`: each language's phoneme inventory (from espeak-ng's `phontab`) and the frontend's phoneme symbols;
- `analysis`: text checks (`validate_text`, by the language's scripts) and text -> `Utterance` (phrases, words,
  syllables, phonemes);
- `rules`: the open token rules for the languages beyond the paper's eight (palatalisation, tones, language
  switches, glued phonemes, pause marks); the eight keep their frozen rules;
- `synthesis`: text -> `Synthesis` (waveform and phoneme events).

libespeak-ng keeps its state (current voice, parameters, callback) in process-global variables, so every call
holds `ESPEAK_LOCK`. For parallel work use worker processes: each initialises its own copy. Every voice selection
is verified (espeak-ng itself would silently keep the previous voice; `VoiceSelectionError`).

The names below are the public API; import them from here (`from mlms_keras.frontend import espeak`, then
`espeak.analyze(...)`).
"""

from mlms_keras.frontend.espeak.analysis import (
    MAX_TEXT_CHARACTERS,
    FrontendInputError,
    Phoneme,
    Phrase,
    Syllable,
    Utterance,
    Word,
    analyze,
    validate_text,
)
from mlms_keras.frontend.espeak.inventory import (
    TONE_KIND,
    canonical_symbol,
    pause_marks,
    phoneme_inventory,
    split_event_symbol,
)
from mlms_keras.frontend.espeak.library import (
    ESPEAK_LOCK,
    SAMPLE_RATE_HZ,
    EspeakError,
    SpeakerVoice,
    VoiceSelectionError,
    espeak_version,
    has_synthesized,
    initialise,
    select_voice,
)
from mlms_keras.frontend.espeak.rules import ForeignWordError
from mlms_keras.frontend.espeak.synthesis import PhonemeEvent, Synthesis, synthesize

__all__ = [
    "ESPEAK_LOCK",
    "MAX_TEXT_CHARACTERS",
    "SAMPLE_RATE_HZ",
    "TONE_KIND",
    "EspeakError",
    "ForeignWordError",
    "FrontendInputError",
    "Phoneme",
    "PhonemeEvent",
    "Phrase",
    "SpeakerVoice",
    "Syllable",
    "Synthesis",
    "Utterance",
    "VoiceSelectionError",
    "Word",
    "analyze",
    "canonical_symbol",
    "espeak_version",
    "has_synthesized",
    "initialise",
    "pause_marks",
    "phoneme_inventory",
    "select_voice",
    "split_event_symbol",
    "synthesize",
    "validate_text",
]
