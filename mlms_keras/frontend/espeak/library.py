"""libespeak-ng through ctypes: loading, initialising, voice selection, and the raw calls the frontend makes.

The library comes from the `espeakng-loader` wheel (library and data; no system install). It keeps its state
(current voice, parameters, the synth callback) in process-global variables, so every call holds `ESPEAK_LOCK`
(a re-entrant lock: a caller may hold it across several calls). For parallel work use worker processes: each
initialises its own copy (the engine re-initialises after `fork`).

Every voice selection is verified: the return code of `espeak_SetVoiceByName` and the language the selected voice
reports must both match (`mlms_keras.languages.Language.espeak_language`); otherwise `VoiceSelectionError` is
raised. espeak-ng itself would silently keep the previous voice.
"""

from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass

import espeakng_loader
import numpy as np

from mlms_keras.languages import Language, get_language

__all__ = [
    "ESPEAK_LOCK",
    "SAMPLE_RATE_HZ",
    "EspeakError",
    "FrontendInputError",
    "SpeakerVoice",
    "VoiceSelectionError",
    "espeak_version",
    "has_synthesized",
    "initialise",
    "select_voice",
    "synthesize_samples",
    "text_to_phoneme_clauses",
]

SAMPLE_RATE_HZ = 22050

ESPEAK_LOCK = threading.RLock()

# speak_lib.h constants.
_AUDIO_OUTPUT_SYNCHRONOUS = 0x0002
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_PHONEMES_IPA = 0x02
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_PARAM_WORDGAP = 7


class EspeakError(RuntimeError):
    """libespeak-ng could not be loaded, initialised, or failed a call."""


class VoiceSelectionError(EspeakError):
    """A voice could not be selected, or espeak-ng selected a voice of another language."""


class FrontendInputError(ValueError):
    """Text that the frontend cannot turn into phonemes (empty, no words, wrong script, too long, foreign words)."""


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


@dataclass(frozen=True)
class SpeakerVoice:
    """How espeak-ng should sound for one speaker.

    Attributes:
        variant: espeak-ng voice variant (`"f1"`..`"f5"`, `"m1"`..`"m7"`, ...) or `""` for the default voice.
        rate_wpm: speaking rate in words per minute (espeak-ng: 80..450, default 175).
        pitch: base pitch, 0..100 (espeak-ng default 50).
        pitch_range: pitch range, 0..100 (espeak-ng default 50; 0 is monotone).
    """

    variant: str = ""
    rate_wpm: int = 175
    pitch: int = 50
    pitch_range: int = 50


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class _Engine:
    """The process' one libespeak-ng instance (initialised lazily, re-initialised after fork)."""

    def __init__(self):
        self.pid = None
        self.library = None
        self.current_voice = None
        self.has_synthesized = False
        self.voice_changes_since_synthesis = 0
        self.chunks: list[np.ndarray] = []
        self.events: list[tuple[str, int]] = []
        self._callback = _SynthCallback(self._on_audio)

    def ensure_initialised(self):
        if self.library is not None and self.pid == os.getpid():
            return self.library
        try:
            library = ctypes.CDLL(espeakng_loader.get_library_path())
        except OSError as error:
            raise EspeakError(
                f"Could not load libespeak-ng from {espeakng_loader.get_library_path()}: {error}. "
                "Reinstall the wheel: pip install --force-reinstall espeakng-loader"
            ) from error
        library.espeak_Initialize.restype = ctypes.c_int
        library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        library.espeak_TextToPhonemes.restype = ctypes.c_char_p
        library.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        library.espeak_SetVoiceByName.restype = ctypes.c_int
        library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        library.espeak_GetCurrentVoice.restype = ctypes.POINTER(_Voice)
        library.espeak_SetParameter.restype = ctypes.c_int
        library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        library.espeak_Synth.restype = ctypes.c_int
        library.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        library.espeak_Synchronize.restype = ctypes.c_int
        library.espeak_ng_SetRandSeed.restype = None
        library.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        data_path = espeakng_loader.get_data_path().encode()
        sample_rate = library.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT
        )
        if sample_rate != SAMPLE_RATE_HZ:
            raise EspeakError(
                f"espeak_Initialize returned {sample_rate} (expected the sample rate {SAMPLE_RATE_HZ}); "
                f"check the data folder {data_path.decode()}"
            )
        library.espeak_SetSynthCallback(self._callback)
        self.library = library
        self.pid = os.getpid()
        self.current_voice = None
        self.has_synthesized = False
        self.voice_changes_since_synthesis = 0
        return library

    def _on_audio(self, samples, sample_count, events):
        if sample_count > 0:
            self.chunks.append(np.ctypeslib.as_array(samples, shape=(sample_count,)).copy())
        index = 0
        while events[index].type != _EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type == _EVENT_PHONEME:
                self.events.append((event.id.string.decode("utf-8", "replace"), int(event.sample)))
            index += 1
        return 0

    def select_voice(self, language: Language, variant: str = ""):
        library = self.ensure_initialised()
        name = language.espeak_voice + (f"+{variant}" if variant else "")
        if self.current_voice == name:
            return
        self.current_voice = None
        self.voice_changes_since_synthesis += 1
        return_code = library.espeak_SetVoiceByName(name.encode())
        voice = library.espeak_GetCurrentVoice()
        reported_language = voice.contents.languages[1:].decode() if voice and voice.contents.languages else ""
        identifier = voice.contents.identifier.decode() if voice and voice.contents.identifier else ""
        if return_code != 0 or reported_language != language.espeak_language:
            raise VoiceSelectionError(
                f"espeak-ng could not select voice {name!r} for language {language.code!r}: return code "
                f"{return_code}, selected language {reported_language!r} (expected {language.espeak_language!r}). "
                "Check the language's espeak_voice in mlms_keras/languages.py and the variant name "
                "(espeak-ng-data/voices/!v)."
            )
        if variant and not identifier.endswith(f"+{variant}"):
            raise VoiceSelectionError(
                f"espeak-ng selected {identifier!r} instead of the variant {variant!r} for {language.code!r}. "
                "Use a variant listed in espeak-ng-data/voices/!v (f1..f5, m1..m7, ...)."
            )
        self.current_voice = name

    def flush_voice_changes(self):
        """Play out the voice changes queued since the last synthesis, discarding their audio and events.

        In synchronous mode every `espeak_SetVoiceByName` queues a sample-rate event that is only delivered by
        the next `espeak_Synth`; after many voice changes without synthesis (`analyze` across languages, as
        `mlms prepare` does) those events fill the first audio chunk's event list and push out the first
        phoneme events of the utterance. A throwaway synthesis drains them first.
        """
        if self.voice_changes_since_synthesis == 0:
            return
        text = b"a"
        self.library.espeak_Synth(text, len(text) + 1, 0, 0, 0, _CHARS_UTF8, None, None)
        self.library.espeak_Synchronize()
        self.chunks, self.events = [], []
        self.voice_changes_since_synthesis = 0
        self.has_synthesized = True


_ENGINE = _Engine()


def espeak_version() -> str:
    """The espeak-ng library version and data path, e.g. `'1.52.0 /.../espeak-ng-data'`."""
    with ESPEAK_LOCK:
        library = _ENGINE.ensure_initialised()
        library.espeak_Info.restype = ctypes.c_char_p
        path = ctypes.c_char_p()
        version = library.espeak_Info(ctypes.byref(path))
        return version.decode()


def initialise() -> None:
    """Load and initialise libespeak-ng in this process now (it is otherwise done on first use)."""
    with ESPEAK_LOCK:
        _ENGINE.ensure_initialised()


def has_synthesized() -> bool:
    """True once this process' libespeak-ng has synthesised audio (its sample-level state is no longer fresh)."""
    return _ENGINE.library is not None and _ENGINE.pid == os.getpid() and _ENGINE.has_synthesized


def select_voice(language: str, variant: str = "") -> None:
    """Select and verify the espeak-ng voice for a language code (and optional variant such as `"f3"`).

    Raises:
        ValueError: unknown language code.
        VoiceSelectionError: espeak-ng failed or selected a voice of another language.
    """
    with ESPEAK_LOCK:
        _ENGINE.select_voice(get_language(language), variant)


def text_to_phoneme_clauses(text: str, language: Language, separator: str, ipa: bool) -> list[tuple[str, str]]:
    """Run `espeak_TextToPhonemes` clause by clause with the language's default voice.

    Args:
        text: the text (already validated).
        language: the language, whose voice is selected and verified first.
        separator: the character espeak-ng puts between the phonemes of a word.
        ipa: IPA instead of espeak-ng mnemonics.

    Returns:
        One `(phoneme string, consumed source text)` per clause; words are separated by spaces.
    """
    with ESPEAK_LOCK:
        _ENGINE.select_voice(language, "")
        library = _ENGINE.library
        phoneme_mode = (ord(separator) << 8) | (_PHONEMES_IPA if ipa else 0)
        encoded = text.encode("utf-8")
        buffer = ctypes.create_string_buffer(encoded)
        start = ctypes.addressof(buffer)
        pointer = ctypes.c_void_p(start)
        clauses = []
        while pointer.value:
            before = pointer.value - start
            result = library.espeak_TextToPhonemes(ctypes.byref(pointer), _CHARS_UTF8, phoneme_mode)
            after = (pointer.value - start) if pointer.value else len(encoded)
            consumed = encoded[before:after].decode("utf-8", "replace")
            clauses.append(((result or b"").decode("utf-8", "replace"), consumed))
        return clauses


def synthesize_samples(
    text: str,
    language: Language,
    voice: SpeakerVoice,
    random_seed: int | None = None,
) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """Synthesise a text with espeak-ng: its 16-bit samples and its phoneme events.

    Args:
        text: the text (already validated).
        language: the language; its voice (with `voice.variant`) is selected and verified first.
        voice: variant, rate, pitch and pitch range (volume is always 100 and the word gap 0).
        random_seed: seed for espeak-ng's noise generator, or `None` to leave it.

    Returns:
        `(samples, events)`: int16 samples `(samples,)` at `SAMPLE_RATE_HZ`, and `(mnemonic, start sample)` for
        each phoneme event (stress marks kept, pauses included).
    """
    with ESPEAK_LOCK:
        library = _ENGINE.ensure_initialised()
        _ENGINE.flush_voice_changes()
        _ENGINE.select_voice(language, voice.variant)
        for parameter, value in (
            (_PARAM_RATE, voice.rate_wpm),
            (_PARAM_PITCH, voice.pitch),
            (_PARAM_RANGE, voice.pitch_range),
            (_PARAM_VOLUME, 100),
            (_PARAM_WORDGAP, 0),
        ):
            if library.espeak_SetParameter(parameter, int(value), 0) != 0:
                raise EspeakError(f"espeak_SetParameter({parameter}, {value}) failed for {language.code}")
        if random_seed is not None:
            library.espeak_ng_SetRandSeed(ctypes.c_long(int(random_seed) & 0x7FFFFFFF))
        _ENGINE.chunks = []
        _ENGINE.events = []
        _ENGINE.has_synthesized = True
        encoded = text.encode("utf-8")
        return_code = library.espeak_Synth(encoded, len(encoded) + 1, 0, 0, 0, _CHARS_UTF8, None, None)
        library.espeak_Synchronize()
        if return_code != 0:
            raise EspeakError(f"espeak_Synth failed with code {return_code} for {text[:60]!r} ({language.code})")
        chunks, events = _ENGINE.chunks, _ENGINE.events
        _ENGINE.chunks, _ENGINE.events = [], []
        _ENGINE.voice_changes_since_synthesis = 0
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return samples, events
