"""ctypes binding to libespeak-ng from the `espeakng-loader` wheel (no system install needed).

Two jobs:

* `analyze(text, language) -> Utterance`: phonemes (espeak-ng mnemonics and IPA), lexical stress, and
  syllable, word and phrase structure. Phrases are espeak-ng clauses (split at punctuation); words are
  the phonemised words (a number becomes several words); syllables are built around vowel nuclei (see
  `_syllabify`).
* `synthesize(text, language, voice=SpeakerVoice(...)) -> Synthesis`: the 22 050 Hz waveform and the
  start sample of every phoneme, from espeak-ng's phoneme events (`espeakINITIALIZE_PHONEME_EVENTS`).

libespeak-ng keeps its state (current voice, parameters, callback) in process-global variables, so every
call holds `ESPEAK_LOCK`. For parallel work use worker processes: each initialises its own copy.

Every voice selection is verified: the return code of `espeak_SetVoiceByName` and the language the
selected voice reports must both match (`mlms_keras.languages.Language.espeak_language`); otherwise
`VoiceSelectionError` is raised. espeak-ng itself would silently keep the previous voice.

Phoneme symbols are espeak-ng mnemonics without stress marks (e.g. "oU", "t#", "e-"), the same names the
phoneme events report; they are what `labels/` files of the teacher corpus contain.
"""

from __future__ import annotations

import ctypes
import os
import re
import struct
import threading
import unicodedata
from dataclasses import dataclass, field
from functools import cache, lru_cache

import numpy as np

from mlms_keras.languages import Language, get_language

SAMPLE_RATE_HZ = 22050
MAX_TEXT_CHARACTERS = 2000

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
# espeak-ng phoneme types (phoneme.h) of real segments; 0 pause, 1 stress, 9 virtual are not phonemes here.
_SEGMENT_TYPES = {
    2: "vowel",
    3: "liquid",
    4: "stop",
    5: "voiced_stop",
    6: "fricative",
    7: "voiced_fricative",
    8: "nasal",
}
# A separator that never occurs in espeak-ng mnemonics (they use ASCII punctuation such as _ : ' , # -).
_PHONEME_SEPARATOR = "\u2016"
_STRESS_PREFIXES = {"'": 1, ",": 2}
_IGNORED_PREFIX_MARKS = "%="
_PAUSE_MNEMONICS = ("_::", "_:", "_!", "_|", "_;_", "_^_", "_", "||")
_IPA_STRESS_MARKS = "ˈˌ"
_PHRASE_TERMINATORS = ".?!,;:¿¡…"


class EspeakError(RuntimeError):
    """libespeak-ng could not be loaded, initialised, or failed a call."""


class VoiceSelectionError(EspeakError):
    """A voice could not be selected, or espeak-ng selected a voice of another language."""


class FrontendInputError(ValueError):
    """Text that the frontend cannot turn into phonemes (empty, no words, wrong script, too long)."""


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


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Phoneme:
    """One phoneme of an analysed utterance.

    Attributes:
        symbol: espeak-ng mnemonic without stress marks, e.g. "oU".
        ipa: IPA transcription of the phoneme without stress marks ("" for a few espeak-internal phonemes).
        stress: 0 unstressed, 1 primary, 2 secondary (espeak-ng marks stress on the vowel).
        kind: espeak-ng phoneme type: "vowel", "liquid", "stop", "voiced_stop", "fricative",
            "voiced_fricative" or "nasal".
        lengthened: espeak-ng appended its length mark ":" (Italian geminates "t:", Polish "O:", ...); the
            symbol is then the base phoneme.
    """

    symbol: str
    ipa: str
    stress: int
    kind: str
    lengthened: bool = False

    @property
    def is_vowel(self) -> bool:
        """True for syllable nuclei (espeak-ng vowels, including syllabic consonants such as "n-")."""
        return self.kind == "vowel"


@dataclass
class Syllable:
    """Consecutive phonemes around one vowel nucleus; `stress` is the nucleus' stress (0, 1, 2)."""

    phonemes: list[Phoneme]
    stress: int


@dataclass
class Word:
    """A phonemised word (numbers and abbreviations may expand into several)."""

    syllables: list[Syllable]

    @property
    def phonemes(self) -> list[Phoneme]:
        return [phoneme for syllable in self.syllables for phoneme in syllable.phonemes]


@dataclass
class Phrase:
    """An espeak-ng clause. `terminator` is the punctuation that ended it ("" if none), e.g. "?"."""

    words: list[Word]
    terminator: str

    @property
    def is_question(self) -> bool:
        return "?" in self.terminator


@dataclass
class Utterance:
    """The frontend's analysis of one text: phrases of words of syllables of phonemes."""

    language: str
    text: str
    phrases: list[Phrase]

    @property
    def phonemes(self) -> list[Phoneme]:
        """All phonemes in order (no pauses)."""
        return [p for phrase in self.phrases for word in phrase.words for p in word.phonemes]

    @property
    def words(self) -> list[Word]:
        return [word for phrase in self.phrases for word in phrase.words]


@dataclass(frozen=True)
class SpeakerVoice:
    """How espeak-ng should sound for one speaker.

    Attributes:
        variant: espeak-ng voice variant ("f1".."f5", "m1".."m7", ...) or "" for the default voice.
        rate_wpm: speaking rate in words per minute (espeak-ng: 80..450, default 175).
        pitch: base pitch, 0..100 (espeak-ng default 50).
        pitch_range: pitch range, 0..100 (espeak-ng default 50; 0 is monotone).
    """

    variant: str = ""
    rate_wpm: int = 175
    pitch: int = 50
    pitch_range: int = 50


@dataclass
class PhonemeEvent:
    """A phoneme event from synthesis: espeak-ng mnemonic (stress marks kept) and its start sample."""

    symbol: str
    start_sample: int

    @property
    def is_pause(self) -> bool:
        return self.symbol.startswith("_") or self.symbol == "||"


@dataclass
class Synthesis:
    """espeak-ng output for one text.

    Attributes:
        waveform: float32 samples in [-1, 1], shape (samples,).
        sample_rate: always 22 050 Hz (espeak-ng's native rate).
        events: phoneme events in order, pauses ("_:", "_") included.
    """

    waveform: np.ndarray
    sample_rate: int
    events: list[PhonemeEvent] = field(default_factory=list)


class _Engine:
    """The process' one libespeak-ng instance (initialised lazily, re-initialised after fork)."""

    def __init__(self):
        self.pid = None
        self.library = None
        self.current_voice = None
        self.has_synthesized = False
        self.voice_changes_since_synthesis = 0
        self._chunks: list[np.ndarray] = []
        self._events: list[PhonemeEvent] = []
        self._callback = _SynthCallback(self._on_audio)

    def ensure_initialised(self):
        if self.library is not None and self.pid == os.getpid():
            return self.library
        import espeakng_loader

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
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(sample_count,)).copy())
        index = 0
        while events[index].type != _EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type == _EVENT_PHONEME:
                self._events.append(PhonemeEvent(event.id.string.decode("utf-8", "replace"), int(event.sample)))
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
        self._chunks, self._events = [], []
        self.voice_changes_since_synthesis = 0
        self.has_synthesized = True


_ENGINE = _Engine()


def espeak_version() -> str:
    """The espeak-ng library version and data path, e.g. '1.52.0 /.../espeak-ng-data'."""
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
    """Select and verify the espeak-ng voice for a language code (and optional variant such as "f3").

    Raises:
        ValueError: unknown language code.
        VoiceSelectionError: espeak-ng failed or selected a voice of another language.
    """
    with ESPEAK_LOCK:
        _ENGINE.select_voice(get_language(language), variant)


@cache
def phoneme_inventory(language: str) -> dict[str, str]:
    """The language's phoneme inventory from espeak-ng's compiled `phontab`: mnemonic -> kind.

    Only real segments are listed (kinds: vowel, liquid, stop, voiced_stop, fricative, voiced_fricative,
    nasal); pauses, stress marks and virtual phonemes are not. Table inheritance is resolved as espeak-ng
    does (a table overrides the phonemes of the table it includes).
    """
    table_name = get_language(language).phoneme_table
    tables = _read_phontab()
    if table_name not in tables:
        raise EspeakError(f"espeak-ng phoneme table {table_name!r} (language {language!r}) is not in phontab")
    by_code: dict[int, tuple[str, int]] = {}
    chain = []
    name = table_name
    while name is not None:
        chain.append(name)
        name = tables[name][0]
    for name in reversed(chain):
        for mnemonic, code, phoneme_type in tables[name][1]:
            by_code[code] = (mnemonic, phoneme_type)
    return {
        mnemonic: _SEGMENT_TYPES[phoneme_type]
        for code, (mnemonic, phoneme_type) in sorted(by_code.items())
        if phoneme_type in _SEGMENT_TYPES
    }


@lru_cache(maxsize=1)
def _read_phontab() -> dict[str, tuple[str | None, list[tuple[str, int, int]]]]:
    # Layout from espeak-ng's LoadPhonemeTable(): a count, then per table: n_phonemes, includes (index+1 of
    # the parent table), 2 pad bytes, a 32-byte name, and n_phonemes 16-byte PHONEME_TAB records.
    import espeakng_loader

    with open(os.path.join(espeakng_loader.get_data_path(), "phontab"), "rb") as file:
        data = file.read()
    table_count = data[0]
    offset = 4
    names: list[str] = []
    raw = []
    for _ in range(table_count):
        phoneme_count, includes = data[offset], data[offset + 1]
        offset += 4
        name = data[offset : offset + 32].split(b"\0")[0].decode("ascii")
        offset += 32
        phonemes = []
        for _ in range(phoneme_count):
            mnemonic, _flags, _program, code, phoneme_type = struct.unpack_from("<IIHBB", data, offset)
            offset += 16
            phonemes.append((mnemonic.to_bytes(4, "little").rstrip(b"\0").decode("latin-1"), code, phoneme_type))
        names.append(name)
        raw.append((includes, phonemes))
    return {
        name: (names[includes - 1] if includes > 0 else None, phonemes)
        for name, (includes, phonemes) in zip(names, raw)
    }


def validate_text(text: str, language: str) -> str:
    """Check a text before phonemisation; returns it with surrounding whitespace stripped.

    Documented handling of bad input:
      * not a string, empty or whitespace only -> `FrontendInputError`;
      * no letters or digits (e.g. punctuation only) -> `FrontendInputError`;
      * letters of another script than the language's (e.g. Cyrillic in French) -> `FrontendInputError`
        naming the characters (espeak-ng would otherwise spell them out or switch language silently);
      * longer than `MAX_TEXT_CHARACTERS` (2000) -> `FrontendInputError` asking to split the text into
        sentences (the frontend works clause by clause, but one "utterance" of that size is almost always
        a whole document by mistake, and would make a single training sequence of minutes).
    """
    spec = get_language(language)
    if not isinstance(text, str):
        raise FrontendInputError(f"text must be a string, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise FrontendInputError(f"text is empty ({language}): give at least one word")
    if len(stripped) > MAX_TEXT_CHARACTERS:
        raise FrontendInputError(
            f"text has {len(stripped)} characters, more than {MAX_TEXT_CHARACTERS} ({language}): "
            "split it into sentences and synthesise them one by one"
        )
    if not any(character.isalnum() for character in stripped):
        raise FrontendInputError(f"text {stripped[:40]!r} has no letters or digits ({language}): nothing to pronounce")
    foreign = sorted(
        {
            character
            for character in stripped
            if character.isalpha() and not unicodedata.name(character, "").startswith(spec.script)
        }
    )
    if foreign:
        raise FrontendInputError(
            f"text contains characters outside the {spec.script} script of {spec.display_name} ({language}): "
            f"{''.join(foreign)!r}. Transliterate them or remove them."
        )
    return stripped


def _parse_mnemonic_token(token: str) -> tuple[str, int] | None:
    """Split one separated phoneme token into (symbol, stress); None if it is only pauses."""
    while token:
        for pause in _PAUSE_MNEMONICS:
            if token.startswith(pause):
                token = token[len(pause) :]
                break
        else:
            break
    stress = 0
    while token and (token[0] in _STRESS_PREFIXES or token[0] in _IGNORED_PREFIX_MARKS):
        if token[0] in _STRESS_PREFIXES and stress == 0:
            stress = _STRESS_PREFIXES[token[0]]
        token = token[1:]
    if not token:
        return None
    return token, stress


def canonical_symbol(symbol: str, language: str) -> tuple[str, bool]:
    """A stress-free mnemonic -> (inventory symbol, lengthened).

    espeak-ng writes its length mark ":" glued to the phoneme before it ("t:" in Italian "tutto"); when the
    glued form is not itself an inventory phoneme (unlike "i:"), the base phoneme is returned with
    lengthened=True. Raises EspeakError for a symbol outside the language's inventory.
    """
    inventory = phoneme_inventory(language)
    if symbol in inventory:
        return symbol, False
    if symbol.endswith(":") and symbol.rstrip(":") in inventory:
        return symbol.rstrip(":"), True
    raise EspeakError(
        f"espeak-ng produced phoneme {symbol!r} that is not in the {language!r} inventory "
        f"(table {get_language(language).phoneme_table!r})"
    )


def split_event_symbol(symbol: str, language: str) -> str | None:
    """A phoneme event's mnemonic -> the frontend's phoneme symbol (as `Phoneme.symbol`), None for pauses."""
    parsed = _parse_mnemonic_token(symbol)
    if parsed is None:
        return None
    return canonical_symbol(parsed[0], language)[0]


def _text_to_phonemes_clauses(library, text: str, phoneme_mode: int) -> list[tuple[str, str]]:
    """Run espeak_TextToPhonemes clause by clause: [(phoneme string, consumed source text)]."""
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


def analyze(text: str, language: str) -> Utterance:
    """Phonemise a text: phrases (clauses) of words of syllables of phonemes, with stress.

    Args:
        text: the text, in the language's script (see `validate_text` for the bad-input rules).
        language: a language code of `mlms_keras.languages`.

    Returns:
        `Utterance`. Pauses are not phonemes here; phrase boundaries carry them.

    Raises:
        FrontendInputError: bad text, or a text espeak-ng turns into no phonemes.
        VoiceSelectionError: the language's voice cannot be selected.
    """
    text = validate_text(text, language)
    spec = get_language(language)
    inventory = phoneme_inventory(language)
    with ESPEAK_LOCK:
        _ENGINE.select_voice(spec, "")
        library = _ENGINE.library
        separator = ord(_PHONEME_SEPARATOR) << 8
        mnemonic_clauses = _text_to_phonemes_clauses(library, text, separator)
        ipa_clauses = _text_to_phonemes_clauses(library, text, separator | _PHONEMES_IPA)
    if len(mnemonic_clauses) != len(ipa_clauses):
        raise EspeakError(f"espeak-ng gave {len(mnemonic_clauses)} mnemonic but {len(ipa_clauses)} IPA clauses")
    phrases = []
    for (mnemonic_clause, consumed), (ipa_clause, _) in zip(mnemonic_clauses, ipa_clauses):
        mnemonic_words = mnemonic_clause.split()
        ipa_words = ipa_clause.split()
        if len(mnemonic_words) != len(ipa_words):
            # The IPA of a word made only of pause phonemes is empty and vanishes from the split.
            mnemonic_words = [w for w in mnemonic_words if _word_has_phonemes(w)]
            ipa_words = [w for w in ipa_words if w.replace(_PHONEME_SEPARATOR, "")]
        words = []
        for mnemonic_word, ipa_word in zip(mnemonic_words, ipa_words):
            mnemonic_tokens = mnemonic_word.split(_PHONEME_SEPARATOR)
            ipa_tokens = ipa_word.split(_PHONEME_SEPARATOR)
            if len(mnemonic_tokens) != len(ipa_tokens):
                ipa_tokens = [""] * len(mnemonic_tokens)  # keep the phonemes; articulatory features unknown
            phonemes = []
            for mnemonic_token, ipa_token in zip(mnemonic_tokens, ipa_tokens):
                parsed = _parse_mnemonic_token(mnemonic_token)
                if parsed is None:
                    continue
                symbol, stress = parsed
                try:
                    symbol, lengthened = canonical_symbol(symbol, language)
                except EspeakError as error:
                    raise EspeakError(f"{error}; text {text[:60]!r}") from None
                ipa = "".join(c for c in ipa_token if c not in _IPA_STRESS_MARKS)
                phonemes.append(Phoneme(symbol, ipa, stress, inventory[symbol], lengthened))
            if phonemes:
                words.append(Word(_syllabify(phonemes)))
        if words:
            phrases.append(Phrase(words, _terminator(consumed)))
    if not phrases:
        raise FrontendInputError(f"espeak-ng found no pronounceable words in {text[:60]!r} ({language})")
    return Utterance(language, text, phrases)


def _word_has_phonemes(mnemonic_word: str) -> bool:
    return any(_parse_mnemonic_token(t) for t in mnemonic_word.split(_PHONEME_SEPARATOR))


def _terminator(consumed_text: str) -> str:
    # espeak-ng reads a character or two past the clause end, so take the last run of punctuation.
    runs = re.findall(f"[{re.escape(_PHRASE_TERMINATORS)}]+", consumed_text.rstrip("\0"))
    return runs[-1] if runs else ""


def _syllabify(phonemes: list[Phoneme]) -> list[Syllable]:
    """Group a word's phonemes into syllables.

    Each vowel (espeak-ng phoneme type "vowel", which includes syllabic consonants) is one nucleus.
    Consonants before the first nucleus are its onset, after the last its coda. Between two nuclei, a
    single consonant starts the next syllable (onset first); of two or more, the first closes the earlier
    syllable and the rest start the next one. A word without a vowel is one syllable (stress 0).
    """
    nuclei = [index for index, phoneme in enumerate(phonemes) if phoneme.is_vowel]
    if not nuclei:
        return [Syllable(list(phonemes), 0)]
    boundaries = [0]
    for left, right in zip(nuclei, nuclei[1:]):
        consonants = right - left - 1
        boundaries.append(left + 2 if consonants >= 2 else right - consonants)
    boundaries.append(len(phonemes))
    syllables = []
    for number, (start, end) in enumerate(zip(boundaries, boundaries[1:])):
        syllables.append(Syllable(phonemes[start:end], phonemes[nuclei[number]].stress))
    return syllables


def synthesize(
    text: str, language: str, voice: SpeakerVoice = SpeakerVoice(), random_seed: int | None = None
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
        random_seed: seed for espeak-ng's noise generator (breathy variants), or None to leave it.

    Returns:
        `Synthesis` with a float32 waveform at 22 050 Hz and the phoneme events (start sample of each
        phoneme, pauses included).
    """
    text = validate_text(text, language)
    spec = get_language(language)
    with ESPEAK_LOCK:
        library = _ENGINE.ensure_initialised()
        _ENGINE.flush_voice_changes()
        _ENGINE.select_voice(spec, voice.variant)
        for parameter, value in (
            (_PARAM_RATE, voice.rate_wpm),
            (_PARAM_PITCH, voice.pitch),
            (_PARAM_RANGE, voice.pitch_range),
            (_PARAM_VOLUME, 100),
            (_PARAM_WORDGAP, 0),
        ):
            if library.espeak_SetParameter(parameter, int(value), 0) != 0:
                raise EspeakError(f"espeak_SetParameter({parameter}, {value}) failed for {language}")
        if random_seed is not None:
            library.espeak_ng_SetRandSeed(ctypes.c_long(int(random_seed) & 0x7FFFFFFF))
        _ENGINE._chunks = []
        _ENGINE._events = []
        _ENGINE.has_synthesized = True
        encoded = text.encode("utf-8")
        return_code = library.espeak_Synth(encoded, len(encoded) + 1, 0, 0, 0, _CHARS_UTF8, None, None)
        library.espeak_Synchronize()
        if return_code != 0:
            raise EspeakError(f"espeak_Synth failed with code {return_code} for {text[:60]!r} ({language})")
        chunks, events = _ENGINE._chunks, _ENGINE._events
        _ENGINE._chunks, _ENGINE._events = [], []
        _ENGINE.voice_changes_since_synthesis = 0
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return Synthesis((samples.astype(np.float32) / 32768.0), SAMPLE_RATE_HZ, events)
