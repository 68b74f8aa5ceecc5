"""Speech from espeak-ng: the waveform of a text and the start sample of every phoneme (the teacher's speech).

Phoneme events come from libespeak-ng initialised with `espeakINITIALIZE_PHONEME_EVENTS`: the synth callback
reports each phoneme with its position in the audio, at espeak-ng's native 22 050 Hz.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mlms_keras.frontend.espeak.analysis import validate_text
from mlms_keras.frontend.espeak.library import SAMPLE_RATE_HZ, SpeakerVoice, synthesize_samples
from mlms_keras.languages import get_language

__all__ = ["PhonemeEvent", "Synthesis", "synthesize"]

_DEFAULT_VOICE = SpeakerVoice()


@dataclass
class PhonemeEvent:
    """A phoneme event from synthesis: espeak-ng mnemonic (stress marks kept) and its start sample."""

    symbol: str
    start_sample: int

    @property
    def is_pause(self) -> bool:
        """True for espeak-ng's pause mnemonics (`_`, `_:`, ..., `||`)."""
        return self.symbol.startswith("_") or self.symbol == "||"


@dataclass
class Synthesis:
    """espeak-ng output for one text.

    Attributes:
        waveform: float32 samples in [-1, 1], shape `(samples,)`.
        sample_rate: always 22 050 Hz (espeak-ng's native rate).
        events: phoneme events in order, pauses (`_:`, `_`) included.
    """

    waveform: np.ndarray
    sample_rate: int
    events: list[PhonemeEvent] = field(default_factory=list)


def synthesize(
    text: str, language: str, voice: SpeakerVoice = _DEFAULT_VOICE, random_seed: int | None = None
) -> Synthesis:
    """Synthesise a text with espeak-ng and collect its phoneme events.

    The phonemes and their order never depend on earlier calls, but the samples do, slightly: libespeak-ng
    keeps its glottal phase, pitch flutter and filter states in static variables that survive between
    utterances (and even `espeak_Terminate` / `espeak_Initialize`), so the same text can come out a few
    samples longer or shorter. For byte-exact output, synthesise in a fresh process, or in a forked copy of
    a process that has not synthesised yet (the teacher-corpus builder does the latter).

    Args:
        text: the text (validated as in `analyze`).
        language: a language code.
        voice: variant, rate, pitch and pitch range.
        random_seed: seed for espeak-ng's noise generator (breathy variants), or `None` to leave it.

    Returns:
        `Synthesis` with a float32 waveform at 22 050 Hz and the phoneme events (start sample of each
        phoneme, pauses included).
    """
    text = validate_text(text, language)
    samples, events = synthesize_samples(text, get_language(language), voice, random_seed)
    return Synthesis(
        (samples.astype(np.float32) / 32768.0),
        SAMPLE_RATE_HZ,
        [PhonemeEvent(symbol, start_sample) for symbol, start_sample in events],
    )
